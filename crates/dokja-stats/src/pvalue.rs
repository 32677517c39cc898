//! Calibrated p-values, all in log space.
//!
//! Why log space (pitfall 3): the p-value of a fine-tune against its parent is routinely
//! below 1e-308 and would underflow to 0 in f64, after which every combination or correction
//! is meaningless (0 * anything = 0, ln 0 = -inf). [`LogP`] stores ln p, so 1e-3000 is simply
//! -6907.76, and every operation below (tails, combinations, corrections) is carried out on
//! logarithms.
//!
//! What is here, and what each answers:
//! - [`empirical_pvalue`]: the permutation / null-sample p-value `(1 + b) / (T + 1)`, exact
//!   under exchangeability but never below `1 / (T + 1)` (pitfall 1: say so; the result
//!   carries that floor).
//! - [`gaussian_tail`]: extrapolation beyond that floor by a z-score against the null's mean
//!   and standard deviation. It is an *approximation* (it assumes a Gaussian null tail) and
//!   must be reported as such.
//! - [`cauchy_combination`] (Liu & Xie 2020) and [`harmonic_mean_pvalue`] (Wilson 2019) to
//!   combine dependent p-values over layers/tensors (pitfall 3: Fisher's method assumes
//!   independence and is anti-conservative for correlated layers).
//! - [`bonferroni`] and [`holm`] to correct over candidate parents.

use std::f64::consts::PI;
use std::fmt;

use crate::error::{Result, StatsError};
use crate::special::{log_cauchy_sf, log_cauchy_sf_from_ln, log_normal_sf, log_sum_exp};

/// Natural logarithm of a p-value: a finite number <= 0.
///
/// `p = 0` (ln p = -inf) is not representable on purpose: no calibrated test in dokja can
/// produce it, and a `-inf` would swallow every later combination.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct LogP(f64);

impl LogP {
    /// p = 1.
    pub const ONE: LogP = LogP(0.0);

    /// From ln p. Tiny positive values (rounding, up to 1e-12) are clamped to 0; NaN, +inf,
    /// -inf and larger positive values are errors.
    pub fn new(ln_p: f64) -> Result<Self> {
        if ln_p.is_nan() {
            return Err(StatsError::InvalidArgument("ln p is NaN".into()));
        }
        if ln_p == f64::NEG_INFINITY {
            return Err(StatsError::Numerical(
                "ln p is -inf (below the f64 range of log p-values)".into(),
            ));
        }
        if ln_p > 1e-12 {
            return Err(StatsError::InvalidArgument(format!(
                "ln p = {ln_p} > 0 is not a p-value"
            )));
        }
        Ok(LogP(ln_p.min(0.0)))
    }

    /// From p in (0, 1].
    pub fn from_p(p: f64) -> Result<Self> {
        if !(p > 0.0 && p <= 1.0) {
            return Err(StatsError::InvalidArgument(format!(
                "p = {p} is not in (0, 1]"
            )));
        }
        Ok(LogP(p.ln()))
    }

    /// ln p.
    pub fn ln(self) -> f64 {
        self.0
    }

    /// log10 p.
    pub fn log10(self) -> f64 {
        self.0 / std::f64::consts::LN_10
    }

    /// p itself (underflows to 0 below about 1e-308; use only for display of moderate p).
    pub fn p(self) -> f64 {
        self.0.exp()
    }

    /// True if p <= alpha (alpha in (0, 1]).
    pub fn le_alpha(self, alpha: f64) -> bool {
        self.0 <= alpha.ln()
    }

    /// The smaller (more significant) of two p-values.
    pub fn min(self, other: LogP) -> LogP {
        if other.0 < self.0 { other } else { self }
    }

    /// The larger of two p-values.
    pub fn max(self, other: LogP) -> LogP {
        if other.0 > self.0 { other } else { self }
    }

    /// p scaled by `factor >= 0`, capped at 1 (Bonferroni-style multiplication).
    pub fn scaled(self, factor: f64) -> LogP {
        LogP((self.0 + factor.ln()).min(0.0))
    }

