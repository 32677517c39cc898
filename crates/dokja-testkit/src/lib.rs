//! Synthetic models for dokja's tests: generators of small randomly initialized models with
//! real architectures' tensor names, writers for every format dokja reads (safetensors,
//! sharded safetensors, Hugging Face folders, GGUF with ggml quantization, ONNX, PyTorch zip
//! checkpoints), byte-level
//! builders for hostile files, and the derivations (fine-tuning, permutation, rotation,
//! pruning, vocabulary extension, upcycling, casts) whose detection dokja is tested on.
//!
//! Written independently of dokja-formats on purpose: it is the oracle for its readers.

pub mod corpus;
pub mod derive;
pub mod fault_proxy;
pub mod forward;
pub mod generate;
pub mod gguf;
pub mod gguf_names;
pub mod hf_folder;
pub mod llama_server;
pub mod model;
pub mod nginx;
pub mod onnx;
pub mod quant;
pub mod raw;
pub mod real;
pub mod rng;
pub mod safetensors;
mod structure;
pub mod tokenizer;
pub mod torch;
pub mod vlm;

pub use derive::{
    cast_roundtrip, extend_vocab, fine_tune, permute_hidden_units, prune_depth, prune_width,
    quant_roundtrip, random_orthogonal, rotate_residual, upcycle_moe,
};
pub use fault_proxy::{Fault, FaultProxy, SeenRequest};
pub use generate::{
    BertSpec, LlamaFlavor, LlamaSpec, MlaSpec, MoeFlavor, MoeSpec, bert_like, llama_like, mla_like,
    moe_like,
};
pub use gguf::{
    GgufOptions, GgufTensorSummary, GgufType, GgufValue, GgufValueType, gguf_bytes, write_gguf,
};
pub use gguf_names::{GgufTarget, gguf_target};
pub use hf_folder::{
    HfFolderOptions, License, WeightsLayout, write_hf_folder, write_hf_folder_with,
};
pub use llama_server::LlamaServer;
pub use model::{SynthModel, SynthTensor, SynthTokenizer, TokenizerKind};
pub use onnx::{OnnxOptions, int8_roundtrip, onnx_bytes, write_onnx};
pub use quant::QuantType;
pub use raw::{GgufBytes, RawKv, RawTensorInfo, SafetensorsBytes};
pub use real::real_model;
pub use safetensors::{
    StDtype, StOptions, safetensors_bytes, write_safetensors, write_safetensors_with,
    write_sharded, write_sharded_with,
};
pub use torch::{TorchOptions, torch_checkpoint_bytes, torch_zip, write_torch_checkpoint};
pub use vlm::{
    VitSpec, VlmLayout, VlmSpec, layout_of, vision_tower, vision_tower_of, vlm, vlm_from_parts,
};
