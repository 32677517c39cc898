//! Which matrices of a model can carry provenance evidence, and how to read them as
//! "units x residual" so that two models' matrices line up once their residual bases are
//! aligned.
//!
//! A unit is a row that reads from (q, k, v, gate, up, router) or a column that writes to
//! (o, down) the residual stream; inheritance preserves units one for one, which is what the
//! unit-matching statistics test.

use std::collections::BTreeMap;
use std::ops::Range;

use dokja_formats::{Model, TensorInfo};
use dokja_schema::{Component, Family, Role, TensorClass};
use serde::Serialize;

/// Matrix kinds compared across models. Dense MLPs, routed experts and shared experts share a
/// kind, so an MoE upcycled from a dense model is compared expert against dense MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Q,
    K,
    V,
    O,
    Qkv,
    QA,
    QB,
    KvA,
    KvB,
    Gate,
    Up,
    GateUp,
    Down,
    Router,
    PatchEmbedding,
    PositionEmbedding,
    ConvStem,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Q => "q",
            Kind::K => "k",
            Kind::V => "v",
            Kind::O => "o",
            Kind::Qkv => "qkv",
            Kind::QA => "q_a",
            Kind::QB => "q_b",
            Kind::KvA => "kv_a",
            Kind::KvB => "kv_b",
            Kind::Gate => "gate",
            Kind::Up => "up",
            Kind::GateUp => "gate_up",
            Kind::Down => "down",
            Kind::Router => "router",
            Kind::PatchEmbedding => "patch_embedding",
            Kind::PositionEmbedding => "position_embedding",
            Kind::ConvStem => "conv_stem",
        }
    }
}

/// How the stored matrix relates to the residual stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Orientation {
    /// Stored [units, residual]: rows read from the residual.
    ReadsResidual,
    /// Stored [residual, units]: columns write to the residual (read transposed).
    WritesResidual,
    /// Neither side is the residual (MLA up-projections from a private latent, conv stems):
    /// compared in stored order, without residual alignment.
    Private,
}

fn kind_of(role: Role) -> Option<(Kind, Orientation)> {
    use Orientation::*;
    Some(match role {
        Role::AttnQ => (Kind::Q, ReadsResidual),
        Role::AttnK => (Kind::K, ReadsResidual),
        Role::AttnV => (Kind::V, ReadsResidual),
        Role::AttnO => (Kind::O, WritesResidual),
        Role::AttnQkvFused => (Kind::Qkv, ReadsResidual),
        Role::AttnQA => (Kind::QA, ReadsResidual),
        Role::AttnKvA => (Kind::KvA, ReadsResidual),
        Role::AttnQB => (Kind::QB, Private),
        Role::AttnKvB => (Kind::KvB, Private),
        Role::MlpGate | Role::ExpertGate | Role::SharedExpertGate => (Kind::Gate, ReadsResidual),
        Role::MlpUp | Role::ExpertUp | Role::SharedExpertUp => (Kind::Up, ReadsResidual),
        Role::MlpGateUpFused | Role::ExpertGateUpFused => (Kind::GateUp, ReadsResidual),
        Role::MlpDown | Role::ExpertDown | Role::SharedExpertDown => (Kind::Down, WritesResidual),
        Role::Router => (Kind::Router, ReadsResidual),
        // [residual, channels, patch, patch]: written to the residual.
        Role::PatchEmbedding => (Kind::PatchEmbedding, WritesResidual),
        Role::PositionEmbedding => (Kind::PositionEmbedding, ReadsResidual),
        Role::ConvStem => (Kind::ConvStem, Private),
        _ => return None,
    })
}

/// One comparable matrix: a tensor, or one expert's slice of a stacked expert tensor.
#[derive(Clone, Debug)]
pub struct Slot {
    pub kind: Kind,
    pub orientation: Orientation,
    pub layer: Option<u32>,
    pub expert: Option<u32>,
    /// Shared experts are kept apart from routed ones when both exist.
    pub shared_expert: bool,
    pub tensor: usize,
    /// Canonical rows of the tensor that form this matrix (a stacked expert's slice).
    pub rows: Range<u64>,
    /// Stored matrix shape as [rows, cols] after flattening trailing dimensions.
    pub stored: (usize, usize),
}

impl Slot {
    /// (units, residual width) after orientation.
    pub fn units_by_width(&self) -> (usize, usize) {
        match self.orientation {
            Orientation::WritesResidual => (self.stored.1, self.stored.0),
            _ => self.stored,
        }
    }
}

