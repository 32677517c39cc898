//! The in-process backend: a llama-family GGUF model run by candle on the CPU, so a small
//! model can be benchmarked without a server and with exact log-likelihoods.
//!
//! Tokenization follows llama.cpp (see [`tokenizer`]), so prompts become the same token ids
//! as under `llama-server`; chat prompts are rendered by [`chat`] from the model's own
//! template. Decisions and measured differences from llama.cpp: `docs/backends.md`.

pub mod chat;
pub mod tokenizer;

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};
use dokja_tasks::prompt::{SplitMix64, fnv1a};
use dokja_tasks::{GenerationSpec, Prompt};
use serde_json::json;

use crate::{Backend, BackendError, Generation, LogLikelihood, ModelIdentity};
use chat::ChatFormat;
use tokenizer::{BpeTokenizer, PreTokenizer};

/// Architectures candle's `quantized_llama` runs (it reads the `llama.*` metadata keys).
const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// Token texts llama.cpp treats as end of generation besides the declared EOS/EOT ids.
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
];

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, GgufError>;

/// A GGUF model loaded for in-process inference. `Send + Sync`: requests from several
/// threads run side by side, each on its own copy of the KV cache.
pub struct GgufBackend {
    path: PathBuf,
    /// Never run itself (its KV cache stays empty): each request runs a cheap clone.
    model: ModelWeights,
    tokenizer: BpeTokenizer,
    chat: std::result::Result<ChatFormat, String>,
    add_bos: bool,
    bos: Option<u32>,
    eos: Option<u32>,
    end_of_generation: Vec<u32>,
    /// Most tokens (prompt and generated) one sequence may hold.
    context_length: usize,
    architecture: String,
    parameters: u64,
    file_type: Option<u32>,
    tokenizer_pre: String,
    digest: OnceLock<std::result::Result<String, String>>,
}

