//! An ONNX export or a PyTorch checkpoint of a model compares against its safetensors
//! original: identical for float copies (whatever the orientation or names the exporter
//! used), a copy within quantization error for int8 per-channel exports; an independently
//! initialized model in the same formats is not called a copy.

use std::path::Path;

use dokja_formats::{Model, OpenOptions};
use dokja_provenance::{CompareOptions, Comparison, Verdict, compare};
use dokja_testkit::{
    LlamaSpec, OnnxOptions, StDtype, SynthModel, TorchOptions, WeightsLayout, llama_like,
    write_hf_folder, write_onnx, write_torch_checkpoint,
};

fn spec() -> LlamaSpec {
    LlamaSpec {
        num_layers: 2,
        ..LlamaSpec::default()
    }
}

fn original(m: &SynthModel, dir: &Path) -> Model {
    write_hf_folder(m, dir, WeightsLayout::Single, StDtype::F32).unwrap();
    Model::open(dir, OpenOptions::default()).unwrap()
}

fn language_model(c: &Comparison) -> Verdict {
    c.components
        .iter()
        .find(|x| x.component == "language_model")
        .map(|x| x.verdict)
        .unwrap_or_else(|| panic!("no language model in {}", c.summary))
}

fn onnx(m: &SynthModel, dir: &Path, opts: &OnnxOptions) -> Model {
    std::fs::create_dir_all(dir).unwrap();
    write_onnx(m, &dir.join("model.onnx"), opts).unwrap();
    Model::open(&dir.join("model.onnx"), OpenOptions::default()).unwrap()
}

fn torch(m: &SynthModel, dir: &Path, dtype: StDtype) -> Model {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("pytorch_model.bin");
    write_torch_checkpoint(m, &p, &TorchOptions::new(dtype)).unwrap();
    Model::open(&p, OpenOptions::default()).unwrap()
}

#[test]
fn exports_of_the_same_weights_are_identical() {
    let m = llama_like(&spec(), 21);
    let dir = tempfile::tempdir().unwrap();
    let a = original(&m, &dir.path().join("a"));
    let options = CompareOptions::default();
    let mut matmul = OnnxOptions::new(StDtype::F16);
    matmul.matmul_weights = true;
    matmul.external_data = Some("model.onnx_data".into());
    let copies = [
        (
            "onnx f32",
            onnx(&m, &dir.path().join("o32"), &OnnxOptions::new(StDtype::F32)),
        ),
        (
            "onnx matmul f16 external",
            onnx(&m, &dir.path().join("o16"), &matmul),
        ),
        (
            "torch f32",
            torch(&m, &dir.path().join("t32"), StDtype::F32),
        ),
        (
            "torch bf16",
            torch(&m, &dir.path().join("t16"), StDtype::BF16),
        ),
    ];
    for (label, b) in &copies {
        let c = compare(&a, b, &options).unwrap();
        assert_eq!(
            language_model(&c),
            Verdict::Identical,
            "{label}: {}",
            c.summary
        );
        assert_eq!(c.verdict, Verdict::Identical, "{label}: {}", c.summary);
    }
}

#[test]
fn int8_per_channel_export_is_a_copy_within_quantization() {
    let m = llama_like(&spec(), 22);
    let dir = tempfile::tempdir().unwrap();
    let a = original(&m, &dir.path().join("a"));
    let mut q = OnnxOptions::new(StDtype::F32);
    q.int8_per_channel = true;
    let b = onnx(&m, &dir.path().join("q"), &q);
    let c = compare(&a, &b, &CompareOptions::default()).unwrap();
    // Per-channel int8 is a lossy re-quantization: the same weights, derived.
    assert_eq!(language_model(&c), Verdict::Derived, "{}", c.summary);
    let lm = c
        .components
        .iter()
        .find(|x| x.component == "language_model")
        .unwrap();
    assert!(
        lm.transformations.iter().any(|t| t == "quantization"),
        "{:?}",
        lm.transformations
    );
    assert!(
        lm.reason.contains("within quantization error"),
        "{}",
        lm.reason
    );
}

#[test]
fn independent_model_in_other_formats_is_not_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let a = original(&llama_like(&spec(), 23), &dir.path().join("a"));
    let other = llama_like(&spec(), 24);
    let mut matmul = OnnxOptions::new(StDtype::F32);
    matmul.matmul_weights = true;
    for b in [
        onnx(&other, &dir.path().join("o"), &matmul),
        torch(&other, &dir.path().join("t"), StDtype::F32),
    ] {
        let c = compare(&a, &b, &CompareOptions::default()).unwrap();
        let v = language_model(&c);
        assert!(
            !matches!(v, Verdict::Identical | Verdict::Derived),
            "{v:?}: {}",
            c.summary
        );
    }
}
