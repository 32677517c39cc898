//! The programme's policy axis: open source a team uses must carry no licence restriction.
//! Only licences known to impose nothing beyond attribution are permissive; everything else,
//! including custom model licences (Gemma terms, Llama community licences, Qwen, EXAONE),
//! non-commercial and share-alike terms, and an unknown or missing licence, is restrictive.
//! Being wrong towards "restrictive" sends a case to a human; the other way would hide it.

use serde::{Deserialize, Serialize};

/// Identifiers (lower case, SPDX spelling) treated as permissive.
pub const PERMISSIVE: &[&str] = &[
    "apache-2.0",
    "mit",
    "mit-0",
    "bsd-2-clause",
    "bsd-3-clause",
    "bsd-3-clause-clear",
    "0bsd",
    "isc",
    "zlib",
    "bsl-1.0",
    "unlicense",
    "cc0-1.0",
    "cc-by-3.0",
    "cc-by-4.0",
    "cdla-permissive-2.0",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceClass {
    Permissive,
    Restrictive,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceAssessment {
    /// The identifier as given (None: no licence recorded).
    pub licence: Option<String>,
    pub class: LicenceClass,
    pub why: String,
}

/// Lower case, trimmed, inner spaces as hyphens: "Apache 2.0" and "apache-2.0" agree.
fn normalize(id: &str) -> String {
    id.trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
}

pub fn assess(licence: Option<&str>) -> LicenceAssessment {
    let Some(given) = licence.filter(|l| !l.trim().is_empty()) else {
        return LicenceAssessment {
            licence: None,
            class: LicenceClass::Restrictive,
            why: "no licence recorded: treated as restrictive".into(),
        };
    };
    let id = normalize(given);
    if PERMISSIVE.contains(&id.as_str()) {
        LicenceAssessment {
            licence: Some(given.to_string()),
            class: LicenceClass::Permissive,
            why: format!("{id} is on the permissive list"),
        }
    } else {
        LicenceAssessment {
            licence: Some(given.to_string()),
            class: LicenceClass::Restrictive,
            why: format!(
                "{id} is not on the permissive list (custom, non-commercial, share-alike or unknown terms)"
            ),
        }
    }
}

/// The rule as stated in every report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicencePolicy {
    pub permissive: Vec<String>,
    pub rule: String,
}

pub fn policy() -> LicencePolicy {
    LicencePolicy {
        permissive: PERMISSIVE.iter().map(|s| s.to_string()).collect(),
        rule: "A reused (identical or derived) component fails the policy axis when any registry \
               model it was reused from carries a licence not on the permissive list; custom model \
               licences (Gemma, Llama community, Qwen, EXAONE...), non-commercial or share-alike \
               terms and unknown or missing licences count as restrictive."
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(assess(Some("Apache 2.0")).class, LicenceClass::Permissive);
        assert_eq!(assess(Some("Apache-2.0")).class, LicenceClass::Permissive);
        assert_eq!(assess(Some(" MIT ")).class, LicenceClass::Permissive);
        assert_eq!(assess(Some("cc by 4.0")).class, LicenceClass::Permissive);
        for restrictive in [
            "gemma",
            "llama3.1",
            "cc-by-nc-4.0",
            "qwen",
            "other",
            "gpl-3.0",
        ] {
            assert_eq!(
                assess(Some(restrictive)).class,
                LicenceClass::Restrictive,
                "{restrictive}"
            );
        }
        assert_eq!(assess(None).class, LicenceClass::Restrictive);
        assert_eq!(assess(Some("  ")).class, LicenceClass::Restrictive);
    }
}
