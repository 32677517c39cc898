//! The OpenAI-compatible backend against a real llama.cpp `llama-server` serving
//! SmolLM2-135M-Instruct on loopback, directly and through the testkit's fault-injecting
//! proxy (for the failures a healthy server does not produce).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dokja_backends::openai::{LogprobSupport, OpenAiBackend, OpenAiConfig, RetryPolicy};
use dokja_backends::{Backend, BackendError};
use dokja_tasks::{ChatMessage, GenerationSpec, Prompt, Role};
use dokja_testkit::{Fault, FaultProxy, LlamaServer};

/// One server for the tests that do not kill theirs; the testkit's watchdog stops it when
/// the test process ends.
fn shared_server() -> Option<&'static LlamaServer> {
    static SERVER: OnceLock<Option<LlamaServer>> = OnceLock::new();
    SERVER.get_or_init(|| LlamaServer::smollm2(&[])).as_ref()
}

fn config(base_url: String) -> OpenAiConfig {
    OpenAiConfig {
        // Generous: the machine running the tests may be busy; the hang tests set their own.
        timeout: Duration::from_secs(120),
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(10),
            jitter_seed: 1,
        },
        ..OpenAiConfig::new(base_url)
    }
}

fn greedy(max_tokens: u32) -> GenerationSpec {
    GenerationSpec {
        max_tokens,
        temperature: 0.0,
        stop: Vec::new(),
    }
}

fn completion(text: &str) -> Prompt {
    Prompt::Completion { text: text.into() }
}

const FRANCE: &str = "The capital of France is";

fn proxied() -> Option<(FaultProxy, &'static LlamaServer)> {
    let server = shared_server()?;
    Some((FaultProxy::start(server.addr()).unwrap(), server))
}

#[test]
fn greedy_chat_names_paris() {
    let Some(server) = shared_server() else {
        return;
    };
    let backend = OpenAiBackend::new(config(server.base_url())).unwrap();
    let prompt = Prompt::Chat {
        messages: vec![
            // Without a system message SmolLM2's template adds its own, and greedy decoding
            // then answers with French landmarks instead of the city.
            ChatMessage {
                role: Role::System,
                content: "You are a helpful assistant.".into(),
            },
            ChatMessage {
                role: Role::User,
                content: "What is the capital of France?".into(),
            },
        ],
    };
    let reply = backend.generate(&prompt, &greedy(24)).unwrap();
    assert!(reply.text.contains("Paris"), "{reply:?}");
    assert_eq!(reply.raw["object"], "chat.completion");
    assert!(reply.prompt_tokens.unwrap() > 0);
    assert!(reply.completion_tokens.unwrap() <= 24);
}

#[test]
fn greedy_completion_names_paris_and_sends_the_spec() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let backend = OpenAiBackend::new(config(proxy.base_url())).unwrap();
    let spec = GenerationSpec {
        max_tokens: 4,
        temperature: 0.0,
        stop: vec!["\n".into()],
    };
    let reply = backend.generate(&completion(FRANCE), &spec).unwrap();
    assert!(reply.text.contains("Paris"), "{reply:?}");
    assert!(!reply.text.contains('\n'), "{reply:?}");
    let seen = proxy.seen();
    // The model's name was asked once, then the completion.
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(seen[1].path, "/v1/completions");
    let body = seen[1].json().unwrap();
    assert_eq!(body["model"], "smollm2");
    assert_eq!(body["max_tokens"], 4);
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["stop"], serde_json::json!(["\n"]));
    assert_eq!(body["seed"], 0);
}

#[test]
fn identity_names_the_model_and_the_server() {
    let Some(server) = shared_server() else {
        return;
    };
    let backend = OpenAiBackend::new(config(server.base_url())).unwrap();
    let id = backend.identity().unwrap();
    assert_eq!(id.backend, "openai-compatible");
    assert_eq!(id.model, "smollm2");
    assert_eq!(id.details["base_url"], server.base_url());
    assert_eq!(id.details["models_entry"]["id"], "smollm2");
    let props = &id.details["server_props"];
    assert!(
        props["model_path"]
            .as_str()
            .unwrap()
            .ends_with("SmolLM2-135M-Instruct.Q4_1.gguf"),
        "{props}"
    );
    assert!(props["n_ctx"].as_u64().unwrap() > 0, "{props}");
    assert!(
        props["build_info"].as_str().unwrap().starts_with('b'),
        "{props}"
    );
    assert_eq!(backend.model().unwrap(), "smollm2");
}

