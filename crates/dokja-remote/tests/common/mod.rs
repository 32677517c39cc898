//! A fault-injecting proxy in front of the real nginx: it forwards each request and spoils
//! the answer as planned (a fake only for faults a real server does not produce).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Sends the head and half the body, then closes the connection.
    DropMidBody,
    /// 500 Internal Server Error with a chunked error page (as many servers send).
    Status500,
    /// Announces a Content-Length 7 bytes longer than the body.
    LieContentLength,
    /// Shifts the Content-Range by one byte.
    ShiftContentRange,
    /// Forwards without the Range header: nginx answers 200 with the whole file.
    IgnoreRange,
    /// Reads the request and answers nothing, holding the connection open.
    Hang,
    /// Sends 100 bytes more than the body announced.
    ExtraBody,
}

pub struct FaultProxy {
    port: u16,
    plan: Arc<Mutex<VecDeque<Fault>>>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Longest a hanging connection is held (the client must give up well before).
const HANG_LIMIT: Duration = Duration::from_secs(10);

impl FaultProxy {
    pub fn new(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let plan = Arc::new(Mutex::new(VecDeque::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, r, s) = (plan.clone(), requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let fault = p.lock().unwrap().pop_front().unwrap_or(Fault::Pass);
                        let (r, s) = (r.clone(), s.clone());
                        std::thread::spawn(move || handle(conn, upstream_port, fault, &r, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy {
            port,
            plan,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Faults for the next requests, in order; requests after them pass.
    pub fn plan(&self, faults: &[Fault]) {
        let mut plan = self.plan.lock().unwrap();
        plan.clear();
        plan.extend(faults);
    }

    /// The Range header of every request seen so far ("" when none).
    pub fn ranges(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_head(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 65536 || conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

fn handle(
    mut conn: TcpStream,
    upstream_port: u16,
    fault: Fault,
    requests: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let Some(head) = read_head(&mut conn) else {
        return;
    };
    let head = String::from_utf8_lossy(&head).into_owned();
    let range = head
        .lines()
        .find_map(|l| l.strip_prefix("Range: "))
        .unwrap_or("")
        .to_string();
    requests.lock().unwrap().push(range);
    match fault {
        Fault::Status500 => {
            let _ = conn.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\noops!\r\n0\r\n\r\n",
            );
            return;
        }
        Fault::Hang => {
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < HANG_LIMIT {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        _ => {}
    }
    let request = if fault == Fault::IgnoreRange {
        head.lines()
            .filter(|l| !l.starts_with("Range: "))
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
    } else {
        head
    };
    let mut upstream = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream_port)).unwrap();
    upstream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    upstream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = upstream.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("nginx sent a head")
        + 4;
    let (head, body) = response.split_at(split);
    let mut head = String::from_utf8_lossy(head).into_owned();
    let rewrite = |head: &str, name: &str, f: &dyn Fn(&str) -> String| -> String {
        head.lines()
            .map(|l| match l.strip_prefix(name) {
                Some(v) => format!("{name}{}\r\n", f(v)),
                None => format!("{l}\r\n"),
            })
            .collect()
    };
    let mut body = body.to_vec();
    match fault {
        Fault::LieContentLength => {
            head = rewrite(&head, "Content-Length: ", &|v| {
                (v.parse::<u64>().unwrap() + 7).to_string()
            });
        }
        Fault::ShiftContentRange => {
            head = rewrite(&head, "Content-Range: ", &|v| {
                let (range, size) = v.strip_prefix("bytes ").unwrap().split_once('/').unwrap();
                let (a, b) = range.split_once('-').unwrap();
                let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                format!("bytes {}-{}/{size}", a + 1, b + 1)
            });
        }
        Fault::DropMidBody => body.truncate(body.len() / 2),
        Fault::ExtraBody => body.extend_from_slice(&[0x5a; 100]),
        _ => {}
    }
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}
