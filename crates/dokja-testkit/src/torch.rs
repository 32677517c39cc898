//! PyTorch checkpoint writer: the zip archive `torch.save` writes since 1.6
//! (`archive/data.pkl`, `archive/byteorder`, `archive/data/<key>`, `archive/version`), with
//! every entry stored uncompressed and aligned to 64 bytes, and a pickle of the state dict
//! as Python's pickler emits it for `torch.save(model.state_dict(), f)`: protocol 2 (torch's
//! default) or 4 (framed, MEMOIZE and STACK_GLOBAL), globals memoized and fetched again with
//! BINGET, storages as persistent ids `('storage', torch.FloatStorage, key, 'cpu', numel)`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Cursor, Write};
use std::path::Path;

use crate::model::SynthModel;
use crate::safetensors::StDtype;

#[derive(Clone, Debug)]
pub struct TorchOptions {
    pub dtype: StDtype,
    /// Pickle protocol: 2 (torch's default) or 4.
    pub protocol: u8,
    /// (alias, name): store `alias` as a view of `name`'s storage (tied weights).
    pub tied: Vec<(String, String)>,
    /// Names of matrices saved as `weight.t()` views (stride `[1, rows]`).
    pub transposed_views: Vec<String>,
}

impl TorchOptions {
    pub fn new(dtype: StDtype) -> TorchOptions {
        TorchOptions {
            dtype,
            protocol: 2,
            tied: Vec::new(),
            transposed_views: Vec::new(),
        }
    }
}

fn storage_class(d: StDtype) -> &'static str {
    match d {
        StDtype::F32 => "FloatStorage",
        StDtype::F16 => "HalfStorage",
        StDtype::BF16 => "BFloat16Storage",
        StDtype::F64 => "DoubleStorage",
    }
}

/// Emits pickle opcodes the way CPython's `_Pickler` does for the objects torch saves.
pub struct Pickler {
    pub out: Vec<u8>,
    protocol: u8,
    memo_next: u32,
    globals: HashMap<String, u32>,
    strings: HashMap<String, u32>,
}

impl Pickler {
    pub fn new(protocol: u8) -> Pickler {
        let mut out = vec![0x80, protocol];
        if protocol >= 4 {
            // One frame for everything: FRAME + u64 length, patched in `finish`.
            out.push(0x95);
            out.extend_from_slice(&[0; 8]);
        }
        Pickler {
            out,
            protocol,
            memo_next: 0,
            globals: HashMap::new(),
            strings: HashMap::new(),
        }
    }

