//! The inspection summary of a model: what it is (architecture, dimensions), what it is made
//! of (components, parameter counts, dtypes and quantization), its tokenizer and licence,
//! and which tensors the schema could not place. Reads headers only, never weights.

use std::collections::BTreeMap;

use dokja_formats::{Model, TensorInfo};
use dokja_schema::{Component, Family, Role, TensorClass};
use serde::Serialize;
use serde_json::Value;

mod dims;

pub use dims::Dimensions;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub path: String,
    pub format: &'static str,
    pub files: usize,
    pub file_bytes: u64,
    pub architecture: Architecture,
    pub dimensions: Dimensions,
    pub parameters: u64,
    pub components: Vec<ComponentSummary>,
    /// Element type -> (tensors, parameters), over the whole model.
    pub dtypes: BTreeMap<String, DtypeCount>,
    pub quantized: bool,
    /// The output projection: tied to the token embedding, a separate tensor, or none
    /// (encoder-only models).
    pub lm_head: LmHead,
    pub tokenizer: Option<TokenizerSummary>,
    pub licence: Option<dokja_formats::hf::Licence>,
    /// Tensors that are buffers, not learned weights (rotary inv_freq, fixed audio bases).
    pub non_learned: Vec<String>,
    /// Tensors the schema could not place in a component or role: reported, never dropped.
    pub unclassified: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tensors: Option<Vec<TensorRow>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LmHead {
    Tied,
    Separate,
    None,
}

#[derive(Debug, Serialize)]
pub struct Architecture {
    /// dokja's family name, e.g. "Llama", "Gemma 3", "DeepSeek-V3".
    pub family: String,
    /// What the files declare: config.json `model_type` or GGUF `general.architecture`.
    pub declared: Option<String>,
    /// config.json `architectures`, GGUF `general.name`.
    pub names: Vec<String>,
    /// Where the family was read from: "config.json", "gguf metadata" or "tensor names".
    pub evidence: &'static str,
}

#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct DtypeCount {
    pub tensors: u64,
    pub parameters: u64,
}

#[derive(Debug, Serialize)]
pub struct ComponentSummary {
    pub component: Component,
    pub tensors: u64,
    pub parameters: u64,
    pub layers: u32,
    pub experts: u32,
    pub dtypes: BTreeMap<String, DtypeCount>,
}

#[derive(Debug, Serialize)]
pub struct TokenizerSummary {
    pub kind: &'static str,
    pub vocab_size: usize,
    pub merges: usize,
    pub special_tokens: Vec<String>,
    pub special_token_count: usize,
    pub source: String,
}

