//! ONNX models (`.onnx`): the graph's initializers as tensors.
//!
//! The protobuf wire format is walked directly over the file (no generated code, no copy
//! of the model): a tensor's `raw_data` is a byte range of the `.onnx` file and is read in
//! place like safetensors data; tensors in external data files are ranges of those files;
//! the few tensors stored in typed fields (`float_data`, `int32_data`, ...) are decoded
//! into one in-memory buffer. Only the messages that matter are descended into
//! (ModelProto > GraphProto > NodeProto/TensorProto > AttributeProto/StringStringEntry), so
//! nesting depth is fixed: subgraphs (If/Loop bodies) are never entered.
//!
//! Two things ONNX exporters do to weights are undone, so an export compares against its
//! Hugging Face original:
//! - `torch.onnx.export` turns a Linear `[out, in]` into a MatMul weight stored `[in, out]`
//!   under an anonymous name (`onnx::MatMul_123`). Such a weight is read transposed and
//!   renamed from the MatMul node's module path (`/model/layers.0/self_attn/q_proj/MatMul`
//!   gives `model.layers.0.self_attn.q_proj.weight`). A weight that keeps its own name is
//!   the parameter as the model had it and keeps its orientation.
//! - Quantizers store int8/uint8 weights with scale and zero-point initializers feeding a
//!   `DequantizeLinear` node; the scales ride along on the tensor ([`ChannelScales`]) and
//!   reading yields the dequantized values. Weights of ORT's dynamic quantization
//!   (`MatMulInteger`, scales applied later by `Mul` nodes) are named and oriented the same
//!   way but read as raw integers: their per-output-channel scale is a per-row factor, to
//!   which the unit statistics (cosines) are blind, but not the identity check.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::dtype::{Dtype, QuantType, decode_into};
use crate::error::{FormatError, Result};
use crate::hf::Sidecars;
use crate::model::{
    ChannelScales, DeclaredTensor, Metadata, Model, OpenOptions, Overlaps, StoredLayout,
    TensorInfo, WeightsFormat, limits, validate_layout_with,
};
use crate::source::{MemorySource, ModelFile};

const FORMAT: &str = "onnx";
/// Decoded typed-field data (tensors not in raw_data) is held in memory; real models keep
/// only small tensors there.
const MAX_TYPED_BYTES: u64 = 256 << 20;
/// Scales of one quantized tensor (one per channel).
const MAX_SCALES: u64 = 1 << 24;
/// Nodes kept for weight naming (MatMul, MatMulInteger, Gemm, DequantizeLinear).
const MAX_NODES: usize = 1 << 22;
/// Keys of one tensor's external_data list.
const MAX_EXTERNAL_KEYS: usize = 64;

pub fn open(path: &Path, options: OpenOptions) -> Result<Model> {
    let file = ModelFile::open(path, options.read_mode)?;
    let parsed = parse_model(&file)?;
    build_model(path, file, parsed, options)
}

/// One protobuf field as found on the wire; byte payloads stay in the file.
#[derive(Clone, Copy, Debug)]
enum Field {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes { start: u64, len: u64 },
}

/// A cursor over the fields of one message occupying `pos..end` of the file.
struct Wire<'a> {
    file: &'a ModelFile,
    pos: u64,
    end: u64,
}

impl<'a> Wire<'a> {
    fn new(file: &'a ModelFile, start: u64, end: u64) -> Wire<'a> {
        Wire {
            file,
            pos: start,
            end,
        }
    }

    fn bad(&self, fault: String) -> FormatError {
        FormatError::malformed(&self.file.path, FORMAT, fault)
    }

    fn varint(&mut self) -> Result<u64> {
        let avail = (self.end - self.pos).min(10) as usize;
        let bytes = self
            .file
            .bytes(self.pos, avail, FORMAT, "protobuf varint")?;
        let mut value = 0u64;
        for (i, &b) in bytes.iter().enumerate() {
            if i == 9 && b > 1 {
                return Err(self.bad(format!("varint at byte {} overflows 64 bits", self.pos)));
            }
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                self.pos += i as u64 + 1;
                return Ok(value);
            }
        }
        Err(self.bad(format!(
            "varint at byte {} runs past the end of its message (truncated?)",
            self.pos
        )))
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        if self.end - self.pos < N as u64 {
            return Err(self.bad(format!(
                "{N}-byte field at byte {} runs past the end of its message (truncated?)",
                self.pos
            )));
        }
        let bytes = self.file.bytes(self.pos, N, FORMAT, "protobuf field")?;
        self.pos += N as u64;
        Ok(bytes[..N].try_into().expect("N bytes"))
    }

