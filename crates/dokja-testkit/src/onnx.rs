//! ONNX writer: a model's tensors as graph initializers, encoded with `prost` from
//! hand-written messages for the subset of onnx.proto that holds weights (ModelProto,
//! GraphProto, NodeProto, AttributeProto, TensorProto, StringStringEntryProto). Field
//! numbers and packing follow onnx.proto (proto2: `dims` unpacked, typed data packed).
//!
//! Options reproduce what real exporters do to weights: `torch.onnx.export` stores Linear
//! weights as anonymous MatMul initializers `[in, out]` (`onnx::MatMul_N`) used by nodes
//! named after the module path; quantizers store int8 weights with per-channel scales
//! feeding DequantizeLinear; large models keep data in an external file.

use std::fs;
use std::io;
use std::path::Path;

use crate::model::{SynthModel, SynthTensor};
use crate::safetensors::StDtype;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "7")]
    pub domain: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// A subgraph (If/Loop bodies): readers must not descend into it unboundedly.
    #[prost(message, optional, boxed, tag = "6")]
    pub g: Option<Box<GraphProto>>,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

/// ONNX TensorProto.DataType codes.
pub mod data_type {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const INT64: i32 = 7;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
    pub const BFLOAT16: i32 = 16;
}

#[derive(Clone, Debug)]
pub struct OnnxOptions {
    pub dtype: StDtype,
    /// Linear weights as anonymous MatMul initializers stored `[in, out]`.
    pub matmul_weights: bool,
    /// Linear weights as int8 with one scale per output channel (DequantizeLinear).
    pub int8_per_channel: bool,
    /// Values in the typed fields (`float_data`, `int32_data`, ...) instead of raw_data.
    pub typed_fields: bool,
    /// Keep tensor data in this file beside the model (`location` of external_data).
    pub external_data: Option<String>,
}

impl OnnxOptions {
    pub fn new(dtype: StDtype) -> OnnxOptions {
        OnnxOptions {
            dtype,
            matmul_weights: false,
            int8_per_channel: false,
            typed_fields: false,
            external_data: None,
        }
    }
}

/// Whether a tensor is a Linear weight an exporter turns into a MatMul.
pub fn is_linear_weight(t: &SynthTensor) -> bool {
    t.shape.len() == 2
        && t.name.ends_with(".weight")
        && ![
            "embed",
            "wte",
            "wpe",
            "word_embeddings",
            "position_embeddings",
            "token_type",
        ]
        .iter()
        .any(|e| t.name.contains(e))
}

/// The node name torch.onnx gives a module's MatMul: `/model/layers.0/self_attn/q_proj/MatMul`.
pub fn matmul_node_name(weight_name: &str) -> String {
    let module = weight_name.strip_suffix(".weight").unwrap_or(weight_name);
    let mut parts: Vec<String> = Vec::new();
    for p in module.split('.') {
        match parts.last_mut() {
            Some(last) if p.chars().all(|c| c.is_ascii_digit()) => {
                last.push('.');
                last.push_str(p);
            }
            _ => parts.push(p.to_string()),
        }
    }
    format!("/{}/MatMul", parts.join("/"))
}

/// Per-row symmetric int8 quantization of a `[rows, cols]` matrix: (values, scales).
pub fn quantize_rows_int8(t: &SynthTensor) -> (Vec<i8>, Vec<f32>) {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut q = vec![0i8; rows * cols];
    let mut scales = vec![0f32; rows];
    for r in 0..rows {
        let row = t.row(r);
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales[r] = s;
        for c in 0..cols {
            q[r * cols + c] = (row[c] / s).round().clamp(-127.0, 127.0) as i8;
        }
    }
    (q, scales)
}

/// The values an int8 per-channel export reads back as.
pub fn int8_roundtrip(t: &SynthTensor) -> SynthTensor {
    let (q, s) = quantize_rows_int8(t);
    let cols = t.shape[1];
    let data = q
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f32 * s[i / cols])
        .collect();
    SynthTensor::new(t.name.clone(), t.shape.clone(), data)
}

fn onnx_type(d: StDtype) -> i32 {
    match d {
        StDtype::F32 => data_type::FLOAT,
        StDtype::F16 => data_type::FLOAT16,
        StDtype::BF16 => data_type::BFLOAT16,
        StDtype::F64 => data_type::DOUBLE,
    }
}

struct Builder<'a> {
    opts: &'a OnnxOptions,
    graph: GraphProto,
    external: Vec<u8>,
}

