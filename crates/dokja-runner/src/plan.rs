//! From a [`RunConfig`] to the list of requests a run must answer: task selection, data file
//! resolution, item loading, the `--limit` sample, requests, and the digests a resume checks.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dokja_tasks::prompt::{SplitMix64, fnv1a};
use dokja_tasks::spec::McMethod;
use dokja_tasks::suites::SUITE_FILES;
use dokja_tasks::{Item, PromptMode, Request, TaskDef, TaskFile};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RunnerError};

/// What a run is: stored with the run, so `--resume` rebuilds the same plan from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Task selectors: a task file name (`kmmlu`), a suite, a task (`kmmlu/Criminal-Law`) or
    /// its normalized form (`kmmlu-criminal-law`).
    pub tasks: Vec<String>,
    /// Task files of the user's, in addition to the shipped suites.
    #[serde(default)]
    pub task_files: Vec<PathBuf>,
    /// The folder holding the benchmark files.
    pub data_dir: PathBuf,
    /// Explicit data files for a task (task name -> files), overriding resolution.
    #[serde(default)]
    pub data_files: BTreeMap<String, Vec<PathBuf>>,
    /// At most this many items per task: a seeded sample, kept in file order.
    pub limit: Option<usize>,
    /// Seeds the `--limit` sample and the bootstrap intervals of the results.
    pub seed: u64,
    /// Chat or completion prompts; `None` uses each task file's default.
    pub prompt_mode: Option<PromptMode>,
    /// Name reference registries match; default the backend's model name.
    pub label: Option<String>,
}

/// One item to answer.
#[derive(Debug, Clone)]
pub struct PlannedItem {
    pub task: usize,
    /// The sample's key within the task: the item id, with `#2`, `#3`, ... appended to the
    /// second and later items sharing an id (CLIcK repeats some ids), in file order.
    pub key: String,
    pub item: Item,
    pub request: Request,
}

/// One task of the plan.
#[derive(Debug, Clone)]
pub struct TaskPlan {
    pub def: TaskDef,
    pub suite: String,
    pub mode: PromptMode,
    pub task_file_digest: String,
    /// (path, blake3) of every data file read.
    pub data_files: Vec<(PathBuf, String)>,
    /// All items of the task: the few-shot pool (also for fallback generation requests).
    pub pool: Arc<Vec<Item>>,
    pub n_items: usize,
}

impl TaskPlan {
    /// The generation request used when the backend cannot return log-likelihoods.
    pub fn generation_request(&self, item: &Item) -> Result<Request> {
        let mut def = self.def.clone();
        def.file.scoring.method = McMethod::Generate;
        Ok(def.build_request(item, &self.pool, self.mode)?)
    }

    /// The same task scored by generation (for fallback scoring).
    pub fn generation_def(&self) -> TaskDef {
        let mut def = self.def.clone();
        def.file.scoring.method = McMethod::Generate;
        def
    }
}

/// The whole plan, with the digests stored in the run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub tasks: Vec<TaskPlan>,
    pub items: Vec<PlannedItem>,
    pub tasks_digest: String,
    pub data_digest: String,
    pub prompts_digest: String,
}

/// Lowercase, with `/`, `_` and spaces as `-`: `kmmlu/Criminal-Law` -> `kmmlu-criminal-law`.
pub fn normalize_name(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '/' | '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn digest_str(s: &str) -> String {
    blake3::hash(s.as_bytes()).to_hex().to_string()
}

/// blake3 of a file's bytes, streamed.
pub fn digest_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|source| RunnerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut h = blake3::Hasher::new();
    std::io::copy(&mut f, &mut h).map_err(|source| RunnerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(h.finalize().to_hex().to_string())
}

fn all_task_files(config: &RunConfig) -> Result<Vec<TaskFile>> {
    let mut files = Vec::new();
    for (name, text) in SUITE_FILES {
        files.push(TaskFile::parse(text, &Path::new("suites").join(name))?);
    }
    for p in &config.task_files {
        files.push(TaskFile::load(p)?);
    }
    Ok(files)
}

/// The tasks the selectors name, in selector order, each once.
pub fn select_tasks(config: &RunConfig) -> Result<Vec<TaskDef>> {
    let files = all_task_files(config)?;
    let mut out: Vec<TaskDef> = Vec::new();
    let mut seen = HashSet::new();
    for selector in &config.tasks {
        let want = normalize_name(selector.trim());
        let mut matched = false;
        for f in &files {
            let whole = normalize_name(&f.task.name) == want
                || f.task.suite.as_deref().map(normalize_name) == Some(want.clone());
            for def in f.expand() {
                if whole || normalize_name(&def.name) == want {
                    matched = true;
                    if seen.insert(def.name.clone()) {
                        out.push(def);
                    }
                }
            }
        }
        if !matched {
            let known: Vec<String> = files.iter().map(|f| f.task.name.clone()).collect();
            return Err(RunnerError::UnknownTask {
                name: selector.clone(),
                known: known.join(", "),
            });
        }
    }
    if out.is_empty() {
        return Err(RunnerError::Usage("no tasks selected".into()));
    }
    Ok(out)
}

const DATA_EXTENSIONS: &[&str] = &["json", "jsonl", "csv", "parquet"];