    /// The next field as (field number, value), or None at the end of the message.
    fn next(&mut self) -> Result<Option<(u64, Field)>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err(self.bad(format!("field number 0 at byte {at}")));
        }
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            2 => {
                let len = self.varint()?;
                if len > self.end - self.pos {
                    return Err(self.bad(format!(
                        "field {number} at byte {at} declares {len} bytes but its message has {} left (truncated or corrupt)",
                        self.end - self.pos
                    )));
                }
                let start = self.pos;
                self.pos += len;
                Field::Bytes { start, len }
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.fixed::<4>()?)),
            w => {
                return Err(self.bad(format!(
                    "field {number} at byte {at} has wire type {w}, which ONNX does not use"
                )));
            }
        };
        Ok(Some((number, field)))
    }

    fn string(&self, field: Field, what: &str) -> Result<String> {
        let Field::Bytes { start, len } = field else {
            return Err(self.bad(format!("{what} is not a string")));
        };
        if len > limits::MAX_NAME_LEN {
            return Err(self.bad(format!(
                "{what} of {len} bytes (at most {})",
                limits::MAX_NAME_LEN
            )));
        }
        let bytes = self.file.bytes(start, len as usize, FORMAT, what)?;
        String::from_utf8(bytes.into_owned()).map_err(|_| self.bad(format!("{what} is not UTF-8")))
    }

    fn sub(&self, field: Field, what: &str) -> Result<Wire<'a>> {
        match field {
            Field::Bytes { start, len } => Ok(Wire::new(self.file, start, start + len)),
            _ => Err(self.bad(format!("{what} is not a message"))),
        }
    }
}

fn int(w: &Wire, field: Field, what: &str) -> Result<u64> {
    match field {
        Field::Varint(v) => Ok(v),
        _ => Err(w.bad(format!("{what} is not an integer"))),
    }
}

/// Where an initializer's values are.
#[derive(Debug)]
enum Data {
    /// `raw_data`: little-endian bytes in the `.onnx` file.
    Raw {
        start: u64,
        len: u64,
    },
    /// Typed repeated fields (field number, payload), decoded once the dtype is known.
    Typed(Vec<(u64, Field)>),
    External(Vec<(String, String)>),
}

#[derive(Debug)]
struct Initializer {
    name: String,
    dims: Vec<u64>,
    data_type: u64,
    data: Data,
    external: bool,
}

#[derive(Debug, Default)]
struct Node {
    op_type: String,
    name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// Integer attributes (axis, transB, block_size).
    ints: Vec<(String, i64)>,
}