    /// Scientific notation without going through f64 p: "3.16e-3001".
    pub fn scientific(self) -> String {
        let l10 = self.log10();
        let mut exp = l10.floor();
        let mut mant = 10f64.powf(l10 - exp);
        if mant >= 9.995 {
            mant /= 10.0;
            exp += 1.0;
        }
        if exp >= -3.0 {
            return format!("{:.4}", self.p());
        }
        format!("{mant:.2}e{exp}")
    }
}

impl fmt::Display for LogP {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p = {}", self.scientific())
    }
}

fn check_log_ps(log_ps: &[LogP]) -> Result<()> {
    if log_ps.is_empty() {
        return Err(StatsError::Empty("p-values to combine"));
    }
    Ok(())
}

/// Weights normalized to sum 1, or equal weights; returns ln of each weight (-inf for 0).
fn normalized_ln_weights(n: usize, weights: Option<&[f64]>) -> Result<Vec<f64>> {
    match weights {
        None => Ok(vec![-(n as f64).ln(); n]),
        Some(w) => {
            if w.len() != n {
                return Err(StatsError::Shape(format!(
                    "{} weights for {n} p-values",
                    w.len()
                )));
            }
            crate::error::check_finite("combination weights", w)?;
            if w.iter().any(|&x| x < 0.0) {
                return Err(StatsError::InvalidArgument(
                    "combination weights must be >= 0".into(),
                ));
            }
            let sum: f64 = w.iter().sum();
            if sum <= 0.0 {
                return Err(StatsError::InvalidArgument(
                    "combination weights sum to 0".into(),
                ));
            }
            Ok(w.iter().map(|&x| (x / sum).ln()).collect())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Empirical and Gaussian-tail p-values
// ---------------------------------------------------------------------------------------

/// An empirical (permutation or reference-sample) p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmpiricalPValue {
    /// ln of `(1 + n_at_least) / (n_null + 1)`.
    pub log_p: LogP,
    /// Number of null statistics (T).
    pub n_null: usize,
    /// Null statistics >= the observed one (ties count against the observation).
    pub n_at_least: usize,
    /// The smallest p this null can ever give, `1 / (T + 1)`: a reported p equal to it means
    /// "at least this small", not "this small" (pitfall 1).
    pub min_attainable: LogP,
}

impl EmpiricalPValue {
    /// True if the observation beat every null value, i.e. `log_p` is only a floor.
    pub fn at_floor(&self) -> bool {
        self.n_at_least == 0
    }
}

/// Upper-tail empirical p-value `(1 + #{null >= observed}) / (T + 1)` (Phipson & Smyth 2010;
/// Zhu et al.'s permutation test). Valid (never anti-conservative) when, under H0, the
/// observed statistic is exchangeable with the null draws. Orient statistics so that larger
/// means more evidence of derivation.
pub fn empirical_pvalue(observed: f64, null: &[f64]) -> Result<EmpiricalPValue> {
    if !observed.is_finite() {
        return Err(StatsError::NonFinite {
            what: "observed statistic",
            index: 0,
        });
    }
    crate::error::check_finite("null statistics", null)?;
    let t = null.len();
    let b = null.iter().filter(|&&x| x >= observed).count();
    let denom = (t as f64 + 1.0).ln();
    Ok(EmpiricalPValue {
        log_p: LogP::new((b as f64 + 1.0).ln() - denom)?,
        n_null: t,
        n_at_least: b,
        min_attainable: LogP::new(-denom)?,
    })
}

/// A Gaussian extrapolation of the upper tail of a null sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianTail {
    /// `(observed - mean) / sd`.
    pub z: f64,
    pub mean: f64,
    /// Sample standard deviation (n - 1 denominator).
    pub sd: f64,
    /// ln P(Z > z) for a standard normal Z.
    pub log_p: LogP,
}

/// z-score of `observed` against the null's mean and sample sd, with its one-sided upper
/// normal tail in log space.
///
/// Why: an empirical p-value can never go below 1/(T+1); for a fine-tune whose statistic is
/// hundreds of null standard deviations away the honest summary is the effect size z and
/// the p-value *under a Gaussian-tail assumption*. The assumption is checkable (look at the
/// null's skew and kurtosis) and it is stated in the report. Requires at least 2 null values
/// with non-zero spread.
pub fn gaussian_tail(observed: f64, null: &[f64]) -> Result<GaussianTail> {
    if !observed.is_finite() {
        return Err(StatsError::NonFinite {
            what: "observed statistic",
            index: 0,
        });
    }
    crate::error::check_finite("null statistics", null)?;
    if null.len() < 2 {
        return Err(StatsError::Degenerate(format!(
            "a Gaussian tail needs at least 2 null values, got {}",
            null.len()
        )));
    }
    let n = null.len() as f64;
    let mean = null.iter().sum::<f64>() / n;
    let var = null.iter().map(|&x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt();
    if sd <= 0.0 || !sd.is_finite() {
        return Err(StatsError::Degenerate(
            "null statistics have zero spread".into(),
        ));
    }
    let z = (observed - mean) / sd;
    Ok(GaussianTail {
        z,
        mean,
        sd,
        log_p: LogP::new(log_normal_sf(z))?,
    })
}

// ---------------------------------------------------------------------------------------
// Combinations of dependent p-values
// ---------------------------------------------------------------------------------------

/// Cauchy combination test (Liu & Xie 2020, "ACAT").
///
/// `T = sum_i w_i tan((1/2 - p_i) pi)` with weights summing to 1; the combined p-value is the
/// standard Cauchy upper tail at T. Why: under arbitrary *Gaussian-copula* dependence (and
/// approximately for the layer-to-layer dependence of a model comparison) T is still
/// approximately standard Cauchy in the tail, so the combination stays calibrated where
/// Fisher's method is anti-conservative, and it is dominated by the smallest p-values.
///
/// Computed in log space: for p < 1e-15, `tan((1/2 - p) pi) = cot(p pi) = 1/(p pi)` to f64
/// precision, so those terms are summed as logarithms (ln w - ln p - ln pi); when T is
/// astronomically large the tail is `atan(1/T)/pi = 1/(T pi)`. Inputs as small as
/// ln p = -1e300 work.
///
/// Convention for p = 1 (ln p = 0): its term is -inf and the combined p-value is 1
/// (as in Liu & Xie's reference implementation). This is conservative: a single layer with
/// p = 1 cancels the evidence of all others, so callers combining empirical p-values should
/// know that p = 1 occurs when the observation is the smallest value of the null sample.
/// Errors on an empty input or invalid weights.
pub fn cauchy_combination(log_ps: &[LogP], weights: Option<&[f64]>) -> Result<LogP> {
    check_log_ps(log_ps)?;
    let ln_w = normalized_ln_weights(log_ps.len(), weights)?;
    let ln_pi = PI.ln();
    let tiny = (1e-15f64).ln();
    let mut big: Vec<f64> = Vec::new();
    let mut moderate = 0.0f64;
    for (lp, &lw) in log_ps.iter().zip(&ln_w) {
        if lw == f64::NEG_INFINITY {
            continue; // zero weight
        }
        let lp = lp.ln();
        if lp < tiny {
            big.push(lw - lp - ln_pi);
            continue;
        }
        let w = lw.exp();
        let p = lp.exp();
        if p <= 0.5 {
            // tan((1/2 - p) pi) = cot(p pi): no cancellation in 1/2 - p.
            moderate += w / (p * PI).tan();
        } else {
            let q = -lp.exp_m1(); // 1 - p, accurately
            if q <= 0.0 {
                return Ok(LogP::ONE);
            }
            moderate -= w / (q * PI).tan();
        }
    }
    if big.is_empty() {
        return LogP::new(log_cauchy_sf(moderate));
    }
    let ln_big = log_sum_exp(&big);
    if ln_big < 700.0 {
        return LogP::new(log_cauchy_sf(ln_big.exp() + moderate));
    }
    // T = e^ln_big + moderate with |moderate| << e^ln_big.
    let ln_t = ln_big + (moderate * (-ln_big).exp()).ln_1p();
    LogP::new(log_cauchy_sf_from_ln(ln_t))
}

/// Result of [`harmonic_mean_pvalue`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HarmonicMean {
    /// The weighted harmonic mean `1 / sum_i (w_i / p_i)` itself (Wilson 2019). Wilson shows it
    /// is approximately valid for small values under dependence, but it is known to be
    /// anti-conservative in general (Chen, Liu, Tan & Wang 2023): report it as a statistic.
    pub hmp: LogP,
    /// A p-value valid under *arbitrary* dependence: `min(1, h (2 + ln K - ln h))` with h the
    /// harmonic mean and K the number of p-values with positive weight. Derivation (Markov's
    /// inequality on truncated reciprocals): for M > 0,
    /// `P(sum w_i/p_i >= 1/h) <= P(some p_i < 1/M) + h E[sum w_i min(1/p_i, M)]
    ///  <= K/M + h (1 + ln M)`; M = K/h gives `h (2 + ln K - ln h)`, increasing in h, so
    /// it is a valid p-value. It is within a factor ~ln(K/h) of the Vovk & Wang (2020)
    /// harmonic-mean bound, i.e. negligible on the log scale of strong evidence.
    pub dependence_valid: LogP,
}

/// Weighted harmonic mean p-value, in log space (weights normalized to sum 1; `None` means
/// equal weights). Robust to p = 1 (unlike [`cauchy_combination`]). See [`HarmonicMean`].
pub fn harmonic_mean_pvalue(log_ps: &[LogP], weights: Option<&[f64]>) -> Result<HarmonicMean> {
    check_log_ps(log_ps)?;
    let ln_w = normalized_ln_weights(log_ps.len(), weights)?;
    let terms: Vec<f64> = log_ps
        .iter()
        .zip(&ln_w)
        .filter(|(_, lw)| **lw > f64::NEG_INFINITY)
        .map(|(lp, lw)| lw - lp.ln())
        .collect();
    let k = terms.len() as f64;
    // ln h = -ln(sum w_i / p_i) <= 0 since sum w_i / p_i >= sum w_i = 1.
    let ln_h = -log_sum_exp(&terms);
    let hmp = LogP::new(ln_h)?;
    let bound = ln_h + (2.0 + k.ln() - ln_h).ln();
    Ok(HarmonicMean {
        hmp,
        dependence_valid: LogP::new(bound.min(0.0))?,
    })
}

// ---------------------------------------------------------------------------------------
// Family-wise corrections
// ---------------------------------------------------------------------------------------

/// Bonferroni adjustment: `min(1, m p_i)` for each of the m p-values (in input order).
/// Valid under any dependence; use it over candidate parents (pitfall 3).
pub fn bonferroni(log_ps: &[LogP]) -> Vec<LogP> {
    let m = log_ps.len() as f64;
    log_ps.iter().map(|lp| lp.scaled(m)).collect()
}

/// Holm's step-down adjustment (Holm 1979), as R's `p.adjust(method = "holm")`: with p sorted
/// ascending, `adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`; returned in input order.
/// Uniformly more powerful than Bonferroni, same family-wise guarantee under any dependence.
pub fn holm(log_ps: &[LogP]) -> Vec<LogP> {
    let m = log_ps.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| log_ps[a].ln().total_cmp(&log_ps[b].ln()));
    let mut out = vec![LogP::ONE; m];
    let mut running = f64::NEG_INFINITY;
    for (rank, &idx) in order.iter().enumerate() {
        let adj = (log_ps[idx].ln() + ((m - rank) as f64).ln()).min(0.0);
        running = running.max(adj);
        out[idx] = LogP(running);
    }
    out
}