    pub fn memoize(&mut self) -> u32 {
        let k = self.memo_next;
        self.memo_next += 1;
        if self.protocol >= 4 {
            self.out.push(0x94);
        } else if k < 256 {
            self.out.extend_from_slice(&[b'q', k as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend_from_slice(&k.to_le_bytes());
        }
        k
    }

    pub fn get(&mut self, k: u32) {
        if k < 256 {
            self.out.extend_from_slice(&[b'h', k as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend_from_slice(&k.to_le_bytes());
        }
    }

    pub fn op(&mut self, op: u8) {
        self.out.push(op);
    }

    pub fn string(&mut self, s: &str) {
        if let Some(&k) = self.strings.get(s) {
            return self.get(k);
        }
        if self.protocol >= 4 && s.len() < 256 {
            self.out.extend_from_slice(&[0x8c, s.len() as u8]);
        } else {
            self.out.push(b'X');
            self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(s.as_bytes());
        let k = self.memoize();
        self.strings.insert(s.to_string(), k);
    }

    pub fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if (0..65536).contains(&v) {
            self.out.push(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.out.extend_from_slice(&[0x8a, 8]);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A global, written once and fetched from the memo afterwards.
    pub fn global(&mut self, module: &str, name: &str) {
        let key = format!("{module}\n{name}");
        if let Some(&k) = self.globals.get(&key) {
            return self.get(k);
        }
        if self.protocol >= 4 {
            self.string(module);
            self.string(name);
            self.out.push(0x93);
        } else {
            self.out.push(b'c');
            self.out
                .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        }
        let k = self.memoize();
        self.globals.insert(key, k);
    }

    pub fn int_tuple(&mut self, v: &[u64]) {
        match v.len() {
            // CPython does not memoize the empty tuple.
            0 => return self.out.push(b')'),
            1..=3 => {
                v.iter().for_each(|&x| self.int(x as i64));
                self.out.push(0x84 + v.len() as u8);
            }
            _ => {
                self.out.push(b'(');
                v.iter().for_each(|&x| self.int(x as i64));
                self.out.push(b't');
            }
        }
        self.memoize();
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'.');
        if self.protocol >= 4 {
            let len = (self.out.len() - 11) as u64;
            self.out[3..11].copy_from_slice(&len.to_le_bytes());
        }
        self.out
    }
}

/// One tensor of a state dict as `_rebuild_tensor_v2` sees it.
pub struct PickledTensor<'a> {
    pub name: &'a str,
    pub storage_class: &'a str,
    pub key: &'a str,
    pub numel: u64,
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

/// The pickle of an OrderedDict state dict of `tensors`.
pub fn state_dict_pickle(tensors: &[PickledTensor], protocol: u8) -> Vec<u8> {
    let mut p = Pickler::new(protocol);
    p.global("collections", "OrderedDict");
    p.op(b')');
    p.op(b'R');
    p.memoize();
    for chunk in tensors.chunks(1000) {
        p.op(b'(');
        for t in chunk {
            p.string(t.name);
            p.global("torch._utils", "_rebuild_tensor_v2");
            p.op(b'(');
            // A fresh persistent id per tensor, as torch's `persistent_id` returns one; its
            // strings and class come from the memo after the first time.
            p.op(b'(');
            p.string("storage");
            p.global("torch", t.storage_class);
            p.string(t.key);
            p.string("cpu");
            p.int(t.numel as i64);
            p.op(b't');
            p.memoize();
            p.op(b'Q');
            p.int(t.offset as i64);
            p.int_tuple(&t.size);
            p.int_tuple(&t.stride);
            p.op(0x89);
            p.global("collections", "OrderedDict");
            p.op(b')');
            p.op(b'R');
            p.memoize();
            p.op(b't');
            p.memoize();
            p.op(b'R');
            p.memoize();
        }
        p.op(b'u');
    }
    // OrderedDict state: {'_metadata': OrderedDict()} applied with BUILD.
    p.op(b'}');
    p.memoize();
    p.string("_metadata");
    p.global("collections", "OrderedDict");
    p.op(b')');
    p.op(b'R');
    p.memoize();
    p.op(b's');
    p.op(b'b');
    p.finish()
}

/// A zip archive of `entries` (name, bytes), every entry stored and 64-byte aligned as
/// torch's `PyTorchFileWriter` writes them.
pub fn torch_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .with_alignment(64);
    for (name, bytes) in entries {
        w.start_file(name.as_str(), options).expect("zip entry");
        w.write_all(bytes).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

/// The bytes of `torch.save(state_dict)` for `model`.
pub fn torch_checkpoint_bytes(model: &SynthModel, opts: &TorchOptions) -> Vec<u8> {
    let class = storage_class(opts.dtype);
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut keys: HashMap<&str, (String, u64)> = HashMap::new();
    let mut pickled = Vec::new();
    let mut storage_bytes = Vec::new();
    for t in &model.tensors {
        if opts.tied.iter().any(|(alias, _)| alias == &t.name) {
            continue;
        }
        let key = keys.len().to_string();
        let transposed = opts.transposed_views.contains(&t.name);
        let stored = if transposed {
            t.transposed()
        } else {
            t.clone()
        };
        let mut bytes = Vec::new();
        opts.dtype.encode(&stored.data, &mut bytes);
        storage_bytes.push((key.clone(), bytes));
        keys.insert(&t.name, (key, t.n_elements() as u64));
    }
    for t in &model.tensors {
        let target = opts
            .tied
            .iter()
            .find(|(alias, _)| alias == &t.name)
            .map_or(t.name.as_str(), |(_, name)| name.as_str());
        let (key, numel) = keys[target].clone();
        let size: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
        let stride = if opts.transposed_views.contains(&target.to_string()) {
            vec![1, size[0]]
        } else {
            let mut s = vec![1u64; size.len()];
            for i in (0..size.len().saturating_sub(1)).rev() {
                s[i] = s[i + 1] * size[i + 1];
            }
            s
        };
        pickled.push((t.name.clone(), key, numel, size, stride));
    }
    let refs: Vec<PickledTensor> = pickled
        .iter()
        .map(|(name, key, numel, size, stride)| PickledTensor {
            name,
            storage_class: class,
            key,
            numel: *numel,
            offset: 0,
            size: size.clone(),
            stride: stride.clone(),
        })
        .collect();
    entries.push((
        "archive/data.pkl".into(),
        state_dict_pickle(&refs, opts.protocol),
    ));
    entries.push(("archive/byteorder".into(), b"little".to_vec()));
    for (key, bytes) in storage_bytes {
        entries.push((format!("archive/data/{key}"), bytes));
    }
    entries.push(("archive/version".into(), b"3\n".to_vec()));
    entries.push((
        "archive/.data/serialization_id".into(),
        b"1234567890".to_vec(),
    ));
    torch_zip(&entries)
}

pub fn write_torch_checkpoint(
    model: &SynthModel,
    path: &Path,
    opts: &TorchOptions,
) -> io::Result<()> {
    fs::write(path, torch_checkpoint_bytes(model, opts))
}