impl Node {
    fn int_attr(&self, name: &str) -> Option<i64> {
        self.ints.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

struct Parsed {
    initializers: Vec<Initializer>,
    nodes: Vec<Node>,
    metadata: Metadata,
    skipped_sparse: u64,
}

fn parse_model(file: &ModelFile) -> Result<Parsed> {
    let mut w = Wire::new(file, 0, file.len());
    let mut metadata = Metadata::new();
    let mut graph = None;
    let mut opsets = Vec::new();
    while let Some((number, field)) = w.next()? {
        match number {
            1 => {
                metadata.insert(
                    "onnx.ir_version".into(),
                    int(&w, field, "ir_version")?.into(),
                );
            }
            2 => {
                metadata.insert(
                    "onnx.producer_name".into(),
                    w.string(field, "producer_name")?.into(),
                );
            }
            3 => {
                metadata.insert(
                    "onnx.producer_version".into(),
                    w.string(field, "producer_version")?.into(),
                );
            }
            7 => graph = Some(field),
            8 => {
                let mut o = w.sub(field, "opset_import")?;
                let (mut domain, mut version) = (String::new(), 0);
                while let Some((n, f)) = o.next()? {
                    match n {
                        1 => domain = o.string(f, "opset domain")?,
                        2 => version = int(&o, f, "opset version")?,
                        _ => {}
                    }
                }
                if opsets.len() < 64 {
                    let domain = if domain.is_empty() {
                        "ai.onnx".into()
                    } else {
                        domain
                    };
                    opsets.push(format!("{domain}:{version}"));
                }
            }
            14 => {
                let (k, v) = string_pair(&w, field, "metadata_props")?;
                if metadata.len() < 4096 {
                    metadata.insert(format!("onnx.{k}"), v.into());
                }
            }
            _ => {}
        }
    }
    if !opsets.is_empty() {
        metadata.insert("onnx.opset_import".into(), opsets.join(",").into());
    }
    let Some(graph) = graph else {
        return Err(w.bad("no graph (field 7 of ModelProto); not an ONNX model?".into()));
    };
    let mut g = w.sub(graph, "graph")?;
    let mut initializers = Vec::new();
    let mut nodes = Vec::new();
    let mut skipped_sparse = 0;
    while let Some((number, field)) = g.next()? {
        match number {
            1 => {
                let node = parse_node(&g, field)?;
                if matches!(
                    node.op_type.as_str(),
                    "MatMul" | "MatMulInteger" | "Gemm" | "DequantizeLinear"
                ) {
                    if nodes.len() >= MAX_NODES {
                        return Err(g.bad(format!("more than {MAX_NODES} MatMul/Gemm nodes")));
                    }
                    nodes.push(node);
                }
            }
            5 => {
                if initializers.len() as u64 >= limits::MAX_TENSORS {
                    return Err(g.bad(format!("more than {} initializers", limits::MAX_TENSORS)));
                }
                initializers.push(parse_tensor(&g, field)?);
            }
            15 => skipped_sparse += 1,
            _ => {}
        }
    }
    Ok(Parsed {
        initializers,
        nodes,
        metadata,
        skipped_sparse,
    })
}

fn string_pair(w: &Wire, field: Field, what: &str) -> Result<(String, String)> {
    let mut e = w.sub(field, what)?;
    let (mut k, mut v) = (String::new(), String::new());
    while let Some((n, f)) = e.next()? {
        match n {
            1 => k = e.string(f, what)?,
            2 => v = e.string(f, what)?,
            _ => {}
        }
    }
    Ok((k, v))
}

fn parse_node(w: &Wire, field: Field) -> Result<Node> {
    let mut n = w.sub(field, "node")?;
    let mut node = Node::default();
    while let Some((number, f)) = n.next()? {
        match number {
            1 => node.inputs.push(n.string(f, "node input")?),
            2 => node.outputs.push(n.string(f, "node output")?),
            3 => node.name = n.string(f, "node name")?,
            4 => node.op_type = n.string(f, "node op_type")?,
            5 => {
                let mut a = n.sub(f, "node attribute")?;
                let (mut name, mut value) = (String::new(), None);
                while let Some((an, af)) = a.next()? {
                    match (an, af) {
                        (1, _) => name = a.string(af, "attribute name")?,
                        (3, Field::Varint(v)) => value = Some(v as i64),
                        _ => {}
                    }
                }
                if let Some(v) = value
                    && node.ints.len() < 16
                {
                    node.ints.push((name, v));
                }
            }
            _ => {}
        }
    }
    Ok(node)
}

fn parse_tensor(w: &Wire, field: Field) -> Result<Initializer> {
    let mut t = w.sub(field, "initializer")?;
    let mut init = Initializer {
        name: String::new(),
        dims: Vec::new(),
        data_type: 0,
        data: Data::Typed(Vec::new()),
        external: false,
    };
    let mut raw = None;
    let mut typed = Vec::new();
    let mut external = Vec::new();
    while let Some((number, f)) = t.next()? {
        match (number, f) {
            (1, Field::Varint(d)) => push_dim(&t, &mut init.dims, d)?,
            (1, Field::Bytes { start, len }) => {
                let mut packed = Wire::new(t.file, start, start + len);
                while packed.pos < packed.end {
                    let d = packed.varint()?;
                    push_dim(&t, &mut init.dims, d)?;
                }
            }
            (2, _) => init.data_type = int(&t, f, "data_type")?,
            (3, _) => {
                return Err(FormatError::unsupported(
                    &w.file.path,
                    FORMAT,
                    "segmented tensors (TensorProto.segment)",
                ));
            }
            (4 | 5 | 7 | 10 | 11, _) => typed.push((number, f)),
            (8, _) => init.name = t.string(f, "initializer name")?,
            (9, Field::Bytes { start, len }) => raw = Some((start, len)),
            (13, _) => {
                if external.len() >= MAX_EXTERNAL_KEYS {
                    return Err(t.bad(format!(
                        "initializer {}: more than {MAX_EXTERNAL_KEYS} external_data entries",
                        init.name
                    )));
                }
                external.push(string_pair(&t, f, "external_data entry")?);
            }
            (14, _) => init.external = int(&t, f, "data_location")? == 1,
            _ => {}
        }
    }
    init.data = if init.external {
        Data::External(external)
    } else if let Some((start, len)) = raw {
        Data::Raw { start, len }
    } else {
        Data::Typed(typed)
    };
    Ok(init)
}

fn push_dim(w: &Wire, dims: &mut Vec<u64>, d: u64) -> Result<()> {
    if dims.len() as u64 >= limits::MAX_DIMS {
        return Err(w.bad(format!(
            "an initializer with more than {} dimensions",
            limits::MAX_DIMS
        )));
    }
    // dims are int64: a "negative" dimension arrives as a huge varint.
    if d > i64::MAX as u64 {
        return Err(w.bad(format!("negative dimension {}", d as i64)));
    }
    dims.push(d);
    Ok(())
}

/// ONNX TensorProto.DataType to dokja's dtype; None for types dokja does not read.
fn dtype_of(data_type: u64) -> Option<Dtype> {
    Some(match data_type {
        1 => Dtype::F32,
        2 => Dtype::U8,
        3 => Dtype::I8,
        5 => Dtype::I16,
        6 => Dtype::I32,
        7 => Dtype::I64,
        9 => Dtype::Bool,
        10 => Dtype::F16,
        11 => Dtype::F64,
        16 => Dtype::BF16,
        17 => Dtype::F8E4M3,
        19 => Dtype::F8E5M2,
        _ => return None,
    })
}

/// Appends the typed-field values of a tensor to `buf` as little-endian `dtype` elements.
fn decode_typed(
    file: &ModelFile,
    name: &str,
    dtype: Dtype,
    fields: &[(u64, Field)],
    buf: &mut Vec<u8>,
) -> Result<()> {
    let bad = |fault: String| FormatError::malformed(&file.path, FORMAT, fault);
    let expected_field = match dtype {
        Dtype::F32 => 4,
        Dtype::F64 => 10,
        Dtype::I64 => 7,
        _ => 5,
    };
    for &(number, field) in fields {
        if number != expected_field {
            return Err(bad(format!(
                "initializer {name}: {dtype} values in field {number} (expected field {expected_field})"
            )));
        }
        let push_int = |v: u64, buf: &mut Vec<u8>| -> Result<()> {
            if buf.len() as u64 + 8 > MAX_TYPED_BYTES {
                return Err(bad(format!(
                    "more than {MAX_TYPED_BYTES} bytes of tensor values in typed fields"
                )));
            }
            match dtype {
                Dtype::I64 => buf.extend_from_slice(&v.to_le_bytes()),
                Dtype::I32 => buf.extend_from_slice(&(v as u32).to_le_bytes()),
                Dtype::I16 | Dtype::F16 | Dtype::BF16 => {
                    buf.extend_from_slice(&(v as u16).to_le_bytes())
                }
                _ => buf.push(v as u8),
            }
            Ok(())
        };
        match (expected_field, field) {
            (4 | 10, Field::Bytes { start, len }) => {
                if buf.len() as u64 + len > MAX_TYPED_BYTES {
                    return Err(bad(format!(
                        "more than {MAX_TYPED_BYTES} bytes of tensor values in typed fields"
                    )));
                }
                buf.extend_from_slice(&file.bytes(start, len as usize, FORMAT, name)?);
            }
            (4, Field::Fixed32(v)) => buf.extend_from_slice(&v.to_le_bytes()),
            (10, Field::Fixed64(v)) => buf.extend_from_slice(&v.to_le_bytes()),
            (5 | 7, Field::Varint(v)) => push_int(v, buf)?,
            (5 | 7, Field::Bytes { start, len }) => {
                let mut packed = Wire::new(file, start, start + len);
                while packed.pos < packed.end {
                    let v = packed.varint()?;
                    push_int(v, buf)?;
                }
            }
            _ => {
                return Err(bad(format!(
                    "initializer {name}: field {number} has the wrong wire type"
                )));
            }
        }
    }
    Ok(())
}

/// The external file a tensor names must be a relative path below the model's folder.
fn external_path(model_path: &Path, location: &str) -> Result<PathBuf> {
    let p = Path::new(location);
    let plain = !location.is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !location.contains('\\');
    if !plain {
        return Err(FormatError::malformed(
            model_path,
            FORMAT,
            format!(
                "external data location {location:?} is not a relative path inside the model's folder"
            ),
        ));
    }
    let dir = model_path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let full = dir.join(p);
    // A symlink must not lead out of the folder either.
    let (real_dir, real_file) = (
        dir.canonicalize().map_err(|e| FormatError::io(dir, e))?,
        full.canonicalize().map_err(|e| FormatError::io(&full, e))?,
    );
    if !real_file.starts_with(&real_dir) {
        return Err(FormatError::malformed(
            model_path,
            FORMAT,
            format!("external data location {location:?} leads outside the model's folder"),
        ));
    }
    Ok(full)
}

fn parse_u64(model_path: &Path, tensor: &str, key: &str, v: &str) -> Result<u64> {
    v.trim().parse().map_err(|_| {
        FormatError::malformed(
            model_path,
            FORMAT,
            format!("initializer {tensor}: external_data {key} {v:?} is not a byte count"),
        )
    })
}

fn build_model(
    path: &Path,
    file: ModelFile,
    parsed: Parsed,
    options: OpenOptions,
) -> Result<Model> {
    let Parsed {
        initializers,
        nodes,
        mut metadata,
        skipped_sparse,
    } = parsed;
    let bad = |fault: String| FormatError::malformed(path, FORMAT, fault);
    let mut files = vec![file];
    let mut external_index: HashMap<String, usize> = HashMap::new();
    let mut typed_buf = Vec::new();
    // Typed values go to a memory file appended last; its index is fixed once all external
    // files are known, so their declarations are patched afterwards.
    let mut typed_decls = Vec::new();
    let mut declared: Vec<DeclaredTensor> = Vec::with_capacity(initializers.len());
    let mut skipped = Vec::new();
    for init in initializers {
        let Some(dtype) = dtype_of(init.data_type) else {
            if skipped.len() < 64 {
                skipped.push(format!("{} (ONNX type {})", init.name, init.data_type));
            }
            continue;
        };
        let d = |file, offset, len| {
            DeclaredTensor::plain(
                init.name.clone(),
                init.dims.clone(),
                dtype,
                file,
                offset,
                len,
            )
        };
        match &init.data {
            Data::Raw { start, len } => declared.push(d(0, *start, Some(*len))),
            Data::Typed(fields) => {
                let before = typed_buf.len() as u64;
                decode_typed(&files[0], &init.name, dtype, fields, &mut typed_buf)?;
                typed_decls.push(declared.len());
                declared.push(d(usize::MAX, before, Some(typed_buf.len() as u64 - before)));
            }
            Data::External(entries) => {
                let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
                let location = get("location").ok_or_else(|| {
                    bad(format!(
                        "initializer {}: external data without a location",
                        init.name
                    ))
                })?;
                let offset = match get("offset") {
                    Some(v) => parse_u64(path, &init.name, "offset", v)?,
                    None => 0,
                };
                let length = match get("length") {
                    Some(v) => Some(parse_u64(path, &init.name, "length", v)?),
                    None => None,
                };
                let index = match external_index.get(location) {
                    Some(&i) => i,
                    None => {
                        if external_index.len() >= limits::MAX_SHARDS {
                            return Err(bad(format!(
                                "more than {} external data files",
                                limits::MAX_SHARDS
                            )));
                        }
                        let full = external_path(path, location)?;
                        files.push(ModelFile::open(&full, options.read_mode)?);
                        external_index.insert(location.clone(), files.len() - 1);
                        files.len() - 1
                    }
                };
                declared.push(d(index, offset, length));
            }
        }
    }
    if !typed_decls.is_empty() {
        let typed_index = files.len();
        for i in typed_decls {
            declared[i].file = typed_index;
        }
        let mut typed_path = path.as_os_str().to_owned();
        typed_path.push(" (typed fields)");
        files.push(ModelFile {
            path: typed_path.into(),
            source: Box::new(MemorySource(typed_buf)),
        });
    }

    let (declared, consumed) = apply_graph(path, &files, &nodes, declared)?;
    let mut by_file: Vec<Vec<DeclaredTensor>> = (0..files.len()).map(|_| Vec::new()).collect();
    let mut order = Vec::with_capacity(declared.len());
    for d in declared {
        if consumed.contains(&d.stored_name) {
            continue;
        }
        order.push(d.stored_name.clone());
        by_file[d.file].push(d);
    }
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(order.len());
    for (i, group) in by_file.into_iter().enumerate() {
        if group.is_empty() {
            continue;
        }
        let f = &files[i];
        tensors.extend(validate_layout_with(
            &f.path,
            FORMAT,
            group,
            0,
            f.len(),
            Overlaps::Refuse,
        )?);
    }
    // Back to the graph's order, which is the order a user sees in other tools.
    let rank: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    tensors.sort_by_key(|t| rank.get(t.stored_name.as_str()).copied());
    let mut seen = HashSet::with_capacity(tensors.len());
    for t in &tensors {
        if !seen.insert(t.name.as_str()) {
            return Err(bad(format!("two initializers are named {}", t.name)));
        }
    }
    if !skipped.is_empty() {
        metadata.insert(
            "onnx.skipped_initializers".into(),
            skipped.join(", ").into(),
        );
    }
    if skipped_sparse > 0 {
        metadata.insert(
            "onnx.skipped_sparse_initializers".into(),
            skipped_sparse.into(),
        );
    }
    Ok(Model {
        path: path.to_path_buf(),
        format: WeightsFormat::Onnx,
        files,
        tensors,
        metadata,
        sidecars: Sidecars::default(),
    })
}

/// Whether an initializer name was made up by the exporter rather than taken from the
/// model's parameters (`onnx::MatMul_123`, `val_42`, `1234`).
fn is_anonymous(name: &str) -> bool {
    name.contains("::")
        || name.starts_with('/')
        || name.chars().all(|c| c.is_ascii_digit())
        || name
            .strip_prefix("val_")
            .is_some_and(|r| r.chars().all(|c| c.is_ascii_digit()))
}

/// `model.layers.0.self_attn.q_proj` from a node named
/// `/model/layers.0/self_attn/q_proj/MatMul` (or its output `.../MatMul_output_0`).
fn module_path(node: &Node) -> Option<String> {
    let candidates = std::iter::once(&node.name).chain(node.outputs.first());
    for c in candidates {
        let Some(rest) = c.strip_prefix('/') else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() < 2 || parts[..parts.len() - 1].iter().any(|p| p.is_empty()) {
            continue;
        }
        let module = parts[..parts.len() - 1].join(".");
        if module
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '_')
        {
            return Some(module);
        }
    }
    None
}

/// What the graph says about the initializers: renames and transposes MatMul weights,
/// attaches DequantizeLinear scales. Returns the declarations and the names of the
/// initializers consumed as scales or zero points.
fn apply_graph(
    path: &Path,
    files: &[ModelFile],
    nodes: &[Node],
    mut declared: Vec<DeclaredTensor>,
) -> Result<(Vec<DeclaredTensor>, HashSet<String>)> {
    let bad = |fault: String| FormatError::malformed(path, FORMAT, fault);
    let index: HashMap<String, usize> = declared
        .iter()
        .enumerate()
        .map(|(i, d)| (d.stored_name.clone(), i))
        .collect();
    let mut consumed = HashSet::new();
    // DequantizeLinear output -> quantized initializer.
    let mut dequantized: HashMap<&str, usize> = HashMap::new();
    for node in nodes.iter().filter(|n| n.op_type == "DequantizeLinear") {
        let (Some(x), Some(scale), Some(out)) = (
            node.inputs.first(),
            node.inputs.get(1),
            node.outputs.first(),
        ) else {
            continue;
        };
        let (Some(&xi), Some(&si)) = (index.get(x), index.get(scale)) else {
            continue;
        };
        let quant = match declared[xi].dtype {
            Dtype::I8 => QuantType::QInt8,
            Dtype::U8 => QuantType::QUInt8,
            _ => continue,
        };
        if node.int_attr("block_size").is_some_and(|b| b != 0) {
            return Err(FormatError::unsupported(
                path,
                FORMAT,
                format!("blocked quantization (DequantizeLinear block_size) of {x}"),
            ));
        }
        if declared[xi].scales.is_some() {
            return Err(bad(format!("initializer {x} is dequantized twice")));
        }
        let scale = read_small(path, files, &declared[si])?;
        let zero_point = match node.inputs.get(2).filter(|z| !z.is_empty()) {
            Some(z) => {
                let zi = *index.get(z).ok_or_else(|| {
                    bad(format!(
                        "DequantizeLinear of {x}: zero point {z} is not an initializer"
                    ))
                })?;
                consumed.insert(z.clone());
                read_small(path, files, &declared[zi])?
            }
            None => vec![0.0; scale.len()],
        };
        let ndim = declared[xi].shape.len() as i64;
        let axis = if scale.len() == 1 && declared[si].shape.iter().product::<u64>() == 1 {
            None
        } else {
            let a = node.int_attr("axis").unwrap_or(1);
            let a = if a < 0 { a + ndim } else { a };
            if !(0..ndim).contains(&a) {
                return Err(bad(format!(
                    "DequantizeLinear of {x}: axis {a} for a tensor of {ndim} dimensions"
                )));
            }
            Some(a as usize)
        };
        consumed.insert(scale_name(&declared[si]));
        let d = &mut declared[xi];
        d.dtype = Dtype::Quant(quant);
        d.scales = Some(ChannelScales {
            axis,
            scale: Arc::from(scale),
            zero_point: Arc::from(zero_point),
        });
        if let Some(base) = d.name.strip_suffix("_quantized")
            && !base.is_empty()
        {
            d.name = base.to_string();
        }
        dequantized.insert(out.as_str(), xi);
    }

    // MatMul B / Gemm B inputs: orientation and names.
    let mut taken: HashSet<String> = declared
        .iter()
        .filter(|d| !is_anonymous(&d.name))
        .map(|d| d.name.clone())
        .collect();
    let mut done = HashSet::new();
    for node in nodes.iter().filter(|n| n.op_type != "DequantizeLinear") {
        let Some(b) = node.inputs.get(1) else {
            continue;
        };
        let Some(&bi) = index.get(b).or_else(|| dequantized.get(b.as_str())) else {
            continue;
        };
        // Gemm with transB=1 holds B as [out, in] already.
        let stored_in_out = node.op_type != "Gemm" || node.int_attr("transB").unwrap_or(0) == 0;
        let d = &mut declared[bi];
        if !is_anonymous(&d.name) || d.shape.len() != 2 || !done.insert(bi) {
            continue;
        }
        if stored_in_out {
            d.shape.swap(0, 1);
            d.layout = StoredLayout::Transposed;
            if let Some(s) = &mut d.scales {
                s.axis = s.axis.map(|a| 1 - a);
            }
        }
        if let Some(module) = module_path(node) {
            let name = format!("{module}.weight");
            if taken.insert(name.clone()) {
                d.name = name;
            }
        }
    }
    // Index-typed initializers that still have made-up names are graph plumbing (shapes,
    // indices, masks), not weights.
    for d in &declared {
        if is_anonymous(&d.name) && matches!(d.dtype, Dtype::I64 | Dtype::I32 | Dtype::Bool) {
            consumed.insert(d.stored_name.clone());
        }
    }
    Ok((declared, consumed))
}

fn scale_name(d: &DeclaredTensor) -> String {
    d.stored_name.clone()
}

/// Values of a small initializer (scales, zero points), read before layout validation, so
/// every bound is checked here.
fn read_small(path: &Path, files: &[ModelFile], d: &DeclaredTensor) -> Result<Vec<f32>> {
    let bad = |fault: String| FormatError::malformed(path, FORMAT, fault);
    let n = d
        .shape
        .iter()
        .try_fold(1u64, |a, &x| a.checked_mul(x))
        .filter(|&n| n <= MAX_SCALES)
        .ok_or_else(|| {
            bad(format!(
                "scale or zero point {} has shape {:?} (at most {MAX_SCALES} values)",
                d.stored_name, d.shape
            ))
        })?;
    let len = d.dtype.byte_len(n).expect("plain dtype");
    if d.declared_len.is_some_and(|l| l != len) {
        return Err(bad(format!(
            "{}: shape {:?} of {} needs {len} bytes, the file gives {}",
            d.stored_name,
            d.shape,
            d.dtype,
            d.declared_len.unwrap_or(0)
        )));
    }
    let file = &files[d.file];
    let bytes = file.bytes(d.offset, len as usize, FORMAT, &d.stored_name)?;
    let mut out = vec![0f32; n as usize];
    decode_into(d.dtype, &bytes, &mut out);
    if let Some(v) = out.iter().find(|v| !v.is_finite()) {
        return Err(bad(format!("{}: non-finite scale {v}", d.stored_name)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, output: &str) -> Node {
        Node {
            name: name.into(),
            outputs: vec![output.into()],
            ..Node::default()
        }
    }

    #[test]
    fn module_paths_from_node_names() {
        let n = node("/model/layers.0/self_attn/q_proj/MatMul", "x");
        assert_eq!(
            module_path(&n).as_deref(),
            Some("model.layers.0.self_attn.q_proj")
        );
        let n = node("MatMul_12", "/lm_head/MatMul_output_0");
        assert_eq!(module_path(&n).as_deref(), Some("lm_head"));
        assert_eq!(module_path(&node("MatMul_12", "14")), None);
        assert_eq!(module_path(&node("/MatMul", "")), None);
        assert_eq!(module_path(&node("/a//b/MatMul", "")), None);
        assert_eq!(module_path(&node("/a b/MatMul", "")), None);
    }

    #[test]
    fn anonymous_names() {
        for n in [
            "onnx::MatMul_123",
            "1234",
            "val_7",
            "/model/Constant_output_0",
        ] {
            assert!(is_anonymous(n), "{n}");
        }
        for n in ["model.embed_tokens.weight", "val_weight", "lm_head.weight"] {
            assert!(!is_anonymous(n), "{n}");
        }
    }
}