/// llama-server (b11434) ignores `echo` on /v1/completions: it answers with the generated
/// token only, its logprobs in the chat format. The backend says so and stops asking.
#[test]
fn llama_server_has_no_prompt_logprobs_and_is_asked_once() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let backend = OpenAiBackend::new(config(proxy.base_url())).unwrap();
    let continuations = vec![" Paris".to_string(), " Lyon".to_string()];
    assert_eq!(backend.logprob_support(), LogprobSupport::Unknown);
    let scored = backend
        .loglikelihoods(&completion(FRANCE), &continuations)
        .unwrap();
    assert_eq!(scored, None);
    let LogprobSupport::Unsupported { reason } = backend.logprob_support() else {
        panic!("{:?}", backend.logprob_support());
    };
    assert!(reason.contains("echo"), "{reason}");
    let asked = proxy.seen().len();
    let echo = proxy.seen().pop().unwrap().json().unwrap();
    assert_eq!(echo["echo"], true);
    assert_eq!(echo["prompt"], "The capital of France is Paris");
    let again = backend
        .loglikelihoods(&completion(FRANCE), &continuations)
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(proxy.seen().len(), asked, "the answer is remembered");
    // Chat prompts are not scored at all.
    let chat = Prompt::Chat {
        messages: vec![ChatMessage {
            role: Role::User,
            content: "Hi".into(),
        }],
    };
    assert_eq!(backend.loglikelihoods(&chat, &continuations).unwrap(), None);
}

#[test]
fn server_errors_are_retried_until_success() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let backend = OpenAiBackend::new(config(proxy.base_url())).unwrap();
    backend.model().unwrap();
    proxy.clear_seen();
    proxy.script([Fault::status(500), Fault::status(503), Fault::CloseMidway]);
    let reply = backend.generate(&completion(FRANCE), &greedy(2)).unwrap();
    assert!(reply.text.contains("Paris"), "{reply:?}");
    let faults: Vec<Fault> = proxy.seen().into_iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [
            Fault::status(500),
            Fault::status(503),
            Fault::CloseMidway,
            Fault::PassThrough
        ]
    );
}

#[test]
fn retry_after_is_honoured() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let backend = OpenAiBackend::new(config(proxy.base_url())).unwrap();
    backend.model().unwrap();
    proxy.clear_seen();
    proxy.script([Fault::too_many_requests("1")]);
    let started = Instant::now();
    backend.generate(&completion(FRANCE), &greedy(2)).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].received - seen[0].received;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
}

#[test]
fn a_retry_after_beyond_the_policy_is_left_to_the_runner() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let backend = OpenAiBackend::new(config(proxy.base_url())).unwrap();
    backend.model().unwrap();
    proxy.clear_seen();
    proxy.script([Fault::too_many_requests("3600")]);
    let err = backend
        .generate(&completion(FRANCE), &greedy(2))
        .unwrap_err();
    let BackendError::Transient {
        message,
        retry_after,
    } = err
    else {
        panic!("{err:?}");
    };
    assert_eq!(retry_after, Some(Duration::from_secs(3600)));
    assert!(message.contains("429"), "{message}");
    assert_eq!(proxy.seen().len(), 1);
}

#[test]
fn exhausted_retries_are_transient_and_name_the_url() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let backend = OpenAiBackend::new(config(proxy.base_url())).unwrap();
    backend.model().unwrap();
    proxy.script(std::iter::repeat_n(Fault::status(502), 4));
    let err = backend
        .generate(&completion(FRANCE), &greedy(2))
        .unwrap_err();
    let BackendError::Transient { message, .. } = &err else {
        panic!("{err:?}");
    };
    let url = format!("{}/completions", proxy.base_url());
    assert!(message.contains(&url), "{message}");
    assert!(
        message.contains("502") && message.contains("4 attempts"),
        "{message}"
    );
    assert_eq!(proxy.pending(), 0);
}

#[test]
fn a_hanging_server_times_out_as_transient() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let mut cfg = config(proxy.base_url());
    cfg.model = Some("smollm2".into());
    cfg.timeout = Duration::from_secs(1);
    cfg.retry.max_attempts = 1;
    let backend = OpenAiBackend::new(cfg).unwrap();
    for fault in [Fault::Hang, Fault::StallBody] {
        proxy.script([fault.clone()]);
        let started = Instant::now();
        let err = backend
            .generate(&completion(FRANCE), &greedy(2))
            .unwrap_err();
        let elapsed = started.elapsed();
        let BackendError::Transient { message, .. } = &err else {
            panic!("{fault:?}: {err:?}");
        };
        assert!(message.contains("timed out"), "{fault:?}: {message}");
        // Bounded by the timeout, not by the proxy's hang (60 s); slack for a busy machine.
        assert!(elapsed < Duration::from_secs(20), "{fault:?}: {elapsed:?}");
    }
}

