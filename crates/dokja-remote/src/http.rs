//! One HTTP/1.1 GET with a Range header over a fresh connection (`Connection: close`), plain
//! TCP or TLS (rustls, ring, Mozilla's roots). Deliberately small: status line, headers and a
//! Content-Length or Content-Range delimited body; chunked transfer and compression are
//! refused (range responses do not use them, and `Accept-Encoding: identity` is sent).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::error::RemoteError;
use crate::url::{Scheme, Url};

/// Bounds on what a response head may hold.
const MAX_HEAD_BYTES: u64 = 64 << 10;
const MAX_HEADERS: usize = 128;

pub(crate) struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
    pub fn set_read_timeout(&self, t: Duration) {
        let _ = self.tcp().set_read_timeout(Some(t));
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

pub(crate) struct Response {
    pub status: u16,
    pub reason: String,
    headers: Vec<(String, String)>,
    pub body: BufReader<Stream>,
}

impl Response {
    /// The value of header `name` (case-insensitive); a repeated header is a fault the
    /// caller sees as `Err`.
    pub fn header(&self, url: &Url, name: &str) -> Result<Option<&str>, RemoteError> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        match found.next() {
            Some((_, second)) if Some(second.as_str()) != first => Err(RemoteError::BadResponse {
                url: url.to_string(),
                fault: format!("two different {name} headers"),
            }),
            _ => Ok(first),
        }
    }
}

/// Maps an I/O error to a timeout or a connection failure.
pub(crate) fn io_fault(url: &Url, during: &'static str, e: io::Error, t: Duration) -> RemoteError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RemoteError::Timeout {
            url: url.to_string(),
            during,
            secs: t.as_secs_f64(),
        },
        _ => RemoteError::Io {
            url: url.to_string(),
            during,
            source: e,
        },
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

fn connect(url: &Url, t: &Timeouts) -> Result<Stream, RemoteError> {
    let connect_err = |source: io::Error| RemoteError::Connect {
        url: url.to_string(),
        source,
    };
    let addrs = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(connect_err)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    let mut tcp = None;
    for addr in addrs.take(8) {
        match TcpStream::connect_timeout(&addr, t.connect) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let tcp = tcp.ok_or_else(|| connect_err(last))?;
    tcp.set_read_timeout(Some(t.read)).map_err(connect_err)?;
    tcp.set_write_timeout(Some(t.read)).map_err(connect_err)?;
    let _ = tcp.set_nodelay(true);
    match url.scheme {
        Scheme::Http => Ok(Stream::Plain(tcp)),
        Scheme::Https => {
            let name = rustls::pki_types::ServerName::try_from(url.host.clone()).map_err(|e| {
                RemoteError::InvalidUrl {
                    url: url.to_string(),
                    why: format!("host is not a valid TLS server name: {e}"),
                }
            })?;
            let conn = rustls::ClientConnection::new(tls_config(), name).map_err(|e| {
                RemoteError::Connect {
                    url: url.to_string(),
                    source: io::Error::other(e),
                }
            })?;
            Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
        }
    }
}

/// Sends `GET url` for bytes `start..=end` and reads the response head.
pub(crate) fn get_range(
    url: &Url,
    start: u64,
    end: u64,
    t: &Timeouts,
) -> Result<Response, RemoteError> {
    let mut stream = connect(url, t)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nRange: bytes={start}-{end}\r\nAccept-Encoding: identity\r\nUser-Agent: dokja/{}\r\nConnection: close\r\n\r\n",
        url.path,
        url.authority(),
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| io_fault(url, "sending the request", e, t.read))?;
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let (status, reason, headers) = read_head(url, &mut reader, t)?;
    Ok(Response {
        status,
        reason,
        headers,
        body: reader,
    })
}

type Head = (u16, String, Vec<(String, String)>);

fn read_head(url: &Url, reader: &mut BufReader<Stream>, t: &Timeouts) -> Result<Head, RemoteError> {
    let bad = |fault: String| RemoteError::BadResponse {
        url: url.to_string(),
        fault,
    };
    let mut budget = MAX_HEAD_BYTES;
    let mut next_line = |reader: &mut BufReader<Stream>| -> Result<String, RemoteError> {
        let mut line = Vec::new();
        let n = reader
            .by_ref()
            .take(budget)
            .read_until(b'\n', &mut line)
            .map_err(|e| io_fault(url, "reading the response head", e, t.read))?;
        budget -= n as u64;
        if n == 0 {
            return Err(RemoteError::Io {
                url: url.to_string(),
                during: "reading the response head",
                source: io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"),
            });
        }
        if !line.ends_with(b"\n") {
            return Err(bad(format!(
                "response head longer than {MAX_HEAD_BYTES} bytes or cut short"
            )));
        }
        let text = String::from_utf8(line).map_err(|_| bad("response head is not text".into()))?;
        Ok(text.trim_end_matches(['\r', '\n']).to_string())
    };
    let status_line = next_line(reader)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("status line {status_line:?} is not HTTP/1.x")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| bad(format!("status line {status_line:?} has no status code")))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let line = next_line(reader)?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(bad(format!("more than {MAX_HEADERS} headers")));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("header line {line:?} has no ':'")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok((status, reason, headers))
}
