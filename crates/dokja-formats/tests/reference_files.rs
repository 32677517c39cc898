//! Files written by the reference implementations (the `onnx` Python package, CPython's
//! pickler driven as torch.save drives it; see tests/reference/make.py) read back to the
//! values they were written from. These pin the readers to what real tools write, where
//! the other tests pin them to dokja-testkit's writers.

use std::path::{Path, PathBuf};

use dokja_formats::{Dtype, Model, OpenOptions, QuantType, StoredLayout};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir().join(name)).unwrap()).unwrap()
}

fn flat(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap() as f32],
        other => panic!("{other}"),
    }
}

fn check(file: &str, tolerance: f32, quantized: bool) -> Model {
    let m =
        Model::open(&dir().join(file), OpenOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let reference = json("ref.json");
    let dequantized = json("qref.json");
    let mut names: Vec<&str> = m.tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    for t in &m.tensors {
        let source = if t.name == "lm_head.weight" {
            "model.embed_tokens.weight"
        } else {
            &t.name
        };
        let want = if quantized && t.name.ends_with("up_proj.weight") {
            flat(&dequantized["q_deq"])
        } else {
            flat(&reference[source])
        };
        let got = m.read_all(t).unwrap();
        assert_eq!(got.len(), want.len(), "{file}: {}", t.name);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= tolerance, "{file}: {} off by {worst}", t.name);
    }
    m
}

#[test]
fn onnx_package_files() {
    for (file, tolerance) in [
        ("raw_float32.onnx", 0.0),
        ("raw_float64.onnx", 1e-7),
        ("raw_float16.onnx", 2e-3),
        ("typed.onnx", 2e-3),
        ("ext.onnx", 0.0),
    ] {
        let m = check(file, tolerance, false);
        let w = m.tensor("model.layers.0.mlp.up_proj.weight").unwrap();
        assert_eq!(
            (w.shape.clone(), w.layout),
            (vec![6, 4], StoredLayout::Transposed)
        );
        assert_eq!(w.stored_name, "onnx::MatMul_9");
        assert_eq!(m.tensors.len(), 3, "{file}");
    }
    let m = check("q.onnx", 1e-6, true);
    let w = m.tensor("model.layers.0.mlp.up_proj.weight").unwrap();
    assert_eq!(w.dtype, Dtype::Quant(QuantType::QInt8));
    assert_eq!(m.tensors.len(), 3);
}

#[test]
fn cpython_pickled_checkpoints() {
    for (file, tolerance) in [("torch2.pt", 0.0), ("torch4.pt", 2e-3)] {
        let m = check(file, tolerance, false);
        // A view at an offset into a shared storage, and a tied second name for it.
        let (e, l) = (
            m.tensor("model.embed_tokens.weight").unwrap(),
            m.tensor("lm_head.weight").unwrap(),
        );
        assert_eq!(e.offset, l.offset);
        assert_eq!(m.tensors.len(), 4);
    }
}
