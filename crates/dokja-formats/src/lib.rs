//! Readers for model checkpoints. Every format ends up as a [`Model`]: canonical tensor
//! names and shapes over memory-mapped (or positioned-read) files, decoded on demand into
//! chunks of canonical f32 rows. Nothing here loads a whole model.
//!
//! Model files are hostile until proven otherwise: every count, length and offset read from
//! a file is bounded and checked before it is used (see [`model::limits`]).

pub mod dtype;
pub mod error;
pub mod fileset;
pub mod gguf;
pub mod hf;
pub mod model;
pub mod onnx;
mod open;
pub mod pytorch;
pub mod quant;
pub mod safetensors;
pub mod source;
pub mod tokenizer;

pub use dtype::{Dtype, QuantType};
pub use error::{FormatError, Result};
pub use fileset::{FileSet, open_file_set};
pub use model::{
    ChannelScales, Metadata, Model, OpenOptions, RowOrder, StoredLayout, TensorInfo, WeightsFormat,
};
pub use source::ReadMode;
pub use tokenizer::{Tokenizer, TokenizerKind};
