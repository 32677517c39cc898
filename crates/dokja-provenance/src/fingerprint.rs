//! Fingerprints: what a comparison needs of a model, without its weights.
//!
//! A fingerprint keeps the model's description (tensor list, config, tokenizer, licence),
//! canonical digests and seeded value samples of every piece (identity), the embedding rows
//! of the first eligible tokens (residual alignment), whole patch and position embeddings
//! (encoder alignment), and for every matrix its query units sketched with the canonical
//! projection of their width (unit matching). Everything is a function of the model and the
//! seed alone, so the same model gives the same bytes.
//!
//! # File layout (version 1)
//! ```text
//! "DOKJAFP\0"  u32 version  u32 0  u64 header_len  header (JSON)
//! u64 blob_len  blob (little-endian f16/f32 arrays the header points into)
//! blake3 of everything before (32 bytes)
//! ```
//! The trailing digest makes truncation and corruption detectable before anything is parsed.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use dokja_formats::{Metadata, Model, TensorInfo, WeightsFormat, hf::Sidecars};
use dokja_schema::Component;
use dokja_stats::Mat;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::identity::{Piece, pieces};
use crate::slots::{Kind, ModelSlots, Slot};
use crate::subject::{PieceDigests, Subject};
use crate::units::QuerySketch;
use crate::{CompareOptions, ProvenanceError, Result};

pub const MAGIC: &[u8; 8] = b"DOKJAFP\0";
pub const VERSION: u32 = 1;
/// Conventional file extension.
pub const EXTENSION: &str = "dfp";
/// Routed experts per layer and matrix kind whose units a fingerprint keeps (all of them are
/// digested and sampled for identity).
pub const MAX_EXPERTS: usize = 8;
/// Embedding rows kept for alignment: the first eligible tokens in id order.
pub const ANCHOR_ROWS: usize = 4096;
/// Bounds on what a fingerprint file may declare (a hostile file must not make us allocate).
const MAX_HEADER: u64 = 512 << 20;
const MAX_BLOB: u64 = 4 << 30;

#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error("{path}: not a dokja fingerprint (bad magic bytes)")]
    NotAFingerprint { path: String },
    #[error("{path}: fingerprint version {found} is not supported (this dokja reads {VERSION})")]
    Version { path: String, found: u32 },
    #[error("{path}: truncated or corrupt fingerprint ({fault})")]
    Corrupt { path: String, fault: String },
    #[error("{path}: fingerprint lacks {what}")]
    Missing { path: String, what: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Parameters a fingerprint was made with; a comparison must use the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    pub seed: u64,
    pub sketch_dim: usize,
    pub query_units: usize,
    pub expert_queries: usize,
    pub max_experts: usize,
    pub anchor_rows: usize,
    pub samples: usize,
    pub expert_samples: usize,
}

