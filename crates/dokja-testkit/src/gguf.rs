//! GGUF v3 writer imitating llama.cpp's convert_hf_to_gguf.py: llama.cpp tensor names,
//! dims innermost-first, experts stacked into 3-D tensors, Q/K rows permuted for arch
//! "llama", 1-D tensors, norms and routers kept in F32, quantized types falling back to F16
//! when a row is not a whole number of blocks.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::gguf_names::{GgufTarget, gguf_target};
use crate::model::{SynthModel, SynthTensor, TokenizerKind};
use crate::quant::{QuantType, quantize};
use crate::raw::{GgufBytes, RawKv, RawTensorInfo, gguf_string};

/// `enum gguf_type` of metadata values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgufValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    /// Element type and elements (which must all be of that type).
    Array(GgufValueType, Vec<GgufValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl GgufValue {
    pub fn value_type(&self) -> GgufValueType {
        match self {
            GgufValue::U8(_) => GgufValueType::U8,
            GgufValue::I8(_) => GgufValueType::I8,
            GgufValue::U16(_) => GgufValueType::U16,
            GgufValue::I16(_) => GgufValueType::I16,
            GgufValue::U32(_) => GgufValueType::U32,
            GgufValue::I32(_) => GgufValueType::I32,
            GgufValue::F32(_) => GgufValueType::F32,
            GgufValue::Bool(_) => GgufValueType::Bool,
            GgufValue::Str(_) => GgufValueType::String,
            GgufValue::Array(..) => GgufValueType::Array,
            GgufValue::U64(_) => GgufValueType::U64,
            GgufValue::I64(_) => GgufValueType::I64,
            GgufValue::F64(_) => GgufValueType::F64,
        }
    }

    pub fn type_id(&self) -> u32 {
        self.value_type() as u32
    }

    pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> GgufValue {
        GgufValue::Array(
            GgufValueType::String,
            items
                .into_iter()
                .map(|s| GgufValue::Str(s.as_ref().into()))
                .collect(),
        )
    }

    /// The value's bytes, without its type tag (arrays carry their element type and count).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            GgufValue::U8(v) => out.push(*v),
            GgufValue::I8(v) => out.push(*v as u8),
            GgufValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            GgufValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            GgufValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            GgufValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            GgufValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            GgufValue::Bool(v) => out.push(*v as u8),
            GgufValue::Str(s) => gguf_string(s.as_bytes(), out),
            GgufValue::Array(t, items) => {
                out.extend_from_slice(&(*t as u32).to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for it in items {
                    debug_assert_eq!(it.value_type(), *t, "array element of the wrong type");
                    it.encode(out);
                }
            }
            GgufValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            GgufValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            GgufValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
}

/// Storage type of one GGUF tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgufType {
    F32,
    F16,
    BF16,
    Quant(QuantType),
}

impl GgufType {
    /// `enum ggml_type`.
    pub fn ggml_type(self) -> u32 {
        match self {
            GgufType::F32 => 0,
            GgufType::F16 => 1,
            GgufType::BF16 => 30,
            GgufType::Quant(q) => q.ggml_type(),
        }
    }

    /// (elements per block, bytes per block).
    pub fn block(self) -> (usize, usize) {
        match self {
            GgufType::F32 => (1, 4),
            GgufType::F16 | GgufType::BF16 => (1, 2),
            GgufType::Quant(q) => q.block(),
        }
    }

    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            GgufType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            GgufType::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
                .collect(),
            GgufType::BF16 => values
                .iter()
                .flat_map(|v| half::bf16::from_f32(*v).to_bits().to_le_bytes())
                .collect(),
            GgufType::Quant(q) => quantize(q, values),
        }
    }

    /// llama.cpp's `general.file_type` (LLAMA_FTYPE_*) for a file mostly of this type;
    /// k-quants map to their _M variants.
    pub fn file_type(self) -> u32 {
        match self {
            GgufType::F32 => 0,
            GgufType::F16 => 1,
            GgufType::BF16 => 32,
            GgufType::Quant(q) => match q {
                QuantType::Q4_0 => 2,
                QuantType::Q4_1 => 3,
                QuantType::Q8_0 => 7,
                QuantType::Q5_0 => 8,
                QuantType::Q5_1 => 9,
                QuantType::Q2K => 10,
                QuantType::Q3K => 12,
                QuantType::Q4K => 15,
                QuantType::Q5K => 17,
                QuantType::Q6K => 18,
            },
        }
    }
}

