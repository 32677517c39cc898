//! Range fetching with validation, retries, resumption and a byte budget.

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cache::BlockCache;
use crate::error::RemoteError;
use crate::http::{self, Response, Timeouts};
use crate::url::Url;

/// How a [`Client`] reads. The defaults suit real hosts; tests shrink blocks and timeouts.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// Reads are rounded out to aligned blocks of this size and cached by block.
    pub block_size: u64,
    /// Memory the block cache may hold (least recently used blocks are dropped first).
    /// Analyses read tensors more than once (digests, then statistics): a cache that holds
    /// the model saves every second read. Reads larger than half of it bypass it.
    pub cache_bytes: u64,
    /// Budget on body bytes fetched over the client's life (None: unbounded).
    pub max_bytes: Option<u64>,
    pub connect_timeout: Duration,
    /// Longest wait for any data (response head or body) before the attempt is abandoned.
    pub read_timeout: Duration,
    /// Consecutive failed attempts (without a single new byte) before giving up.
    pub max_attempts: u32,
    /// First retry delay; doubled per consecutive failure, at most `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// Total attempts for one range, progress or not (bounds a server that drops every
    /// connection after a few bytes).
    pub max_total_attempts: u32,
    pub max_redirects: u32,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            block_size: 1 << 20,
            cache_bytes: 256 << 20,
            max_bytes: None,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            max_attempts: 5,
            retry_delay: Duration::from_millis(250),
            max_retry_delay: Duration::from_secs(4),
            max_total_attempts: 64,
            max_redirects: 8,
        }
    }
}

/// What a client has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RemoteStats {
    /// Body bytes received (what the budget counts).
    pub bytes_fetched: u64,
    pub requests: u64,
    /// Attempts repeated after a failure that brought no new byte.
    pub retries: u64,
    /// Attempts that continued a range after a connection dropped part way.
    pub resumes: u64,
    /// Reads answered from the block cache without a request.
    pub cache_hits: u64,
}

/// Shared by every file of one run: one budget, one cache, one set of counters.
#[derive(Debug)]
pub struct Client {
    pub(crate) config: RemoteConfig,
    pub(crate) cache: Mutex<BlockCache>,
    next_file_id: AtomicU64,
    /// Bytes promised to requests under way or done; never above `max_bytes`.
    reserved: AtomicU64,
    fetched: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    resumes: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
}

/// The first bytes of a file and its size, from the first request.
pub(crate) struct Probe {
    pub size: u64,
    pub head: Vec<u8>,
}