impl GgufBackend {
    /// Loads the model and its tokenizer from `path`.
    pub fn open(path: &Path) -> Result<GgufBackend> {
        let fail = |message: String| GgufError::Model {
            path: path.to_path_buf(),
            message,
        };
        let file = File::open(path).map_err(|source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader)
            .map_err(|e| fail(format!("not a readable GGUF file: {e}")))?;
        let md = &content.metadata;
        let string = |key: &str| md.get(key).and_then(|v| v.to_string().ok()).cloned();
        let uint = |key: &str| md.get(key).and_then(value_u64);

        let architecture =
            string("general.architecture").ok_or_else(|| fail("no general.architecture".into()))?;
        if !SUPPORTED_ARCHITECTURES.contains(&architecture.as_str()) {
            return Err(fail(format!(
                "architecture {architecture:?} is not supported in-process (supported: {})",
                SUPPORTED_ARCHITECTURES.join(", ")
            )));
        }
        let tokenizer_model = string("tokenizer.ggml.model").unwrap_or_default();
        if tokenizer_model != "gpt2" {
            return Err(fail(format!(
                "tokenizer.ggml.model {tokenizer_model:?} is not supported in-process (only \
                 \"gpt2\", byte-level BPE)"
            )));
        }
        let tokenizer_pre = string("tokenizer.ggml.pre").unwrap_or_else(|| "default".into());
        let pre = PreTokenizer::from_gguf_name(&tokenizer_pre).ok_or_else(|| {
            fail(format!(
                "tokenizer.ggml.pre {tokenizer_pre:?} is not supported in-process"
            ))
        })?;
        let vocab = string_array(md, "tokenizer.ggml.tokens").map_err(&fail)?;
        let merges = match md.get("tokenizer.ggml.merges") {
            Some(_) => string_array(md, "tokenizer.ggml.merges").map_err(&fail)?,
            None => Vec::new(),
        };
        let token_types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.to_i32().map_err(|e| fail(format!("token_type: {e}"))))
                .collect::<Result<_>>()?,
            Some(_) => return Err(fail("tokenizer.ggml.token_type is not an array".into())),
            None => Vec::new(),
        };
        let tokenizer = BpeTokenizer::new(vocab, &merges, &token_types, pre)
            .map_err(|e| fail(e.to_string()))?;
        let vocab_size = tokenizer.vocab_size() as u64;
        let token = |key: &str| uint(key).filter(|&id| id < vocab_size).map(|id| id as u32);
        let bos = token("tokenizer.ggml.bos_token_id");
        let eos = token("tokenizer.ggml.eos_token_id");
        // llama.cpp: a BPE vocabulary adds no BOS unless the file says so.
        let add_bos = md
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(false);
        if add_bos && bos.is_none() {
            return Err(fail(
                "add_bos_token is set but there is no BOS token".into(),
            ));
        }
        let mut end_of_generation: Vec<u32> = [
            eos,
            token("tokenizer.ggml.eot_token_id"),
            token("tokenizer.ggml.eom_token_id"),
        ]
        .into_iter()
        .flatten()
        .collect();
        for text in END_OF_GENERATION_TEXTS {
            if let Some(id) = tokenizer.token_id(text)
                && token_types.get(id as usize).is_some_and(|&t| t == 3)
                && !end_of_generation.contains(&id)
            {
                end_of_generation.push(id);
            }
        }
        let chat = ChatFormat::detect(string("tokenizer.chat_template").as_deref());
        let context_length = uint(&format!("{architecture}.context_length"))
            .map_or(MAX_SEQ_LEN, |n| (n as usize).min(MAX_SEQ_LEN));
        let parameters = content
            .tensor_infos
            .values()
            .map(|t| t.shape.elem_count() as u64)
            .sum();
        let file_type = uint("general.file_type").map(|v| v as u32);
        let model = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu)
            .map_err(|e| fail(format!("cannot load the weights: {e}")))?;
        Ok(GgufBackend {
            path: path.to_path_buf(),
            model,
            tokenizer,
            chat,
            add_bos,
            bos,
            eos,
            end_of_generation,
            context_length,
            architecture,
            parameters,
            file_type,
            tokenizer_pre,
            digest: OnceLock::new(),
        })
    }

    pub fn tokenizer(&self) -> &BpeTokenizer {
        &self.tokenizer
    }

    /// The prompt as the model sees it: chat messages rendered by the model's template,
    /// completion text as is.
    pub fn render(&self, prompt: &Prompt) -> std::result::Result<String, BackendError> {
        match prompt {
            Prompt::Completion { text } => Ok(text.clone()),
            Prompt::Chat { messages } => match &self.chat {
                Ok(format) => Ok(format.render(messages)),
                Err(why) => Err(BackendError::Permanent(format!(
                    "{}: cannot format a chat prompt: {why}; use completion mode",
                    self.path.display()
                ))),
            },
        }
    }

    /// `text` as token ids, with BOS first when the model asks for it (as llama-server's
    /// `/completion` does with a text prompt).
    pub fn tokenize(&self, text: &str) -> std::result::Result<Vec<u32>, BackendError> {
        let mut ids = Vec::new();
        if self.add_bos
            && let Some(bos) = self.bos
        {
            ids.push(bos);
        }
        ids.extend(
            self.tokenizer
                .encode(text)
                .map_err(|e| BackendError::Permanent(e.to_string()))?,
        );
        Ok(ids)
    }

    /// Generates from token ids: greedy when `temperature <= 0`, else sampled with a seed
    /// derived from the prompt tokens (so a rerun reproduces the sample). Stops at an
    /// end-of-generation token, a stop string or `max_tokens`. Returns the generated ids
    /// (an end-of-generation token included) and why it stopped.
    pub fn generate_ids(
        &self,
        prompt: &[u32],
        max_tokens: usize,
        temperature: f64,
        stop: &[String],
    ) -> std::result::Result<(Vec<u32>, String, &'static str), BackendError> {
        if prompt.is_empty() {
            return Err(BackendError::Permanent("empty prompt".into()));
        }
        let room = self.context_length.saturating_sub(prompt.len());
        if room == 0 {
            return Err(self.too_long(prompt.len()));
        }
        let budget = max_tokens.min(room);
        let mut rng = SplitMix64::new(prompt.iter().fold(fnv1a("dokja-gguf"), |h, &t| {
            (h ^ u64::from(t)).wrapping_mul(0x0100_0000_01b3)
        }));
        let mut model = self.fresh_model();
        let mut logits = forward(&mut model, prompt, 0)?;
        let mut out: Vec<u32> = Vec::new();
        let mut finish = "length";
        let mut text_len_checked = 0;
        while out.len() < budget {
            let next = if temperature <= 0.0 {
                argmax(&logits)
            } else {
                sample(&logits, temperature, &mut rng)
            };
            out.push(next);
            if self.end_of_generation.contains(&next) {
                finish = "stop";
                break;
            }
            if !stop.is_empty() {
                let text = self.tokenizer.decode(&out, false);
                if stop_position(&text, stop, text_len_checked).is_some() {
                    finish = "stop";
                    break;
                }
                text_len_checked = text.len();
            }
            if out.len() == budget {
                break;
            }
            logits = forward(&mut model, &[next], prompt.len() + out.len() - 1)?;
        }
        let text = self.tokenizer.decode(&out, false);
        let text = match stop_position(&text, stop, 0) {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        Ok((out, text, finish))
    }

    /// Log-likelihoods of each of `continuations` (token ids) after `context` ids. The
    /// context is read once; each continuation continues from a copy of its KV cache.
    pub fn score_ids(
        &self,
        context: &[u32],
        continuations: &[Vec<u32>],
    ) -> std::result::Result<Vec<LogLikelihood>, BackendError> {
        if context.is_empty() || continuations.iter().any(Vec::is_empty) {
            return Err(BackendError::Permanent(
                "empty context or continuation".into(),
            ));
        }
        let longest = continuations.iter().map(Vec::len).max().unwrap_or(1);
        let total = context.len() + longest - 1;
        if total > self.context_length {
            return Err(self.too_long(total));
        }
        let mut after_context = self.fresh_model();
        let context_logits = forward(&mut after_context, context, 0)?;
        let mut out = Vec::with_capacity(continuations.len());
        for continuation in continuations {
            // Cloning shares the weights and the cached keys/values (appends make new
            // tensors), so each continuation starts from the same state.
            let mut model = after_context.clone();
            let mut logits = context_logits.clone();
            let mut logprob = 0.0f64;
            let mut is_greedy = true;
            for (i, &token) in continuation.iter().enumerate() {
                if i > 0 {
                    logits = forward(&mut model, &[continuation[i - 1]], context.len() + i - 1)?;
                }
                let lp = log_softmax_at(&logits, token as usize).ok_or_else(|| {
                    BackendError::Permanent(format!("token {token} out of range"))
                })?;
                logprob += lp;
                is_greedy &= argmax(&logits) == token;
            }
            out.push(LogLikelihood {
                logprob,
                tokens: continuation.len() as u64,
                is_greedy: Some(is_greedy),
            });
        }
        Ok(out)
    }

    /// A copy of the model with an empty KV cache: copies share the weights, so requests on
    /// several threads run side by side without a lock.
    fn fresh_model(&self) -> ModelWeights {
        self.model.clone()
    }

    fn too_long(&self, tokens: usize) -> BackendError {
        BackendError::Permanent(format!(
            "{} tokens exceed the in-process context of {} tokens",
            tokens, self.context_length
        ))
    }

    fn digest(&self) -> std::result::Result<String, BackendError> {
        self.digest
            .get_or_init(|| {
                let mut hasher = blake3::Hasher::new();
                let file = File::open(&self.path).map_err(|e| e.to_string())?;
                hasher
                    .update_reader(file)
                    .map_err(|e| format!("{}: {e}", self.path.display()))?;
                Ok(hasher.finalize().to_hex().to_string())
            })
            .clone()
            .map_err(BackendError::Permanent)
    }
}

