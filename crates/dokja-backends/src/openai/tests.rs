use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(350),
        max_retry_after: Duration::from_secs(5),
        jitter_seed: 7,
    }
}

#[test]
fn backoff_doubles_up_to_the_cap_with_half_of_it_jittered() {
    let p = policy();
    assert_eq!(p.backoff(1, 0), Duration::from_millis(50));
    assert_eq!(p.backoff(2, 0), Duration::from_millis(100));
    assert_eq!(p.backoff(3, 0), Duration::from_millis(175));
    assert_eq!(p.backoff(9, 0), Duration::from_millis(175));
    // The jitter adds at most the other half.
    assert_eq!(p.backoff(1, 50_000_000), Duration::from_millis(100));
    assert_eq!(p.backoff(1, 50_000_001), Duration::from_millis(50));
}

#[test]
fn jitter_sequence_is_reproducible_from_the_seed() {
    let config = |seed| OpenAiConfig {
        retry: RetryPolicy {
            jitter_seed: seed,
            ..policy()
        },
        ..OpenAiConfig::new("http://127.0.0.1:9/v1")
    };
    let draws = |seed| {
        let b = OpenAiBackend::new(config(seed)).unwrap();
        (0..4).map(|_| b.next_random()).collect::<Vec<_>>()
    };
    assert_eq!(draws(1), draws(1));
    assert_ne!(draws(1), draws(2));
}

proptest! {
    #[test]
    fn backoff_stays_within_half_and_whole_of_the_capped_delay(
        attempt in 0u32..100, random: u64, base_ms in 0u64..10_000, cap_ms in 0u64..100_000,
    ) {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(cap_ms),
            ..policy()
        };
        let d = p.backoff(attempt, random);
        prop_assert!(d <= p.max_delay);
        prop_assert!(d >= p.base_delay.min(p.max_delay) / 2);
    }

    #[test]
    fn retry_after_parsing_never_panics(s in "\\PC{0,40}") {
        let _ = parse_retry_after(&s, SystemTime::now());
    }

    #[test]
    fn echo_parsing_never_panics_and_counts_at_most_the_tokens(
        offsets in proptest::collection::vec(0u64..40, 0..12),
        logprobs in proptest::collection::vec(proptest::option::of(-20.0f64..0.0), 0..12),
        split in 0usize..30,
    ) {
        let full = "The capital of France is Paris";
        let context: String = full.chars().take(split).collect();
        let n = offsets.len().min(logprobs.len());
        let response = json!({"choices": [{
            "text": format!("{full}."),
            "logprobs": {
                "tokens": vec!["x"; n],
                "token_logprobs": logprobs[..n],
                "text_offset": offsets[..n],
            }
        }]});
        if let Ok(ll) = parse_echo_logprobs(&response, &context, full) {
            prop_assert!(ll.tokens <= n as u64);
        }
    }
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00
    assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
    assert_eq!(
        parse_retry_after(" 120 ", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("-1", now), None);
    assert_eq!(parse_retry_after("", now), None);
}

/// The shape vLLM returns for `echo: true, logprobs: 1, max_tokens: 1` (one generated "."
/// after the prompt), with made-up numbers.
fn vllm_echo() -> Value {
    json!({"choices": [{
        "index": 0,
        "text": "The capital of France is Paris.",
        "logprobs": {
            "tokens": ["The", " capital", " of", " France", " is", " Paris", "."],
            "token_logprobs": [null, -5.0, -1.0, -2.0, -0.5, -0.25, -0.75],
            "text_offset": [0, 3, 11, 14, 21, 24, 30],
            "top_logprobs": [null, {" capital": -5.0, " city": -1.0}, {" of": -1.0},
                             {" France": -2.0}, {" is": -0.5}, {" Paris": -0.25, " Lyon": -3.0},
                             {".": -0.75}]
        },
        "finish_reason": "length"
    }]})
}

#[test]
fn echo_logprobs_sum_the_continuation_tokens_only() {
    let full = "The capital of France is Paris";
    let ll = parse_echo_logprobs(&vllm_echo(), "The capital of France is", full).unwrap();
    assert_eq!(
        ll,
        LogLikelihood {
            logprob: -0.25,
            tokens: 1,
            is_greedy: Some(true)
        }
    );
    let ll = parse_echo_logprobs(&vllm_echo(), "The", full).unwrap();
    assert_eq!(ll.tokens, 5);
    assert!((ll.logprob - -8.75).abs() < 1e-12);
    // " capital" was not the most likely token.
    assert_eq!(ll.is_greedy, Some(false));
}

#[test]
fn a_token_straddling_the_boundary_belongs_to_the_continuation() {
    // Context "...France is " ends inside the token " Paris".
    let ll = parse_echo_logprobs(
        &vllm_echo(),
        "The capital of France is ",
        "The capital of France is Paris",
    )
    .unwrap();
    assert_eq!((ll.tokens, ll.logprob), (1, -0.25));
}

