//! Statistics against hand-computed values and known formulas, plus properties.

use dokja_evalstats::registry::days_in_month;
use dokja_evalstats::*;
use proptest::prelude::*;

fn task(name: &str, scores: &[f64]) -> TaskScores {
    TaskScores {
        task: name.into(),
        items: scores
            .iter()
            .enumerate()
            .map(|(i, &s)| ItemObs::new(format!("q{i}"), s))
            .collect(),
    }
}

fn clustered(name: &str, scores: &[f64], clusters: &[&str]) -> TaskScores {
    TaskScores {
        task: name.into(),
        items: scores
            .iter()
            .zip(clusters)
            .enumerate()
            .map(|(i, (&s, c))| ItemObs::new(format!("q{i}"), s).in_cluster(*c))
            .collect(),
    }
}

fn cfg() -> IntervalConfig {
    IntervalConfig::default()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn iid_standard_error_by_hand() {
    // mean 0.75, sample variance 0.25, se = sqrt(0.25 / 4) = 0.25.
    let s = summarize(&task("t", &[1.0, 0.0, 1.0, 1.0]), &cfg()).unwrap();
    assert!(close(s.mean, 0.75));
    assert!(close(s.se, 0.25));
    assert_eq!(s.se_kind, SeKind::Iid);
    let z = 1.959963984540054;
    assert!((s.ci_normal.lo - (0.75 - z * 0.25)).abs() < 1e-8);
}

#[test]
fn clustered_standard_error_by_hand() {
    // Clusters a:(1,1) b:(0,0) c:(1,0); mean 0.5; residual sums 1, -1, 0;
    // se^2 = 3/2 * 2 / 36 = 1/12.
    let t = clustered(
        "t",
        &[1.0, 1.0, 0.0, 0.0, 1.0, 0.0],
        &["a", "a", "b", "b", "c", "c"],
    );
    let s = summarize(&t, &cfg()).unwrap();
    assert!(close(s.se, (1.0f64 / 12.0).sqrt()));
    assert_eq!(s.se_kind, SeKind::Clustered { clusters: 3 });
    // Positively correlated clusters widen the error over the iid one (0.2236).
    let iid = summarize(&task("t", &[1.0, 1.0, 0.0, 0.0, 1.0, 0.0]), &cfg()).unwrap();
    assert!(close(iid.se, (0.3f64 / 6.0).sqrt()));
    assert!(s.se > iid.se);
}

#[test]
fn extraction_failure_rate_is_reported() {
    let mut t = task("t", &[1.0, 0.0, 0.0, 1.0]);
    t.items[1].extraction_failed = true;
    let s = summarize(&t, &cfg()).unwrap();
    assert_eq!(s.extraction_failures, 1);
    assert!(close(s.extraction_failure_rate, 0.25));
}

#[test]
fn suite_micro_and_macro_differ_as_stated() {
    let a = task("a", &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]); // 0.75, n=8
    let b = task("b", &[0.0, 1.0]); // 0.5, n=2
    let micro = summarize_suite("s", &[a.clone(), b.clone()], Averaging::Micro, &cfg()).unwrap();
    let macro_ = summarize_suite("s", &[a.clone(), b.clone()], Averaging::Macro, &cfg()).unwrap();
    assert!(close(micro.mean, 0.7));
    assert!(close(macro_.mean, 0.625));
    assert_eq!(micro.averaging, Averaging::Micro);
    // Macro variance = (var_a + var_b) / 4.
    let (sa, sb) = (&macro_.tasks[0], &macro_.tasks[1]);
    assert!(close(
        macro_.se,
        ((sa.se * sa.se + sb.se * sb.se) / 4.0).sqrt()
    ));
    assert!(macro_.ci_bootstrap.contains(macro_.mean));
}

#[test]
fn paired_difference_and_ratio_by_hand() {
    let x = task("t", &[1.0, 1.0, 0.0, 1.0]);
    let y = task("t", &[1.0, 0.0, 1.0, 1.0]);
    let c = compare_paired(&x, &y, &cfg()).unwrap();
    assert!(close(c.difference.value, 0.0));
    // d = (0, 1, -1, 0): s^2 = 2/3, se = sqrt(2/3 / 4).
    assert!(close(c.difference.se, (2.0f64 / 12.0).sqrt()));
    assert!(close(c.ratio.value, 1.0));
    // Delta method, written out: (var x̄ - 2R cov + R^2 var ȳ) / ȳ^2 with sample moments.
    let (xs, ys) = ([1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0]);
    let n = 4.0;
    let (mx, my) = (0.75, 0.75);
    let vx: f64 = xs.iter().map(|v| (v - mx) * (v - mx)).sum::<f64>() / (n - 1.0);
    let vy: f64 = ys.iter().map(|v| (v - my) * (v - my)).sum::<f64>() / (n - 1.0);
    let cxy: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / (n - 1.0);
    let r = mx / my;
    let var_r = (vx / n - 2.0 * r * cxy / n + r * r * vy / n) / (my * my);
    assert!(
        (c.ratio.se - var_r.sqrt()).abs() < 1e-12,
        "{} vs {}",
        c.ratio.se,
        var_r.sqrt()
    );
    assert!(close(var_r, 8.0 / 27.0));
}