impl Backend for GgufBackend {
    fn identity(&self) -> std::result::Result<ModelIdentity, BackendError> {
        let name = self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(ModelIdentity {
            backend: "in-process".into(),
            model: name,
            details: json!({
                "path": self.path.display().to_string(),
                "blake3": self.digest()?,
                "architecture": self.architecture,
                "parameters": self.parameters,
                "general.file_type": self.file_type,
                "context_length": self.context_length,
                "tokenizer_pre": self.tokenizer_pre,
                "chat_format": self.chat.as_ref().map(ChatFormat::name).ok(),
                "add_bos": self.add_bos,
                "engine": "candle 0.11.1 quantized_llama (CPU)",
            }),
        })
    }

    fn generate(
        &self,
        prompt: &Prompt,
        spec: &GenerationSpec,
    ) -> std::result::Result<Generation, BackendError> {
        let text = self.render(prompt)?;
        let ids = self.tokenize(&text)?;
        let (out, text, finish) =
            self.generate_ids(&ids, spec.max_tokens as usize, spec.temperature, &spec.stop)?;
        Ok(Generation {
            text: text.clone(),
            finish_reason: Some(finish.into()),
            prompt_tokens: Some(ids.len() as u64),
            completion_tokens: Some(out.len() as u64),
            raw: json!({
                "prompt_tokens": ids,
                "tokens": out,
                "text": text,
                "finish_reason": finish,
                "temperature": spec.temperature,
            }),
        })
    }

    /// Scores as lm-evaluation-harness does: trailing whitespace of the context moves to the
    /// continuation; the continuation's tokens are those of `context + continuation` past
    /// the length of the context's own tokens; the model reads the context's tokens, then
    /// the continuation's.
    fn loglikelihoods(
        &self,
        prompt: &Prompt,
        continuations: &[String],
    ) -> std::result::Result<Option<Vec<LogLikelihood>>, BackendError> {
        let rendered = self.render(prompt)?;
        let mut context_ids = Vec::new();
        let mut continuation_ids = Vec::with_capacity(continuations.len());
        for continuation in continuations {
            // The context's tokens do not depend on the continuation.
            let (context, ids) = self.split_tokens(&rendered, continuation)?;
            context_ids = context;
            continuation_ids.push(ids);
        }
        if continuation_ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        Ok(Some(self.score_ids(&context_ids, &continuation_ids)?))
    }
}

