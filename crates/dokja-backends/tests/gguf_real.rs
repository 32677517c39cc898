//! The in-process GGUF backend on the real SmolLM2-135M-Instruct (Q4_1), checked against the
//! real llama.cpp server built from the pinned PyPI source (`scripts/build-llama-cpp.sh`).

#![cfg(feature = "in-process")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dokja_backends::Backend;
use dokja_backends::gguf::GgufBackend;
use dokja_tasks::{ChatMessage, GenerationSpec, Prompt, Role};
use serde_json::{Value, json};

const SMOLLM2: &str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

fn model() -> Option<GgufBackend> {
    let path = dokja_testkit::real_model(SMOLLM2)?;
    Some(GgufBackend::open(&path).expect("SmolLM2 opens in-process"))
}

fn completion(text: &str) -> Prompt {
    Prompt::Completion { text: text.into() }
}

/// A llama-server on a free loopback port, killed on drop. (A private copy: the shared
/// harness in dokja-testkit replaces it once both land.)
struct LlamaServer {
    child: Child,
    port: u16,
}

impl LlamaServer {
    fn binary() -> Option<PathBuf> {
        let dir = std::env::var_os("DOKJA_LLAMA_CPP")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".cache/dokja/llama.cpp-11434.0.0/bin"))
            })?;
        let bin = dir.join("llama-server");
        if bin.exists() {
            return Some(bin);
        }
        let required = std::env::var_os("DOKJA_REQUIRE_TEST_MODELS").is_some_and(|v| v == "1");
        assert!(
            !required,
            "required llama-server missing at {}: run scripts/build-llama-cpp.sh",
            bin.display()
        );
        eprintln!("skipped: llama-server not found at {}", bin.display());
        None
    }

    fn start(model: &std::path::Path) -> Option<LlamaServer> {
        let bin = Self::binary()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&bin)
            .args(["-m"])
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", "2048", "-t", "2", "-np", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("llama-server starts");
        let mut server = LlamaServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = server.child.try_wait().expect("child status") {
                panic!("llama-server exited early: {status}");
            }
            if let Ok((200, _)) = server.request("GET", "/health", None) {
                return Some(server);
            }
            assert!(
                Instant::now() < deadline,
                "llama-server not healthy in 120 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Value)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let payload = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(payload)
        } else {
            payload.to_string()
        };
        Ok((
            status,
            serde_json::from_str(&payload).unwrap_or(Value::Null),
        ))
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.request("POST", path, Some(&body)).expect("request");
        assert_eq!(status, 200, "{path}: {value}");
        value
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an array of token ids")
        .iter()
        .map(|t| t.as_u64().expect("a token id") as u32)
        .collect()
}

/// Strings that exercise the pre-tokenizer: Korean, digits, runs of spaces, newlines,
/// contractions, punctuation, emoji, and special tokens inside text.
const TOKENIZER_CASES: &[&str] = &[
    "Hello world",
    "The capital of France is",
    "대한민국의 수도는 서울입니다.",
    "한국어와 English 섞인 문장 123개",
    "In 2024, 3.14159 and 1,000,000 people.",
    "  leading and   multiple   spaces  ",
    "line one\nline two\n\n\tindented\r\nend",
    "I'm sure they'll say it's what we've done, don't you?",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more",
    "emoji 🙂🚀 and accents: café naïve Ελληνικά русский",
    "def f(x):\n    return x ** 2  # square",
    "",
    " ",
    "!!!???...",
];

#[test]
fn tokenizer_and_greedy_decoding_agree_with_llama_server() {
    let Some(path) = dokja_testkit::real_model(SMOLLM2) else {
        return;
    };
    let backend = GgufBackend::open(&path).unwrap();
    let Some(server) = LlamaServer::start(&path) else {
        return;
    };

    for text in TOKENIZER_CASES {
        let ours = backend.tokenizer().encode(text).unwrap();
        let theirs = ids(&server.post("/tokenize", json!({"content": text}))["tokens"]);
        assert_eq!(ours, theirs, "token ids differ for {text:?}");
        assert_eq!(
            backend.tokenizer().decode(&ours, true),
            *text,
            "round trip of {text:?}"
        );
        // With BOS as the model asks (SmolLM2: add_bos_token=false).
        let theirs_special =
            ids(&server.post("/tokenize", json!({"content": text, "add_special": true}))["tokens"]);
        assert_eq!(backend.tokenize(text).unwrap(), theirs_special, "{text:?}");
    }

    // Chat prompts are rendered as llama-server renders them with the model's template.
    for messages in [
        vec![ChatMessage {
            role: Role::User,
            content: "Name three colors.".into(),
        }],
        vec![
            ChatMessage {
                role: Role::System,
                content: "Answer in Korean.".into(),
            },
            ChatMessage {
                role: Role::User,
                content: "2+2?".into(),
            },
            ChatMessage {
                role: Role::Assistant,
                content: "4".into(),
            },
            ChatMessage {
                role: Role::User,
                content: "3+3?".into(),
            },
        ],
    ] {
        let theirs = server.post("/apply-template", json!({ "messages": messages }));
        let ours = backend.render(&Prompt::Chat { messages }).unwrap();
        assert_eq!(theirs["prompt"].as_str(), Some(ours.as_str()));
    }

    // Greedy continuation of the same prompt ids: compare the first 24 tokens.
    const N: usize = 24;
    for prompt in [
        "The capital of France is",
        "<|im_start|>user\nName three colors.<|im_end|>\n<|im_start|>assistant\n",
    ] {
        let prompt_ids = backend.tokenize(prompt).unwrap();
        let (ours, _, _) = backend.generate_ids(&prompt_ids, N, 0.0, &[]).unwrap();
        let response = server.post(
            "/completion",
            json!({
                "prompt": prompt_ids,
                "n_predict": N,
                "temperature": 0.0,
                "top_k": 1,
                "return_tokens": true,
                "cache_prompt": false,
            }),
        );
        let theirs = ids(&response["tokens"]);
        let agree = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
        eprintln!(
            "greedy agreement on {prompt:?}: {agree} of {} tokens\n  ours:   {:?}\n  theirs: {:?}",
            ours.len().min(theirs.len()),
            backend.tokenizer().decode(&ours, true),
            response["content"]
        );
        assert!(
            agree >= 8.min(ours.len().min(theirs.len())),
            "greedy outputs diverge after {agree} tokens"
        );
    }
}

