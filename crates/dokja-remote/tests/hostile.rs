//! Hostile servers: whatever bytes answer a request, the client returns an error or exactly
//! the bytes asked for; never a panic, a hang or an allocation sized by the response.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dokja_formats::source::ByteSource;
use dokja_remote::url::Url;
use dokja_remote::{Client, RemoteConfig, RemoteFile};
use proptest::prelude::*;

/// Serves `responses` in turn, one connection each, until they run out or `done` is set.
fn serve(responses: Vec<Answer>, done: Arc<AtomicBool>) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        for response in responses {
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            let mut conn = loop {
                match listener.accept() {
                    Ok((c, _)) => break c,
                    Err(_)
                        if std::time::Instant::now() < deadline
                            && !done.load(Ordering::Relaxed) =>
                    {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(_) => return,
                }
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut b).is_ok_and(|n| n == 1) {
                head.push(b[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let _ = conn.write_all(&response.render(&head));
        }
    });
    (port, handle)
}

fn config() -> RemoteConfig {
    RemoteConfig {
        block_size: 64,
        read_timeout: Duration::from_millis(300),
        retry_delay: Duration::from_millis(1),
        max_retry_delay: Duration::from_millis(1),
        max_attempts: 1,
        max_total_attempts: 2,
        max_bytes: Some(1 << 20),
        ..RemoteConfig::default()
    }
}

/// The content of the served file at `i`.
fn content(i: u64) -> u8 {
    (i % 251) as u8
}

/// How the server answers one request.
#[derive(Clone, Debug)]
enum Answer {
    /// These bytes, whatever was asked.
    Raw(Vec<u8>),
    /// An honest 206 for a file of `size` bytes, then spoiled by `fault`.
    Honest { size: u64, fault: Spoil },
}

#[derive(Clone, Debug)]
enum Spoil {
    None,
    CutBody(usize),
    ShiftRange(u64),
    LengthDelta(u64),
    ExtraBody(Vec<u8>),
    WholeFile,
    FlipByteAt(usize),
}

impl Answer {
    fn render(&self, request: &str) -> Vec<u8> {
        let (size, fault) = match self {
            Answer::Raw(bytes) => return bytes.clone(),
            Answer::Honest { size, fault } => (*size, fault),
        };
        let range = request
            .lines()
            .find_map(|l| l.strip_prefix("Range: bytes="))
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
        let Some((a, b)) = range else {
            return b"HTTP/1.1 400 Bad\r\n\r\n".to_vec();
        };
        if a >= size {
            return format!("HTTP/1.1 416 X\r\nContent-Range: bytes */{size}\r\n\r\n").into_bytes();
        }
        let b = b.min(size - 1);
        let mut body: Vec<u8> = (a..=b).map(content).collect();
        let (mut ra, mut rb, mut len) = (a, b, body.len() as u64);
        let mut status = 206;
        match fault {
            Spoil::None => {}
            Spoil::CutBody(n) => body.truncate(*n),
            Spoil::ShiftRange(d) => {
                ra = ra.wrapping_add(*d);
                rb = rb.wrapping_add(*d);
            }
            Spoil::LengthDelta(d) => len = len.wrapping_add(*d),
            Spoil::ExtraBody(extra) => body.extend(extra),
            Spoil::WholeFile => {
                status = 200;
                body = (0..size).map(content).collect();
                len = size;
            }
            Spoil::FlipByteAt(i) => {
                // Wrong bytes with right lengths cannot be detected by HTTP: the client
                // must still return exactly the number of bytes asked.
                if let Some(x) = body.get_mut(*i) {
                    *x ^= 0xff;
                }
            }
        }
        let mut r = format!(
            "HTTP/1.1 {status} X\r\nContent-Range: bytes {ra}-{rb}/{size}\r\nContent-Length: {len}\r\n\r\n"
        )
        .into_bytes();
        r.extend(body);
        r
    }

    fn flips(&self) -> bool {
        matches!(
            self,
            Answer::Honest {
                fault: Spoil::FlipByteAt(_),
                ..
            } | Answer::Raw(_)
        )
    }
}

fn honest() -> impl Strategy<Value = Answer> {
    let spoil = prop_oneof![
        4 => Just(Spoil::None),
        1 => (0usize..100).prop_map(Spoil::CutBody),
        1 => prop_oneof![Just(1u64), Just(u64::MAX), any::<u64>()].prop_map(Spoil::ShiftRange),
        1 => prop_oneof![Just(1u64), Just(u64::MAX), any::<u64>()].prop_map(Spoil::LengthDelta),
        1 => proptest::collection::vec(any::<u8>(), 1..50).prop_map(Spoil::ExtraBody),
        1 => Just(Spoil::WholeFile),
        1 => (0usize..64).prop_map(Spoil::FlipByteAt),
    ];
    (1u64..400, spoil).prop_map(|(size, fault)| Answer::Honest { size, fault })
}

/// A plausible-looking response with hostile numbers.
fn response() -> impl Strategy<Value = Vec<u8>> {
    let status = prop_oneof![
        Just(200u16),
        Just(206),
        Just(416),
        Just(404),
        Just(500),
        100u16..600
    ];
    let num = prop_oneof![0u64..200, Just(u64::MAX), any::<u64>()];
    (
        status,
        num.clone(),
        num.clone(),
        num.clone(),
        proptest::option::of(num),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    )
        .prop_map(|(status, a, b, size, len, body, chunked)| {
            let mut r = format!("HTTP/1.1 {status} X\r\nContent-Range: bytes {a}-{b}/{size}\r\n");
            if let Some(len) = len {
                r.push_str(&format!("Content-Length: {len}\r\n"));
            }
            if chunked {
                r.push_str("Transfer-Encoding: chunked\r\n");
            }
            r.push_str("\r\n");
            let mut r = r.into_bytes();
            r.extend(body);
            r
        })
}

fn any_answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => honest(),
        1 => response().prop_map(Answer::Raw),
        1 => proptest::collection::vec(any::<u8>(), 0..400).prop_map(Answer::Raw),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn hostile_responses_never_panic(answers in proptest::collection::vec(any_answer(), 4)) {
        // Sizes must agree between answers for a read to succeed; a server that changes its
        // mind is refused (SizeChanged).
        let trusted = !answers.iter().any(Answer::flips);
        let done = Arc::new(AtomicBool::new(false));
        let (port, server) = serve(answers, done.clone());
        let client = Arc::new(Client::new(config()));
        let url = Url::parse(&format!("http://127.0.0.1:{port}/m.bin")).unwrap();
        if let Ok(Some(file)) = RemoteFile::open(&client, &url) {
            let size = file.size();
            for (offset, len) in [(0u64, 10usize), (size / 3, (size - size / 3).min(70) as usize)] {
                if let Ok(bytes) = file.read_at(offset, len) {
                    prop_assert_eq!(bytes.len(), len);
                    if trusted {
                        let expected: Vec<u8> = (offset..offset + len as u64).map(content).collect();
                        prop_assert_eq!(&bytes[..], &expected[..]);
                    }
                }
            }
        }
        prop_assert!(client.stats().bytes_fetched <= 1 << 20);
        done.store(true, Ordering::Relaxed);
        server.join().unwrap();
    }

    #[test]
    fn urls_never_panic(s in "\\PC{0,40}", host in "[a-z0-9.:\\[\\]]{0,20}") {
        let _ = Url::parse(&s);
        if let Ok(u) = Url::parse(&format!("http://{host}/{s}")) {
            let _ = (u.folder(), u.file_name(), u.join("a b"), u.resolve(&s), u.to_string());
        }
    }
}
