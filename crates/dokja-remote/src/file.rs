//! One remote file as a [`ByteSource`]: reads go through the block cache (each run of missing
//! neighbouring blocks fetched in one request); reads too large for the cache fetch exactly
//! their range.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use dokja_formats::source::ByteSource;

use crate::client::Client;
use crate::error::RemoteError;
use crate::url::Url;

#[derive(Debug)]
pub struct RemoteFile {
    client: Arc<Client>,
    url: Url,
    id: u64,
    size: u64,
}

impl RemoteFile {
    /// Opens `url` with one request that also brings its first block. `Ok(None)` when the
    /// server says there is no such file.
    pub fn open(client: &Arc<Client>, url: &Url) -> Result<Option<RemoteFile>, RemoteError> {
        let Some(probe) = client.probe(url)? else {
            return Ok(None);
        };
        let file = RemoteFile {
            client: client.clone(),
            url: url.clone(),
            id: client.new_file_id(),
            size: probe.size,
        };
        let block = client.config.block_size;
        // The probe asked for block 0 whole (or the whole, shorter, file).
        let expected = block.min(probe.size);
        if probe.head.len() as u64 == expected && expected > 0 {
            let mut cache = client.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert((file.id, 0), Arc::from(probe.head));
        }
        Ok(Some(file))
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, RemoteError> {
        let config = &self.client.config;
        let bs = config.block_size;
        let first = offset / bs;
        let last = (offset + len - 1) / bs;
        if (last - first + 1).saturating_mul(bs) > config.cache_bytes / 2 {
            return self.client.fetch(&self.url, self.size, offset, len);
        }
        let mut blocks: Vec<Option<Arc<[u8]>>> = {
            let mut cache = self.client.cache.lock().unwrap_or_else(|p| p.into_inner());
            (first..=last).map(|b| cache.get((self.id, b))).collect()
        };
        if blocks.iter().all(Option::is_some) {
            self.client.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        // Each run of missing neighbouring blocks costs one request.
        let mut i = 0;
        while i < blocks.len() {
            if blocks[i].is_some() {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < blocks.len() && blocks[j].is_none() {
                j += 1;
            }
            let start = (first + i as u64) * bs;
            let end = ((first + j as u64) * bs).min(self.size);
            let bytes = self
                .client
                .fetch(&self.url, self.size, start, end - start)?;
            let mut cache = self.client.cache.lock().unwrap_or_else(|p| p.into_inner());
            for (k, piece) in bytes.chunks(bs as usize).enumerate() {
                let block: Arc<[u8]> = Arc::from(piece);
                cache.insert((self.id, first + (i + k) as u64), block.clone());
                blocks[i + k] = Some(block);
            }
            i = j;
        }
        let mut out = Vec::with_capacity(len as usize);
        let mut pos = offset;
        for (k, block) in blocks.iter().enumerate() {
            let block = block.as_ref().expect("filled above");
            let block_start = (first + k as u64) * bs;
            let from = (pos - block_start) as usize;
            let to = ((offset + len - block_start).min(block.len() as u64)) as usize;
            out.extend_from_slice(&block[from..to]);
            pos = block_start + to as u64;
        }
        Ok(out)
    }
}

impl ByteSource for RemoteFile {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "range {offset}+{len} is beyond the end of the file ({} bytes)",
                    self.size
                ),
            ));
        }
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        Ok(Cow::Owned(self.read(offset, len as u64)?))
    }
}
