//! The suites shipped with the project: task files compiled into the binary from
//! `crates/dokja-tasks/suites/`, so `dokja bench` works without a checkout.

use std::path::Path;

use crate::error::Result;
use crate::spec::TaskFile;

/// (file name, contents) of every shipped task file.
pub const SUITE_FILES: &[(&str, &str)] = &[
    ("click.toml", include_str!("../suites/click.toml")),
    ("kmmlu.toml", include_str!("../suites/kmmlu.toml")),
    ("haerae.toml", include_str!("../suites/haerae.toml")),
    (
        "kobest-boolq.toml",
        include_str!("../suites/kobest-boolq.toml"),
    ),
    (
        "kobest-copa.toml",
        include_str!("../suites/kobest-copa.toml"),
    ),
    ("kobest-wic.toml", include_str!("../suites/kobest-wic.toml")),
    (
        "kobest-hellaswag.toml",
        include_str!("../suites/kobest-hellaswag.toml"),
    ),
    (
        "kobest-sentineg.toml",
        include_str!("../suites/kobest-sentineg.toml"),
    ),
    ("hrm8k.toml", include_str!("../suites/hrm8k.toml")),
    ("kmmlu-pro.toml", include_str!("../suites/kmmlu-pro.toml")),
    ("mmlu.toml", include_str!("../suites/mmlu.toml")),
    ("mmlu-pro.toml", include_str!("../suites/mmlu-pro.toml")),
    ("gsm8k.toml", include_str!("../suites/gsm8k.toml")),
    ("ifeval.toml", include_str!("../suites/ifeval.toml")),
    ("ifeval-ko.toml", include_str!("../suites/ifeval-ko.toml")),
];

/// Parses every shipped task file.
pub fn shipped() -> Result<Vec<TaskFile>> {
    SUITE_FILES
        .iter()
        .map(|(name, text)| TaskFile::parse(text, &Path::new("suites").join(name)))
        .collect()
}

/// The shipped task file named `name` (file name without `.toml`, e.g. `kmmlu`).
pub fn shipped_file(name: &str) -> Option<Result<TaskFile>> {
    SUITE_FILES
        .iter()
        .find(|(f, _)| f.strip_suffix(".toml") == Some(name))
        .map(|(f, text)| TaskFile::parse(text, &Path::new("suites").join(f)))
}