#[cfg(test)]
#[allow(
    clippy::excessive_precision,
    clippy::needless_range_loop,
    clippy::too_many_arguments,
    clippy::manual_is_multiple_of
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lp(p: f64) -> LogP {
        LogP::from_p(p).unwrap()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn logp_construction() {
        assert!(LogP::new(f64::NAN).is_err());
        assert!(LogP::new(0.5).is_err());
        assert!(LogP::new(f64::NEG_INFINITY).is_err());
        assert_eq!(LogP::new(1e-15).unwrap(), LogP::ONE);
        assert!(LogP::from_p(0.0).is_err());
        assert!(LogP::from_p(1.5).is_err());
        let p = LogP::new(-5000.0).unwrap();
        assert_eq!(p.p(), 0.0); // underflows as f64, but:
        assert!(p.le_alpha(1e-300));
        assert_eq!(p.scientific(), "3.37e-2172");
        assert_eq!(lp(0.05).scientific(), "0.0500");
        assert_eq!(lp(2.5e-7).scientific(), "2.50e-7");
        assert_eq!(
            LogP::new(-3000.0 * std::f64::consts::LN_10)
                .unwrap()
                .scientific(),
            "1.00e-3000"
        );
    }

    #[test]
    fn empirical_known_values() {
        let null = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
        let e = empirical_pvalue(0.75, &null).unwrap();
        assert_eq!(e.n_at_least, 2);
        assert!(close(e.log_p.p(), 0.3, 1e-14));
        assert!(close(e.min_attainable.p(), 0.1, 1e-14));
        let e = empirical_pvalue(5.0, &null).unwrap();
        assert!(e.at_floor());
        assert_eq!(e.log_p, e.min_attainable);
        // Ties count against the observation.
        let e = empirical_pvalue(0.9, &null).unwrap();
        assert_eq!(e.n_at_least, 1);
        // No null at all: p = 1.
        let e = empirical_pvalue(1.0, &[]).unwrap();
        assert_eq!(e.log_p, LogP::ONE);
        assert!(empirical_pvalue(f64::NAN, &null).is_err());
        assert!(empirical_pvalue(1.0, &[0.0, f64::NAN]).is_err());
    }

    #[test]
    fn gaussian_tail_known_values() {
        // null mean 0, sample sd 1 (values -1, 0, 1); observed 3 -> z = 3.
        let g = gaussian_tail(3.0, &[-1.0, 0.0, 1.0]).unwrap();
        assert!(close(g.z, 3.0, 1e-15));
        // scipy.stats.norm.logsf(3) = -6.6077262215103495
        assert!(close(g.log_p.ln(), -6.6077262215103495433, 1e-14));
        // Far tail: z = 105 gives ~1e-2400, fully representable.
        let g = gaussian_tail(105.0, &[-1.0, 0.0, 1.0]).unwrap();
        assert!(g.log_p.log10() < -2390.0 && g.log_p.log10() > -2410.0);
        assert!(gaussian_tail(1.0, &[2.0]).is_err());
        assert!(gaussian_tail(1.0, &[2.0, 2.0]).is_err());
    }

    #[test]
    fn cauchy_known_values() {
        // mpmath at 50 digits: T = mean tan((0.5 - p) pi), p = 1/2 - atan(T)/pi.
        let c = cauchy_combination(&[lp(0.01), lp(0.02), lp(0.5)], None).unwrap();
        assert!(close(c.p(), 0.019986862134698507146, 1e-10), "{}", c.p());
        let c = cauchy_combination(&[lp(0.3), lp(0.9)], Some(&[3.0, 1.0])).unwrap();
        assert!(close(c.p(), 0.57029931173052665386, 1e-10), "{}", c.p());
        let c = cauchy_combination(&[lp(1e-20), lp(0.3)], None).unwrap();
        assert!(close(c.p(), 2.0e-20, 1e-10), "{}", c.p());
        // A single p-value is returned unchanged.
        for p in [1e-300, 1e-10, 0.2, 0.5, 0.77, 0.999] {
            let c = cauchy_combination(&[lp(p)], None).unwrap();
            assert!(close(c.p(), p, 1e-12), "{p} -> {}", c.p());
        }
        // p = 1 anywhere gives 1.
        let c = cauchy_combination(&[lp(1e-9), LogP::ONE], None).unwrap();
        assert_eq!(c, LogP::ONE);
    }

    #[test]
    fn cauchy_no_underflow_at_minus_5000() {
        let a = LogP::new(-5000.0).unwrap();
        let b = LogP::new(-5001.0).unwrap();
        let c = cauchy_combination(&[a, b, lp(0.5)], None).unwrap();
        // T ~ (e^5000 + e^5001) / (3 pi); p ~ 1 / (T pi) = 3 / (e^5000 + e^5001).
        let want = 3f64.ln() - (5000.0 + (1.0 + 1f64.exp()).ln());
        assert!(close(c.ln(), want, 1e-14), "{} vs {want}", c.ln());
        let c = cauchy_combination(&[LogP::new(-1e300).unwrap(), lp(0.9)], None).unwrap();
        assert!(close(c.ln(), -1e300, 1e-12));
    }

    #[test]
    fn harmonic_mean_known_values() {
        // HMP of 0.01, 0.02, 0.5 = 3 / (100 + 50 + 2) = 0.019736842105263157
        let h = harmonic_mean_pvalue(&[lp(0.01), lp(0.02), lp(0.5)], None).unwrap();
        assert!(close(h.hmp.p(), 3.0 / 152.0, 1e-13));
        let bound = 3.0 / 152.0 * (2.0 + 3f64.ln() - (3.0f64 / 152.0).ln());
        assert!(close(h.dependence_valid.p(), bound, 1e-13));
        // Robust to p = 1.
        let h = harmonic_mean_pvalue(&[lp(1e-9), LogP::ONE], None).unwrap();
        assert!(close(h.hmp.p(), 2.0 / (1e9 + 1.0), 1e-12));
        // Deep in log space.
        let h = harmonic_mean_pvalue(&[LogP::new(-5000.0).unwrap(), lp(0.5)], None).unwrap();
        assert!(close(h.hmp.ln(), -5000.0 + 2f64.ln(), 1e-14));
        assert!(h.dependence_valid.ln() > h.hmp.ln());
        assert!(harmonic_mean_pvalue(&[], None).is_err());
        assert!(harmonic_mean_pvalue(&[lp(0.1)], Some(&[0.0])).is_err());
        assert!(harmonic_mean_pvalue(&[lp(0.1)], Some(&[-1.0])).is_err());
        assert!(harmonic_mean_pvalue(&[lp(0.1)], Some(&[1.0, 2.0])).is_err());
    }

    #[test]
    fn holm_bonferroni_match_r() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
        let ps = [lp(0.01), lp(0.04), lp(0.03), lp(0.005)];
        let h: Vec<f64> = holm(&ps).iter().map(|x| x.p()).collect();
        for (g, w) in h.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!(close(*g, w, 1e-13), "{h:?}");
        }
        // R: p.adjust(..., "bonferroni") = 0.04 0.16 0.12 0.02
        let b: Vec<f64> = bonferroni(&ps).iter().map(|x| x.p()).collect();
        for (g, w) in b.iter().zip([0.04, 0.16, 0.12, 0.02]) {
            assert!(close(*g, w, 1e-13), "{b:?}");
        }
        // Caps at 1.
        assert_eq!(bonferroni(&[lp(0.6), lp(0.7)]), vec![LogP::ONE, LogP::ONE]);
        assert!(holm(&[]).is_empty());
        // Log space far below f64.
        let deep = [LogP::new(-5000.0).unwrap(), LogP::new(-4000.0).unwrap()];
        let h = holm(&deep);
        assert!(close(h[0].ln(), -5000.0 + 2f64.ln(), 1e-15));
        assert!(close(h[1].ln(), -4000.0, 1e-15));
    }

    fn logp_strategy() -> impl Strategy<Value = LogP> {
        prop_oneof![
            (1e-12f64..1.0).prop_map(|p| LogP::from_p(p).unwrap()),
            (-6000.0f64..-1e-9).prop_map(|l| LogP::new(l).unwrap()),
        ]
    }

    proptest! {
        #[test]
        fn cauchy_monotone_in_each_p(
            ps in prop::collection::vec(logp_strategy(), 1..8),
            idx in any::<prop::sample::Index>(),
            shrink in 0.01f64..50.0,
        ) {
            let base = cauchy_combination(&ps, None).unwrap();
            let i = idx.index(ps.len());
            let mut smaller = ps.clone();
            smaller[i] = LogP::new(ps[i].ln() - shrink).unwrap();
            let s = cauchy_combination(&smaller, None).unwrap();
            prop_assert!(s.ln() <= base.ln() + 1e-9 * base.ln().abs().max(1.0));
            prop_assert!(base.ln() <= 0.0);
        }

        #[test]
        fn cauchy_bounded_by_extremes(ps in prop::collection::vec(logp_strategy(), 1..8)) {
            // The Cauchy combination lies between min p (roughly, / K) and max p.
            let c = cauchy_combination(&ps, None).unwrap();
            let max = ps.iter().map(|p| p.ln()).fold(f64::NEG_INFINITY, f64::max);
            let min = ps.iter().map(|p| p.ln()).fold(0.0, f64::min);
            let k = ps.len() as f64;
            prop_assert!(c.ln() <= max + 1e-9);
            prop_assert!(c.ln() >= min - k.ln() - 1e-9);
        }

        #[test]
        fn harmonic_monotone_and_bounded(
            ps in prop::collection::vec(logp_strategy(), 1..8),
            idx in any::<prop::sample::Index>(),
        ) {
            let h = harmonic_mean_pvalue(&ps, None).unwrap();
            let min = ps.iter().map(|p| p.ln()).fold(0.0, f64::min);
            let k = ps.len() as f64;
            // min p <= HM <= K min p
            prop_assert!(h.hmp.ln() >= min - 1e-9);
            prop_assert!(h.hmp.ln() <= min + k.ln() + 1e-9);
            prop_assert!(h.dependence_valid.ln() >= h.hmp.ln());
            let i = idx.index(ps.len());
            let mut smaller = ps.clone();
            smaller[i] = LogP::new(ps[i].ln() - 1.0).unwrap();
            let s = harmonic_mean_pvalue(&smaller, None).unwrap();
            prop_assert!(s.hmp.ln() <= h.hmp.ln() + 1e-12);
        }

        #[test]
        fn holm_properties(ps in prop::collection::vec(logp_strategy(), 0..10)) {
            let h = holm(&ps);
            let b = bonferroni(&ps);
            for i in 0..ps.len() {
                // p <= holm <= bonferroni <= 1
                prop_assert!(h[i].ln() >= ps[i].ln() - 1e-12);
                prop_assert!(h[i].ln() <= b[i].ln() + 1e-12);
                prop_assert!(b[i].ln() <= 0.0);
                for j in 0..ps.len() {
                    // Adjustment preserves the order of the p-values.
                    if ps[i].ln() < ps[j].ln() {
                        prop_assert!(h[i].ln() <= h[j].ln() + 1e-12);
                    }
                }
            }
        }

        #[test]
        fn empirical_monotone(observed in -5.0f64..5.0, null in prop::collection::vec(-5.0f64..5.0, 0..50)) {
            let e = empirical_pvalue(observed, &null).unwrap();
            let e2 = empirical_pvalue(observed + 0.5, &null).unwrap();
            prop_assert!(e2.log_p.ln() <= e.log_p.ln());
            prop_assert!(e.log_p.ln() >= e.min_attainable.ln());
        }

        #[test]
        fn gaussian_tail_monotone(observed in -50.0f64..200.0, null in prop::collection::vec(-5.0f64..5.0, 2..30)) {
            prop_assume!(gaussian_tail(observed, &null).is_ok());
            let g = gaussian_tail(observed, &null).unwrap();
            let g2 = gaussian_tail(observed + 1.0, &null).unwrap();
            prop_assert!(g2.log_p.ln() <= g.log_p.ln());
        }
    }
}
