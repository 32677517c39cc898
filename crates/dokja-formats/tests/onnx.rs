//! ONNX exports written by the test kit (prost-encoded, as real exporters lay them out) read
//! back to the Hugging Face tensors they came from; hostile ONNX files are refused.

use std::collections::BTreeMap;
use std::path::Path;

use dokja_formats::{Dtype, FormatError, Model, OpenOptions, QuantType, ReadMode, StoredLayout};
use dokja_testkit::onnx::{
    GraphProto, ModelProto, NodeProto, StringStringEntryProto, TensorProto, data_type,
    is_linear_weight, onnx_model,
};
use dokja_testkit::{
    LlamaSpec, OnnxOptions, StDtype, SynthModel, int8_roundtrip, llama_like, onnx_bytes, write_onnx,
};
use prost::Message;

fn model() -> SynthModel {
    llama_like(
        &LlamaSpec {
            num_layers: 2,
            vocab_size: 96,
            tokenizer: None,
            ..LlamaSpec::default()
        },
        11,
    )
}

fn values(m: &Model) -> BTreeMap<String, (Vec<u64>, Vec<f32>)> {
    m.tensors
        .iter()
        .map(|t| {
            let v = m.read_all(t).unwrap_or_else(|e| panic!("{e}"));
            (t.name.clone(), (t.shape.clone(), v))
        })
        .collect()
}

fn expected(m: &SynthModel, round: impl Fn(f32) -> f32) -> BTreeMap<String, (Vec<u64>, Vec<f32>)> {
    m.tensors
        .iter()
        .map(|t| {
            let shape = t.shape.iter().map(|&d| d as u64).collect();
            (
                t.name.clone(),
                (shape, t.data.iter().map(|&v| round(v)).collect()),
            )
        })
        .collect()
}

fn open(p: &Path) -> Model {
    Model::open(p, OpenOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn open_err(p: &Path) -> String {
    match Model::open(p, OpenOptions::default()) {
        Ok(m) => panic!("{} opened with {} tensors", p.display(), m.tensors.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn named_initializers_every_float_dtype_raw_and_typed() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    for dtype in [StDtype::F32, StDtype::F16, StDtype::BF16, StDtype::F64] {
        for typed in [false, true] {
            let p = dir.path().join(format!("{}-{typed}.onnx", dtype.name()));
            let mut opts = OnnxOptions::new(dtype);
            opts.typed_fields = typed;
            write_onnx(&m, &p, &opts).unwrap();
            let got = open(&p);
            assert_eq!(got.format, dokja_formats::WeightsFormat::Onnx);
            assert_eq!(
                values(&got),
                expected(&m, |v| dtype.round(v)),
                "{} typed={typed}",
                dtype.name()
            );
            assert_eq!(got.metadata["onnx.producer_name"], "pytorch");
            // The int64 shape constant is plumbing, not a weight.
            assert!(got.tensor("onnx::Reshape_7").is_none());
        }
    }
}

#[test]
fn anonymous_matmul_weights_are_renamed_and_transposed() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.onnx");
    let mut opts = OnnxOptions::new(StDtype::F32);
    opts.matmul_weights = true;
    write_onnx(&m, &p, &opts).unwrap();
    for mode in [ReadMode::Mmap, ReadMode::Pread] {
        let got = Model::open(&p, OpenOptions { read_mode: mode }).unwrap();
        assert_eq!(values(&got), expected(&m, |v| v));
        for t in &m.tensors {
            let info = got.tensor(&t.name).unwrap();
            if is_linear_weight(t) {
                assert_eq!(info.layout, StoredLayout::Transposed, "{}", t.name);
                assert!(
                    info.stored_name.starts_with("onnx::MatMul_"),
                    "{}",
                    info.stored_name
                );
            } else {
                assert_eq!(info.layout, StoredLayout::RowMajor, "{}", t.name);
                assert_eq!(info.stored_name, t.name);
            }
        }
        // Chunked reads of a transposed matrix give the same rows as a whole read.
        let q = got
            .tensor("model.layers.1.self_attn.q_proj.weight")
            .unwrap();
        let mut rows = Vec::new();
        got.for_each_chunk(q, 3 * q.row_len() as usize, |_, c| {
            rows.extend_from_slice(c)
        })
        .unwrap();
        assert_eq!(rows, got.read_all(q).unwrap());
    }
}

#[test]
fn external_data_is_read_from_the_named_file() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.onnx");
    let mut opts = OnnxOptions::new(StDtype::F16);
    opts.matmul_weights = true;
    opts.external_data = Some("model.onnx_data".into());
    write_onnx(&m, &p, &opts).unwrap();
    let got = open(&p);
    assert_eq!(got.files.len(), 2);
    assert!(got.files[1].path.ends_with("model.onnx_data"));
    assert_eq!(values(&got), expected(&m, |v| StDtype::F16.round(v)));
    // Opening the folder finds the model and the sidecars beside it.
    std::fs::write(dir.path().join("config.json"), r#"{"model_type":"llama"}"#).unwrap();
    let folder = open(dir.path());
    assert_eq!(folder.format, dokja_formats::WeightsFormat::Onnx);
    assert!(folder.sidecars.config.is_some());
}

#[test]
fn int8_per_channel_weights_read_dequantized() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    for typed in [false, true] {
        let p = dir.path().join(format!("q-{typed}.onnx"));
        let mut opts = OnnxOptions::new(StDtype::F32);
        opts.int8_per_channel = true;
        opts.typed_fields = typed;
        write_onnx(&m, &p, &opts).unwrap();
        let got = open(&p);
        let names: Vec<&str> = got.tensors.iter().map(|t| t.name.as_str()).collect();
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with("_scale") || n.ends_with("_zero_point")),
            "scales are consumed, not listed: {names:?}"
        );
        for t in &m.tensors {
            let info = got
                .tensor(&t.name)
                .unwrap_or_else(|| panic!("{} missing in {names:?}", t.name));
            let read = got.read_all(info).unwrap();
            if is_linear_weight(t) {
                assert_eq!(info.dtype, Dtype::Quant(QuantType::QInt8));
                assert_eq!(info.layout, StoredLayout::Transposed);
                let want = int8_roundtrip(t);
                let worst = read
                    .iter()
                    .zip(&want.data)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst <= 1e-6, "{}: off by {worst}", t.name);
                // And close to the float original: within half a step per row.
                let err = read
                    .iter()
                    .zip(&t.data)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                let step = t.data.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                assert!(err <= step, "{}: {err} > {step}", t.name);
            } else {
                assert_eq!(read, t.data, "{}", t.name);
            }
        }
    }
}

