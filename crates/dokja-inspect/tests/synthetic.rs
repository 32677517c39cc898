//! Inspection of synthetic models whose make-up the test knows: components, parameter
//! counts, experts, tied heads, tokenizers and licences.

use dokja_formats::{Model, OpenOptions};
use dokja_inspect::{InspectOptions, LmHead, inspect};
use dokja_schema::Component;
use dokja_testkit::{
    BertSpec, GgufOptions, GgufType, LlamaSpec, MlaSpec, MoeSpec, StDtype, SynthModel, VlmSpec,
    WeightsLayout, bert_like, llama_like, mla_like, moe_like, vlm, write_gguf, write_hf_folder,
};

fn folder(model: &SynthModel) -> (tempfile::TempDir, Model) {
    let dir = tempfile::tempdir().unwrap();
    write_hf_folder(model, dir.path(), WeightsLayout::Single, StDtype::BF16).unwrap();
    let m = Model::open(dir.path(), OpenOptions::default()).unwrap();
    (dir, m)
}

fn params_of(model: &SynthModel, pred: impl Fn(&str) -> bool) -> u64 {
    model
        .tensors
        .iter()
        .filter(|t| pred(&t.name))
        .map(|t| t.data.len() as u64)
        .sum()
}

#[test]
fn vision_language_model_splits_into_components() {
    let model = vlm(&VlmSpec::default(), 9);
    let (_d, m) = folder(&model);
    let r = inspect(&m, InspectOptions::default());
    let by = |c: Component| {
        r.components
            .iter()
            .find(|s| s.component == c)
            .unwrap_or_else(|| panic!("{c:?} missing"))
    };
    let vision = by(Component::VisionEncoder);
    let projector = by(Component::Projector);
    let lm = by(Component::LanguageModel);
    assert_eq!(
        vision.parameters,
        params_of(&model, |n| n.contains("vision_tower"))
    );
    assert_eq!(
        projector.parameters,
        params_of(&model, |n| n.contains("multi_modal_projector"))
    );
    assert_eq!(
        lm.parameters + vision.parameters + projector.parameters,
        r.parameters
    );
    assert_eq!(r.parameters, model.n_params() as u64);
    assert!(r.unclassified.is_empty(), "{:?}", r.unclassified);
    assert_eq!(lm.layers as usize, VlmSpec::default().lm.num_layers);
}

#[test]
fn moe_counts_experts_and_dimensions() {
    let spec = MoeSpec::default();
    let model = moe_like(&spec, 4);
    let (_d, m) = folder(&model);
    let r = inspect(&m, InspectOptions { list_tensors: true });
    let lm = &r.components[0];
    assert_eq!(lm.component, Component::LanguageModel);
    assert_eq!(lm.experts as usize, spec.num_experts);
    assert_eq!(r.dimensions.experts, Some(spec.num_experts as u64));
    assert_eq!(r.parameters, model.n_params() as u64);
    assert_eq!(r.tensors.as_ref().unwrap().len(), model.tensors.len());
    // The same model as GGUF stacks the experts; the count is the same.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    write_gguf(
        &model,
        &p,
        &GgufOptions {
            arch: Some("qwen3moe".into()),
            ..GgufOptions::with_type(GgufType::F16)
        },
    )
    .unwrap();
    let g = inspect(
        &Model::open(&p, OpenOptions::default()).unwrap(),
        InspectOptions::default(),
    );
    assert_eq!(g.components[0].experts as usize, spec.num_experts);
    assert_eq!(g.parameters, r.parameters);
    assert!(g.unclassified.is_empty(), "{:?}", g.unclassified);
}

#[test]
fn mla_model_is_fully_classified() {
    let model = mla_like(&MlaSpec::default(), 8);
    let (_d, m) = folder(&model);
    let r = inspect(&m, InspectOptions::default());
    assert!(r.unclassified.is_empty(), "{:?}", r.unclassified);
    assert_eq!(r.architecture.family, "DeepSeek-V3");
    assert_eq!(r.parameters, model.n_params() as u64);
}

#[test]
fn tied_and_separate_heads() {
    let tied = llama_like(
        &LlamaSpec {
            tie_embeddings: true,
            ..LlamaSpec::default()
        },
        1,
    );
    let separate = llama_like(
        &LlamaSpec {
            tie_embeddings: false,
            ..LlamaSpec::default()
        },
        1,
    );
    assert_eq!(
        inspect(&folder(&tied).1, InspectOptions::default()).lm_head,
        LmHead::Tied
    );
    assert_eq!(
        inspect(&folder(&separate).1, InspectOptions::default()).lm_head,
        LmHead::Separate
    );
    let bert = inspect(
        &folder(&bert_like(&BertSpec::default(), 1)).1,
        InspectOptions::default(),
    );
    assert_eq!(bert.lm_head, LmHead::None);
    assert_eq!(bert.architecture.family, "BERT");
    assert_eq!(bert.tokenizer.as_ref().unwrap().kind, "WordPiece");
}

#[test]
fn folder_reports_tokenizer_licence_and_dims() {
    let spec = LlamaSpec::default();
    let model = llama_like(&spec, 2);
    let (_d, m) = folder(&model);
    let r = inspect(&m, InspectOptions::default());
    assert_eq!(r.architecture.evidence, "config.json");
    assert_eq!(r.dimensions.hidden_size, Some(spec.hidden_size as u64));
    assert_eq!(r.dimensions.layers, Some(spec.num_layers as u64));
    assert_eq!(r.dimensions.kv_heads, Some(spec.num_kv_heads as u64));
    let tok = r.tokenizer.as_ref().unwrap();
    assert_eq!(tok.vocab_size, spec.vocab_size);
    assert_eq!(tok.kind, "byte-level BPE");
    assert_eq!(
        r.licence.as_ref().unwrap().id.as_deref(),
        Some("apache-2.0")
    );
    assert_eq!(r.dtypes["BF16"].parameters, model.n_params() as u64);
}
