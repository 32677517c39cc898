//! Per-task and per-suite scores with standard errors and intervals.
//!
//! Standard error of a mean, clustered when items are grouped (subject, passage): with item
//! scores `x_i`, mean `m`, `n` items in `G` clusters,
//! `se^2 = G/(G-1) * sum_g (sum_{i in g} (x_i - m))^2 / n^2` (the cluster-robust CR1 form for a
//! mean, as in Miller, "Adding Error Bars to Evals", 2024). With one item per cluster this is
//! exactly the iid `s^2/n` with the `n-1` sample variance. Fewer than two clusters cannot
//! estimate between-cluster variance; the iid form is used and reported as such.
//!
//! Bootstrap: percentile interval over `resamples` resamples drawn with a fixed seed;
//! clusters are resampled whole when items are clustered (the cluster bootstrap), items
//! otherwise. The same seed gives the same interval.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{EvalStatsError, Result};
use crate::normal::normal_quantile;
use crate::rng::SplitMix64;

/// Most resamples a bootstrap may ask for.
pub const MAX_RESAMPLES: usize = 1_000_000;

/// One scored item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemObs {
    pub id: String,
    /// Cluster key (subject, passage); `None` = its own cluster.
    pub cluster: Option<String>,
    /// Score in any unit (usually 0/1 or a fraction).
    pub score: f64,
    /// No answer could be extracted (the score is then 0 and counts as wrong).
    pub extraction_failed: bool,
}

impl ItemObs {
    pub fn new(id: impl Into<String>, score: f64) -> ItemObs {
        ItemObs {
            id: id.into(),
            cluster: None,
            score,
            extraction_failed: false,
        }
    }

    pub fn in_cluster(mut self, cluster: impl Into<String>) -> ItemObs {
        self.cluster = Some(cluster.into());
        self
    }

    pub fn failed(mut self) -> ItemObs {
        self.extraction_failed = true;
        self
    }
}

/// The scored items of one task for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScores {
    pub task: String,
    pub items: Vec<ItemObs>,
}

/// Bootstrap and interval settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntervalConfig {
    /// Confidence level of every interval, e.g. 0.95.
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
}

impl Default for IntervalConfig {
    fn default() -> Self {
        IntervalConfig {
            level: 0.95,
            resamples: 2000,
            seed: 20_240_501,
        }
    }
}

impl IntervalConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(EvalStatsError::InvalidArgument(format!(
                "level {} not in (0, 1)",
                self.level
            )));
        }
        if self.resamples == 0 || self.resamples > MAX_RESAMPLES {
            return Err(EvalStatsError::InvalidArgument(format!(
                "resamples {} not in 1..={MAX_RESAMPLES}",
                self.resamples
            )));
        }
        Ok(())
    }

    /// The normal quantile for a two-sided interval at `level`.
    pub fn z(&self) -> f64 {
        normal_quantile(0.5 + self.level / 2.0)
    }
}

/// A closed interval at a confidence level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
    pub level: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// How a standard error was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeKind {
    /// Items independent.
    Iid,
    /// Clustered over this many clusters.
    Clustered { clusters: usize },
}

/// Micro (pool all items) or macro (mean of task means) averaging of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Averaging {
    Micro,
    Macro,
}

/// A task's score with its uncertainty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub task: String,
    pub n: usize,
    pub mean: f64,
    pub se: f64,
    pub se_kind: SeKind,
    /// `mean +- z * se`.
    pub ci_normal: Interval,
    /// Percentile bootstrap (cluster bootstrap when clustered).
    pub ci_bootstrap: Interval,
    pub extraction_failures: usize,
    /// Share of items whose answer could not be extracted, reported beside the score.
    pub extraction_failure_rate: f64,
}

pub(crate) fn check_scores(what: &str, items: &[ItemObs]) -> Result<()> {
    if items.is_empty() {
        return Err(EvalStatsError::Empty(format!("{what}: no items")));
    }
    if let Some(index) = items.iter().position(|i| !i.score.is_finite()) {
        return Err(EvalStatsError::NonFinite {
            what: what.to_string(),
            index,
        });
    }
    Ok(())
}

pub(crate) fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Cluster index of each item (items without a cluster are their own), and the count.
pub(crate) fn cluster_ids(items: &[ItemObs]) -> (Vec<usize>, usize) {
    let mut map: HashMap<&str, usize> = HashMap::new();
    let mut next = 0;
    let ids = items
        .iter()
        .map(|it| match &it.cluster {
            Some(c) => *map.entry(c.as_str()).or_insert_with(|| {
                next += 1;
                next - 1
            }),
            None => {
                next += 1;
                next - 1
            }
        })
        .collect();
    (ids, next)
}

/// Whether any item carries a cluster key.
pub(crate) fn is_clustered(items: &[ItemObs]) -> bool {
    items.iter().any(|i| i.cluster.is_some())
}

/// Variance of the mean of `x`: the CR1 formula above when `clustered` (some item carries a
/// cluster key) and there are at least two clusters, else iid. With fewer than two items the
/// variance is 0 (nothing to estimate it from).
pub(crate) fn var_of_mean(
    x: &[f64],
    clusters: &[usize],
    g: usize,
    clustered: bool,
) -> (f64, SeKind) {
    let n = x.len();
    if n < 2 {
        return (0.0, SeKind::Iid);
    }
    let m = mean(x);
    if clustered && g >= 2 {
        let mut sums = vec![0.0; g];
        for (v, &c) in x.iter().zip(clusters) {
            sums[c] += v - m;
        }
        let ss: f64 = sums.iter().map(|s| s * s).sum();
        let var = g as f64 / (g as f64 - 1.0) * ss / (n as f64 * n as f64);
        return (var, SeKind::Clustered { clusters: g });
    }
    let s2 = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n as f64 - 1.0);
    (s2 / n as f64, SeKind::Iid)
}