fn tiny() -> (ModelProto, SynthModel) {
    let m = llama_like(
        &LlamaSpec {
            num_layers: 1,
            vocab_size: 4,
            hidden_size: 4,
            intermediate_size: 4,
            num_heads: 1,
            num_kv_heads: 1,
            head_dim: 4,
            tokenizer: None,
            ..LlamaSpec::default()
        },
        3,
    );
    let mut opts = OnnxOptions::new(StDtype::F16);
    opts.matmul_weights = true;
    (onnx_model(&m, &opts).0, m)
}

#[test]
fn truncation_at_every_length_never_panics() {
    let (proto, _) = tiny();
    let bytes = proto.encode_to_vec();
    let dir = tempfile::tempdir().unwrap();
    let mut refused = 0;
    for len in 0..bytes.len() {
        // A new file each time: rewriting one in place makes ext4 flush it to disk.
        let p = dir.path().join(format!("t{len}.onnx"));
        std::fs::write(&p, &bytes[..len]).unwrap();
        if let Err(e) = Model::open(&p, OpenOptions::default()) {
            assert!(e.to_string().contains(&format!("t{len}.onnx")), "{e}");
            refused += 1;
        }
    }
    // Cutting inside the graph (the last field) breaks its length prefix every time.
    assert!(
        refused > bytes.len() * 9 / 10,
        "{refused} of {}",
        bytes.len()
    );
}

fn write_proto(dir: &Path, name: &str, proto: &ModelProto) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, proto.encode_to_vec()).unwrap();
    p
}

fn initializer<'a>(proto: &'a mut ModelProto, name: &str) -> &'a mut TensorProto {
    proto
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.name == name)
        .unwrap()
}

#[test]
fn lying_shapes_and_lengths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let name = "model.norm.weight";
    type Mutation = Box<dyn Fn(&mut TensorProto)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        ("short", Box::new(|t| t.raw_data.truncate(3)), "need"),
        (
            "dims",
            Box::new(|t| t.dims = vec![1 << 40, 1 << 40]),
            "overflows",
        ),
        ("huge", Box::new(|t| t.dims = vec![1 << 40]), "need"),
        (
            "negative",
            Box::new(|t| t.dims = vec![-8]),
            "negative dimension",
        ),
        ("many-dims", Box::new(|t| t.dims = vec![1; 9]), "dimensions"),
        (
            "typed-mismatch",
            Box::new(|t| {
                t.raw_data.clear();
                t.float_data = vec![1.0; 3];
            }),
            "field 4",
        ),
    ];
    for (label, mutate, fault) in cases {
        let (mut proto, _) = tiny();
        mutate(initializer(&mut proto, name));
        let p = write_proto(dir.path(), &format!("{label}.onnx"), &proto);
        let e = open_err(&p);
        assert!(e.contains(fault) && e.contains(".onnx"), "{label}: {e}");
    }
}

