//! A Hugging Face model folder: weights, config.json, generation_config.json, tokenizer
//! files, LICENSE and a README model card with YAML front matter.

use std::fs;
use std::io;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::model::{SynthModel, SynthTokenizer, TokenizerKind};
use crate::safetensors::{StDtype, StOptions, write_safetensors_with, write_sharded_with};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsLayout {
    /// `model.safetensors`.
    Single,
    /// `model-0000N-of-0000M.safetensors` + `model.safetensors.index.json`.
    Sharded { max_shard_bytes: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct License {
    /// The model card's `license:` value (an HF licence id, or "other").
    pub id: String,
    /// `license_name:` for `other` licences (e.g. "llama3").
    pub name: Option<String>,
    /// The LICENSE file's text.
    pub text: String,
}

const APACHE_2_0: &str = "\
                                 Apache License
                           Version 2.0, January 2004
                        http://www.apache.org/licenses/

   TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION

   1. Definitions.

      \"License\" shall mean the terms and conditions for use, reproduction,
      and distribution as defined by Sections 1 through 9 of this document.

      \"Licensor\" shall mean the copyright owner or entity authorized by
      the copyright owner that is granting the License.

   2. Grant of Copyright License. Subject to the terms and conditions of
      this License, each Contributor hereby grants to You a perpetual,
      worldwide, non-exclusive, no-charge, royalty-free, irrevocable
      copyright license to reproduce, prepare Derivative Works of,
      publicly display, publicly perform, sublicense, and distribute the
      Work and such Derivative Works in Source or Object form.

   (Abbreviated for a synthetic test model; see the full text at the URL above.)
";

const MIT: &str = "\
MIT License

Copyright (c) dokja-testkit

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the \"Software\"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND.
";

impl License {
    pub fn apache2() -> License {
        License {
            id: "apache-2.0".into(),
            name: None,
            text: APACHE_2_0.into(),
        }
    }
    pub fn mit() -> License {
        License {
            id: "mit".into(),
            name: None,
            text: MIT.into(),
        }
    }
    /// A custom licence: the card says `license: other` and `license_name: {name}`.
    pub fn other(name: &str, text: &str) -> License {
        License {
            id: "other".into(),
            name: Some(name.into()),
            text: text.into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct HfFolderOptions {
    pub layout: WeightsLayout,
    pub weights: StOptions,
    pub license: License,
    /// tokenizers >= 0.20 writes merges as `[["a", "b"], ...]` instead of `["a b", ...]`.
    pub merges_as_pairs: bool,
}

impl HfFolderOptions {
    pub fn new(layout: WeightsLayout, dtype: StDtype) -> HfFolderOptions {
        HfFolderOptions {
            layout,
            weights: StOptions::new(dtype),
            license: License::apache2(),
            merges_as_pairs: false,
        }
    }
}

pub fn write_hf_folder(
    model: &SynthModel,
    dir: &Path,
    layout: WeightsLayout,
    dtype: StDtype,
) -> io::Result<()> {
    write_hf_folder_with(model, dir, &HfFolderOptions::new(layout, dtype))
}

pub fn write_hf_folder_with(
    model: &SynthModel,
    dir: &Path,
    opts: &HfFolderOptions,
) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    match opts.layout {
        WeightsLayout::Single => {
            write_safetensors_with(model, &dir.join("model.safetensors"), &opts.weights)?
        }
        WeightsLayout::Sharded { max_shard_bytes } => {
            write_sharded_with(model, dir, max_shard_bytes, &opts.weights)?;
        }
    }
    let mut config = model.config.clone();
    if config.is_object() {
        config["torch_dtype"] = json!(opts.weights.dtype.torch_name());
    }
    write_json(&dir.join("config.json"), &config)?;
    write_json(
        &dir.join("generation_config.json"),
        &generation_config(model),
    )?;
    if let Some(tok) = &model.tokenizer {
        write_json(
            &dir.join("tokenizer.json"),
            &tokenizer_json(tok, opts.merges_as_pairs),
        )?;
        write_json(
            &dir.join("tokenizer_config.json"),
            &tokenizer_config_json(tok),
        )?;
    }
    fs::write(dir.join("LICENSE"), &opts.license.text)?;
    fs::write(dir.join("README.md"), model_card(model, &opts.license))
}

fn write_json(path: &Path, v: &Value) -> io::Result<()> {
    fs::write(path, serde_json::to_string_pretty(v).expect("json") + "\n")
}

fn generation_config(model: &SynthModel) -> Value {
    let mut g = Map::new();
    g.insert("_from_model_config".into(), json!(true));
    if let Some(t) = &model.tokenizer {
        if let Some(b) = t.bos {
            g.insert("bos_token_id".into(), json!(b));
        }
        if let Some(e) = t.eos {
            g.insert("eos_token_id".into(), json!(e));
        }
    }
    g.insert("transformers_version".into(), json!("4.57.0"));
    Value::Object(g)
}

fn model_card(model: &SynthModel, license: &License) -> String {
    let mut front = format!("license: {}\n", license.id);
    if let Some(n) = &license.name {
        front.push_str(&format!("license_name: {n}\nlicense_link: LICENSE\n"));
    }
    format!(
        "---\n{front}library_name: transformers\ntags:\n- synthetic\n---\n\n# {}\n\nA randomly initialized model written by dokja-testkit for tests. It has never been trained.\n",
        model.name
    )
}

fn added_tokens(tok: &SynthTokenizer) -> Vec<Value> {
    tok.special
        .iter()
        .map(|&id| {
            json!({"id": id, "content": tok.vocab[id as usize], "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect()
}

fn vocab_map(tok: &SynthTokenizer) -> Value {
    let m: Map<String, Value> = tok
        .vocab
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), json!(i)))
        .collect();
    Value::Object(m)
}

/// tokenizer.json in the `tokenizers` library's format.
pub fn tokenizer_json(tok: &SynthTokenizer, merges_as_pairs: bool) -> Value {
    let (model, pre, decoder, normalizer) = match tok.kind {
        TokenizerKind::ByteLevelBpe => {
            let merges: Vec<Value> = if merges_as_pairs {
                tok.merges
                    .iter()
                    .map(|m| json!(m.split_once(' ').map(|(a, b)| [a, b]).expect("merge")))
                    .collect()
            } else {
                tok.merges.iter().map(|m| json!(m)).collect()
            };
            let model = json!({"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": true,
                "vocab": vocab_map(tok), "merges": merges});
            let pre = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
            let dec = json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true});
            (model, pre, dec, Value::Null)
        }
        TokenizerKind::Unigram => {
            let vocab: Vec<Value> = tok
                .vocab
                .iter()
                .zip(&tok.scores)
                .map(|(s, p)| json!([s, p]))
                .collect();
            let model = json!({"type": "Unigram", "unk_id": tok.unk, "vocab": vocab, "byte_fallback": true});
            let pre = json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": false});
            let dec = json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": false});
            (model, pre, dec, Value::Null)
        }
        TokenizerKind::WordPiece => {
            let unk = tok
                .unk
                .map(|u| tok.vocab[u as usize].clone())
                .unwrap_or_else(|| "[UNK]".into());
            let model = json!({"type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
                "max_input_chars_per_word": 100, "vocab": vocab_map(tok)});
            let norm = json!({"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                "strip_accents": null, "lowercase": true});
            (
                model,
                json!({"type": "BertPreTokenizer"}),
                json!({"type": "WordPiece", "prefix": "##", "cleanup": true}),
                norm,
            )
        }
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(tok),
        "normalizer": normalizer,
        "pre_tokenizer": pre,
        "post_processor": null,
        "decoder": decoder,
        "model": model,
    })
}

pub fn tokenizer_config_json(tok: &SynthTokenizer) -> Value {
    let name = |id: Option<u32>| id.map_or(Value::Null, |i| json!(tok.vocab[i as usize]));
    let decoder: Map<String, Value> = tok
        .special
        .iter()
        .map(|&id| {
            (
                id.to_string(),
                json!({"content": tok.vocab[id as usize], "lstrip": false, "normalized": false,
                "rstrip": false, "single_word": false, "special": true}),
            )
        })
        .collect();
    let class = match tok.kind {
        TokenizerKind::WordPiece => "BertTokenizer",
        _ => "PreTrainedTokenizerFast",
    };
    json!({
        "added_tokens_decoder": decoder,
        "bos_token": name(tok.bos),
        "eos_token": name(tok.eos),
        "unk_token": name(tok.unk),
        "pad_token": name(tok.pad),
        "clean_up_tokenization_spaces": false,
        "model_max_length": 131072,
        "tokenizer_class": class,
    })
}
