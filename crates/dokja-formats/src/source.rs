//! Where a model's bytes come from. Readers ask for byte ranges and never assume the file
//! fits in memory: the memory-mapped source hands out borrowed slices (zero copy), the
//! positioned-read source copies only what was asked for (no SIGBUS if the file is
//! truncated under us), and later a remote source will fetch HTTP ranges.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub trait ByteSource: Send + Sync + std::fmt::Debug {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Exactly `len` bytes at `offset`, or an error (never a short read).
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>>;
    /// Whether `read_at` borrows without copying, so a large range costs nothing to ask for.
    fn is_borrowed(&self) -> bool {
        false
    }
    /// A hint that `offset..offset + len` has been consumed: a mapped source drops those pages
    /// from the process (they stay in the page cache), so streaming a model once does not
    /// leave it all resident. Later reads of the range still work.
    fn release(&self, _offset: u64, _len: usize) {}
}

/// How local files are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// Memory-map each file (fast, zero copy). A file truncated while mapped raises SIGBUS.
    #[default]
    Mmap,
    /// Positioned reads into buffers (safe against concurrent truncation, one copy).
    Pread,
}

fn out_of_range(offset: u64, len: usize, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("range {offset}+{len} is beyond the end of the file ({size} bytes)"),
    )
}

fn check_range(offset: u64, len: usize, size: u64) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(out_of_range(offset, len, size)),
    }
}

#[derive(Debug)]
pub struct MmapSource {
    map: Option<memmap2::Mmap>,
    size: u64,
}

impl MmapSource {
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        if size == 0 {
            // Mapping an empty file fails on some systems; an empty source is still valid.
            return Ok(MmapSource { map: None, size: 0 });
        }
        // SAFETY: the one place dokja maps a file. The map is read-only; a file truncated by
        // another process while mapped would fault, which `ReadMode::Pread` avoids.
        let map = unsafe { memmap2::MmapOptions::new().map(&file)? };
        #[cfg(unix)]
        {
            let _ = map.advise(memmap2::Advice::Sequential);
        }
        Ok(MmapSource {
            map: Some(map),
            size,
        })
    }
}

impl ByteSource for MmapSource {
    fn len(&self) -> u64 {
        self.size
    }
    fn is_borrowed(&self) -> bool {
        true
    }
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        check_range(offset, len, self.size)?;
        match &self.map {
            Some(map) => Ok(Cow::Borrowed(&map[offset as usize..offset as usize + len])),
            None => Ok(Cow::Borrowed(&[])),
        }
    }
    fn release(&self, offset: u64, len: usize) {
        #[cfg(unix)]
        if let Some(map) = &self.map
            && check_range(offset, len, self.size).is_ok()
        {
            // SAFETY: the map is read-only and private, so it holds no modified pages:
            // MADV_DONTNEED only unmaps clean pages, and any later access (including a slice
            // another thread still holds) faults them back in from the file unchanged.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset as usize, len)
            };
        }
    }
}

#[derive(Debug)]
pub struct PreadSource {
    file: File,
    size: u64,
}

impl PreadSource {
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        Ok(PreadSource { file, size })
    }
}

impl ByteSource for PreadSource {
    fn len(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        check_range(offset, len, self.size)?;
        let mut buf = vec![0u8; len];
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.read_exact_at(&mut buf, offset)?;
        }
        #[cfg(not(unix))]
        {
            use std::os::windows::fs::FileExt;
            let mut done = 0;
            while done < len {
                let n = self
                    .file
                    .seek_read(&mut buf[done..], offset + done as u64)?;
                if n == 0 {
                    return Err(out_of_range(offset, len, self.size));
                }
                done += n;
            }
        }
        Ok(Cow::Owned(buf))
    }
}

/// In-memory bytes: for tests and for files extracted from archives.
#[derive(Debug)]
pub struct MemorySource(pub Vec<u8>);

impl ByteSource for MemorySource {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn is_borrowed(&self) -> bool {
        true
    }
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        check_range(offset, len, self.0.len() as u64)?;
        Ok(Cow::Borrowed(
            &self.0[offset as usize..offset as usize + len],
        ))
    }
}

/// One file of a model: its path (for error messages and reports) and its bytes.
#[derive(Debug)]
pub struct ModelFile {
    pub path: PathBuf,
    pub source: Box<dyn ByteSource>,
}

impl ModelFile {
    pub fn open(path: &Path, mode: ReadMode) -> crate::Result<Self> {
        let source: Box<dyn ByteSource> = match mode {
            ReadMode::Mmap => {
                Box::new(MmapSource::open(path).map_err(|e| crate::FormatError::io(path, e))?)
            }
            ReadMode::Pread => {
                Box::new(PreadSource::open(path).map_err(|e| crate::FormatError::io(path, e))?)
            }
        };
        Ok(ModelFile {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn len(&self) -> u64 {
        self.source.len()
    }

    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    /// See [`ByteSource::release`].
    pub fn release(&self, offset: u64, len: usize) {
        self.source.release(offset, len);
    }

    /// `read_at` with the error turned into a [`crate::FormatError`] naming this file.
    pub fn bytes(
        &self,
        offset: u64,
        len: usize,
        format: &'static str,
        what: &str,
    ) -> crate::Result<Cow<'_, [u8]>> {
        self.source.read_at(offset, len).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                crate::FormatError::malformed(
                    &self.path,
                    format,
                    format!("{what}: {e} (file truncated?)"),
                )
            } else {
                crate::FormatError::io(&self.path, e)
            }
        })
    }
}