/// The data files of a task: explicit ones, else the task file's paths under
/// `<data>/<task file name>/` or `<data>/`, else (for a subset) the one data file in
/// `<data>/<task file name>/` whose name starts with the subset (`criminal_law_test.json` for
/// KMMLU's `Criminal-Law`).
pub fn resolve_data(def: &TaskDef, config: &RunConfig) -> Result<Vec<PathBuf>> {
    let explicit = config
        .data_files
        .iter()
        .find(|(k, _)| k.as_str() == def.name || normalize_name(k) == normalize_name(&def.name));
    if let Some((_, files)) = explicit {
        return Ok(files.clone());
    }
    let own_dir = config.data_dir.join(&def.file.task.name);
    let mut tried = Vec::new();
    for root in [&own_dir, &config.data_dir] {
        let paths = def.data_paths(root);
        if !paths.is_empty() && paths.iter().all(|p| p.is_file()) {
            return Ok(paths);
        }
        tried.extend(paths);
    }
    if let Some(subset) = &def.subset {
        let want = normalize_name(subset);
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&own_dir) {
            for e in entries.flatten() {
                let p = e.path();
                let ext_ok = p
                    .extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| DATA_EXTENSIONS.contains(&x));
                let stem = p
                    .file_stem()
                    .map(|s| normalize_name(&s.to_string_lossy()))
                    .unwrap_or_default();
                if ext_ok && p.is_file() && stem.starts_with(&want) {
                    found.push(p);
                }
            }
        }
        if found.len() == 1 {
            return Ok(found);
        }
        tried.push(own_dir.join(format!("{want}*")));
    }
    Err(RunnerError::Data {
        task: def.name.clone(),
        message: format!(
            "data files not found; looked for {} (give them with --file {}=PATH)",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            def.name
        ),
    })
}

/// Keeps at most `limit` items: those with the smallest seeded hash of their id, in file
/// order, so the sample does not depend on the file's order.
fn sample_items(items: &[Item], limit: Option<usize>, seed: u64) -> Vec<usize> {
    let n = items.len();
    match limit {
        Some(l) if l < n => {
            let mut ranked: Vec<(u64, usize)> = items
                .iter()
                .enumerate()
                .map(|(i, it)| (SplitMix64::new(seed ^ fnv1a(&it.id)).next_u64(), i))
                .collect();
            ranked.sort_unstable();
            let mut keep: Vec<usize> = ranked[..l].iter().map(|r| r.1).collect();
            keep.sort_unstable();
            keep
        }
        _ => (0..n).collect(),
    }
}

/// Unique sample keys: ids, repeated ids suffixed by their occurrence (`id#2`), never
/// colliding with an id of the file.
fn sample_keys(items: &[Item]) -> Vec<String> {
    let ids: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let mut used: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let mut key = it.id.clone();
        let mut k = 1;
        while used.contains(&key) || (k > 1 && ids.contains(key.as_str())) {
            k += 1;
            key = format!("{}#{k}", it.id);
        }
        used.insert(key.clone());
        out.push(key);
    }
    out
}

/// Builds the plan: loads every selected task's items and builds their requests.
pub fn build_plan(config: &RunConfig) -> Result<Plan> {
    let defs = select_tasks(config)?;
    let mut tasks = Vec::new();
    let mut items_out = Vec::new();
    let mut tasks_hasher = blake3::Hasher::new();
    let mut data_hasher = blake3::Hasher::new();
    let mut prompts_hasher = blake3::Hasher::new();
    for (ti, def) in defs.into_iter().enumerate() {
        let paths = resolve_data(&def, config)?;
        let mut data_files = Vec::new();
        for p in &paths {
            let d = digest_file(p)?;
            data_hasher.update(def.name.as_bytes());
            data_hasher.update(&[0]);
            data_hasher.update(d.as_bytes());
            data_files.push((p.clone(), d));
        }
        let items = def.load_items(&paths)?;
        if items.is_empty() {
            return Err(RunnerError::Data {
                task: def.name.clone(),
                message: "no items in its data files".into(),
            });
        }
        let keys = sample_keys(&items);
        let mode = config.prompt_mode.unwrap_or(def.file.prompt.mode);
        let keep = sample_items(&items, config.limit, config.seed);
        let requests: Vec<Request> = if keep.len() == items.len() {
            def.build_requests(&items, mode)?
        } else {
            keep.iter()
                .map(|&i| def.build_request(&items[i], &items, mode))
                .collect::<dokja_tasks::Result<_>>()?
        };
        let file_json = serde_json::to_string(&def.file).unwrap_or_default();
        let task_file_digest = digest_str(&format!("{}\0{}", def.name, file_json));
        tasks_hasher.update(task_file_digest.as_bytes());
        let n_items = keep.len();
        for (&i, request) in keep.iter().zip(requests) {
            prompts_hasher.update(
                serde_json::to_string(&request)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            prompts_hasher.update(b"\n");
            items_out.push(PlannedItem {
                task: ti,
                key: keys[i].clone(),
                item: items[i].clone(),
                request,
            });
        }
        let suite = def
            .file
            .task
            .suite
            .clone()
            .unwrap_or_else(|| def.file.task.name.clone());
        tasks.push(TaskPlan {
            def,
            suite,
            mode,
            task_file_digest,
            data_files,
            pool: Arc::new(items),
            n_items,
        });
    }
    Ok(Plan {
        tasks,
        items: items_out,
        tasks_digest: tasks_hasher.finalize().to_hex().to_string(),
        data_digest: data_hasher.finalize().to_hex().to_string(),
        prompts_digest: prompts_hasher.finalize().to_hex().to_string(),
    })
}
