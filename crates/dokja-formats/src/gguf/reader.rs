//! Bounded little-endian reading of a GGUF header through a [`ModelFile`].
//!
//! The header is read in windows, never past `min(file length, MAX_HEADER_BYTES)`, so a
//! hostile length can neither make us read the weights nor allocate beyond what the file
//! could hold.

use std::borrow::Cow;

use crate::error::{FormatError, Result};
use crate::model::limits;
use crate::source::ModelFile;

pub(super) const FORMAT: &str = "GGUF";

/// How much header is fetched at a time (positioned reads copy; maps just borrow).
const WINDOW: u64 = 1 << 20;

pub(super) struct Reader<'a> {
    file: &'a ModelFile,
    /// Nothing at or past this offset is header.
    limit: u64,
    pos: u64,
    buf: Cow<'a, [u8]>,
    buf_start: u64,
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a ModelFile) -> Self {
        Reader {
            file,
            limit: file.len().min(limits::MAX_HEADER_BYTES),
            pos: 0,
            buf: Cow::Borrowed(&[]),
            buf_start: 0,
        }
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Header bytes still readable: what any count must be justified by.
    pub fn remaining(&self) -> u64 {
        self.limit - self.pos
    }

    pub fn fail(&self, fault: impl Into<String>) -> FormatError {
        FormatError::malformed(&self.file.path, FORMAT, fault)
    }

    /// The next `n` bytes, or an error naming `what` if the file (or the header limit)
    /// ends first.
    pub fn take(&mut self, n: u64, what: &str) -> Result<&[u8]> {
        if n > self.remaining() {
            return Err(self.short(n, what));
        }
        let end = self.pos + n;
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos < self.buf_start || end > buf_end {
            let len = n.max(WINDOW).min(self.remaining());
            // len <= MAX_HEADER_BYTES, so it fits in usize.
            self.buf = self.file.bytes(self.pos, len as usize, FORMAT, what)?;
            self.buf_start = self.pos;
        }
        let start = (self.pos - self.buf_start) as usize;
        self.pos = end;
        Ok(&self.buf[start..start + n as usize])
    }

    fn short(&self, n: u64, what: &str) -> FormatError {
        let file_len = self.file.len();
        if self.pos.saturating_add(n) > file_len {
            self.fail(format!(
                "{what} at byte {} needs {n} bytes but the file ends at {file_len} (truncated?)",
                self.pos
            ))
        } else {
            self.fail(format!(
                "{what} at byte {} needs {n} bytes, beyond the {} byte limit on GGUF headers",
                self.pos,
                limits::MAX_HEADER_BYTES
            ))
        }
    }

    pub fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u32(&mut self, what: &str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub fn u64(&mut self, what: &str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A GGUF string (u64 length, UTF-8 bytes), at most `max_len` bytes long. Invalid
    /// UTF-8 is replaced rather than refused: names and tokens are evidence, not code.
    pub fn string(&mut self, what: &str, max_len: u64) -> Result<String> {
        let len = self.u64(what)?;
        if len > max_len {
            return Err(self.fail(format!(
                "{what} at byte {} claims {len} bytes (at most {max_len})",
                self.pos - 8
            )));
        }
        let bytes = self.take(len, what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}