#[derive(Clone, Debug)]
pub struct GgufOptions {
    /// Type of 2-D (and stacked 3-D) weights.
    pub matrix_type: GgufType,
    /// Type of `token_embd.weight` (None: `matrix_type`); real files often use Q8_0 / Q6_K.
    pub token_embd_type: Option<GgufType>,
    /// Type of `output.weight` (None: `matrix_type`).
    pub output_type: Option<GgufType>,
    /// Per-tensor types by GGUF name; they win over every rule but the block-size fallback.
    pub type_overrides: Vec<(String, GgufType)>,
    pub alignment: u64,
    /// Write `general.alignment` (readers default to 32 without it).
    pub write_alignment_key: bool,
    /// llama.cpp architecture; None uses `model.gguf_arch`.
    pub arch: Option<String>,
    /// Permute Q/K rows as the converter does for llama; None: only when arch is "llama".
    pub permute_qk: Option<bool>,
    /// Split MLA `kv_b_proj` into `attn_k_b` / `attn_v_b` (current converter) instead of
    /// writing `attn_kv_b` (files converted before 2025-04).
    pub split_mla_kv_b: bool,
    /// Gemma: store norm weights as `1 + w`, as the converter does.
    pub gemma_norm_shift: bool,
    /// Drop tensors without a llama.cpp name (vision towers) instead of failing.
    pub skip_unmapped: bool,
    /// general.name (None: `model.name`).
    pub name: Option<String>,
    /// general.license (None: omitted).
    pub license: Option<String>,
    /// Extra metadata, appended after the generated keys.
    pub extra_kv: Vec<(String, GgufValue)>,
}

impl Default for GgufOptions {
    fn default() -> Self {
        GgufOptions {
            matrix_type: GgufType::F16,
            token_embd_type: None,
            output_type: None,
            type_overrides: Vec::new(),
            alignment: 32,
            write_alignment_key: true,
            arch: None,
            permute_qk: None,
            split_mla_kv_b: true,
            gemma_norm_shift: true,
            skip_unmapped: false,
            name: None,
            license: Some("apache-2.0".into()),
            extra_kv: Vec::new(),
        }
    }
}

impl GgufOptions {
    pub fn with_type(matrix_type: GgufType) -> GgufOptions {
        GgufOptions {
            matrix_type,
            ..Default::default()
        }
    }
}

/// What was written for one GGUF tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufTensorSummary {
    pub name: String,
    /// The HF tensors it holds (several for stacked experts).
    pub hf_names: Vec<String>,
    pub ty: GgufType,
    /// Canonical shape, outermost first (the file stores it reversed).
    pub shape: Vec<usize>,
    /// Offset relative to the data section.
    pub offset: u64,
    pub byte_len: u64,
    /// Some(n_head) when rows were permuted as llama.cpp's `permute(w, n_head)`.
    pub permuted_heads: Option<u32>,
}