#[derive(Debug, Serialize)]
pub struct TensorRow {
    pub name: String,
    pub stored_name: String,
    pub component: Component,
    pub role: Role,
    pub layer: Option<u32>,
    pub expert: Option<u32>,
    pub shape: Vec<u64>,
    pub dtype: String,
    pub parameters: u64,
    pub learned: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct InspectOptions {
    pub list_tensors: bool,
}

/// How many special tokens a summary lists by name.
const SPECIAL_TOKENS_SHOWN: usize = 16;

pub fn inspect(model: &Model, options: InspectOptions) -> Inspection {
    let names: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
    let (architecture, family) = architecture(model, &names);
    let classes: Vec<TensorClass> = model
        .tensors
        .iter()
        .map(|t| dokja_schema::classify_with_family(&t.name, &family))
        .collect();
    let config = model.sidecars.config.as_ref();
    let tie_flag = config
        .and_then(|c| c.get("tie_word_embeddings"))
        .and_then(Value::as_bool);
    let encoder_only = matches!(
        family,
        Family::Bert | Family::Vit | Family::Siglip | Family::Clip
    );
    let lm_head = if classes.iter().any(|c| c.role == Role::LmHead) {
        LmHead::Separate
    } else if !encoder_only && dokja_schema::tied_embeddings(&names, tie_flag) {
        LmHead::Tied
    } else {
        LmHead::None
    };

    let mut components: BTreeMap<Component, ComponentSummary> = BTreeMap::new();
    let mut dtypes = BTreeMap::new();
    let mut non_learned = Vec::new();
    let mut unclassified = Vec::new();
    let mut parameters = 0;
    for (t, class) in model.tensors.iter().zip(&classes) {
        let n = t.n_elements();
        let entry = components
            .entry(class.component)
            .or_insert_with(|| ComponentSummary {
                component: class.component,
                tensors: 0,
                parameters: 0,
                layers: 0,
                experts: 0,
                dtypes: BTreeMap::new(),
            });
        if class.learned {
            entry.parameters += n;
            parameters += n;
        } else {
            non_learned.push(t.name.clone());
        }
        entry.tensors += 1;
        if let Some(l) = class.layer {
            entry.layers = entry.layers.max(l + 1);
        }
        entry.experts = entry.experts.max(expert_count(t, class));
        add(&mut entry.dtypes, t);
        add(&mut dtypes, t);
        if class.learned && class.is_unclassified() {
            unclassified.push(t.name.clone());
        }
    }
    let dimensions = dims::dimensions(model, &architecture, &classes);
    let tensors = options.list_tensors.then(|| {
        model
            .tensors
            .iter()
            .zip(&classes)
            .map(|(t, c)| TensorRow {
                name: t.name.clone(),
                stored_name: t.stored_name.clone(),
                component: c.component,
                role: c.role,
                layer: c.layer,
                expert: c.expert,
                shape: t.shape.clone(),
                dtype: t.dtype.name().to_string(),
                parameters: t.n_elements(),
                learned: c.learned,
            })
            .collect()
    });
    Inspection {
        path: model.path.display().to_string(),
        format: model.format.name(),
        files: model.files.len(),
        file_bytes: model.total_bytes(),
        architecture,
        dimensions,
        parameters,
        components: components.into_values().collect(),
        quantized: model.tensors.iter().any(|t| t.dtype.is_quantized()),
        dtypes,
        lm_head,
        tokenizer: model.sidecars.tokenizer.as_ref().map(|t| TokenizerSummary {
            kind: t.kind.name(),
            vocab_size: t.vocab_size(),
            merges: t.merges.len(),
            special_tokens: t
                .special_tokens
                .iter()
                .take(SPECIAL_TOKENS_SHOWN)
                .map(|s| s.content.clone())
                .collect(),
            special_token_count: t.special_tokens.len(),
            source: t.source.clone(),
        }),
        licence: model.sidecars.licence.clone(),
        non_learned,
        unclassified,
        tensors,
    }
}

/// Experts in a tensor: per-expert tensors carry an index; stacked expert tensors hold
/// `shape[0]` experts.
fn expert_count(t: &TensorInfo, class: &TensorClass) -> u32 {
    let stacked = matches!(
        class.role,
        Role::ExpertGate | Role::ExpertUp | Role::ExpertDown | Role::ExpertGateUpFused
    ) && class.expert.is_none()
        && t.shape.len() == 3;
    match (class.expert, stacked) {
        (Some(e), _) => e + 1,
        (None, true) => t.shape[0].min(u32::MAX as u64) as u32,
        _ => 0,
    }
}

fn add(map: &mut BTreeMap<String, DtypeCount>, t: &TensorInfo) {
    let e = map.entry(t.dtype.name().to_string()).or_default();
    e.tensors += 1;
    e.parameters += t.n_elements();
}

fn architecture(model: &Model, names: &[&str]) -> (Architecture, Family) {
    let config = model.sidecars.config.as_ref();
    let model_type = config
        .and_then(|c| c.get("model_type"))
        .and_then(Value::as_str);
    let declared_names: Vec<String> = config
        .and_then(|c| c.get("architectures"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let gguf_arch = model
        .metadata
        .get("general.architecture")
        .and_then(Value::as_str);
    let gguf_name = model.metadata.get("general.name").and_then(Value::as_str);
    let arch_refs: Vec<&str> = declared_names.iter().map(String::as_str).collect();
    let (family, evidence) = if model_type.is_some() || !arch_refs.is_empty() {
        (
            dokja_schema::family_from_config(model_type, &arch_refs, None),
            "config.json",
        )
    } else if gguf_arch.is_some() {
        (
            dokja_schema::family_from_config(None, &[], gguf_arch),
            "gguf metadata",
        )
    } else {
        match dokja_schema::family_from_tensor_names(names) {
            Some(f) => (f, "tensor names"),
            None => (
                dokja_schema::family_from_config(None, &[], None),
                "nothing recognizable",
            ),
        }
    };
    let mut all_names = declared_names;
    all_names.extend(gguf_name.map(str::to_string));
    let arch = Architecture {
        family: family.display_name().to_string(),
        declared: model_type.or(gguf_arch).map(str::to_string),
        names: all_names,
        evidence,
    };
    (arch, family)
}