#[test]
fn pairing_is_by_id_and_refuses_mismatch() {
    let x = task("t", &[1.0, 0.0, 0.0]);
    let mut y = task("t", &[1.0, 1.0, 0.0]);
    y.items.reverse();
    let c = compare_paired(&x, &y, &cfg()).unwrap();
    // By id d = (0, -1, 0): se 1/3. By position it would be (1, -1, -1): se 2/3.
    assert!(close(c.difference.value, -1.0 / 3.0));
    assert!(close(c.difference.se, 1.0 / 3.0));
    y.items[0].id = "other".into();
    assert!(matches!(
        compare_paired(&x, &y, &cfg()),
        Err(EvalStatsError::Unpaired { .. })
    ));
    let zero = task("t", &[0.0, 0.0, 0.0]);
    assert!(matches!(
        compare_paired(&x, &zero, &cfg()),
        Err(EvalStatsError::Degenerate(_))
    ));
}

#[test]
fn ratio_rule_both_aggregations_by_hand() {
    // Task a: model 0.5, reference 0.25 (ratio 2); task b: model 0.5, reference 1.0 (0.5).
    let ma = task("a", &[1.0, 0.0, 1.0, 0.0]);
    let ra = task("a", &[1.0, 0.0, 0.0, 0.0]);
    let mb = task("b", &[1.0, 1.0, 0.0, 0.0]);
    let rb = task("b", &[1.0, 1.0, 1.0, 1.0]);
    let rule = ratio_rule(&[(ma, ra), (mb, rb)], 0.95, &cfg()).unwrap();
    // Ratio of means: 0.5 / 0.625 = 0.8 (fails); mean of ratios: (2 + 0.5)/2 = 1.25 (would pass).
    assert!(close(rule.ratio_of_means.value, 0.8));
    assert!(close(rule.mean_of_ratios.as_ref().unwrap().value, 1.25));
    assert_eq!(rule.chosen, RatioAggregation::RatioOfMeans);
    assert!(!rule.passes);
    assert!(!rule.passes_with_confidence);
    assert_eq!(rule.per_task.len(), 2);
    // Delta method by hand: e = x - 0.8 y per task, var of its mean, summed, / (T B)^2.
    let var_mean = |e: &[f64]| {
        let m = e.iter().sum::<f64>() / e.len() as f64;
        e.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (e.len() as f64 - 1.0) / e.len() as f64
    };
    let ea = [1.0 - 0.8, 0.0, 1.0, 0.0];
    let eb = [1.0 - 0.8, 1.0 - 0.8, -0.8, -0.8];
    let expect = ((var_mean(&ea) + var_mean(&eb)) / (2.0f64 * 0.625).powi(2)).sqrt();
    assert!((rule.ratio_of_means.se - expect).abs() < 1e-12);
}