/// Percentile of sorted values (linear interpolation between order statistics).
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

pub(crate) fn percentile_interval(mut stats: Vec<f64>, level: f64) -> Interval {
    stats.sort_by(f64::total_cmp);
    let a = (1.0 - level) / 2.0;
    Interval {
        lo: percentile(&stats, a),
        hi: percentile(&stats, 1.0 - a),
        level,
    }
}

/// Members of each cluster.
pub(crate) fn members(clusters: &[usize], g: usize) -> Vec<Vec<usize>> {
    let mut m = vec![Vec::new(); g];
    for (i, &c) in clusters.iter().enumerate() {
        m[c].push(i);
    }
    m
}

/// Draws one bootstrap resample: item indices, whole clusters at a time.
pub(crate) fn resample(rng: &mut SplitMix64, groups: &[Vec<usize>], out: &mut Vec<usize>) {
    out.clear();
    for _ in 0..groups.len() {
        out.extend_from_slice(&groups[rng.below(groups.len())]);
    }
}

/// Summarizes one task.
pub fn summarize(task: &TaskScores, cfg: &IntervalConfig) -> Result<TaskSummary> {
    cfg.validate()?;
    check_scores(&task.task, &task.items)?;
    let x: Vec<f64> = task.items.iter().map(|i| i.score).collect();
    let (clusters, g) = cluster_ids(&task.items);
    let m = mean(&x);
    let (var, se_kind) = var_of_mean(&x, &clusters, g, is_clustered(&task.items));
    let se = var.sqrt();
    let z = cfg.z();
    let groups = members(&clusters, g);
    let mut rng = SplitMix64::new(cfg.seed);
    let mut idx = Vec::new();
    let stats: Vec<f64> = (0..cfg.resamples)
        .map(|_| {
            resample(&mut rng, &groups, &mut idx);
            idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64
        })
        .collect();
    let failures = task.items.iter().filter(|i| i.extraction_failed).count();
    Ok(TaskSummary {
        task: task.task.clone(),
        n: x.len(),
        mean: m,
        se,
        se_kind,
        ci_normal: Interval {
            lo: m - z * se,
            hi: m + z * se,
            level: cfg.level,
        },
        ci_bootstrap: percentile_interval(stats, cfg.level),
        extraction_failures: failures,
        extraction_failure_rate: failures as f64 / x.len() as f64,
    })
}

/// A suite's score over its tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteSummary {
    pub suite: String,
    /// Stated with every suite score: micro pools items, macro averages task means.
    pub averaging: Averaging,
    pub tasks: Vec<TaskSummary>,
    pub mean: f64,
    pub se: f64,
    pub ci_normal: Interval,
    /// Stratified bootstrap: each task resampled on its own (clusters whole).
    pub ci_bootstrap: Interval,
    pub n: usize,
    pub extraction_failure_rate: f64,
}

/// Summarizes a suite of tasks. Tasks are independent samples; under macro averaging the
/// suite variance is `sum_t var_t / T^2`, under micro averaging each task's items are weighted
/// by `n_t / N`, so the variance is `sum_t (n_t/N)^2 var_t`. Clusters are taken within tasks.
pub fn summarize_suite(
    suite: &str,
    tasks: &[TaskScores],
    averaging: Averaging,
    cfg: &IntervalConfig,
) -> Result<SuiteSummary> {
    cfg.validate()?;
    if tasks.is_empty() {
        return Err(EvalStatsError::Empty(format!("suite {suite}: no tasks")));
    }
    let summaries: Vec<TaskSummary> = tasks
        .iter()
        .map(|t| summarize(t, cfg))
        .collect::<Result<_>>()?;
    let total: usize = summaries.iter().map(|s| s.n).sum();
    let weights: Vec<f64> = match averaging {
        Averaging::Macro => vec![1.0 / tasks.len() as f64; tasks.len()],
        Averaging::Micro => summaries
            .iter()
            .map(|s| s.n as f64 / total as f64)
            .collect(),
    };
    let m: f64 = summaries
        .iter()
        .zip(&weights)
        .map(|(s, w)| w * s.mean)
        .sum();
    let var: f64 = summaries
        .iter()
        .zip(&weights)
        .map(|(s, w)| w * w * s.se * s.se)
        .sum();
    let se = var.sqrt();
    let z = cfg.z();
    // Stratified bootstrap: one stream, tasks resampled in order.
    let prepared: Vec<(Vec<f64>, Vec<Vec<usize>>)> = tasks
        .iter()
        .map(|t| {
            let (c, g) = cluster_ids(&t.items);
            (t.items.iter().map(|i| i.score).collect(), members(&c, g))
        })
        .collect();
    let mut rng = SplitMix64::new(cfg.seed);
    let mut idx = Vec::new();
    let stats: Vec<f64> = (0..cfg.resamples)
        .map(|_| {
            prepared
                .iter()
                .zip(&weights)
                .map(|((x, groups), w)| {
                    resample(&mut rng, groups, &mut idx);
                    w * idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64
                })
                .sum()
        })
        .collect();
    let failures: usize = summaries.iter().map(|s| s.extraction_failures).sum();
    Ok(SuiteSummary {
        suite: suite.to_string(),
        averaging,
        mean: m,
        se,
        ci_normal: Interval {
            lo: m - z * se,
            hi: m + z * se,
            level: cfg.level,
        },
        ci_bootstrap: percentile_interval(stats, cfg.level),
        n: total,
        extraction_failure_rate: failures as f64 / total as f64,
        tasks: summaries,
    })
}