/// A model's tensors grouped by component, with their schema classes.
pub struct ModelSlots<'m> {
    /// Where values come from: weights or a fingerprint.
    pub subject: crate::subject::Subject<'m>,
    /// The model's description (for a fingerprint, its skeleton).
    pub model: &'m Model,
    pub family: Family,
    pub classes: Vec<TensorClass>,
    pub components: BTreeMap<Component, ComponentSlots>,
}

#[derive(Default)]
pub struct ComponentSlots {
    /// Matrices that can carry evidence.
    pub matrices: Vec<Slot>,
    /// All learned tensors of the component (for identity checks), by index.
    pub learned: Vec<usize>,
    /// The token embedding (and output head) of a language model.
    pub token_embedding: Option<usize>,
    pub lm_head: Option<usize>,
}

impl<'m> ModelSlots<'m> {
    pub fn of(model: &'m Model) -> Self {
        Self::of_subject(crate::subject::Subject::Weights(model))
    }

    pub fn of_subject(subject: crate::subject::Subject<'m>) -> Self {
        let model = subject.model();
        let family = family_of(model);
        let classes: Vec<TensorClass> = model
            .tensors
            .iter()
            .map(|t| dokja_schema::classify_with_family(&t.name, &family))
            .collect();
        let mut components: BTreeMap<Component, ComponentSlots> = BTreeMap::new();
        for (i, (t, c)) in model.tensors.iter().zip(&classes).enumerate() {
            if !c.learned || c.component == Component::Unclassified {
                continue;
            }
            let comp = components.entry(c.component).or_default();
            comp.learned.push(i);
            if c.param != dokja_schema::Param::Weight {
                continue;
            }
            match c.role {
                Role::TokenEmbedding if t.shape.len() == 2 && comp.token_embedding.is_none() => {
                    comp.token_embedding = Some(i)
                }
                Role::LmHead if t.shape.len() == 2 && comp.lm_head.is_none() => {
                    comp.lm_head = Some(i)
                }
                _ => {}
            }
            if let Some((kind, orientation)) = kind_of(c.role) {
                comp.matrices.extend(slots_of(i, t, c, kind, orientation));
            }
        }
        ModelSlots {
            subject,
            model,
            family,
            classes,
            components,
        }
    }
}

fn slots_of(
    index: usize,
    t: &TensorInfo,
    c: &TensorClass,
    kind: Kind,
    orientation: Orientation,
) -> Vec<Slot> {
    let shared_expert = matches!(
        c.role,
        Role::SharedExpertGate | Role::SharedExpertUp | Role::SharedExpertDown
    );
    let slot = |expert: Option<u32>, rows: Range<u64>, stored: (usize, usize)| Slot {
        kind,
        orientation,
        layer: c.layer,
        expert,
        shared_expert,
        tensor: index,
        rows,
        stored,
    };
    match t.shape.len() {
        2 => vec![slot(
            c.expert,
            0..t.shape[0],
            (t.shape[0] as usize, t.shape[1] as usize),
        )],
        // Stacked experts [n_expert, out, in]: one slot per expert.
        3 if c.role.is_expert() => {
            let (n, out, inp) = (t.shape[0], t.shape[1], t.shape[2]);
            (0..n)
                .map(|e| {
                    slot(
                        Some(e as u32),
                        e * out..(e + 1) * out,
                        (out as usize, inp as usize),
                    )
                })
                .collect()
        }
        // Convolutions [out, in, k...]: flattened to [out, in * k...].
        d if d >= 3 && matches!(kind, Kind::PatchEmbedding | Kind::ConvStem) => {
            let out = t.shape[0];
            let rest: u64 = t.shape[1..].iter().product();
            vec![slot(None, 0..t.n_rows(), (out as usize, rest as usize))]
        }
        _ => Vec::new(),
    }
}

pub fn family_of(model: &Model) -> Family {
    let config = model.sidecars.config.as_ref();
    let model_type = config
        .and_then(|c| c.get("model_type"))
        .and_then(|v| v.as_str());
    let archs: Vec<&str> = config
        .and_then(|c| c.get("architectures"))
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let gguf = model
        .metadata
        .get("general.architecture")
        .and_then(|v| v.as_str());
    if model_type.is_some() || !archs.is_empty() || gguf.is_some() {
        dokja_schema::family_from_config(model_type, &archs, gguf)
    } else {
        let names: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
        dokja_schema::family_from_tensor_names(&names)
            .unwrap_or_else(|| Family::Other("unknown".into()))
    }
}