impl GgufBackend {
    /// lm-evaluation-harness's context/continuation encoding (see `loglikelihoods`). An empty
    /// context is read as the BOS (or EOS) token alone, as lm-eval reads its prefix token.
    pub fn split_tokens(
        &self,
        context: &str,
        continuation: &str,
    ) -> std::result::Result<(Vec<u32>, Vec<u32>), BackendError> {
        let trimmed = context.trim_end();
        let moved = &context[trimmed.len()..];
        let continuation = format!("{moved}{continuation}");
        let mut context_ids = self.tokenize(trimmed)?;
        let whole = self.tokenize(&format!("{trimmed}{continuation}"))?;
        let continuation_ids = whole.get(context_ids.len()..).unwrap_or_default().to_vec();
        if continuation_ids.is_empty() {
            return Err(BackendError::Permanent(format!(
                "continuation {continuation:?} has no tokens of its own after the context"
            )));
        }
        if context_ids.is_empty() {
            match self.bos.or(self.eos) {
                Some(t) => context_ids.push(t),
                None => {
                    return Err(BackendError::Permanent(
                        "empty context and no BOS/EOS token to stand for it".into(),
                    ));
                }
            }
        }
        Ok((context_ids, continuation_ids))
    }
}

fn forward(
    model: &mut ModelWeights,
    tokens: &[u32],
    position: usize,
) -> std::result::Result<Vec<f32>, BackendError> {
    let mut run = || -> candle_core::Result<Vec<f32>> {
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = model.forward(&input, position)?;
        logits
            .squeeze(0)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()
    };
    run().map_err(|e| BackendError::Permanent(format!("in-process forward pass failed: {e}")))
}

/// The first index of the largest logit.
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn log_softmax_at(logits: &[f32], index: usize) -> Option<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    Some(*logits.get(index)? as f64 - max - sum.ln())
}

fn sample(logits: &[f32], temperature: f64, rng: &mut SplitMix64) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let weights: Vec<f64> = logits
        .iter()
        .map(|&v| ((v as f64 - max) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    // 53 random bits give a uniform draw in [0, 1).
    let mut target = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i as u32;
        }
        target -= w;
    }
    argmax(logits)
}

/// Byte offset of the earliest stop string in `text` that ends after `from` bytes (earlier
/// text was already checked), if any.
fn stop_position(text: &str, stop: &[String], from: usize) -> Option<usize> {
    stop.iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let start = from.saturating_sub(s.len());
            let start = (start..=from.min(text.len()))
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(text.len());
            text[start..].find(s.as_str()).map(|p| start + p)
        })
        .min()
}

fn value_u64(v: &Value) -> Option<u64> {
    match v {
        Value::U8(x) => Some(u64::from(*x)),
        Value::U16(x) => Some(u64::from(*x)),
        Value::U32(x) => Some(u64::from(*x)),
        Value::U64(x) => Some(*x),
        Value::I8(x) => u64::try_from(*x).ok(),
        Value::I16(x) => u64::try_from(*x).ok(),
        Value::I32(x) => u64::try_from(*x).ok(),
        Value::I64(x) => u64::try_from(*x).ok(),
        _ => None,
    }
}

fn string_array(
    md: &HashMap<String, Value>,
    key: &str,
) -> std::result::Result<Vec<String>, String> {
    let Some(Value::Array(items)) = md.get(key) else {
        return Err(format!("{key} is missing or not an array"));
    };
    items
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|_| format!("{key} holds a non-string"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_found_across_token_boundaries() {
        let stop = vec!["\n\n".to_string(), "Q:".into()];
        assert_eq!(stop_position("answer 4\n\nQ: next", &stop, 0), Some(8));
        assert_eq!(stop_position("answer 4\n", &stop, 0), None);
        // The second "\n" arrives later: the check restarts before the boundary.
        assert_eq!(stop_position("answer 4\n\n", &stop, 9), Some(8));
        assert_eq!(stop_position("한국어Q:", &stop, 4), Some(9));
    }

    #[test]
    fn backend_is_shareable_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<GgufBackend>();
    }

    #[test]
    fn log_softmax_and_argmax() {
        let logits = [1.0f32, 3.0, 2.0];
        assert_eq!(argmax(&logits), 1);
        let total: f64 = (0..3)
            .map(|i| log_softmax_at(&logits, i).unwrap().exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(log_softmax_at(&logits, 3).is_none());
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_follows_the_weights() {
        let logits = [0.0f32, 5.0, 0.0];
        let draws = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..200)
                .map(|_| sample(&logits, 1.0, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        let ones = draws(7).iter().filter(|&&t| t == 1).count();
        assert!(ones > 180, "{ones}");
        assert!(draws(7).iter().any(|&t| t != 1));
    }
}