impl Builder<'_> {
    /// An initializer holding `bytes` (little-endian elements) or, for typed fields, the
    /// values given.
    fn tensor(&mut self, name: &str, dims: &[usize], dtype: i32, values: Values) {
        let mut t = TensorProto {
            name: name.to_string(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: dtype,
            ..Default::default()
        };
        if self.opts.typed_fields {
            match values {
                Values::Float(v, d) => match d {
                    StDtype::F32 => t.float_data = v.to_vec(),
                    StDtype::F64 => t.double_data = v.iter().map(|&x| x as f64).collect(),
                    StDtype::F16 => {
                        t.int32_data = v
                            .iter()
                            .map(|&x| half::f16::from_f32(x).to_bits() as i32)
                            .collect()
                    }
                    StDtype::BF16 => {
                        t.int32_data = v
                            .iter()
                            .map(|&x| half::bf16::from_f32(x).to_bits() as i32)
                            .collect()
                    }
                },
                Values::Int8(v) => t.int32_data = v.iter().map(|&x| x as i32).collect(),
            }
        } else {
            let mut bytes = Vec::new();
            match values {
                Values::Float(v, d) => d.encode(v, &mut bytes),
                Values::Int8(v) => bytes.extend(v.iter().map(|&x| x as u8)),
            }
            match &self.opts.external_data {
                Some(location) => {
                    // onnx's external-data writer aligns each tensor.
                    self.external
                        .resize(self.external.len().next_multiple_of(64), 0);
                    let offset = self.external.len();
                    self.external.extend_from_slice(&bytes);
                    t.data_location = 1;
                    t.external_data = vec![
                        entry("location", location),
                        entry("offset", &offset.to_string()),
                        entry("length", &bytes.len().to_string()),
                    ];
                }
                None => t.raw_data = bytes,
            }
        }
        self.graph.initializer.push(t);
    }

    fn node(&mut self, op: &str, name: &str, inputs: &[&str], output: &str, ints: &[(&str, i64)]) {
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: name.to_string(),
            op_type: op.to_string(),
            attribute: ints
                .iter()
                .map(|(n, i)| AttributeProto {
                    name: n.to_string(),
                    i: *i,
                    r#type: 2,
                    ..Default::default()
                })
                .collect(),
            domain: String::new(),
        });
    }
}

enum Values<'a> {
    Float(&'a [f32], StDtype),
    Int8(&'a [i8]),
}

fn entry(k: &str, v: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    }
}

/// The ONNX graph for `model` with the given options (not yet encoded) and the external
/// data file's bytes (empty without external data).
pub fn onnx_model(model: &SynthModel, opts: &OnnxOptions) -> (ModelProto, Vec<u8>) {
    let mut b = Builder {
        opts,
        graph: GraphProto {
            name: "main_graph".into(),
            ..Default::default()
        },
        external: Vec::new(),
    };
    let mut counter = 100;
    let mut activation = "/model/embed_tokens/Gather_output_0".to_string();
    for t in &model.tensors {
        let linear = is_linear_weight(t);
        if linear && opts.int8_per_channel {
            // Quantized per output channel, stored [in, out] like the float MatMul weight.
            counter += 1;
            let base = format!("onnx::MatMul_{counter}");
            let (q, scales) = quantize_rows_int8(t);
            let (rows, cols) = (t.shape[0], t.shape[1]);
            let mut qt = vec![0i8; q.len()];
            for r in 0..rows {
                for c in 0..cols {
                    qt[c * rows + r] = q[r * cols + c];
                }
            }
            let qname = format!("{base}_quantized");
            let zeros = vec![0i8; rows];
            b.tensor(&qname, &[cols, rows], data_type::INT8, Values::Int8(&qt));
            b.tensor(
                &format!("{base}_scale"),
                &[rows],
                data_type::FLOAT,
                Values::Float(&scales, StDtype::F32),
            );
            b.tensor(
                &format!("{base}_zero_point"),
                &[rows],
                data_type::INT8,
                Values::Int8(&zeros),
            );
            let dq_out = format!("{base}_DequantizeLinear_Output");
            b.node(
                "DequantizeLinear",
                &format!("{base}_DequantizeLinear"),
                &[
                    &qname,
                    &format!("{base}_scale"),
                    &format!("{base}_zero_point"),
                ],
                &dq_out,
                &[("axis", 1)],
            );
            let node = matmul_node_name(&t.name);
            let out = format!("{node}_output_0");
            b.node("MatMul", &node, &[&activation, &dq_out], &out, &[]);
            activation = out;
        } else if linear && opts.matmul_weights {
            counter += 1;
            let name = format!("onnx::MatMul_{counter}");
            let tt = t.transposed();
            b.tensor(
                &name,
                &tt.shape,
                onnx_type(opts.dtype),
                Values::Float(&tt.data, opts.dtype),
            );
            let node = matmul_node_name(&t.name);
            let out = format!("{node}_output_0");
            b.node("MatMul", &node, &[&activation, &name], &out, &[]);
            activation = out;
        } else {
            b.tensor(
                &t.name,
                &t.shape,
                onnx_type(opts.dtype),
                Values::Float(&t.data, opts.dtype),
            );
        }
    }
    // Graph plumbing exporters leave behind: a shape constant.
    b.graph.initializer.push(TensorProto {
        name: "onnx::Reshape_7".into(),
        dims: vec![2],
        data_type: data_type::INT64,
        raw_data: [(-1i64).to_le_bytes(), 64i64.to_le_bytes()].concat(),
        ..Default::default()
    });
    let model = ModelProto {
        ir_version: 8,
        producer_name: "pytorch".into(),
        producer_version: "2.5.0".into(),
        graph: Some(b.graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        metadata_props: vec![entry("written_by", "dokja-testkit")],
    };
    (model, b.external)
}

/// The encoded `.onnx` bytes and the external data bytes.
pub fn onnx_bytes(model: &SynthModel, opts: &OnnxOptions) -> (Vec<u8>, Vec<u8>) {
    let (m, external) = onnx_model(model, opts);
    (prost::Message::encode_to_vec(&m), external)
}

/// Writes `path` (and the external data file beside it, if the options name one).
pub fn write_onnx(model: &SynthModel, path: &Path, opts: &OnnxOptions) -> io::Result<()> {
    let (bytes, external) = onnx_bytes(model, opts);
    fs::write(path, bytes)?;
    if let Some(location) = &opts.external_data {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::write(dir.join(location), external)?;
    }
    Ok(())
}
