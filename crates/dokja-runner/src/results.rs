//! Results of a run, computed from its stored samples only: per task and per suite with
//! `dokja-evalstats`, and the 95% rule against reference runs. The JSON form is documented in
//! `docs/bench-results.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use dokja_evalstats::{
    Averaging, Date, IntervalConfig, ItemObs, RatioRule, ReferenceRegistry, ReleaseWindow,
    SuiteSummary, TaskScores, TaskSummary, ratio_rule, summarize_suite,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RunnerError};
use crate::store::{RunRecord, RunTask, SampleCounts, SampleRow, SampleStatus, Store};

/// Identifies the JSON layout of [`BenchResults`].
pub const RESULTS_SCHEMA: &str = "dokja-bench-results/1";

/// The 95% rule's threshold.
pub const RULE_THRESHOLD: f64 = 0.95;

/// Results of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResults {
    pub schema: String,
    pub run: RunRecord,
    pub counts: SampleCounts,
    /// Every planned sample is stored as done (no failed or missing sample).
    pub complete: bool,
    pub intervals: IntervalConfig,
    pub tasks: Vec<TaskResult>,
    pub suites: Vec<SuiteSummary>,
    pub comparisons: Vec<ReferenceComparison>,
    pub registry: Option<RegistryWindow>,
}

/// One task's score and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub suite: String,
    pub kind: String,
    pub planned: usize,
    /// Samples stored as failed (backend or scoring error): not scored.
    pub failed: usize,
    pub cached: usize,
    /// Means of the secondary metrics (IFEval: prompt_loose, instruction_strict, ...).
    pub secondary: BTreeMap<String, f64>,
    pub summary: TaskSummary,
}

/// The 95% rule against one reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceComparison {
    /// The reference's name: its run label, or the registry's model name.
    pub reference: String,
    /// The reference run used, if any.
    pub run_id: Option<String>,
    /// `run` (given with --reference) or `registry` (eligible in the registry window).
    pub source: String,
    pub release_date: Option<Date>,
    /// Suites present in both runs: the units of the rule, each weighted equally.
    pub suites: Vec<String>,
    /// Suites of the candidate missing from the reference run.
    pub missing_suites: Vec<String>,
    /// The reference's own suite scores (same averaging), for the plot.
    pub reference_suites: Vec<SuiteSummary>,
    pub rule: Option<RatioRule>,
    /// Why there is no rule (no run for a registry model, different items, ...).
    pub error: Option<String>,
}

/// The reference registry window used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryWindow {
    pub evaluation_date: Date,
    pub window: ReleaseWindow,
    pub eligible: Vec<String>,
}

/// How results are computed.
#[derive(Debug, Clone, Default)]
pub struct ResultOptions {
    pub intervals: IntervalConfig,
    /// Suite averaging; `None`: macro (each task weighted equally, KMMLU's and the 95% rule's
    /// convention). Single-task suites are the same either way.
    pub averaging: Option<Averaging>,
}

/// A reference given on the command line.
#[derive(Debug, Clone)]
pub enum ReferenceSpec {
    Run(String),
    Registry {
        registry: ReferenceRegistry,
        evaluation_date: Date,
    },
}

struct Scored {
    run: RunRecord,
    tasks: Vec<RunTask>,
    samples: Vec<SampleRow>,
}

fn load(store: &Store, run_id: &str) -> Result<Scored> {
    Ok(Scored {
        run: store.run(run_id)?,
        tasks: store.run_tasks(run_id)?,
        samples: store.samples(run_id)?,
    })
}

impl Scored {
    /// Done samples of each task as evalstats observations, tasks in plan order.
    fn task_scores(&self) -> Vec<(RunTask, TaskScores)> {
        self.tasks
            .iter()
            .map(|t| {
                let items = self
                    .samples
                    .iter()
                    .filter(|s| s.task == t.task && s.status == SampleStatus::Done)
                    .map(|s| ItemObs {
                        id: s.item_id.clone(),
                        cluster: s.cluster.clone(),
                        score: s.score.unwrap_or(0.0),
                        extraction_failed: s.extraction_failed,
                    })
                    .collect();
                (
                    t.clone(),
                    TaskScores {
                        task: t.task.clone(),
                        items,
                    },
                )
            })
            .collect()
    }

    fn suites(&self, opts: &ResultOptions) -> Result<Vec<SuiteSummary>> {
        let mut by_suite: BTreeMap<String, Vec<TaskScores>> = BTreeMap::new();
        let mut order = Vec::new();
        for (t, s) in self.task_scores() {
            if s.items.is_empty() {
                continue;
            }
            if !by_suite.contains_key(&t.suite) {
                order.push(t.suite.clone());
            }
            by_suite.entry(t.suite.clone()).or_default().push(s);
        }
        order
            .iter()
            .map(|suite| {
                let averaging = opts.averaging.unwrap_or(Averaging::Macro);
                Ok(summarize_suite(
                    suite,
                    &by_suite[suite],
                    averaging,
                    &opts.intervals,
                )?)
            })
            .collect()
    }

    /// A suite's items as one unit for the 95% rule: ids and clusters qualified by task.
    fn suite_unit(&self, suite: &str) -> TaskScores {
        let mut items = Vec::new();
        for (t, s) in self.task_scores() {
            if t.suite != suite {
                continue;
            }
            for i in s.items {
                let cluster = format!("{}\u{1f}{}", t.task, i.cluster.as_deref().unwrap_or(&i.id));
                items.push(ItemObs {
                    id: format!("{}\u{1f}{}", t.task, i.id),
                    cluster: Some(cluster),
                    score: i.score,
                    extraction_failed: i.extraction_failed,
                });
            }
        }
        TaskScores {
            task: suite.to_string(),
            items,
        }
    }
}

