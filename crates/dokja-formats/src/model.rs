//! The format-independent view of a model: a list of tensors (canonical names, canonical
//! shapes) over a set of files, plus the sidecar information (config, tokenizer, licence).
//!
//! Invariant: after `Model::open` succeeds, every tensor's byte range lies inside its file,
//! no two tensors overlap (except views of one storage in a PyTorch checkpoint, such as tied
//! weights), and every byte length agrees with dtype x shape. Reading values
//! can then fail only on I/O or on non-finite values, never on layout.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dtype::{Dtype, decode_into};
use crate::error::{FormatError, Result};
use crate::hf::Sidecars;
use crate::source::{ModelFile, ReadMode};

/// How canonical rows map to stored rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowOrder {
    /// Stored in canonical order.
    Identity,
    /// llama.cpp's converter interleaved the two rotary halves of each head's rows
    /// (`permute(w, n_head)` in convert_hf_to_gguf.py); reading undoes it.
    GgufRotaryInterleaved { n_head: u32 },
}

impl RowOrder {
    /// The stored row index that holds canonical row `row` of a tensor with `n_rows` rows.
    pub fn stored_row(self, row: u64, n_rows: u64) -> u64 {
        match self {
            RowOrder::Identity => row,
            RowOrder::GgufRotaryInterleaved { n_head } => {
                let per_head = n_rows / n_head as u64;
                let half = per_head / 2;
                let head = row / per_head;
                let within = row % per_head;
                let (which_half, j) = (within / half, within % half);
                head * per_head + 2 * j + which_half
            }
        }
    }

    /// Whether this order is valid for a tensor with `n_rows` rows.
    pub fn fits(self, n_rows: u64) -> bool {
        match self {
            RowOrder::Identity => true,
            RowOrder::GgufRotaryInterleaved { n_head } => {
                n_head > 0
                    && n_rows.is_multiple_of(n_head as u64)
                    && (n_rows / n_head as u64).is_multiple_of(2)
            }
        }
    }
}

/// How the stored elements are arranged relative to the canonical shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredLayout {
    /// Row-major in the canonical shape.
    #[default]
    RowMajor,
    /// A matrix stored as its transpose: canonical `[rows, cols]` is stored row-major as
    /// `[cols, rows]` (ONNX MatMul weights `[in, out]` against Hugging Face Linear
    /// `[out, in]`). Only for 2-D tensors of one-element blocks.
    Transposed,
}

/// Affine dequantization of integer weights by scale and zero point, per tensor or per
/// channel along one canonical axis (ONNX `DequantizeLinear`): `value = (q - zero) * scale`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelScales {
    /// Canonical axis the scales run along; None for one scale for the whole tensor.
    pub axis: Option<usize>,
    #[serde(skip)]
    pub scale: std::sync::Arc<[f32]>,
    #[serde(skip)]
    pub zero_point: std::sync::Arc<[f32]>,
}