fn external(t: &mut TensorProto, location: &str, offset: &str, length: &str) {
    t.raw_data.clear();
    t.data_location = 1;
    t.external_data = [
        ("location", location),
        ("offset", offset),
        ("length", length),
    ]
    .iter()
    .map(|(k, v)| StringStringEntryProto {
        key: k.to_string(),
        value: v.to_string(),
    })
    .collect();
}

#[test]
fn external_data_cannot_leave_the_model_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(root.path().join("secret.bin"), [0u8; 64]).unwrap();
    std::fs::write(dir.join("ok.bin"), [0u8; 16]).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.path().join("secret.bin"), dir.join("link.bin")).unwrap();
    for (location, fault) in [
        ("../../etc/passwd", "not a relative path inside"),
        ("../secret.bin", "not a relative path inside"),
        ("/etc/passwd", "not a relative path inside"),
        ("sub/../../secret.bin", "not a relative path inside"),
        ("", "not a relative path inside"),
        #[cfg(unix)]
        ("link.bin", "leads outside"),
        ("missing.bin", "cannot read"),
    ] {
        let (mut proto, _) = tiny();
        external(
            initializer(&mut proto, "model.norm.weight"),
            location,
            "0",
            "8",
        );
        let p = write_proto(&dir, "m.onnx", &proto);
        let e = open_err(&p);
        assert!(e.contains(fault), "{location:?}: {e}");
    }
    // Offsets and lengths must fit the external file.
    for (offset, length, fault) in [
        ("12", "8", "outside"),
        ("0", "4", "need"),
        ("x", "8", "byte count"),
    ] {
        let (mut proto, _) = tiny();
        external(
            initializer(&mut proto, "model.norm.weight"),
            "ok.bin",
            offset,
            length,
        );
        let p = write_proto(&dir, "m.onnx", &proto);
        let e = open_err(&p);
        assert!(e.contains(fault), "{offset}/{length}: {e}");
    }
    let (mut proto, _) = tiny();
    external(
        initializer(&mut proto, "model.norm.weight"),
        "ok.bin",
        "0",
        "8",
    );
    let p = write_proto(&dir, "m.onnx", &proto);
    let m = open(&p);
    assert_eq!(
        m.read_all(m.tensor("model.norm.weight").unwrap()).unwrap(),
        vec![0.0; 4]
    );
}

#[test]
fn deeply_nested_subgraphs_are_not_descended() {
    let (mut proto, m) = tiny();
    let mut g = GraphProto::default();
    for _ in 0..2000 {
        g = GraphProto {
            node: vec![NodeProto {
                op_type: "If".into(),
                attribute: vec![dokja_testkit::onnx::AttributeProto {
                    name: "then_branch".into(),
                    g: Some(Box::new(g)),
                    r#type: 5,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
    }
    proto.graph.as_mut().unwrap().node.extend(g.node);
    let dir = tempfile::tempdir().unwrap();
    let p = write_proto(dir.path(), "deep.onnx", &proto);
    assert_eq!(open(&p).tensors.len(), m.tensors.len());
}

#[test]
fn quantization_faults_are_named() {
    let m = model();
    let mut opts = OnnxOptions::new(StDtype::F32);
    opts.int8_per_channel = true;
    let dir = tempfile::tempdir().unwrap();
    // Scales that do not match the channel count.
    let (mut proto, _) = onnx_model(&m, &opts);
    let scale = proto
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.name.ends_with("_scale"))
        .unwrap();
    scale.dims = vec![3];
    scale.raw_data.truncate(12);
    let p = write_proto(dir.path(), "scales.onnx", &proto);
    let e = open_err(&p);
    assert!(e.contains("scales") && e.contains("channels"), "{e}");
    // A non-finite scale.
    let (mut proto, _) = onnx_model(&m, &opts);
    let scale = proto
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.name.ends_with("_scale"))
        .unwrap();
    scale.raw_data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let p = write_proto(dir.path(), "nan.onnx", &proto);
    assert!(open_err(&p).contains("non-finite scale"));
    // An int8 weight with a uint8 zero point is still read as int8 with its zero points.
    let (mut proto, _) = onnx_model(&m, &opts);
    let zp = proto
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.name.ends_with("_zero_point"))
        .unwrap();
    zp.data_type = data_type::UINT8;
    zp.raw_data.iter_mut().for_each(|b| *b = 1);
    let p = write_proto(dir.path(), "zp.onnx", &proto);
    let got = open(&p);
    assert!(
        got.tensors
            .iter()
            .all(|t| t.scales.is_none() || t.scales.as_ref().unwrap().axis == Some(0))
    );
}

#[test]
fn not_onnx_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.onnx");
    std::fs::write(&p, b"hello world, not protobuf").unwrap();
    let e = Model::open(&p, OpenOptions::default()).unwrap_err();
    assert!(matches!(e, FormatError::Malformed { .. }), "{e}");
    let (bytes, _) = onnx_bytes(&model(), &OnnxOptions::new(StDtype::F32));
    assert!(bytes.len() > 1000);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("r.onnx");
            std::fs::write(&p, &bytes).unwrap();
            if let Ok(m) = Model::open(&p, OpenOptions::default()) {
                for t in &m.tensors {
                    let _ = m.read_all(t);
                }
            }
        }

        #[test]
        fn mutated_models_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
        ) {
            let (proto, _) = tiny();
            let mut bytes = proto.encode_to_vec();
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("m.onnx");
            std::fs::write(&p, &bytes).unwrap();
            if let Ok(m) = Model::open(&p, OpenOptions::default()) {
                for t in &m.tensors {
                    let _ = m.read_all(t);
                }
            }
        }
    }
}