/// A GGUF tensor before encoding.
struct Planned {
    name: String,
    hf_names: Vec<String>,
    shape: Vec<usize>,
    data: Vec<f32>,
    permuted_heads: Option<u32>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// llama.cpp's `permute`: `w.reshape(n_head, 2, rows/n_head/2, *rest).swapaxes(1, 2)`, so
/// stored row `h*per + 2j + a` holds canonical row `h*per + a*half + j`.
pub fn permute_rows_for_rope(t: &SynthTensor, n_head: usize) -> Vec<f32> {
    let rows = t.shape[0];
    let rest = t.n_elements() / rows.max(1);
    assert!(
        rows.is_multiple_of(n_head) && (rows / n_head).is_multiple_of(2),
        "{}: {rows} rows, {n_head} heads",
        t.name
    );
    let per = rows / n_head;
    let half = per / 2;
    let mut out = vec![0.0; t.data.len()];
    for h in 0..n_head {
        for a in 0..2 {
            for j in 0..half {
                let src = h * per + a * half + j;
                let dst = h * per + 2 * j + a;
                out[dst * rest..(dst + 1) * rest]
                    .copy_from_slice(&t.data[src * rest..(src + 1) * rest]);
            }
        }
    }
    out
}

fn plan(model: &SynthModel, arch: &str, opts: &GgufOptions) -> io::Result<Vec<Planned>> {
    let permute = opts.permute_qk.unwrap_or(arch == "llama");
    let n_head = model.cfg_usize("num_attention_heads");
    let n_kv = model.cfg_usize("num_key_value_heads").or(n_head);
    let mut planned: Vec<Planned> = Vec::new();
    // Stacked tensors collect their experts here, keyed by their slot in `planned`.
    let mut experts: BTreeMap<usize, Vec<Option<&SynthTensor>>> = BTreeMap::new();
    let mut slot_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut unmapped = Vec::new();
    for t in &model.tensors {
        match gguf_target(arch, &t.name) {
            None => unmapped.push(t.name.clone()),
            Some(GgufTarget::Skip) => {}
            Some(GgufTarget::Single(name)) => {
                let mut data = t.data.clone();
                let mut permuted_heads = None;
                let heads = if t.name.ends_with("self_attn.q_proj.weight")
                    || t.name.ends_with("self_attn.q_proj.bias")
                {
                    n_head
                } else if t.name.ends_with("self_attn.k_proj.weight")
                    || t.name.ends_with("self_attn.k_proj.bias")
                {
                    n_kv
                } else {
                    None
                };
                if permute && let Some(h) = heads {
                    data = permute_rows_for_rope(t, h);
                    permuted_heads = Some(h as u32);
                }
                if arch.starts_with("gemma")
                    && opts.gemma_norm_shift
                    && t.name.ends_with("norm.weight")
                {
                    data.iter_mut().for_each(|v| *v += 1.0);
                }
                planned.push(Planned {
                    name,
                    hf_names: vec![t.name.clone()],
                    shape: t.shape.clone(),
                    data,
                    permuted_heads,
                });
            }
            Some(GgufTarget::Expert { name, index }) => {
                let slot = *slot_of.entry(name.clone()).or_insert_with(|| {
                    planned.push(Planned {
                        name,
                        hf_names: vec![],
                        shape: vec![],
                        data: vec![],
                        permuted_heads: None,
                    });
                    planned.len() - 1
                });
                let v = experts.entry(slot).or_default();
                if v.len() <= index {
                    v.resize(index + 1, None);
                }
                v[index] = Some(t);
            }
            Some(GgufTarget::KvB { layer }) => {
                planned.extend(kv_b(model, t, layer, opts.split_mla_kv_b)?)
            }
        }
    }
    if !unmapped.is_empty() && !opts.skip_unmapped {
        return Err(invalid(format!(
            "no llama.cpp name for {} tensors in arch {arch}: {:?}",
            unmapped.len(),
            unmapped
        )));
    }
    for (slot, list) in experts {
        let p = &mut planned[slot];
        let first = list.iter().flatten().next().expect("at least one expert");
        for (i, e) in list.iter().enumerate() {
            let e = e.ok_or_else(|| invalid(format!("{}: expert {i} is missing", p.name)))?;
            if e.shape != first.shape {
                return Err(invalid(format!(
                    "{}: expert shapes differ ({:?} vs {:?})",
                    p.name, e.shape, first.shape
                )));
            }
            p.hf_names.push(e.name.clone());
            p.data.extend_from_slice(&e.data);
        }
        p.shape = std::iter::once(list.len())
            .chain(first.shape.iter().copied())
            .collect();
    }
    Ok(planned)
}

/// MLA `kv_b_proj` `[n_head*(nope+v), kv_lora]`: either as is, or split into
/// `k_b` `[n_head, kv_lora, nope]` (transposed per head) and `v_b` `[n_head, v, kv_lora]`.
fn kv_b(
    model: &SynthModel,
    t: &SynthTensor,
    layer: usize,
    split: bool,
) -> io::Result<Vec<Planned>> {
    let hf = vec![t.name.clone()];
    if !split {
        let name = format!("blk.{layer}.attn_kv_b.weight");
        return Ok(vec![Planned {
            name,
            hf_names: hf,
            shape: t.shape.clone(),
            data: t.data.clone(),
            permuted_heads: None,
        }]);
    }
    let need = |k: &str| {
        model
            .cfg_usize(k)
            .ok_or_else(|| invalid(format!("config lacks {k}")))
    };
    let n_head = model
        .cfg_usize("num_key_value_heads")
        .map_or_else(|| need("num_attention_heads"), Ok)?;
    let (nope, v) = (need("qk_nope_head_dim")?, need("v_head_dim")?);
    let lora = t.shape[1];
    if t.shape[0] != n_head * (nope + v) {
        return Err(invalid(format!(
            "{}: {} rows, expected {n_head} x ({nope} + {v})",
            t.name, t.shape[0]
        )));
    }
    let (mut kb, mut vb) = (
        Vec::with_capacity(n_head * lora * nope),
        Vec::with_capacity(n_head * v * lora),
    );
    for h in 0..n_head {
        let row = |r: usize| &t.data[(h * (nope + v) + r) * lora..(h * (nope + v) + r + 1) * lora];
        for c in 0..lora {
            kb.extend((0..nope).map(|r| row(r)[c]));
        }
        for r in 0..v {
            vb.extend_from_slice(row(nope + r));
        }
    }
    Ok(vec![
        Planned {
            name: format!("blk.{layer}.attn_k_b.weight"),
            hf_names: hf.clone(),
            shape: vec![n_head, lora, nope],
            data: kb,
            permuted_heads: None,
        },
        Planned {
            name: format!("blk.{layer}.attn_v_b.weight"),
            hf_names: hf,
            shape: vec![n_head, v, lora],
            data: vb,
            permuted_heads: None,
        },
    ])
}

/// The storage type the converter would pick for a tensor.
fn choose_type(p: &Planned, opts: &GgufOptions) -> GgufType {
    let n = &p.name;
    let always_f32 = p.shape.len() <= 1
        || n.ends_with("_norm.weight")
        || !n.ends_with(".weight")
        || n.ends_with("ffn_gate_inp.weight")
        || n.ends_with("ffn_gate_inp_shexp.weight")
        || n == "position_embd.weight"
        || n == "token_types.weight";
    let wanted = if let Some((_, t)) = opts.type_overrides.iter().rev().find(|(k, _)| k == n) {
        *t
    } else if always_f32 {
        GgufType::F32
    } else if n == "token_embd.weight" {
        opts.token_embd_type.unwrap_or(opts.matrix_type)
    } else if n == "output.weight" {
        opts.output_type.unwrap_or(opts.matrix_type)
    } else {
        opts.matrix_type
    };
    let row = p.shape.last().copied().unwrap_or(1);
    match wanted {
        GgufType::Quant(q) if !q.fits_row(row) => GgufType::F16,
        t => t,
    }
}

fn u32v(v: usize) -> GgufValue {
    GgufValue::U32(v as u32)
}

/// Architecture hyperparameters under `{arch}.`.
fn arch_kvs(model: &SynthModel, arch: &str) -> Vec<(String, GgufValue)> {
    let c = |k: &str| model.cfg_usize(k);
    let mut kv: Vec<(String, GgufValue)> = Vec::new();
    let mut put = |k: &str, v: Option<GgufValue>| {
        if let Some(v) = v {
            kv.push((format!("{arch}.{k}"), v));
        }
    };
    let heads = c("num_attention_heads");
    let head_dim = c("head_dim").or_else(|| Some(c("hidden_size")? / heads?));
    put("context_length", c("max_position_embeddings").map(u32v));
    put("embedding_length", c("hidden_size").map(u32v));
    put("block_count", c("num_hidden_layers").map(u32v));
    put("feed_forward_length", c("intermediate_size").map(u32v));
    put("attention.head_count", heads.map(u32v));
    if arch == "bert" {
        put(
            "attention.layer_norm_epsilon",
            model
                .cfg_f64("layer_norm_eps")
                .map(|v| GgufValue::F32(v as f32)),
        );
        put("attention.causal", Some(GgufValue::Bool(false)));
        put("pooling_type", Some(GgufValue::U32(2)));
        return kv;
    }
    put(
        "attention.head_count_kv",
        c("num_key_value_heads").or(heads).map(u32v),
    );
    put(
        "rope.freq_base",
        model
            .cfg_f64("rope_theta")
            .map(|v| GgufValue::F32(v as f32)),
    );
    put(
        "attention.layer_norm_rms_epsilon",
        model
            .cfg_f64("rms_norm_eps")
            .map(|v| GgufValue::F32(v as f32)),
    );
    if arch == "deepseek2" {
        let (nope, rope) = (c("qk_nope_head_dim"), c("qk_rope_head_dim"));
        put("vocab_size", c("vocab_size").map(u32v));
        put(
            "leading_dense_block_count",
            c("first_k_dense_replace").map(u32v),
        );
        put("attention.q_lora_rank", c("q_lora_rank").map(u32v));
        put("attention.kv_lora_rank", c("kv_lora_rank").map(u32v));
        put(
            "attention.key_length",
            nope.zip(rope).map(|(a, b)| u32v(a + b)),
        );
        put("attention.value_length", c("v_head_dim").map(u32v));
        put("rope.dimension_count", rope.map(u32v));
        put(
            "expert_feed_forward_length",
            c("moe_intermediate_size").map(u32v),
        );
        put("expert_count", c("n_routed_experts").map(u32v));
        put("expert_shared_count", c("n_shared_experts").map(u32v));
        put("expert_used_count", c("num_experts_per_tok").map(u32v));
        put(
            "expert_weights_scale",
            model
                .cfg_f64("routed_scaling_factor")
                .map(|v| GgufValue::F32(v as f32)),
        );
        put("expert_weights_norm", Some(GgufValue::Bool(true)));
        let sigmoid = model
            .text_config()
            .get("scoring_func")
            .and_then(|v| v.as_str())
            == Some("sigmoid");
        put(
            "expert_gating_func",
            Some(GgufValue::U32(if sigmoid { 2 } else { 1 })),
        );
        return kv;
    }
    if arch == "llama" {
        put("vocab_size", c("vocab_size").map(u32v));
        put("rope.dimension_count", head_dim.map(u32v));
        put("expert_count", c("num_local_experts").map(u32v));
        if c("num_local_experts").is_some() {
            put("expert_used_count", c("num_experts_per_tok").map(u32v));
        }
    } else {
        put("attention.key_length", head_dim.map(u32v));
        put("attention.value_length", head_dim.map(u32v));
    }
    if arch.ends_with("moe") {
        put("expert_count", c("num_experts").map(u32v));
        put("expert_used_count", c("num_experts_per_tok").map(u32v));
        put(
            "expert_feed_forward_length",
            c("moe_intermediate_size").map(u32v),
        );
        put(
            "expert_shared_feed_forward_length",
            c("shared_expert_intermediate_size").map(u32v),
        );
    }
    if arch.starts_with("gemma") {
        put("attention.sliding_window", c("sliding_window").map(u32v));
    }
    kv
}

fn tokenizer_kvs(model: &SynthModel, arch: &str) -> Vec<(String, GgufValue)> {
    let Some(tok) = &model.tokenizer else {
        return Vec::new();
    };
    let n = model
        .cfg_usize("vocab_size")
        .unwrap_or(0)
        .max(tok.vocab.len());
    let mut tokens = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for i in 0..n {
        let id = i as u32;
        match tok.vocab.get(i) {
            // The converter pads short vocabularies with unused placeholders.
            None => {
                tokens.push(format!("[PAD{i}]"));
                types.push(GgufValue::I32(5));
            }
            Some(s) => {
                let ty = if tok.is_special(id) && tok.unk == Some(id) {
                    2
                } else if tok.is_special(id) {
                    3
                } else if tok.kind == TokenizerKind::Unigram
                    && s.len() == 6
                    && s.starts_with("<0x")
                    && s.ends_with('>')
                {
                    6
                } else {
                    1
                };
                // llama.cpp's BERT vocab uses "phantom space": "##x" -> "x", "x" -> "▁x".
                let s = if tok.kind == TokenizerKind::WordPiece
                    && !(s.starts_with('[') && s.ends_with(']'))
                {
                    s.strip_prefix("##")
                        .map_or_else(|| format!("\u{2581}{s}"), str::to_string)
                } else {
                    s.clone()
                };
                tokens.push(s);
                types.push(GgufValue::I32(ty));
            }
        }
    }
    let model_name = match tok.kind {
        TokenizerKind::ByteLevelBpe => "gpt2",
        TokenizerKind::Unigram => "llama",
        TokenizerKind::WordPiece => "bert",
    };
    let mut kv: Vec<(String, GgufValue)> = vec![(
        "tokenizer.ggml.model".into(),
        GgufValue::Str(model_name.into()),
    )];
    if tok.kind != TokenizerKind::Unigram {
        kv.push((
            "tokenizer.ggml.pre".into(),
            GgufValue::Str("default".into()),
        ));
    }
    kv.push(("tokenizer.ggml.tokens".into(), GgufValue::strings(&tokens)));
    if tok.kind == TokenizerKind::Unigram {
        let scores = (0..n)
            .map(|i| GgufValue::F32(tok.scores.get(i).copied().unwrap_or(-1e4)))
            .collect();
        kv.push((
            "tokenizer.ggml.scores".into(),
            GgufValue::Array(GgufValueType::F32, scores),
        ));
    }
    kv.push((
        "tokenizer.ggml.token_type".into(),
        GgufValue::Array(GgufValueType::I32, types),
    ));
    if tok.kind == TokenizerKind::ByteLevelBpe {
        kv.push((
            "tokenizer.ggml.merges".into(),
            GgufValue::strings(&tok.merges),
        ));
    }
    let mut id = |k: &str, v: Option<u32>| {
        if let Some(v) = v {
            kv.push((format!("tokenizer.ggml.{k}"), GgufValue::U32(v)));
        }
    };
    if tok.kind == TokenizerKind::WordPiece {
        id("unknown_token_id", tok.unk);
        id("cls_token_id", tok.bos);
        id("seperator_token_id", tok.eos);
        id("padding_token_id", tok.pad);
        id("mask_token_id", tok.id_of("[MASK]"));
    } else {
        id("bos_token_id", tok.bos);
        id("eos_token_id", tok.eos);
        id("unknown_token_id", tok.unk);
        id("padding_token_id", tok.pad);
    }
    if arch == "bert" {
        let types = model.cfg_usize("type_vocab_size").unwrap_or(2);
        kv.push((
            "tokenizer.ggml.token_type_count".into(),
            GgufValue::U32(types as u32),
        ));
    }
    kv
}

/// Builds the file in memory; returns it with a summary of each tensor.
pub fn gguf_bytes(
    model: &SynthModel,
    opts: &GgufOptions,
) -> io::Result<(Vec<u8>, Vec<GgufTensorSummary>)> {
    let arch = opts.arch.clone().unwrap_or_else(|| model.gguf_arch.clone());
    let planned = plan(model, &arch, opts)?;
    let align = opts.alignment.max(1) as usize;
    let mut data = Vec::new();
    let mut infos = Vec::new();
    let mut summary = Vec::new();
    for p in planned {
        let ty = choose_type(&p, opts);
        let bytes = ty.encode(&p.data);
        let offset = data.len() as u64;
        infos.push(RawTensorInfo {
            name: p.name.clone().into_bytes(),
            dims: p.shape.iter().rev().map(|&d| d as u64).collect(),
            n_dims: None,
            type_id: ty.ggml_type(),
            offset,
        });
        summary.push(GgufTensorSummary {
            name: p.name,
            hf_names: p.hf_names,
            ty,
            shape: p.shape,
            offset,
            byte_len: bytes.len() as u64,
            permuted_heads: p.permuted_heads,
        });
        data.extend_from_slice(&bytes);
        // gguf-py pads after every tensor, the last one included.
        data.resize(data.len().next_multiple_of(align), 0);
    }
    let mut kvs: Vec<(String, GgufValue)> = vec![
        ("general.architecture".into(), GgufValue::Str(arch.clone())),
        ("general.type".into(), GgufValue::Str("model".into())),
        (
            "general.name".into(),
            GgufValue::Str(opts.name.clone().unwrap_or_else(|| model.name.clone())),
        ),
    ];
    if let Some(l) = &opts.license {
        kvs.push(("general.license".into(), GgufValue::Str(l.clone())));
    }
    kvs.extend(arch_kvs(model, &arch));
    kvs.push((
        "general.file_type".into(),
        GgufValue::U32(opts.matrix_type.file_type()),
    ));
    if opts.write_alignment_key {
        kvs.push((
            "general.alignment".into(),
            GgufValue::U32(opts.alignment as u32),
        ));
    }
    kvs.extend(tokenizer_kvs(model, &arch));
    kvs.push(("general.quantization_version".into(), GgufValue::U32(2)));
    kvs.extend(opts.extra_kv.iter().cloned());
    let file = GgufBytes {
        kvs: kvs.into_iter().map(|(k, v)| RawKv::Typed(k, v)).collect(),
        tensors: infos,
        alignment: align as u64,
        data,
        ..GgufBytes::new()
    };
    Ok((file.build(), summary))
}

/// Writes a GGUF v3 file; returns what each tensor became.
pub fn write_gguf(
    model: &SynthModel,
    path: &Path,
    opts: &GgufOptions,
) -> io::Result<Vec<GgufTensorSummary>> {
    let (bytes, summary) = gguf_bytes(model, opts)?;
    std::fs::write(path, bytes)?;
    Ok(summary)
}
