//! The in-memory model every writer and derivation works on: Hugging Face tensor names,
//! canonical shapes (outermost first, as PyTorch), f32 values in row-major order.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct SynthTensor {
    /// Hugging Face name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    pub name: String,
    /// Outermost dimension first; `[out_features, in_features]` for linear weights.
    pub shape: Vec<usize>,
    /// Row-major values; `data.len() == shape.iter().product()`.
    pub data: Vec<f32>,
}

impl SynthTensor {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> SynthTensor {
        let name = name.into();
        let n: usize = shape.iter().product();
        assert_eq!(
            n,
            data.len(),
            "tensor {name}: shape {shape:?} needs {n} values, got {}",
            data.len()
        );
        SynthTensor { name, shape, data }
    }

    pub fn filled(name: impl Into<String>, shape: Vec<usize>, value: f32) -> SynthTensor {
        let n = shape.iter().product();
        SynthTensor::new(name, shape, vec![value; n])
    }

    pub fn n_elements(&self) -> usize {
        self.data.len()
    }

    /// Innermost dimension (1 for a scalar).
    pub fn row_len(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    pub fn n_rows(&self) -> usize {
        if self.row_len() == 0 {
            0
        } else {
            self.data.len() / self.row_len()
        }
    }

    pub fn row(&self, i: usize) -> &[f32] {
        let n = self.row_len();
        &self.data[i * n..(i + 1) * n]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        let n = self.row_len();
        &mut self.data[i * n..(i + 1) * n]
    }

    /// Element (r, c) of a 2-D tensor.
    pub fn at(&self, r: usize, c: usize) -> f32 {
        assert_eq!(self.shape.len(), 2, "{}: at() needs a matrix", self.name);
        self.data[r * self.shape[1] + c]
    }

    /// The transpose of a 2-D tensor (same name).
    pub fn transposed(&self) -> SynthTensor {
        assert_eq!(
            self.shape.len(),
            2,
            "{}: transposed() needs a matrix",
            self.name
        );
        let (r, c) = (self.shape[0], self.shape[1]);
        let mut data = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                data[j * r + i] = self.data[i * c + j];
            }
        }
        SynthTensor::new(self.name.clone(), vec![c, r], data)
    }

    /// Largest |a - b| against another tensor of the same shape.
    pub fn max_abs_diff(&self, other: &SynthTensor) -> f32 {
        assert_eq!(
            self.shape, other.shape,
            "{} vs {}: shapes differ",
            self.name, other.name
        );
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// GPT-2 style byte-level BPE ("Ġ" marks a space); tokenizer.json model "BPE".
    ByteLevelBpe,
    /// SentencePiece unigram ("▁" marks a space, `<0xNN>` byte fallback).
    Unigram,
    /// BERT WordPiece ("##" marks a continuation).
    WordPiece,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SynthTokenizer {
    pub kind: TokenizerKind,
    /// Token strings by id.
    pub vocab: Vec<String>,
    /// BPE merges "left right" in priority order (empty for other kinds).
    pub merges: Vec<String>,
    /// Unigram log-probabilities by id (empty for other kinds).
    pub scores: Vec<f32>,
    /// Ids of special (control) tokens; tokenizer.json lists them as added_tokens.
    pub special: Vec<u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
}

impl SynthTokenizer {
    pub fn id_of(&self, token: &str) -> Option<u32> {
        self.vocab.iter().position(|t| t == token).map(|i| i as u32)
    }

    pub fn token(&self, id: u32) -> Option<&str> {
        self.vocab.get(id as usize).map(String::as_str)
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.special.contains(&id)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SynthModel {
    /// Human-readable name (GGUF general.name, README title).
    pub name: String,
    pub tensors: Vec<SynthTensor>,
    /// The Hugging Face config.json.
    pub config: Value,
    pub tokenizer: Option<SynthTokenizer>,
    /// llama.cpp architecture name used by the GGUF writer ("llama", "qwen2", "qwen3",
    /// "gemma3", "qwen2moe", "qwen3moe", "deepseek2", "bert").
    pub gguf_arch: String,
}

impl SynthModel {
    pub fn get(&self, name: &str) -> Option<&SynthTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut SynthTensor> {
        self.tensors.iter_mut().find(|t| t.name == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The tensor called `name`; panics (listing near names) if there is none.
    pub fn tensor(&self, name: &str) -> &SynthTensor {
        match self.get(name) {
            Some(t) => t,
            None => panic!("{}", self.missing(name)),
        }
    }

    pub fn tensor_mut(&mut self, name: &str) -> &mut SynthTensor {
        let msg = self.missing(name);
        self.get_mut(name).unwrap_or_else(|| panic!("{msg}"))
    }

    fn missing(&self, name: &str) -> String {
        let tail = name.rsplit('.').nth(1).unwrap_or(name);
        let near: Vec<&str> = self
            .names()
            .into_iter()
            .filter(|n| n.contains(tail))
            .take(8)
            .collect();
        format!(
            "model {} has no tensor {name} (similar: {near:?})",
            self.name
        )
    }

    pub fn names(&self) -> Vec<&str> {
        self.tensors.iter().map(|t| t.name.as_str()).collect()
    }

    /// Replaces the tensor of the same name, or appends it.
    pub fn insert(&mut self, t: SynthTensor) {
        match self.get_mut(&t.name) {
            Some(slot) => *slot = t,
            None => self.tensors.push(t),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<SynthTensor> {
        let i = self.tensors.iter().position(|t| t.name == name)?;
        Some(self.tensors.remove(i))
    }

    /// Applies `f` to the named tensor; panics if it is missing.
    pub fn mutate(&mut self, name: &str, f: impl FnOnce(&mut SynthTensor)) {
        f(self.tensor_mut(name))
    }

    /// A copy with every tensor replaced by `f(tensor)`.
    pub fn map_tensors(&self, mut f: impl FnMut(&SynthTensor) -> SynthTensor) -> SynthModel {
        SynthModel {
            tensors: self.tensors.iter().map(&mut f).collect(),
            ..self.clone()
        }
    }

    pub fn for_each_tensor_mut(&mut self, f: impl FnMut(&mut SynthTensor)) {
        self.tensors.iter_mut().for_each(f)
    }

    pub fn retain(&mut self, f: impl FnMut(&SynthTensor) -> bool) {
        self.tensors.retain(f)
    }

    /// Renames every tensor by `f(old_name)`.
    pub fn rename(&mut self, mut f: impl FnMut(&str) -> String) {
        for t in &mut self.tensors {
            t.name = f(&t.name);
        }
    }

    pub fn n_params(&self) -> usize {
        self.tensors.iter().map(|t| t.n_elements()).sum()
    }

    /// The language-model part of the config: `text_config` for multimodal configs.
    pub fn text_config(&self) -> &Value {
        match self.config.get("text_config") {
            Some(v) if v.is_object() => v,
            _ => &self.config,
        }
    }

    pub fn text_config_mut(&mut self) -> &mut Value {
        if self.config.get("text_config").is_some_and(Value::is_object) {
            &mut self.config["text_config"]
        } else {
            &mut self.config
        }
    }

    /// An integer from the language-model config.
    pub fn cfg_usize(&self, key: &str) -> Option<usize> {
        self.text_config()
            .get(key)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
    }

    pub fn cfg_f64(&self, key: &str) -> Option<f64> {
        self.text_config().get(key).and_then(Value::as_f64)
    }

    /// Prefix of the decoder's tensors (`model.`, `model.language_model.`, ...), found from
    /// where `embed_tokens.weight` lives.
    pub fn lm_prefix(&self) -> Option<String> {
        self.tensors.iter().find_map(|t| {
            t.name
                .strip_suffix("embed_tokens.weight")
                .map(str::to_string)
        })
    }

    /// The name of the output head, if the model has one (absent when tied).
    pub fn lm_head_name(&self) -> Option<String> {
        self.tensors
            .iter()
            .find(|t| t.name.ends_with("lm_head.weight"))
            .map(|t| t.name.clone())
    }
}