impl Client {
    pub fn new(config: RemoteConfig) -> Client {
        let config = RemoteConfig {
            block_size: config.block_size.max(1),
            max_attempts: config.max_attempts.max(1),
            max_total_attempts: config.max_total_attempts.max(1),
            ..config
        };
        Client {
            cache: Mutex::new(BlockCache::new(config.cache_bytes)),
            config,
            next_file_id: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            fetched: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    pub fn stats(&self) -> RemoteStats {
        RemoteStats {
            bytes_fetched: self.fetched.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            resumes: self.resumes.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn new_file_id(&self) -> u64 {
        self.next_file_id.fetch_add(1, Ordering::Relaxed)
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.config.connect_timeout,
            read: self.config.read_timeout,
        }
    }

    fn reserve(&self, url: &Url, want: u64) -> Result<(), RemoteError> {
        let Some(max) = self.config.max_bytes else {
            self.reserved.fetch_add(want, Ordering::Relaxed);
            return Ok(());
        };
        self.reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                r.checked_add(want).filter(|&total| total <= max)
            })
            .map(|_| ())
            .map_err(|_| RemoteError::BudgetExceeded {
                url: url.to_string(),
                want,
                fetched: self.fetched.load(Ordering::Relaxed),
                max,
            })
    }

    fn release(&self, unused: u64) {
        self.reserved.fetch_sub(unused, Ordering::Relaxed);
    }

    /// The size of `url` and its first block: `Ok(None)` when the server says it does not
    /// exist (404/410).
    pub(crate) fn probe(&self, url: &Url) -> Result<Option<Probe>, RemoteError> {
        // Under a nearly spent budget, a shorter first read still learns the size.
        let left = self.config.max_bytes.map_or(u64::MAX, |max| {
            max.saturating_sub(self.reserved.load(Ordering::Relaxed))
        });
        let want = self.config.block_size.min(left.max(1));
        self.reserve(url, want)?;
        let mut head = Vec::new();
        let result = self.with_retries(url, 0, want, &mut head, true);
        self.release(want - head.len() as u64);
        match result {
            Ok(size) => Ok(Some(Probe {
                size: size.expect("a probe learns the size"),
                head,
            })),
            Err(RemoteError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Exactly bytes `offset..offset+len` of `url`, whose size is `size`.
    pub(crate) fn fetch(
        &self,
        url: &Url,
        size: u64,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, RemoteError> {
        self.reserve(url, len)?;
        // Bounded by the caller: the range lies inside a file whose size the server stated,
        // and the caller asked for it; nothing here is sized by a response header.
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(256 << 20));
        let result = self.with_retries(url, offset, len, &mut buf, false);
        self.release(len - buf.len() as u64);
        match result? {
            Some(now) if now != size => Err(RemoteError::SizeChanged {
                url: url.to_string(),
                was: size,
                now,
            }),
            _ => Ok(buf),
        }
    }

    /// Runs attempts until `buf` holds `len` bytes from `offset` (a probe may stop short at
    /// the end of the file). Returns the file size the server stated.
    fn with_retries(
        &self,
        url: &Url,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
        probe: bool,
    ) -> Result<Option<u64>, RemoteError> {
        let mut failures = 0u32;
        let mut attempts = 0u32;
        loop {
            let before = buf.len() as u64;
            attempts += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let start = offset + before;
            let end = offset + len - 1;
            match self.attempt(url, start, end, buf, probe) {
                Ok(size) => {
                    let got = buf.len() as u64;
                    if got == len || (probe && offset + got == size) {
                        return Ok(Some(size));
                    }
                    unreachable_short(url, got, len)?;
                }
                Err(e) if e.is_transient() => {
                    let progressed = buf.len() as u64 > before;
                    if progressed {
                        failures = 0;
                        self.resumes.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures += 1;
                        self.retries.fetch_add(1, Ordering::Relaxed);
                    }
                    if failures >= self.config.max_attempts
                        || attempts >= self.config.max_total_attempts
                    {
                        return Err(RemoteError::GaveUp {
                            url: url.to_string(),
                            attempts,
                            last: Box::new(e),
                        });
                    }
                    if !progressed {
                        let delay = self
                            .config
                            .retry_delay
                            .saturating_mul(1 << (failures - 1).min(16))
                            .min(self.config.max_retry_delay);
                        std::thread::sleep(delay);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One request for bytes `start..=end`, appending what arrives to `buf` (also on
    /// failure, so the next attempt resumes after the last byte received). `open_ended`:
    /// the file size is not known yet and the server may clip `end` to it.
    fn attempt(
        &self,
        url: &Url,
        start: u64,
        end: u64,
        buf: &mut Vec<u8>,
        open_ended: bool,
    ) -> Result<u64, RemoteError> {
        let timeouts = self.timeouts();
        let mut current = url.clone();
        let mut redirects = 0;
        let mut response = loop {
            let r = http::get_range(&current, start, end, &timeouts)?;
            if matches!(r.status, 301 | 302 | 303 | 307 | 308) {
                redirects += 1;
                if redirects > self.config.max_redirects {
                    return Err(RemoteError::TooManyRedirects {
                        url: url.to_string(),
                        max: self.config.max_redirects,
                    });
                }
                let location =
                    r.header(&current, "Location")?
                        .ok_or_else(|| RemoteError::BadResponse {
                            url: current.to_string(),
                            fault: format!("HTTP {} without a Location", r.status),
                        })?;
                current = current
                    .resolve(location)
                    .map_err(|why| RemoteError::BadResponse {
                        url: current.to_string(),
                        fault: format!("redirect to an unusable Location {location:?}: {why}"),
                    })?;
                continue;
            }
            break r;
        };
        let url = &current;
        let requested = end - start + 1;
        // Only bodies dokja reads are checked: error pages may be chunked or compressed.
        let content_length = if matches!(response.status, 200 | 206) {
            check_encoding(url, &response)?;
            content_length(url, &response)?
        } else {
            None
        };
        let (body_len, size) = match response.status {
            206 => {
                let raw = response
                    .header(url, "Content-Range")?
                    .unwrap_or("")
                    .to_string();
                let mismatch = || RemoteError::RangeMismatch {
                    url: url.to_string(),
                    start,
                    end,
                    got: raw.clone(),
                };
                let (a, b, size) = parse_content_range(&raw).ok_or_else(mismatch)?;
                let clipped = open_ended && b < end && b + 1 == size;
                if a != start || !(b == end || clipped) || b >= size {
                    return Err(mismatch());
                }
                let body_len = b - a + 1;
                if let Some(n) = content_length
                    && n != body_len
                {
                    return Err(RemoteError::LengthMismatch {
                        url: url.to_string(),
                        announced: n,
                        expected: body_len,
                    });
                }
                (body_len, size)
            }
            // A whole file no larger than the range asked of its start is what was asked.
            200 => match content_length {
                Some(n) if start == 0 && n <= requested && (open_ended || n == requested) => (n, n),
                _ => {
                    return Err(RemoteError::RangeIgnored {
                        url: url.to_string(),
                        requested,
                        content_length: content_length.map_or("no Content-Length".into(), |n| {
                            format!("Content-Length {n}")
                        }),
                    });
                }
            },
            416 if open_ended && start == 0 => {
                // Only an empty file cannot satisfy bytes=0-N.
                let raw = response.header(url, "Content-Range")?.unwrap_or("");
                return match raw.strip_prefix("bytes */").map(str::parse::<u64>) {
                    Some(Ok(0)) => Ok(0),
                    _ => Err(RemoteError::RangeMismatch {
                        url: url.to_string(),
                        start,
                        end,
                        got: format!("HTTP 416, Content-Range {raw:?}"),
                    }),
                };
            }
            404 | 410 => {
                return Err(RemoteError::NotFound {
                    url: url.to_string(),
                    status: response.status,
                });
            }
            status => {
                return Err(RemoteError::Status {
                    url: url.to_string(),
                    status,
                    reason: response.reason.clone(),
                });
            }
        };
        self.read_body(url, &mut response, body_len, buf)?;
        Ok(size)
    }

    /// Reads exactly `body_len` bytes into `buf`, counting them as they arrive, then checks
    /// the server stops there.
    fn read_body(
        &self,
        url: &Url,
        response: &mut Response,
        body_len: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), RemoteError> {
        let read_timeout = self.config.read_timeout;
        // Idle timeouts alone let a server trickle forever: the whole body must also arrive
        // at 16 KiB/s or better (plus one idle timeout of slack).
        let started = Instant::now();
        let deadline = started
            + read_timeout
            + Duration::from_secs_f64(body_len as f64 / (16u64 << 10) as f64);
        let mut chunk = vec![0u8; 64 << 10];
        let mut got = 0u64;
        while got < body_len {
            if Instant::now() > deadline {
                return Err(RemoteError::Timeout {
                    url: url.to_string(),
                    during: "reading the body (slower than 16 KiB/s)",
                    secs: started.elapsed().as_secs_f64(),
                });
            }
            let want = (body_len - got).min(chunk.len() as u64) as usize;
            match response.body.read(&mut chunk[..want]) {
                Ok(0) => {
                    return Err(RemoteError::Truncated {
                        url: url.to_string(),
                        got,
                        expected: body_len,
                    });
                }
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    got += n as u64;
                    self.fetched.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(http::io_fault(url, "reading the body", e, read_timeout)),
            }
        }
        // An honest server closes after the body (we sent Connection: close); one that keeps
        // sending lied about the length. A short wait only: a silent open connection is
        // accepted.
        response
            .body
            .get_ref()
            .set_read_timeout(Duration::from_millis(200));
        let mut one = [0u8; 1];
        if let Ok(n) = response.body.read(&mut one)
            && n > 0
        {
            return Err(RemoteError::BodyTooLong {
                url: url.to_string(),
                expected: body_len,
            });
        }
        Ok(())
    }
}

fn unreachable_short(url: &Url, got: u64, len: u64) -> Result<(), RemoteError> {
    // `attempt` either fills the range or fails; a short success would be a logic error,
    // reported rather than looped on.
    Err(RemoteError::Truncated {
        url: url.to_string(),
        got,
        expected: len,
    })
}

fn check_encoding(url: &Url, r: &Response) -> Result<(), RemoteError> {
    for name in ["Transfer-Encoding", "Content-Encoding"] {
        if let Some(v) = r.header(url, name)?
            && !v.eq_ignore_ascii_case("identity")
        {
            return Err(RemoteError::BadResponse {
                url: url.to_string(),
                fault: format!("{name}: {v} (dokja reads plain, length-delimited bodies only)"),
            });
        }
    }
    Ok(())
}

fn content_length(url: &Url, r: &Response) -> Result<Option<u64>, RemoteError> {
    match r.header(url, "Content-Length")? {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| RemoteError::BadResponse {
            url: url.to_string(),
            fault: format!("Content-Length {v:?} is not a number"),
        }),
    }
}

/// `bytes a-b/size` (the size must be known: `*` is refused).
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, size) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b, size) = (a.parse().ok()?, b.parse().ok()?, size.parse().ok()?);
    (a <= b).then_some((a, b, size))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0, 9, 100)));
        assert_eq!(parse_content_range("bytes 5-4/100"), None);
        assert_eq!(parse_content_range("bytes 0-9/*"), None);
        assert_eq!(parse_content_range("items 0-9/100"), None);
    }
}