impl ChannelScales {
    fn channels(&self) -> usize {
        self.scale.len()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TensorInfo {
    /// Hugging Face-style name (GGUF names are translated), used by the schema.
    pub name: String,
    /// The name as stored in the file.
    pub stored_name: String,
    /// Canonical shape, outermost dimension first (GGUF's reversed order is undone).
    pub shape: Vec<u64>,
    pub dtype: Dtype,
    /// Index into [`Model::files`].
    pub file: usize,
    /// Absolute byte offset of the data in its file.
    pub offset: u64,
    pub byte_len: u64,
    pub row_order: RowOrder,
    /// Added to every decoded value to undo a converter's shift of the stored values
    /// (llama.cpp stores Gemma's RMSNorm weights as `1 + w`); 0 almost everywhere.
    pub value_shift: f32,
    /// Whether the stored matrix is the transpose of the canonical one.
    #[serde(default)]
    pub layout: StoredLayout,
    /// Scales that turn stored integers into weights (quantized ONNX initializers).
    #[serde(default)]
    pub scales: Option<ChannelScales>,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
    /// Length of one row: the innermost dimension (1 for a scalar).
    pub fn row_len(&self) -> u64 {
        self.shape.last().copied().unwrap_or(1)
    }
    pub fn n_rows(&self) -> u64 {
        let len = self.row_len();
        self.n_elements().checked_div(len).unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightsFormat {
    Safetensors,
    SafetensorsSharded,
    Gguf,
    Onnx,
    /// A `torch.save` zip archive (`pytorch_model.bin`, `*.pt`, `*.pth`).
    PyTorch,
}

impl WeightsFormat {
    pub fn name(self) -> &'static str {
        match self {
            WeightsFormat::Safetensors => "safetensors",
            WeightsFormat::SafetensorsSharded => "safetensors (sharded)",
            WeightsFormat::Gguf => "gguf",
            WeightsFormat::Onnx => "onnx",
            WeightsFormat::PyTorch => "pytorch",
        }
    }
}

/// Format-level metadata values (GGUF key/values, safetensors `__metadata__`), as JSON.
pub type Metadata = BTreeMap<String, serde_json::Value>;

#[derive(Debug)]
pub struct Model {
    /// What the user named: a file, a folder or a shard index.
    pub path: PathBuf,
    pub format: WeightsFormat,
    pub files: Vec<ModelFile>,
    pub tensors: Vec<TensorInfo>,
    pub metadata: Metadata,
    pub sidecars: Sidecars,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    pub read_mode: ReadMode,
}

/// Limits that keep a hostile header from making dokja allocate or loop by its numbers.
pub mod limits {
    pub const MAX_TENSORS: u64 = 1 << 20;
    pub const MAX_DIMS: u64 = 8;
    pub const MAX_NAME_LEN: u64 = 1 << 16;
    /// Header / metadata blocks larger than this are refused.
    pub const MAX_HEADER_BYTES: u64 = 256 << 20;
    pub const MAX_SHARDS: usize = 100_000;
}

impl Model {
    pub fn open(path: &Path, options: OpenOptions) -> Result<Model> {
        crate::open::open_model(path, options)
    }

    /// Opens a model whose files come from a [`crate::FileSet`] (e.g. a folder URL): the
    /// file `name` of the set, or the set as a Hugging Face folder when `name` is None.
    pub fn open_file_set(set: &dyn crate::FileSet, name: Option<&str>) -> Result<Model> {
        crate::fileset::open_file_set(set, name)
    }

    /// The file holding `t`'s data; an error for a model that carries no data (the skeleton
    /// of a fingerprint) rather than a panic.
    pub fn file_of(&self, t: &TensorInfo) -> Result<&ModelFile> {
        self.files
            .get(t.file)
            .ok_or_else(|| FormatError::BadTensor {
                path: self.path.clone(),
                tensor: t.name.clone(),
                fault: "no weights are available for this tensor (a fingerprint holds none)".into(),
            })
    }

    /// A model description without data: what a fingerprint keeps of the model it was made
    /// from. Every read fails with a clear error.
    pub fn skeleton(
        path: PathBuf,
        format: WeightsFormat,
        tensors: Vec<TensorInfo>,
        metadata: Metadata,
        sidecars: Sidecars,
    ) -> Model {
        Model {
            path,
            format,
            files: Vec::new(),
            tensors,
            metadata,
            sidecars,
        }
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The stored bytes of a tensor (borrowed from the map where possible).
    pub fn raw_bytes(&self, t: &TensorInfo) -> Result<Cow<'_, [u8]>> {
        let file = self.file_of(t)?;
        file.bytes(
            t.offset,
            usize_len(file, t.byte_len)?,
            "tensor data",
            &t.stored_name,
        )
    }

    /// Decodes canonical rows `rows` of `t` into `out` (cleared first), undoing any stored
    /// row permutation. Fails on non-finite values.
    pub fn read_rows(&self, t: &TensorInfo, rows: Range<u64>, out: &mut Vec<f32>) -> Result<()> {
        let file = self.file_of(t)?;
        let n_rows = t.n_rows();
        if rows.start > rows.end || rows.end > n_rows {
            return Err(FormatError::BadTensor {
                path: file.path.clone(),
                tensor: t.name.clone(),
                fault: format!("rows {rows:?} out of range (tensor has {n_rows})"),
            });
        }
        let row_len = t.row_len();
        let row_bytes = t.dtype.byte_len(row_len).expect("validated at open");
        let count = rows.end - rows.start;
        out.clear();
        out.resize(usize_len(file, count * row_len)?, 0.0);
        match (t.layout, t.row_order) {
            (StoredLayout::Transposed, _) if count > 0 => {
                // Canonical rows a..b are columns a..b of the stored matrix: a run of
                // `count` elements in each stored row. A mapped file lends the whole span at
                // once; otherwise one short read per stored row.
                let elem_bytes = t.dtype.block().1;
                let stored_row_bytes = n_rows * elem_bytes;
                let run = usize_len(file, count * elem_bytes)?;
                let mut column = vec![0f32; count as usize];
                let span = if file.source.is_borrowed() {
                    let len = (row_len - 1) * stored_row_bytes + count * elem_bytes;
                    Some(file.bytes(
                        t.offset + rows.start * elem_bytes,
                        usize_len(file, len)?,
                        "tensor data",
                        &t.stored_name,
                    )?)
                } else {
                    None
                };
                for c in 0..row_len {
                    let at = c * stored_row_bytes;
                    let owned;
                    let bytes: &[u8] = match &span {
                        Some(span) => &span[at as usize..at as usize + run],
                        None => {
                            owned = file.bytes(
                                t.offset + rows.start * elem_bytes + at,
                                run,
                                "tensor data",
                                &t.stored_name,
                            )?;
                            &owned
                        }
                    };
                    decode_into(t.dtype, bytes, &mut column);
                    for (i, v) in column.iter().enumerate() {
                        out[i * row_len as usize + c as usize] = *v;
                    }
                }
                if let Some(span) = span {
                    let len = span.len();
                    drop(span);
                    file.release(t.offset + rows.start * elem_bytes, len);
                }
            }
            (StoredLayout::Transposed, _) => {}
            (StoredLayout::RowMajor, RowOrder::Identity) => {
                let len = usize_len(file, count * row_bytes)?;
                let bytes = file.bytes(
                    t.offset + rows.start * row_bytes,
                    len,
                    "tensor data",
                    &t.stored_name,
                )?;
                decode_into(t.dtype, &bytes, out);
                drop(bytes);
                file.release(t.offset + rows.start * row_bytes, len);
            }
            (StoredLayout::RowMajor, order) => {
                for (i, row) in rows.clone().enumerate() {
                    let stored = order.stored_row(row, n_rows);
                    let bytes = file.bytes(
                        t.offset + stored * row_bytes,
                        usize_len(file, row_bytes)?,
                        "tensor data",
                        &t.stored_name,
                    )?;
                    let dst = &mut out[i * row_len as usize..(i + 1) * row_len as usize];
                    decode_into(t.dtype, &bytes, dst);
                }
            }
        }
        if let Some(scales) = &t.scales {
            apply_scales(t, scales, rows.start * row_len, out);
        }
        if t.value_shift != 0.0 {
            out.iter_mut().for_each(|v| *v += t.value_shift);
        }
        if let Some(pos) = out.iter().position(|v| !v.is_finite()) {
            return Err(FormatError::BadTensor {
                path: file.path.clone(),
                tensor: t.name.clone(),
                fault: format!(
                    "non-finite value {} at element {} (weights must be finite)",
                    out[pos],
                    rows.start * row_len + pos as u64
                ),
            });
        }
        Ok(())
    }

    /// Streams a tensor's canonical values in chunks of whole rows, each chunk at most
    /// `max_chunk_elems` long unless a single row is longer. `f` gets the first row index
    /// of the chunk and its values.
    pub fn for_each_chunk(
        &self,
        t: &TensorInfo,
        max_chunk_elems: usize,
        mut f: impl FnMut(u64, &[f32]),
    ) -> Result<()> {
        let row_len = t.row_len().max(1);
        let rows_per_chunk = (max_chunk_elems as u64 / row_len).max(1);
        let mut buf = Vec::new();
        let mut start = 0;
        let n_rows = t.n_rows();
        while start < n_rows {
            let end = (start + rows_per_chunk).min(n_rows);
            self.read_rows(t, start..end, &mut buf)?;
            f(start, &buf);
            start = end;
        }
        Ok(())
    }

    /// All canonical values of a tensor. For small tensors and tests; large-model code
    /// streams with [`Model::for_each_chunk`].
    pub fn read_all(&self, t: &TensorInfo) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.read_rows(t, 0..t.n_rows(), &mut out)?;
        Ok(out)
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.len()).sum()
    }
}

/// `(q - zero) * scale` for each value, `first` being the flat canonical index of `out[0]`.
fn apply_scales(t: &TensorInfo, scales: &ChannelScales, first: u64, out: &mut [f32]) {
    let Some(axis) = scales.axis else {
        let (s, z) = (scales.scale[0], scales.zero_point[0]);
        out.iter_mut().for_each(|v| *v = (*v - z) * s);
        return;
    };
    // Elements that share a channel come in runs of `stride` (the product of the inner
    // dimensions); the channel repeats every `stride * channels` elements.
    let stride: u64 = t.shape[axis + 1..].iter().product();
    let channels = scales.channels() as u64;
    for (i, v) in out.iter_mut().enumerate() {
        let c = ((first + i as u64) / stride.max(1) % channels) as usize;
        *v = (*v - scales.zero_point[c]) * scales.scale[c];
    }
}

fn usize_len(file: &ModelFile, n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| {
        FormatError::malformed(
            &file.path,
            "tensor data",
            format!("length {n} does not fit in memory"),
        )
    })
}