impl Params {
    pub fn of(opts: &CompareOptions) -> Params {
        Params {
            seed: opts.seed,
            sketch_dim: opts.sketch_dim,
            query_units: opts.query_units,
            expert_queries: crate::subject::EXPERT_QUERIES,
            max_experts: MAX_EXPERTS,
            anchor_rows: ANCHOR_ROWS,
            samples: crate::identity::SAMPLES,
            expert_samples: crate::identity::EXPERT_SAMPLES,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceFile {
    pub name: String,
    pub bytes: u64,
    pub blake3: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Source {
    /// File or folder name of the model (not its full path: the bytes must not depend on
    /// where the model was stored).
    pub name: String,
    pub format: WeightsFormat,
    pub files: Vec<SourceFile>,
}

/// A little-endian array in the blob.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct ArrayRef {
    offset: u64,
    len: u64,
    f16: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PieceRecord {
    tensor: usize,
    row_start: u64,
    row_end: u64,
    exact: String,
    bf16: String,
    samples: ArrayRef,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SketchRecord {
    component: Component,
    slot: usize,
    units: usize,
    indices: Vec<u32>,
    cols: usize,
    rows: ArrayRef,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct MatrixRecord {
    component: Component,
    slot: usize,
    rows: usize,
    cols: usize,
    data: ArrayRef,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct AnchorRecord {
    tensor: usize,
    ids: Vec<u32>,
    width: usize,
    data: ArrayRef,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub tool: String,
    pub params: Params,
    pub source: Source,
    pub tensors: Vec<TensorInfo>,
    pub metadata: Metadata,
    pub sidecars: Sidecars,
    pieces: Vec<PieceRecord>,
    sketches: Vec<SketchRecord>,
    matrices: Vec<MatrixRecord>,
    anchors: Option<AnchorRecord>,
}

pub struct StoredPiece {
    pub digests: PieceDigests,
    pub samples: Vec<f32>,
}

struct StoredAnchors {
    tensor: usize,
    index: HashMap<u64, usize>,
    rows: Mat,
}

pub struct Fingerprint {
    pub header: Header,
    /// The model's description, without data.
    pub skeleton: Model,
    /// blake3 of the file's bytes: the fingerprint's identity.
    pub digest: String,
    /// Where it was read from (for messages).
    pub origin: String,
    pieces: HashMap<(usize, u64), StoredPiece>,
    sketches: HashMap<(Component, usize), QuerySketch>,
    matrices: HashMap<(Component, usize), Mat>,
    anchors: Option<StoredAnchors>,
}

/// A progress event while fingerprinting: `done` of `total` bytes of tensor data read.
pub type FingerprintProgress = std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>;

impl Fingerprint {
    pub fn params(&self) -> &Params {
        &self.header.params
    }

    pub(crate) fn missing(&self, what: &str) -> ProvenanceError {
        FingerprintError::Missing {
            path: self.origin.clone(),
            what: what.to_string(),
        }
        .into()
    }

    pub(crate) fn anchor_row(&self, tensor: usize, id: u64) -> Option<&[f32]> {
        let a = self.anchors.as_ref()?;
        if a.tensor != tensor {
            return None;
        }
        a.index.get(&id).map(|&i| a.rows.row(i))
    }

    pub(crate) fn matrix(&self, component: Component, slot: usize) -> Option<&Mat> {
        self.matrices.get(&(component, slot))
    }

    pub(crate) fn sketch(&self, component: Component, slot: usize) -> Option<&QuerySketch> {
        self.sketches.get(&(component, slot))
    }

    pub(crate) fn piece(&self, p: &Piece) -> Option<&StoredPiece> {
        self.pieces.get(&(p.tensor, p.rows.start))
    }

    /// Fingerprints a model in one streamed pass per tensor (digests, samples, query units
    /// and anchor rows from the same decoded chunks), tensors in parallel, while the files'
    /// digests are computed beside it. `progress` gets (bytes read, bytes to read).
    pub fn build(
        model: &Model,
        opts: &CompareOptions,
        progress: Option<FingerprintProgress>,
    ) -> Result<Fingerprint> {
        use crate::onepass::{Projections, TensorJob, finish_sketch, tensor_pass};
        let slots = ModelSlots::of(model);
        let plan = Plan::of(&slots, opts);
        let mut jobs: std::collections::BTreeMap<usize, TensorJob<'_>> = Default::default();
        let job = |tensor: usize| TensorJob {
            tensor,
            pieces: Vec::new(),
            slots: Vec::new(),
            anchors: None,
        };
        for (i, p) in plan.pieces.iter().enumerate() {
            jobs.entry(p.tensor)
                .or_insert_with(|| job(p.tensor))
                .pieces
                .push((i, p));
        }
        for (i, (_, _, s)) in plan.kept.iter().enumerate() {
            let indices = crate::units::queries(
                s.units_by_width().0,
                crate::subject::query_budget(s, opts),
                crate::units::slot_seed(opts.seed, s),
            );
            jobs.entry(s.tensor)
                .or_insert_with(|| job(s.tensor))
                .slots
                .push((i, s, indices));
        }
        if let Some((tensor, ids)) = &plan.anchors {
            jobs.entry(*tensor).or_insert_with(|| job(*tensor)).anchors = Some(ids.as_slice());
        }
        // In file order, so the pass walks each shard front to back.
        let mut jobs: Vec<TensorJob<'_>> = jobs.into_values().collect();
        jobs.sort_by_key(|j| (model.tensors[j.tensor].file, model.tensors[j.tensor].offset));
        let total: u64 = jobs.iter().map(|j| model.tensors[j.tensor].byte_len).sum();
        let done = std::sync::atomic::AtomicU64::new(0);
        let advance = |bytes: u64| {
            let d = done.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed) + bytes;
            if let Some(p) = &progress {
                p(d.min(total), total);
            }
        };
        let projections = Projections::new(opts.sketch_dim, opts.seed);
        let (files, results) = rayon::join(
            || file_digests(model),
            || {
                jobs.par_iter()
                    .map(|job| {
                        let r = tensor_pass(model, job, opts.seed, &advance)?;
                        let mut sketches = Vec::with_capacity(r.units.len());
                        for ((index, units), (_, slot, indices)) in r.units.iter().zip(&job.slots) {
                            let g = projections.get(slot.units_by_width().1)?;
                            sketches
                                .push((*index, finish_sketch(slot, indices.clone(), units, &g)?));
                        }
                        Ok((r.pieces, sketches, r.anchors))
                    })
                    .collect::<Result<Vec<_>>>()
            },
        );
        let mut pieces: Vec<Option<StoredPiece>> = (0..plan.pieces.len()).map(|_| None).collect();
        let mut sketches: Vec<Option<QuerySketch>> = (0..plan.kept.len()).map(|_| None).collect();
        let mut anchors = None;
        for (ps, ss, a) in results? {
            for (i, digests, samples) in ps {
                pieces[i] = Some(StoredPiece { digests, samples });
            }
            for (i, q) in ss {
                sketches[i] = Some(q);
            }
            if a.is_some() {
                anchors = a;
            }
        }
        let matrices = plan
            .full
            .iter()
            .map(|(component, i, s)| Subject::Weights(model).matrix(*component, *i, s))
            .collect::<Result<Vec<_>>>()?;
        let values = Values {
            files: files?,
            pieces: pieces
                .into_iter()
                .map(|p| p.expect("every piece has a job"))
                .collect(),
            sketches: sketches
                .into_iter()
                .map(|q| q.expect("every kept matrix has a job"))
                .collect(),
            matrices,
            anchors,
        };
        // Serialize and read back: the in-memory fingerprint is exactly what the file holds
        // (f16 rounding included), so comparisons from memory and from file agree.
        let bytes = assemble(model, opts, &plan, &values)?;
        Fingerprint::from_bytes(&bytes, "(in memory)")
    }

    /// The exact size in bytes the fingerprint of `model` will have, computed from its
    /// description alone (no weights are read): the layout depends on shapes, the tokenizer
    /// and the seed, never on values. Works on a skeleton.
    pub fn planned_bytes(model: &Model, opts: &CompareOptions) -> Result<u64> {
        let slots = ModelSlots::of(model);
        let plan = Plan::of(&slots, opts);
        let placeholder = "0".repeat(64);
        let values = Values {
            files: model
                .files
                .iter()
                .map(|f| SourceFile {
                    name: file_name(model, &f.path),
                    bytes: std::fs::metadata(&f.path).map_or(0, |m| m.len()),
                    blake3: placeholder.clone(),
                })
                .collect(),
            pieces: plan
                .pieces
                .iter()
                .map(|p| StoredPiece {
                    digests: PieceDigests {
                        exact: placeholder.clone(),
                        bf16: placeholder.clone(),
                    },
                    samples: vec![0.0; crate::identity::sample_positions(p, opts.seed).len()],
                })
                .collect(),
            sketches: plan
                .kept
                .iter()
                .map(|(_, _, s)| {
                    let (n_units, width) = s.units_by_width();
                    let indices = crate::units::queries(
                        n_units,
                        crate::subject::query_budget(s, opts),
                        crate::units::slot_seed(opts.seed, s),
                    );
                    QuerySketch {
                        n_units,
                        rows: Mat::zeros(indices.len(), width.min(opts.sketch_dim)),
                        indices,
                    }
                })
                .collect(),
            matrices: plan
                .full
                .iter()
                .map(|(_, _, s)| Mat::zeros(s.stored.0, s.stored.1))
                .collect(),
            anchors: plan.anchors.as_ref().map(|(tensor, ids)| {
                Mat::zeros(ids.len(), model.tensors[*tensor].row_len() as usize)
            }),
        };
        Ok(assemble(model, opts, &plan, &values)?.len() as u64)
    }

    /// The file's bytes (deterministic).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // Re-encoding reproduces the bytes: the blob is rebuilt in the header's order.
        let mut blob = Blob::default();
        let mut header = self.header.clone();
        for rec in &mut header.pieces {
            rec.samples = blob.push_f32(&self.pieces[&(rec.tensor, rec.row_start)].samples);
        }
        for rec in &mut header.sketches {
            rec.rows = blob.push_f16(self.sketches[&(rec.component, rec.slot)].rows.as_slice());
        }
        for rec in &mut header.matrices {
            rec.data = blob.push_f16(self.matrices[&(rec.component, rec.slot)].as_slice());
        }
        if let (Some(rec), Some(a)) = (header.anchors.as_mut(), self.anchors.as_ref()) {
            rec.data = blob.push_f16(a.rows.as_slice());
        }
        encode(&header, &blob.bytes)
    }

    /// Writes the file atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> std::result::Result<(), FingerprintError> {
        let io = |source| FingerprintError::Io {
            path: path.display().to_string(),
            source,
        };
        let bytes = self.to_bytes().map_err(|e| FingerprintError::Corrupt {
            path: path.display().to_string(),
            fault: e.to_string(),
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile_in(dir).map_err(io)?;
        tmp.1.write_all(&bytes).map_err(io)?;
        tmp.1.sync_all().map_err(io)?;
        std::fs::rename(&tmp.0, path).map_err(io)?;
        Ok(())
    }

    pub fn read(path: &Path) -> std::result::Result<Fingerprint, ProvenanceError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| FingerprintError::Io {
            path: name.clone(),
            source,
        })?;
        if meta.len() > MAX_HEADER + MAX_BLOB + 64 {
            return Err(FingerprintError::Corrupt {
                path: name,
                fault: format!("{} bytes is larger than any fingerprint", meta.len()),
            }
            .into());
        }
        let bytes = std::fs::read(path).map_err(|source| FingerprintError::Io {
            path: name.clone(),
            source,
        })?;
        Fingerprint::from_bytes(&bytes, &name)
    }

    /// Whether a file starts like a fingerprint (cheap check before choosing a reader).
    pub fn sniff(path: &Path) -> bool {
        use std::io::Read;
        let mut magic = [0u8; 8];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
            && &magic == MAGIC
    }

    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Fingerprint> {
        let corrupt = |fault: &str| -> ProvenanceError {
            FingerprintError::Corrupt {
                path: origin.to_string(),
                fault: fault.to_string(),
            }
            .into()
        };
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(FingerprintError::NotAFingerprint {
                path: origin.to_string(),
            }
            .into());
        }
        if bytes.len() < 8 + 4 + 4 + 8 + 8 + 32 {
            return Err(corrupt("file too short"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(FingerprintError::Version {
                path: origin.to_string(),
                found: version,
            }
            .into());
        }
        let (body, trailer) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != trailer {
            return Err(corrupt(
                "digest mismatch: the file was truncated or altered",
            ));
        }
        let header_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        if header_len > MAX_HEADER || 24 + header_len + 8 > body.len() as u64 {
            return Err(corrupt("header length out of bounds"));
        }
        let header_end = 24 + header_len as usize;
        let header: Header = serde_json::from_slice(&bytes[24..header_end])
            .map_err(|e| corrupt(&format!("header: {e}")))?;
        if header.format != "dokja-fingerprint" {
            return Err(corrupt("header does not describe a dokja fingerprint"));
        }
        let blob_len = u64::from_le_bytes(
            bytes[header_end..header_end + 8]
                .try_into()
                .expect("8 bytes"),
        );
        let blob = &body[header_end + 8..];
        if blob_len != blob.len() as u64 {
            return Err(corrupt("blob length disagrees with the file size"));
        }
        let n_tensors = header.tensors.len();
        let f32s = |r: &ArrayRef, what: &str| -> Result<Vec<f32>> {
            read_array(blob, r).ok_or_else(|| corrupt(&format!("{what}: array out of bounds")))
        };
        let mut pieces = HashMap::with_capacity(header.pieces.len());
        for p in &header.pieces {
            if p.tensor >= n_tensors {
                return Err(corrupt("piece refers to a tensor that does not exist"));
            }
            pieces.insert(
                (p.tensor, p.row_start),
                StoredPiece {
                    digests: PieceDigests {
                        exact: p.exact.clone(),
                        bf16: p.bf16.clone(),
                    },
                    samples: f32s(&p.samples, "samples")?,
                },
            );
        }
        let mut sketches = HashMap::with_capacity(header.sketches.len());
        for s in &header.sketches {
            let data = f32s(&s.rows, "sketch")?;
            let n = s.indices.len();
            if s.cols == 0
                || data.len() != n * s.cols
                || s.indices.iter().any(|&i| i as usize >= s.units)
            {
                return Err(corrupt("sketch dimensions disagree"));
            }
            sketches.insert(
                (s.component, s.slot),
                QuerySketch {
                    n_units: s.units,
                    indices: s.indices.iter().map(|&i| i as usize).collect(),
                    rows: Mat::from_vec(n, s.cols, data)?,
                },
            );
        }
        let mut matrices = HashMap::with_capacity(header.matrices.len());
        for m in &header.matrices {
            let data = f32s(&m.data, "matrix")?;
            if data.len() != m.rows.saturating_mul(m.cols) {
                return Err(corrupt("matrix dimensions disagree"));
            }
            matrices.insert((m.component, m.slot), Mat::from_vec(m.rows, m.cols, data)?);
        }
        let anchors = match &header.anchors {
            None => None,
            Some(a) => {
                let data = f32s(&a.data, "anchors")?;
                if a.tensor >= n_tensors || data.len() != a.ids.len().saturating_mul(a.width) {
                    return Err(corrupt("anchor dimensions disagree"));
                }
                Some(StoredAnchors {
                    tensor: a.tensor,
                    index: a
                        .ids
                        .iter()
                        .enumerate()
                        .map(|(i, &id)| (id as u64, i))
                        .collect(),
                    rows: Mat::from_vec(a.ids.len(), a.width, data)?,
                })
            }
        };
        let skeleton = Model::skeleton(
            PathBuf::from(&header.source.name),
            header.source.format,
            header.tensors.clone(),
            header.metadata.clone(),
            header.sidecars.clone(),
        );
        Ok(Fingerprint {
            digest: blake3::hash(bytes).to_hex().to_string(),
            origin: origin.to_string(),
            header,
            skeleton,
            pieces,
            sketches,
            matrices,
            anchors,
        })
    }

    /// Bytes of the model the fingerprint was made from.
    pub fn model_bytes(&self) -> u64 {
        self.header.source.files.iter().map(|f| f.bytes).sum()
    }
}

/// What a fingerprint of a model will hold, decided from the model's description alone.
struct Plan {
    pieces: Vec<Piece>,
    /// Matrices whose query units are kept.
    kept: Vec<(Component, usize, Slot)>,
    /// Matrices kept whole (patch and position embeddings: encoder anchors).
    full: Vec<(Component, usize, Slot)>,
    anchors: Option<(usize, Vec<u64>)>,
}

impl Plan {
    fn of(slots: &ModelSlots<'_>, opts: &CompareOptions) -> Plan {
        let model = slots.model;
        // Pieces: every learned piece of every component, unclassified learned tensors
        // (content pairing) and small buffers (shared-buffer finding).
        let mut all_pieces: Vec<Piece> = Vec::new();
        for &component in slots.components.keys() {
            all_pieces.extend(pieces(slots, component).into_values());
        }
        for (i, (t, c)) in model.tensors.iter().zip(&slots.classes).enumerate() {
            let unclassified = c.learned && c.component == Component::Unclassified;
            let buffer = !c.learned && t.n_elements() <= 1 << 20;
            if unclassified || buffer {
                all_pieces.push(Piece {
                    tensor: i,
                    rows: 0..t.n_rows(),
                    shape: t.shape.clone(),
                    expert: false,
                });
            }
        }
        all_pieces.sort_by_key(|p| (p.tensor, p.rows.start));
        all_pieces.dedup_by_key(|p| (p.tensor, p.rows.start));

        // Matrices whose units are kept: all but routed experts beyond the per-layer sample.
        let mut kept = Vec::new();
        let mut full = Vec::new();
        for (&component, comp) in &slots.components {
            let mut experts: HashMap<(Kind, Option<u32>), Vec<u32>> = HashMap::new();
            for s in &comp.matrices {
                if let (Some(e), false) = (s.expert, s.shared_expert) {
                    experts.entry((s.kind, s.layer)).or_default().push(e);
                }
            }
            let chosen: HashMap<(Kind, Option<u32>), Vec<u32>> = experts
                .into_iter()
                .map(|(k, mut v)| {
                    v.sort_unstable();
                    v.dedup();
                    if v.len() > MAX_EXPERTS {
                        let pick = dokja_stats::random::sample_indices(
                            opts.seed ^ 0xE8E8,
                            v.len(),
                            MAX_EXPERTS,
                        )
                        .expect("MAX_EXPERTS < len");
                        v = pick.into_iter().map(|i| v[i]).collect();
                    }
                    (k, v)
                })
                .collect();
            for (i, s) in comp.matrices.iter().enumerate() {
                if matches!(s.kind, Kind::PatchEmbedding | Kind::PositionEmbedding) {
                    full.push((component, i, s.clone()));
                    continue;
                }
                if let (Some(e), false) = (s.expert, s.shared_expert)
                    && !chosen[&(s.kind, s.layer)].contains(&e)
                {
                    continue;
                }
                kept.push((component, i, s.clone()));
            }
        }
        Plan {
            pieces: all_pieces,
            kept,
            full,
            anchors: anchor_ids(slots),
        }
    }
}

/// The values a plan asks for, in plan order.
struct Values {
    files: Vec<SourceFile>,
    pieces: Vec<StoredPiece>,
    sketches: Vec<QuerySketch>,
    matrices: Vec<Mat>,
    anchors: Option<Mat>,
}

fn assemble(model: &Model, opts: &CompareOptions, plan: &Plan, values: &Values) -> Result<Vec<u8>> {
    let mut blob = Blob::default();
    let metadata: Metadata = model
        .metadata
        .iter()
        .filter(|(_, v)| v.as_array().is_none_or(|a| a.len() <= 64))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let header =
        Header {
            format: "dokja-fingerprint".into(),
            version: VERSION,
            tool: format!("dokja {}", env!("CARGO_PKG_VERSION")),
            params: Params::of(opts),
            source: Source {
                name: model
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                format: model.format,
                files: values.files.clone(),
            },
            tensors: model.tensors.clone(),
            metadata,
            // The folder is where the model happened to be stored: not part of the model.
            sidecars: Sidecars {
                folder: None,
                ..model.sidecars.clone()
            },
            pieces: plan
                .pieces
                .iter()
                .zip(&values.pieces)
                .map(|(piece, p)| PieceRecord {
                    tensor: piece.tensor,
                    row_start: piece.rows.start,
                    row_end: piece.rows.end,
                    exact: p.digests.exact.clone(),
                    bf16: p.digests.bf16.clone(),
                    samples: blob.push_f32(&p.samples),
                })
                .collect(),
            sketches: plan
                .kept
                .iter()
                .zip(&values.sketches)
                .map(|((component, slot, _), q)| SketchRecord {
                    component: *component,
                    slot: *slot,
                    units: q.n_units,
                    indices: q.indices.iter().map(|&i| i as u32).collect(),
                    cols: q.rows.cols(),
                    rows: blob.push_f16(q.rows.as_slice()),
                })
                .collect(),
            matrices: plan
                .full
                .iter()
                .zip(&values.matrices)
                .map(|((component, slot, _), m)| MatrixRecord {
                    component: *component,
                    slot: *slot,
                    rows: m.rows(),
                    cols: m.cols(),
                    data: blob.push_f16(m.as_slice()),
                })
                .collect(),
            anchors: plan.anchors.as_ref().zip(values.anchors.as_ref()).map(
                |((tensor, ids), rows)| AnchorRecord {
                    tensor: *tensor,
                    ids: ids.iter().map(|&i| i as u32).collect(),
                    width: rows.cols(),
                    data: blob.push_f16(rows.as_slice()),
                },
            ),
        };
    encode(&header, &blob.bytes)
}

fn encode(header: &Header, blob: &[u8]) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(header).map_err(|e| FingerprintError::Corrupt {
        path: "(encoding)".into(),
        fault: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(8 + 16 + json.len() + 8 + blob.len() + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    out.extend_from_slice(blob);
    let digest = blake3::hash(&out);
    out.extend_from_slice(digest.as_bytes());
    Ok(out)
}

#[derive(Default)]
struct Blob {
    bytes: Vec<u8>,
}

impl Blob {
    fn push_f32(&mut self, v: &[f32]) -> ArrayRef {
        let offset = self.bytes.len() as u64;
        self.bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        ArrayRef {
            offset,
            len: v.len() as u64,
            f16: false,
        }
    }
    fn push_f16(&mut self, v: &[f32]) -> ArrayRef {
        let offset = self.bytes.len() as u64;
        self.bytes
            .extend(v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()));
        ArrayRef {
            offset,
            len: v.len() as u64,
            f16: true,
        }
    }
}

fn read_array(blob: &[u8], r: &ArrayRef) -> Option<Vec<f32>> {
    let width = if r.f16 { 2 } else { 4 };
    let bytes = r.len.checked_mul(width)?;
    let end = r.offset.checked_add(bytes)?;
    if end > blob.len() as u64 {
        return None;
    }
    let slice = &blob[r.offset as usize..end as usize];
    let out: Vec<f32> = if r.f16 {
        slice
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()
    } else {
        slice
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    out.iter().all(|v| v.is_finite()).then_some(out)
}

/// The first eligible rows of the language model's token embedding (or head): what token
/// anchors read.
fn anchor_ids(slots: &ModelSlots<'_>) -> Option<(usize, Vec<u64>)> {
    let comp = slots.components.get(&Component::LanguageModel)?;
    let tensor = comp.token_embedding.or(comp.lm_head)?;
    let tok = slots.model.sidecars.tokenizer.as_ref()?;
    let t = &slots.model.tensors[tensor];
    let special: std::collections::HashSet<u32> = tok.special_tokens.iter().map(|s| s.id).collect();
    let ids: Vec<u64> = (0..tok.vocab.len())
        .filter(|&id| {
            !special.contains(&(id as u32))
                && (id as u64) < t.shape[0]
                && !tok.vocab[id].is_empty()
                && tok.normalized(id).is_some()
        })
        .take(ANCHOR_ROWS)
        .map(|id| id as u64)
        .collect();
    (!ids.is_empty()).then_some((tensor, ids))
}

fn file_name(model: &Model, path: &Path) -> String {
    let base = if model.path.is_dir() {
        model.path.as_path()
    } else {
        model.path.parent().unwrap_or(Path::new(""))
    };
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Name (relative to the model's folder), size and blake3 of each of the model's files: what
/// makes a fingerprint or an audit reproducible.
pub fn file_digests(model: &Model) -> Result<Vec<SourceFile>> {
    model
        .files
        .par_iter()
        .map(|f| {
            let io = |source| FingerprintError::Io {
                path: f.path.display().to_string(),
                source,
            };
            let mut hasher = blake3::Hasher::new();
            let mut file = std::fs::File::open(&f.path).map_err(io)?;
            let bytes = std::io::copy(&mut file, &mut hasher).map_err(io)?;
            Ok(SourceFile {
                name: file_name(model, &f.path),
                bytes,
                blake3: hasher.finalize().to_hex().to_string(),
            })
        })
        .collect()
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    for attempt in 0..100u32 {
        let path = dir.join(format!(
            ".dokja-fingerprint-{}-{attempt}.tmp",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("could not create a temporary file"))
}

/// What a fingerprint says of its model, in a few words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Described {
    pub model: String,
    pub family: String,
    /// Learned parameters.
    pub parameters: u64,
    pub components: Vec<String>,
}

impl Fingerprint {
    pub fn describe(&self) -> Described {
        let slots = ModelSlots::of(&self.skeleton);
        Described {
            model: self.header.source.name.clone(),
            family: slots.family.display_name().to_string(),
            parameters: self
                .skeleton
                .tensors
                .iter()
                .zip(&slots.classes)
                .filter(|(_, c)| c.learned)
                .map(|(t, _)| t.n_elements())
                .sum(),
            components: slots
                .components
                .keys()
                .filter(|c| **c != Component::Unclassified)
                .map(|c| c.as_str().to_string())
                .collect(),
        }
    }
}
