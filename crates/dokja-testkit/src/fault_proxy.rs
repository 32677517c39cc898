//! A fault-injecting HTTP/1.1 proxy on loopback, in front of a real server: it passes
//! requests through unless a scripted fault says otherwise, to produce the failures a
//! healthy server does not (500s, 429 with `Retry-After`, hangs, broken JSON, cut
//! connections). One request per connection (`Connection: close` both ways), enough for
//! clients that pool connections, since they see the close.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest request head and body the proxy reads.
const MAX_HEAD: usize = 64 << 10;
const MAX_BODY: usize = 16 << 20;
/// No socket wait of the proxy lasts longer than this.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// What the proxy does with one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Forward to the upstream server and relay its answer.
    PassThrough,
    /// Answer with this status and a small JSON error body (and `Retry-After` if given).
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// Read the request and never answer (until the proxy is dropped).
    Hang,
    /// Answer 200 with a JSON content type and a truncated JSON body.
    MalformedJson,
    /// Forward, then relay only the first half of the real answer and close.
    CloseMidway,
    /// Send the headers and half the body of the real answer, then stall.
    StallBody,
}

impl Fault {
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            retry_after: None,
        }
    }

    pub fn too_many_requests(retry_after: &str) -> Fault {
        Fault::Status {
            status: 429,
            retry_after: Some(retry_after.to_string()),
        }
    }
}

/// A request the proxy received.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub fault: Fault,
    /// When its head and body had been read.
    pub received: Instant,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Fault>>,
    seen: Mutex<Vec<SeenRequest>>,
    upstream: Mutex<Option<SocketAddr>>,
    stopping: AtomicBool,
}

/// The proxy; stops (and releases hanging connections) on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free loopback port, forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        *lock(&shared.upstream) = Some(upstream);
        let acceptor_shared = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if acceptor_shared.stopping.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&acceptor_shared);
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        Ok(FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-compatible API root through the proxy, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.addr.port())
    }

    /// Queues faults for the next requests, in order; requests beyond them pass through.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.shared.script).extend(faults);
    }

    /// Faults queued and not yet used.
    pub fn pending(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// Every request received so far, in arrival order.
    pub fn seen(&self) -> Vec<SeenRequest> {
        lock(&self.shared.seen).clone()
    }

    pub fn clear_seen(&self) {
        lock(&self.shared.seen).clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        // Wake the acceptor blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct ParsedRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(stream: &mut TcpStream) -> io::Result<ParsedRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err(io::Error::other("request body too large"));
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(ParsedRequest {
        method,
        path,
        headers,
        body,
    })
}

/// Forwards the request upstream with `Connection: close` and returns the whole answer.
fn forward(request: &ParsedRequest, upstream: SocketAddr) -> io::Result<Vec<u8>> {
    let mut up = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    for (name, value) in &request.headers {
        if name != "connection" && name != "keep-alive" {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("connection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(&request.body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    Ok(answer)
}

fn hang(shared: &Shared) {
    let until = Instant::now() + IO_TIMEOUT;
    while !shared.stopping.load(Ordering::Acquire) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    if shared.stopping.load(Ordering::Acquire) {
        return Ok(());
    }
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let request = read_request(&mut stream)?;
    let fault = lock(&shared.script)
        .pop_front()
        .unwrap_or(Fault::PassThrough);
    lock(&shared.seen).push(SeenRequest {
        method: request.method.clone(),
        path: request.path.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
        fault: fault.clone(),
        received: Instant::now(),
    });
    let upstream = lock(&shared.upstream).expect("set at start");
    match fault {
        Fault::PassThrough => {
            // With the upstream down the client sees its connection dropped, as it would.
            if let Ok(answer) = forward(&request, upstream) {
                stream.write_all(&answer)?;
            }
        }
        Fault::Status {
            status,
            retry_after,
        } => {
            let body = format!(
                "{{\"error\":{{\"code\":{status},\"message\":\"injected by the fault proxy\"}}}}"
            );
            let mut head = format!(
                "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            if let Some(after) = retry_after {
                head.push_str(&format!("retry-after: {after}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes())?;
            stream.write_all(body.as_bytes())?;
        }
        Fault::Hang => hang(shared),
        Fault::MalformedJson => {
            let body = b"{\"choices\": [{\"text\": \"Par";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes())?;
            stream.write_all(body)?;
        }
        Fault::CloseMidway => {
            let answer = forward(&request, upstream)?;
            stream.write_all(&answer[..answer.len() / 2])?;
        }
        Fault::StallBody => {
            let answer = forward(&request, upstream)?;
            let head_end = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(answer.len(), |p| p + 4);
            let body_len = answer.len() - head_end;
            stream.write_all(&answer[..head_end + body_len / 2])?;
            stream.flush()?;
            hang(shared);
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}