#[test]
fn a_hang_then_success_is_retried() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let mut cfg = config(proxy.base_url());
    cfg.model = Some("smollm2".into());
    cfg.timeout = Duration::from_secs(30);
    let backend = OpenAiBackend::new(cfg.clone()).unwrap();
    // The first answer is a real one, so the timeout that follows is known to be generous.
    backend.generate(&completion(FRANCE), &greedy(2)).unwrap();
    let mut short = cfg;
    short.timeout = Duration::from_secs(2);
    let backend = OpenAiBackend::new(short).unwrap();
    proxy.script([Fault::Hang]);
    let reply = backend.generate(&completion(FRANCE), &greedy(2));
    // On a machine too busy to answer 2 tokens in 2 s this is Transient too; both are true
    // outcomes of a retry, and the fault order is what is checked.
    if let Err(e) = &reply {
        assert!(matches!(e, BackendError::Transient { .. }), "{e:?}");
    }
    let faults: Vec<Fault> = proxy.seen().into_iter().map(|r| r.fault).collect();
    assert_eq!(
        faults[..3],
        [Fault::PassThrough, Fault::Hang, Fault::PassThrough]
    );
}

#[test]
fn malformed_json_and_client_errors_are_permanent_and_not_retried() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let mut cfg = config(proxy.base_url());
    cfg.model = Some("smollm2".into());
    let backend = OpenAiBackend::new(cfg).unwrap();
    for fault in [Fault::MalformedJson, Fault::status(400), Fault::status(404)] {
        proxy.clear_seen();
        proxy.script([fault.clone()]);
        let err = backend
            .generate(&completion(FRANCE), &greedy(2))
            .unwrap_err();
        let BackendError::Permanent(message) = &err else {
            panic!("{fault:?}: {err:?}");
        };
        assert!(message.contains("/v1/completions"), "{message}");
        if fault == Fault::MalformedJson {
            assert!(message.contains("not valid JSON"), "{message}");
        }
        assert_eq!(proxy.seen().len(), 1, "{fault:?} was retried");
    }
}

#[test]
fn the_api_key_is_sent_as_a_bearer_token() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let mut cfg = config(proxy.base_url());
    // Cargo sets CARGO_PKG_NAME for the tests it runs: a variable known to be set.
    cfg.api_key_env = Some("CARGO_PKG_NAME".into());
    let backend = OpenAiBackend::new(cfg.clone()).unwrap();
    backend.model().unwrap();
    let key = std::env::var("CARGO_PKG_NAME").unwrap();
    let auth = proxy.seen()[0].header("authorization").map(str::to_string);
    assert_eq!(auth, Some(format!("Bearer {key}")));
    assert!(!serde_json::to_string(&cfg).unwrap().contains(&key));
}

#[test]
fn a_killed_server_fails_transient_until_restarted() {
    let Some(mut server) = LlamaServer::smollm2(&[]) else {
        return;
    };
    let mut cfg = config(server.base_url());
    // Enough attempts to get past a pooled connection to the killed server.
    cfg.retry.max_attempts = 3;
    let backend = OpenAiBackend::new(cfg).unwrap();
    backend.generate(&completion(FRANCE), &greedy(2)).unwrap();
    server.kill();
    for _ in 0..2 {
        let err = backend
            .generate(&completion(FRANCE), &greedy(2))
            .unwrap_err();
        assert!(matches!(err, BackendError::Transient { .. }), "{err:?}");
    }
    server.restart().unwrap();
    let reply = backend.generate(&completion(FRANCE), &greedy(2)).unwrap();
    assert!(reply.text.contains("Paris"), "{reply:?}");
}

#[test]
fn concurrent_requests_all_succeed() {
    let Some(server) = shared_server() else {
        return;
    };
    let backend = Arc::new(OpenAiBackend::new(config(server.base_url())).unwrap());
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let backend = Arc::clone(&backend);
            std::thread::spawn(move || {
                (0..4)
                    .map(|i| {
                        let prompt = completion(&format!("Count: {t}, {i},"));
                        backend
                            .generate(&prompt, &greedy(2))
                            .map(|g| g.completion_tokens)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for worker in workers {
        for result in worker.join().unwrap() {
            let tokens = result.unwrap();
            assert!(tokens.is_some_and(|n| (1..=2).contains(&n)), "{tokens:?}");
        }
    }
}

#[test]
fn an_answer_over_the_size_limit_is_permanent() {
    let Some((proxy, _server)) = proxied() else {
        return;
    };
    let mut cfg = config(proxy.base_url());
    cfg.model = Some("smollm2".into());
    // A real completion's JSON is several hundred bytes.
    cfg.max_response_bytes = 64;
    let backend = OpenAiBackend::new(cfg).unwrap();
    let err = backend
        .generate(&completion(FRANCE), &greedy(2))
        .unwrap_err();
    let BackendError::Permanent(message) = &err else {
        panic!("{err:?}");
    };
    assert!(message.contains("exceeds 64 bytes"), "{message}");
    assert_eq!(proxy.seen().len(), 1);
}