/// A tensor as a header declares it, before validation.
#[derive(Debug, Clone)]
pub struct DeclaredTensor {
    pub name: String,
    pub stored_name: String,
    pub shape: Vec<u64>,
    pub dtype: Dtype,
    pub file: usize,
    pub offset: u64,
    /// The byte length the header claims, where the format states one (safetensors does).
    pub declared_len: Option<u64>,
    pub row_order: RowOrder,
    pub value_shift: f32,
    pub layout: StoredLayout,
    pub scales: Option<ChannelScales>,
}

impl DeclaredTensor {
    /// A tensor stored as is: canonical name, row-major, no row permutation or scales.
    pub fn plain(
        name: String,
        shape: Vec<u64>,
        dtype: Dtype,
        file: usize,
        offset: u64,
        declared_len: Option<u64>,
    ) -> DeclaredTensor {
        DeclaredTensor {
            stored_name: name.clone(),
            name,
            shape,
            dtype,
            file,
            offset,
            declared_len,
            row_order: RowOrder::Identity,
            value_shift: 0.0,
            layout: StoredLayout::RowMajor,
            scales: None,
        }
    }
}

/// Checks shapes, lengths, bounds and overlaps of the tensors declared in one file and
/// turns them into [`TensorInfo`]s. `data_start..file_len` is where tensor data may live.
pub fn validate_layout(
    path: &Path,
    format: &'static str,
    declared: Vec<DeclaredTensor>,
    data_start: u64,
    file_len: u64,
) -> Result<Vec<TensorInfo>> {
    validate_layout_with(
        path,
        format,
        declared,
        data_start,
        file_len,
        Overlaps::Refuse,
    )
}

