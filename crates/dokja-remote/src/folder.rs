//! A folder URL as a [`FileSet`].

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use dokja_formats::fileset::{FileSet, is_plain_name};
use dokja_formats::source::ByteSource;

use crate::client::Client;
use crate::file::RemoteFile;
use crate::url::Url;

#[derive(Debug)]
pub struct RemoteFolder {
    client: Arc<Client>,
    /// Ends with '/'.
    base: Url,
    /// Sizes of the files opened, for reports.
    opened: std::sync::Mutex<Vec<(String, u64)>>,
}

impl RemoteFolder {
    pub fn new(client: Arc<Client>, base: Url) -> RemoteFolder {
        RemoteFolder {
            client,
            base: base.folder(),
            opened: Default::default(),
        }
    }

    /// The files opened so far (URL, size).
    pub fn opened(&self) -> Vec<(String, u64)> {
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl FileSet for RemoteFolder {
    fn label(&self, name: &str) -> PathBuf {
        PathBuf::from(self.base.join(name).to_string())
    }

    fn open(&self, name: &str) -> io::Result<Option<Box<dyn ByteSource>>> {
        if !is_plain_name(name) {
            return Ok(None);
        }
        let url = self.base.join(name);
        let file = RemoteFile::open(&self.client, &url)?;
        Ok(file.map(|f| {
            self.opened
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((url.to_string(), f.size()));
            Box::new(f) as Box<dyn ByteSource>
        }))
    }
}