fn raw(name: &str, dims: &[i64], data_type: i32, raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type,
        raw_data,
        ..Default::default()
    }
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn node(op: &str, name: &str, inputs: &[&str], ints: &[(&str, i64)]) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![format!("{name}_output_0")],
        attribute: ints
            .iter()
            .map(|(n, i)| dokja_testkit::onnx::AttributeProto {
                name: n.to_string(),
                i: *i,
                r#type: 2,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn gemm_orientation_and_per_tensor_uint8_scales() {
    // W is [out 3, in 2]; Gemm with transB=1 keeps it as is, transB=0 stores W^T.
    let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let wt = [1.0f32, 3.0, 5.0, 2.0, 4.0, 6.0];
    let graph = GraphProto {
        initializer: vec![
            raw("onnx::Gemm_5", &[3, 2], data_type::FLOAT, f32s(&w)),
            raw("onnx::Gemm_6", &[2, 3], data_type::FLOAT, f32s(&wt)),
            // uint8 [in 2, out 3] with one scale and zero point for the whole tensor.
            raw(
                "onnx::MatMul_7_quantized",
                &[2, 3],
                data_type::UINT8,
                vec![10, 12, 14, 11, 13, 15],
            ),
            raw("onnx::MatMul_7_scale", &[], data_type::FLOAT, f32s(&[0.5])),
            raw("onnx::MatMul_7_zero_point", &[], data_type::UINT8, vec![8]),
            // ORT dynamic quantization: int8 [in 2, out 3] for MatMulInteger, raw integers.
            raw(
                "onnx::MatMul_8_quantized",
                &[2, 3],
                data_type::INT8,
                vec![1, 2, 3, 0xff, 0xfe, 0xfd],
            ),
        ],
        node: vec![
            node(
                "Gemm",
                "/encoder/dense/Gemm",
                &["x", "onnx::Gemm_5"],
                &[("transB", 1)],
            ),
            node(
                "Gemm",
                "/decoder/dense/Gemm",
                &["x", "onnx::Gemm_6"],
                &[("transB", 0)],
            ),
            node(
                "DequantizeLinear",
                "dq",
                &[
                    "onnx::MatMul_7_quantized",
                    "onnx::MatMul_7_scale",
                    "onnx::MatMul_7_zero_point",
                ],
                &[],
            ),
            node("MatMul", "/head/proj/MatMul", &["x", "dq_output_0"], &[]),
            node(
                "MatMulInteger",
                "/tail/proj/MatMulInteger",
                &["xq", "onnx::MatMul_8_quantized"],
                &[],
            ),
        ],
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: 8,
        graph: Some(graph),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let m = open(&write_proto(dir.path(), "gemm.onnx", &proto));
    let get = |n: &str| {
        let t = m.tensor(n).unwrap_or_else(|| panic!("{n} missing"));
        (t.shape.clone(), t.layout, m.read_all(t).unwrap())
    };
    assert_eq!(
        get("encoder.dense.weight"),
        (vec![3, 2], StoredLayout::RowMajor, w.to_vec())
    );
    assert_eq!(
        get("decoder.dense.weight"),
        (vec![3, 2], StoredLayout::Transposed, w.to_vec())
    );
    // (q - 8) * 0.5 of the transpose: rows [10,11], [12,13], [14,15].
    assert_eq!(
        get("head.proj.weight"),
        (
            vec![3, 2],
            StoredLayout::Transposed,
            vec![1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
        )
    );
    assert_eq!(
        get("tail.proj.weight"),
        (
            vec![3, 2],
            StoredLayout::Transposed,
            vec![1.0, -1.0, 2.0, -2.0, 3.0, -3.0]
        )
    );
    assert_eq!(m.tensors.len(), 4);
}
