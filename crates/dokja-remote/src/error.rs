//! Every error names the URL and the fault, so a user can tell a dead link from a server
//! that breaks HTTP from a budget that is too small.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{url}: not a URL dokja can read: {why}")]
    InvalidUrl { url: String, why: String },
    #[error("{url}: cannot connect: {source}")]
    Connect {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("{url}: no data for {secs:.1} s while {during} (timed out)")]
    Timeout {
        url: String,
        during: &'static str,
        secs: f64,
    },
    #[error("{url}: connection failed while {during}: {source}")]
    Io {
        url: String,
        during: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{url}: the server sent a malformed response: {fault}")]
    BadResponse { url: String, fault: String },
    #[error("{url}: HTTP {status} {reason}")]
    Status {
        url: String,
        status: u16,
        reason: String,
    },
    #[error("{url}: no such file (HTTP {status})")]
    NotFound { url: String, status: u16 },
    #[error(
        "{url}: asked for bytes {start}-{end} but the server answered Content-Range {got:?} (refused)"
    )]
    RangeMismatch {
        url: String,
        start: u64,
        end: u64,
        got: String,
    },
    #[error(
        "{url}: the server ignored the Range request (HTTP 200 with {content_length} for {requested} requested bytes); refusing to download the whole file"
    )]
    RangeIgnored {
        url: String,
        requested: u64,
        content_length: String,
    },
    #[error("{url}: Content-Length {announced} does not match the {expected} bytes of the range")]
    LengthMismatch {
        url: String,
        announced: u64,
        expected: u64,
    },
    #[error("{url}: the body went on past the {expected} bytes announced")]
    BodyTooLong { url: String, expected: u64 },
    #[error("{url}: the body ended after {got} of {expected} bytes")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
    },
    #[error("{url}: more than {max} redirects")]
    TooManyRedirects { url: String, max: u32 },
    #[error("{url}: the file changed size ({was} bytes, now {now}) while being read")]
    SizeChanged { url: String, was: u64, now: u64 },
    #[error(
        "{url}: reading {want} more bytes would exceed the remote byte budget of {max} bytes ({fetched} already fetched; raise --max-remote-bytes)"
    )]
    BudgetExceeded {
        url: String,
        want: u64,
        fetched: u64,
        max: u64,
    },
    #[error("{url}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: Box<RemoteError>,
    },
}

impl RemoteError {
    /// Faults a new attempt may cure: the network and the server's transient states. A
    /// server that breaks the protocol (wrong range, lying lengths) is not retried.
    pub fn is_transient(&self) -> bool {
        match self {
            RemoteError::Connect { .. }
            | RemoteError::Timeout { .. }
            | RemoteError::Io { .. }
            | RemoteError::Truncated { .. } => true,
            RemoteError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            _ => false,
        }
    }

    /// The budget error, if this is one (directly or as the last failure).
    pub fn is_budget(&self) -> bool {
        matches!(self, RemoteError::BudgetExceeded { .. })
    }
}

impl From<RemoteError> for io::Error {
    fn from(e: RemoteError) -> io::Error {
        let kind = match &e {
            RemoteError::NotFound { .. } => io::ErrorKind::NotFound,
            RemoteError::Timeout { .. } => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