/// Whether tensors may share bytes (views of one PyTorch storage, tied weights).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlaps {
    Refuse,
    Allow,
}

/// [`validate_layout`], with overlapping tensors optionally allowed.
pub fn validate_layout_with(
    path: &Path,
    format: &'static str,
    declared: Vec<DeclaredTensor>,
    data_start: u64,
    file_len: u64,
    overlaps: Overlaps,
) -> Result<Vec<TensorInfo>> {
    let bad = |fault: String| FormatError::malformed(path, format, fault);
    let mut out = Vec::with_capacity(declared.len());
    for d in declared {
        if d.shape.len() as u64 > limits::MAX_DIMS {
            return Err(bad(format!(
                "tensor {}: {} dimensions (at most {})",
                d.stored_name,
                d.shape.len(),
                limits::MAX_DIMS
            )));
        }
        let n = d
            .shape
            .iter()
            .try_fold(1u64, |acc, &x| acc.checked_mul(x))
            .ok_or_else(|| {
                bad(format!(
                    "tensor {}: shape {:?} overflows",
                    d.stored_name, d.shape
                ))
            })?;
        let row_len = d.shape.last().copied().unwrap_or(1);
        let expected = d.dtype.byte_len(n).ok_or_else(|| {
            bad(format!(
                "tensor {}: {} elements of shape {:?} are not a whole number of {} blocks",
                d.stored_name, n, d.shape, d.dtype
            ))
        })?;
        // Checked for empty tensors too: readers size row buffers from it.
        if d.dtype.byte_len(row_len).is_none() {
            return Err(bad(format!(
                "tensor {}: row length {} is not a whole number of {} blocks",
                d.stored_name, row_len, d.dtype
            )));
        }
        if let Some(len) = d.declared_len
            && len != expected
        {
            return Err(bad(format!(
                "tensor {}: dtype {} and shape {:?} need {} bytes but the header gives {}",
                d.stored_name, d.dtype, d.shape, expected, len
            )));
        }
        let end = d.offset.checked_add(expected).ok_or_else(|| {
            bad(format!(
                "tensor {}: offset {} + length overflows",
                d.stored_name, d.offset
            ))
        })?;
        if d.offset < data_start || end > file_len {
            return Err(bad(format!(
                "tensor {}: bytes {}..{} lie outside the data section {}..{} (file truncated or offset corrupt)",
                d.stored_name, d.offset, end, data_start, file_len
            )));
        }
        let n_rows = n.checked_div(row_len).unwrap_or(0);
        if !d.row_order.fits(n_rows) {
            return Err(bad(format!(
                "tensor {}: {} rows cannot be split into {:?}",
                d.stored_name, n_rows, d.row_order
            )));
        }
        if d.layout == StoredLayout::Transposed
            && (d.shape.len() != 2 || d.dtype.block().0 != 1 || d.row_order != RowOrder::Identity)
        {
            return Err(bad(format!(
                "tensor {}: only matrices of plain elements can be stored transposed (shape {:?}, {})",
                d.stored_name, d.shape, d.dtype
            )));
        }
        if let Some(s) = &d.scales {
            let channels = match s.axis {
                None => 1,
                Some(axis) => d.shape.get(axis).copied().ok_or_else(|| {
                    bad(format!(
                        "tensor {}: scale axis {axis} but the tensor has {} dimensions",
                        d.stored_name,
                        d.shape.len()
                    ))
                })?,
            };
            if s.scale.len() as u64 != channels || s.zero_point.len() as u64 != channels {
                return Err(bad(format!(
                    "tensor {}: {} scales and {} zero points for {channels} channels",
                    d.stored_name,
                    s.scale.len(),
                    s.zero_point.len()
                )));
            }
        }
        out.push(TensorInfo {
            name: d.name,
            stored_name: d.stored_name,
            shape: d.shape,
            dtype: d.dtype,
            file: d.file,
            offset: d.offset,
            byte_len: expected,
            row_order: d.row_order,
            value_shift: d.value_shift,
            layout: d.layout,
            scales: d.scales,
        });
    }
    if overlaps == Overlaps::Allow {
        return Ok(out);
    }
    let mut spans: Vec<(u64, u64, &str)> = out
        .iter()
        .filter(|t| t.byte_len > 0)
        .map(|t| (t.offset, t.offset + t.byte_len, t.stored_name.as_str()))
        .collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(bad(format!("tensors {} and {} overlap", w[0].2, w[1].2)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotary_interleave_round_trips() {
        // 2 heads of 4 rows: the converter stores head rows as [0,2,1,3].
        let order = RowOrder::GgufRotaryInterleaved { n_head: 2 };
        let stored: Vec<u64> = (0..8).map(|r| order.stored_row(r, 8)).collect();
        assert_eq!(stored, vec![0, 2, 1, 3, 4, 6, 5, 7]);
        let order = RowOrder::GgufRotaryInterleaved { n_head: 1 };
        let stored: Vec<u64> = (0..6).map(|r| order.stored_row(r, 6)).collect();
        assert_eq!(stored, vec![0, 2, 4, 1, 3, 5]);
    }
}