/// Computes the results of `run_id` and the 95% rule against each reference.
pub fn compute_results(
    store: &Store,
    run_id: &str,
    references: &[ReferenceSpec],
    opts: &ResultOptions,
) -> Result<BenchResults> {
    let cand = load(store, run_id)?;
    let counts = store.counts(run_id)?;
    let mut tasks = Vec::new();
    for (t, scores) in cand.task_scores() {
        let rows: Vec<&SampleRow> = cand.samples.iter().filter(|s| s.task == t.task).collect();
        let failed = rows
            .iter()
            .filter(|s| s.status == SampleStatus::Failed)
            .count();
        if scores.items.is_empty() {
            continue;
        }
        let summary = dokja_evalstats::summarize(&scores, &opts.intervals)?;
        let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for s in rows.iter().filter(|s| s.status == SampleStatus::Done) {
            if let Some(m) = s.metrics.as_object() {
                for (k, v) in m {
                    if let Some(x) = v.as_f64() {
                        let e = sums.entry(k.clone()).or_default();
                        e.0 += x;
                        e.1 += 1;
                    }
                }
            }
        }
        tasks.push(TaskResult {
            suite: t.suite.clone(),
            kind: t.kind.clone(),
            planned: t.n_items,
            failed,
            cached: rows.iter().filter(|s| s.cached).count(),
            secondary: sums
                .into_iter()
                .map(|(k, (s, n))| (k, s / n as f64))
                .collect(),
            summary,
        });
    }
    let suites = cand.suites(opts)?;
    let mut comparisons = Vec::new();
    let mut registry_window = None;
    for spec in references {
        match spec {
            ReferenceSpec::Run(id) => {
                let r = load(store, id)?;
                comparisons.push(compare(&cand, &suites, &r, "run", None, opts));
            }
            ReferenceSpec::Registry {
                registry,
                evaluation_date,
            } => {
                let (window, eligible) = registry.eligible(*evaluation_date);
                registry_window = Some(RegistryWindow {
                    evaluation_date: *evaluation_date,
                    window,
                    eligible: eligible.iter().map(|m| m.name.clone()).collect(),
                });
                let runs = store.runs()?;
                for m in eligible {
                    // The newest run labelled with the model's name.
                    let found = runs
                        .iter()
                        .rev()
                        .find(|r| r.label.eq_ignore_ascii_case(&m.name) && r.run_id != run_id);
                    match found {
                        Some(rr) => {
                            let r = load(store, &rr.run_id)?;
                            let mut c =
                                compare(&cand, &suites, &r, "registry", Some(m.release_date), opts);
                            c.reference = m.name.clone();
                            comparisons.push(c);
                        }
                        None => comparisons.push(ReferenceComparison {
                            reference: m.name.clone(),
                            run_id: None,
                            source: "registry".into(),
                            release_date: Some(m.release_date),
                            suites: Vec::new(),
                            missing_suites: suites.iter().map(|s| s.suite.clone()).collect(),
                            reference_suites: Vec::new(),
                            rule: None,
                            error: Some(format!(
                                "no run labelled {:?} in the store (run it with --label)",
                                m.name
                            )),
                        }),
                    }
                }
            }
        }
    }
    Ok(BenchResults {
        schema: RESULTS_SCHEMA.into(),
        complete: counts.done == counts.planned && counts.failed == 0,
        run: cand.run,
        counts,
        intervals: opts.intervals,
        tasks,
        suites,
        comparisons,
        registry: registry_window,
    })
}

fn compare(
    cand: &Scored,
    cand_suites: &[SuiteSummary],
    reference: &Scored,
    source: &str,
    release_date: Option<Date>,
    opts: &ResultOptions,
) -> ReferenceComparison {
    let mut out = ReferenceComparison {
        reference: reference.run.label.clone(),
        run_id: Some(reference.run.run_id.clone()),
        source: source.into(),
        release_date,
        suites: Vec::new(),
        missing_suites: Vec::new(),
        reference_suites: Vec::new(),
        rule: None,
        error: None,
    };
    let ref_suites = match reference.suites(opts) {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    for s in cand_suites {
        if ref_suites.iter().any(|r| r.suite == s.suite) {
            out.suites.push(s.suite.clone());
        } else {
            out.missing_suites.push(s.suite.clone());
        }
    }
    out.reference_suites = ref_suites
        .into_iter()
        .filter(|r| out.suites.contains(&r.suite))
        .collect();
    if out.suites.is_empty() {
        out.error = Some("no suite in common".into());
        return out;
    }
    let pairs: Vec<(TaskScores, TaskScores)> = out
        .suites
        .iter()
        .map(|s| (cand.suite_unit(s), reference.suite_unit(s)))
        .collect();
    match ratio_rule(&pairs, RULE_THRESHOLD, &opts.intervals) {
        Ok(r) => out.rule = Some(r),
        Err(e) => out.error = Some(e.to_string()),
    }
    out
}

/// Writes every sample of a run as JSON lines (plan order), with the run id on each line.
pub fn export_jsonl(store: &Store, run_id: &str, out: &mut dyn Write) -> Result<usize> {
    store.run(run_id)?;
    let samples = store.samples(run_id)?;
    for s in &samples {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("run_id".into(), run_id.into());
        }
        writeln!(out, "{v}").map_err(|source| RunnerError::Io {
            path: "<jsonl output>".into(),
            source,
        })?;
    }
    Ok(samples.len())
}

/// Reads a reference registry file.
pub fn load_registry(path: &Path) -> Result<ReferenceRegistry> {
    let text = std::fs::read_to_string(path).map_err(|source| RunnerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    ReferenceRegistry::from_json(&text).map_err(|e| RunnerError::Reference {
        reference: path.display().to_string(),
        message: e.to_string(),
    })
}