#[test]
fn greedy_generation_finds_paris() {
    let Some(backend) = model() else { return };
    let spec = GenerationSpec {
        max_tokens: 4,
        temperature: 0.0,
        stop: vec![],
    };
    let g = backend
        .generate(&completion("The capital of France is"), &spec)
        .unwrap();
    assert!(g.text.starts_with(" Paris"), "{:?}", g.text);
    assert_eq!(g.completion_tokens, Some(4));
    assert_eq!(g.finish_reason.as_deref(), Some("length"));
    assert_eq!(g.prompt_tokens, Some(5));

    // Stop strings cut the text where they first occur; chat prompts go through the
    // model's ChatML template.
    let chat = Prompt::Chat {
        messages: vec![ChatMessage {
            role: Role::User,
            content: "Name three colors.".into(),
        }],
    };
    let free = GenerationSpec {
        max_tokens: 16,
        temperature: 0.0,
        stop: vec![],
    };
    let full = backend.generate(&chat, &free).unwrap().text;
    let mut cut = full.len() / 2;
    while !full.is_char_boundary(cut) {
        cut += 1;
    }
    let stop: String = full[cut..].chars().take(3).collect();
    assert!(!stop.is_empty(), "{full:?}");
    let spec = GenerationSpec {
        stop: vec![stop.clone()],
        ..free
    };
    let g = backend.generate(&chat, &spec).unwrap();
    assert_eq!(g.finish_reason.as_deref(), Some("stop"), "{:?}", g.text);
    assert_eq!(
        g.text,
        full[..full.find(&stop).unwrap()],
        "stop {stop:?} in {full:?}"
    );
}

#[test]
fn seeded_sampling_is_reproducible() {
    let Some(backend) = model() else { return };
    let spec = GenerationSpec {
        max_tokens: 12,
        temperature: 1.0,
        stop: vec![],
    };
    let prompt = completion("Once upon a time");
    let a = backend.generate(&prompt, &spec).unwrap();
    let b = backend.generate(&prompt, &spec).unwrap();
    assert_eq!(a.raw["tokens"], b.raw["tokens"]);
}

#[test]
fn loglikelihoods_rank_the_right_answer_first() {
    let Some(backend) = model() else { return };
    let prompt = completion("Question: What is the capital of France?\nAnswer:");
    let choices: Vec<String> = [" Paris", " Banana", " Seventeen"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let scores = backend.loglikelihoods(&prompt, &choices).unwrap().unwrap();
    assert_eq!(scores.len(), 3);
    for s in &scores {
        assert!(s.logprob.is_finite() && s.logprob < 0.0, "{s:?}");
        assert!(s.tokens >= 1);
    }
    assert!(
        scores[0].logprob > scores[1].logprob && scores[0].logprob > scores[2].logprob,
        "{scores:?}"
    );

    // The greedy continuation is greedy, and its log-likelihood is what generation saw.
    let spec = GenerationSpec {
        max_tokens: 3,
        temperature: 0.0,
        stop: vec![],
    };
    let greedy = backend
        .generate(&completion("The capital of France is"), &spec)
        .unwrap();
    let scored = backend
        .loglikelihoods(
            &completion("The capital of France is"),
            std::slice::from_ref(&greedy.text),
        )
        .unwrap()
        .unwrap();
    assert_eq!(scored[0].is_greedy, Some(true), "{greedy:?} {scored:?}");
    assert_eq!(scored[0].tokens, 3);
    let unlikely = backend
        .loglikelihoods(&completion("The capital of France is"), &[" purple".into()])
        .unwrap()
        .unwrap();
    assert_eq!(unlikely[0].is_greedy, Some(false));
    assert!(unlikely[0].logprob < scored[0].logprob);

    // Chat prompts score the continuation as the start of the assistant's reply.
    let chat = Prompt::Chat {
        messages: vec![ChatMessage {
            role: Role::User,
            content: "What is the capital of France?".into(),
        }],
    };
    let chat_scores = backend
        .loglikelihoods(
            &chat,
            &[
                "The capital of France is Paris.".into(),
                "Banana banana.".into(),
            ],
        )
        .unwrap()
        .unwrap();
    assert!(
        chat_scores[0].logprob > chat_scores[1].logprob,
        "{chat_scores:?}"
    );
}

#[test]
fn identity_names_the_file_and_its_digest() {
    let Some(backend) = model() else { return };
    let id = backend.identity().unwrap();
    assert_eq!(id.backend, "in-process");
    assert_eq!(id.model, "SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(id.details["architecture"], "llama");
    let digest = id.details["blake3"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    let params = id.details["parameters"].as_u64().unwrap();
    assert!((130_000_000..140_000_000).contains(&params), "{params}");
}

#[test]
fn bad_files_are_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("dokja-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("not-a-model.gguf");
    std::fs::write(&path, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    let err = GgufBackend::open(&path).err().expect("garbage is refused");
    assert!(err.to_string().contains("not-a-model.gguf"), "{err}");
    let missing = GgufBackend::open(&dir.join("missing.gguf")).err().unwrap();
    assert!(missing.to_string().contains("missing.gguf"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