#[test]
fn registry_window_uses_calendar_months() {
    let d = |s: &str| s.parse::<Date>().unwrap();
    assert_eq!(d("2026-08-31").minus_months(6), d("2026-02-28"));
    assert_eq!(d("2028-08-31").minus_months(6), d("2028-02-29"));
    assert_eq!(d("2026-03-15").minus_months(6), d("2025-09-15"));
    assert!("2026-02-30".parse::<Date>().is_err());
    assert!("26-02-01".parse::<Date>().is_err());
    assert_eq!(days_in_month(2100, 2), 28);
    let reg = ReferenceRegistry::from_json(
        r#"{"model": [
            {"name": "old", "release_date": "2025-06-30"},
            {"name": "edge", "release_date": "2025-07-01"},
            {"name": "new", "release_date": "2025-12-31"},
            {"name": "same-day", "release_date": "2026-01-01"},
            {"name": "domestic", "release_date": "2025-10-01", "global": false}
        ]}"#,
    )
    .unwrap();
    let (window, models) = reg.eligible(d("2026-01-01"));
    assert_eq!(window.start, d("2025-07-01"));
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["new", "edge"]);
    assert!(ReferenceRegistry::from_json(r#"{"model": [{"name": "a", "release_date": "2025-01-01"}, {"name": "a", "release_date": "2025-01-02"}]}"#).is_err());
}

#[test]
fn bad_input_is_an_error() {
    assert!(summarize(&task("t", &[]), &cfg()).is_err());
    assert!(summarize(&task("t", &[1.0, f64::NAN]), &cfg()).is_err());
    let bad = IntervalConfig {
        level: 1.0,
        ..cfg()
    };
    assert!(summarize(&task("t", &[1.0]), &bad).is_err());
}

fn scores() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(prop_oneof![Just(0.0), Just(1.0), 0.0f64..1.0], 2..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn intervals_contain_the_estimate(x in scores(), seed in any::<u64>()) {
        let c = IntervalConfig { resamples: 400, seed, ..cfg() };
        let s = summarize(&task("t", &x), &c).unwrap();
        prop_assert!(s.ci_normal.contains(s.mean));
        prop_assert!(s.ci_bootstrap.lo <= s.mean + 1e-12 && s.mean - 1e-12 <= s.ci_bootstrap.hi,
            "{:?} vs {}", s.ci_bootstrap, s.mean);
    }

    #[test]
    fn singleton_clusters_equal_iid(x in scores()) {
        let names: Vec<String> = (0..x.len()).map(|i| format!("c{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let a = summarize(&clustered("t", &x, &refs), &cfg()).unwrap();
        let b = summarize(&task("t", &x), &cfg()).unwrap();
        prop_assert_eq!(a.se_kind, SeKind::Clustered { clusters: x.len() });
        prop_assert!((a.se - b.se).abs() <= 1e-12 * (1.0 + b.se));
    }

    #[test]
    fn bootstrap_is_deterministic_for_a_seed(x in scores(), seed in any::<u64>()) {
        let c = IntervalConfig { resamples: 200, seed, ..cfg() };
        let a = summarize(&task("t", &x), &c).unwrap();
        let b = summarize(&task("t", &x), &c).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn model_against_itself_has_ratio_one(x in scores()) {
        prop_assume!(x.iter().sum::<f64>() > 0.0);
        let c = compare_paired(&task("t", &x), &task("t", &x), &IntervalConfig { resamples: 100, ..cfg() }).unwrap();
        prop_assert!(close(c.difference.value, 0.0) && c.difference.se == 0.0);
        prop_assert!((c.ratio.value - 1.0).abs() < 1e-12 && c.ratio.se < 1e-12);
    }

    #[test]
    fn ratio_rule_matches_per_task_ratio_for_one_task(x in scores(), y in scores()) {
        let n = x.len().min(y.len());
        prop_assume!(y[..n].iter().sum::<f64>() > 0.0);
        let (m, r) = (task("t", &x[..n]), task("t", &y[..n]));
        let c = IntervalConfig { resamples: 100, ..cfg() };
        let rule = ratio_rule(&[(m.clone(), r.clone())], 0.95, &c).unwrap();
        let pc = compare_paired(&m, &r, &c).unwrap();
        prop_assert!((rule.ratio_of_means.value - pc.ratio.value).abs() < 1e-12);
        prop_assert!((rule.ratio_of_means.se - pc.ratio.se).abs() < 1e-9 * (1.0 + pc.ratio.se));
        prop_assert!((rule.mean_of_ratios.unwrap().value - pc.ratio.value).abs() < 1e-12);
    }

    #[test]
    fn minus_months_stays_valid(y in 1900i32..2200, m in 1u32..=12, d in 1u32..=31, k in 0u32..40) {
        prop_assume!(d <= days_in_month(y, m));
        let date = Date::new(y, m, d).unwrap();
        let back = date.minus_months(k);
        prop_assert!(Date::new(back.year, back.month, back.day).is_ok());
        prop_assert!(back <= date);
        prop_assert_eq!((date.year * 12 + date.month as i32) - (back.year * 12 + back.month as i32), k as i32);
    }
}

#[test]
fn cluster_bootstrap_widens_for_correlated_clusters() {
    // Ten clusters of ten identical scores: effectively ten observations, not a hundred.
    let scores: Vec<f64> = (0..100)
        .map(|i| f64::from(u8::from((i / 10) % 2 == 0)))
        .collect();
    let names: Vec<String> = (0..100).map(|i| format!("c{}", i / 10)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let c = summarize(&clustered("t", &scores, &refs), &cfg()).unwrap();
    let i = summarize(&task("t", &scores), &cfg()).unwrap();
    assert_eq!(c.mean, i.mean);
    // CR1: residual sums ±5 in each of 10 clusters: se² = 10/9 · 250 / 100² = 1/36.
    assert!(close(c.se, 1.0 / 6.0));
    let width = |s: &TaskSummary| s.ci_bootstrap.hi - s.ci_bootstrap.lo;
    assert!(
        width(&c) > 2.0 * width(&i),
        "{} vs {}",
        width(&c),
        width(&i)
    );
}