#[test]
fn offsets_count_characters_not_bytes() {
    let response = json!({"choices": [{
        "text": "Café au lait!",
        "logprobs": {
            "tokens": ["Café", " au", " lait", "!"],
            "token_logprobs": [null, -1.0, -2.0, -3.0],
            "text_offset": [0, 4, 7, 12],
        }
    }]});
    let ll = parse_echo_logprobs(&response, "Café au", "Café au lait").unwrap();
    assert_eq!((ll.tokens, ll.logprob, ll.is_greedy), (1, -2.0, None));
}

#[test]
fn llama_server_answers_are_recognized_as_not_echoed() {
    // What llama-server b11434 returns for the same request: echo ignored, one generated
    // token, logprobs in the chat format.
    let response = json!({"choices": [{"text": ".", "index": 0, "logprobs": {"content": [
        {"id": 30, "token": ".", "bytes": [46], "logprob": -0.39, "top_logprobs": []}
    ]}, "finish_reason": "length"}]});
    assert!(matches!(
        parse_echo_logprobs(
            &response,
            "The capital of France is",
            "The capital of France is Paris"
        ),
        Err(EchoError::NotEchoed(_))
    ));
    // Echoed text but no legacy lists is just as unusable.
    let response = json!({"choices": [{"text": "ab.", "logprobs": {"content": []}}]});
    assert!(matches!(
        parse_echo_logprobs(&response, "a", "ab"),
        Err(EchoError::NotEchoed(_))
    ));
}

#[test]
fn inconsistent_echo_answers_are_malformed() {
    let mut r = vllm_echo();
    r["choices"][0]["logprobs"]["text_offset"] = json!([0, 3, 11, 14, 21, 24]);
    assert!(matches!(
        parse_echo_logprobs(&r, "The", "The capital of France is Paris"),
        Err(EchoError::Malformed(_))
    ));
    let mut r = vllm_echo();
    r["choices"][0]["logprobs"]["text_offset"] = json!([0, 3, 11, 9, 21, 24, 30]);
    assert!(matches!(
        parse_echo_logprobs(&r, "The", "The capital of France is Paris"),
        Err(EchoError::Malformed(_))
    ));
    // The first token has no logprob: an empty context cannot be scored.
    assert!(matches!(
        parse_echo_logprobs(&vllm_echo(), "", "The capital of France is Paris"),
        Err(EchoError::Malformed(_))
    ));
}

#[test]
fn config_round_trips_and_holds_no_key() {
    let mut config = OpenAiConfig::new("http://127.0.0.1:8080/v1");
    config.api_key_env = Some("DOKJA_TEST_KEY_VARIABLE".into());
    let text = serde_json::to_string(&config).unwrap();
    assert!(text.contains("\"timeout\":600.0"), "{text}");
    assert_eq!(serde_json::from_str::<OpenAiConfig>(&text).unwrap(), config);
    let minimal: OpenAiConfig =
        serde_json::from_str(r#"{"base_url": "http://127.0.0.1:8080/v1"}"#).unwrap();
    assert_eq!(minimal, OpenAiConfig::new("http://127.0.0.1:8080/v1"));
    let partial: OpenAiConfig = serde_json::from_str(
        r#"{"base_url": "http://h/v1", "timeout": 2.5, "retry": {"max_attempts": 2}}"#,
    )
    .unwrap();
    assert_eq!(partial.timeout, Duration::from_millis(2500));
    assert_eq!(partial.retry.max_attempts, 2);
    assert_eq!(partial.retry.base_delay, RetryPolicy::default().base_delay);
    let typo = serde_json::from_str::<OpenAiConfig>(r#"{"base_url": "http://h/v1", "modle": "x"}"#);
    assert!(typo.unwrap_err().to_string().contains("modle"));
}

#[test]
fn a_named_but_unset_key_variable_is_an_error_and_keys_are_redacted() {
    let mut config = OpenAiConfig::new("http://127.0.0.1:8080/v1");
    config.api_key_env = Some("DOKJA_SURELY_UNSET_KEY_VARIABLE".into());
    let err = OpenAiBackend::new(config).unwrap_err();
    assert!(
        err.to_string().contains("DOKJA_SURELY_UNSET_KEY_VARIABLE"),
        "{err}"
    );
    // PATH is always set: use it as a stand-in key.
    let mut config = OpenAiConfig::new("http://127.0.0.1:8080/v1");
    config.api_key_env = Some("PATH".into());
    let backend = OpenAiBackend::new(config).unwrap();
    let shown = format!("{backend:?}");
    assert!(shown.contains("<redacted>"));
    assert!(!shown.contains(&std::env::var("PATH").unwrap()));
}

#[test]
fn bad_base_urls_are_rejected() {
    let err = OpenAiBackend::new(OpenAiConfig::new("127.0.0.1:8080/v1")).unwrap_err();
    assert!(matches!(err, BackendError::Permanent(_)), "{err}");
}

#[test]
fn backend_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<OpenAiBackend>();
}
