//! The decision: per candidate component, the most serious verdict over the registry and the
//! entry that gives it; then the programme's two axes (independence, licence policy). The
//! `Audit` serializes to the JSON contract documented in docs/audit-report.md.

use std::cmp::Ordering;

use dokja_provenance::report::{ComponentReport, Method, SCOPE};
use dokja_provenance::{Comparison, Verdict};
use serde::{Deserialize, Serialize};

use crate::input::{AuditInput, Candidate, EntryInfo, Prefilter, RegistryInfo};
use crate::licence::{LicenceAssessment, LicenceClass, LicencePolicy, assess, policy};

/// Version of the JSON contract; bumped only for incompatible changes.
pub const SCHEMA: &str = "dokja-audit/1";

/// Weight components in the order reports list them; others follow alphabetically.
const COMPONENT_ORDER: &[&str] = &[
    "language_model",
    "embeddings",
    "vision_encoder",
    "audio_encoder",
    "projector",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Decision {
    Pass,
    Fail,
    Review,
}

impl Decision {
    /// 0 PASS, 1 FAIL, 3 REVIEW (2 is the CLI's usage or input error).
    pub fn exit_code(self) -> i32 {
        match self {
            Decision::Pass => 0,
            Decision::Fail => 1,
            Decision::Review => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Pass => "PASS",
            Decision::Fail => "FAIL",
            Decision::Review => "REVIEW",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// "The team initialized the weights and then trained them."
    Independence,
    /// "Any open source it uses carries no licence restriction."
    Policy,
}

impl Axis {
    pub fn as_str(self) -> &'static str {
        match self {
            Axis::Independence => "independence",
            Axis::Policy => "policy",
        }
    }
}

/// One reason behind the decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub axis: Axis,
    /// What this reason alone would decide.
    pub decision: Decision,
    pub component: Option<String>,
    pub entry_id: Option<String>,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AxisOutcome {
    pub decision: Decision,
    pub reasons: Vec<Reason>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axes {
    pub independence: AxisOutcome,
    pub policy: AxisOutcome,
}

/// How strong one comparison's evidence for a component is, for ranking and display.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Strength {
    /// Most significant calibrated statistic (log10 of its p-value); None without statistics.
    pub min_log10_p: Option<f64>,
    /// Largest per-layer median excess of the observed score over the null's maximum.
    pub max_layer_excess: Option<f64>,
    pub layers: usize,
    pub layers_with_evidence: usize,
    /// Identity check: paired pieces equal to the last bit / within a cast / within quantization.
    pub identity_paired: Option<usize>,
    pub identity_exact: Option<usize>,
    pub identity_max_relative_rms: Option<f64>,
}

/// A component's verdict against one registry entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryVerdict {
    pub entry_id: String,
    pub entry_name: String,
    pub verdict: Verdict,
    pub reason: String,
    pub strength: Strength,
}

/// The registry entry that gives a component its verdict, with the full evidence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClosestParent {
    pub entry: EntryInfo,
    pub licence: LicenceAssessment,
    pub verdict: Verdict,
    pub strength: Strength,
    /// The comparison's report for this component, unchanged (dokja-provenance's contract).
    pub evidence: ComponentReport,
    /// The comparison's effect margin (cosine units), for the per-layer plot.
    pub effect_margin: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComponentAudit {
    pub component: String,
    /// Most serious over the entries: identical > derived > inconclusive > independent.
    /// `independent` also when no entry could be compared (see `compared_with`).
    pub verdict: Verdict,
    /// Entries whose comparison covered this component.
    pub compared_with: usize,
    /// The entry giving `verdict` (ties: strongest evidence). For `independent` and
    /// `inconclusive` it is the nearest registry model, not a parent.
    pub closest_parent: Option<ClosestParent>,
    /// Every entry's verdict, most serious and strongest first.
    pub against: Vec<EntryVerdict>,
}

/// Tokenizer and config findings: shown, never decisive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CircumstantialFinding {
    pub component: String,
    pub entry_id: String,
    pub entry_name: String,
    pub verdict: Verdict,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentVerdict {
    pub component: String,
    pub verdict: Verdict,
    pub circumstantial: bool,
}

/// One registry entry and what came of checking the candidate against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryOutcome {
    pub entry: EntryInfo,
    pub licence: LicenceAssessment,
    pub prefilter: Prefilter,
    /// The comparison's overall verdict; None when the prefilter dropped the entry.
    pub verdict: Option<Verdict>,
    pub summary: Option<String>,
    /// BLAKE3 of the entry's fingerprint file when the entry was compared as a fingerprint
    /// (not weights); None otherwise.
    pub fingerprint: Option<String>,
    pub components: Vec<ComponentVerdict>,
    pub not_compared: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// What a PASS does and does not mean.
    pub statements: Vec<String>,
    /// The hypothesis each comparison tested (dokja-provenance's scope).
    pub comparison_scope: String,
    pub entries_checked: usize,
    pub compared_in_full: usize,
    pub dropped_by_prefilter: usize,
    /// Candidate components no registry entry could be compared on.
    pub components_not_compared: Vec<String>,
}

/// Everything needed to reproduce the audit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditInputs {
    pub candidate: Candidate,
    pub registry: RegistryInfo,
    pub tool: String,
    pub seed: u64,
    pub alpha: f64,
    pub created: String,
    /// The comparison method (from the first comparison made; all share it).
    pub method: Option<Method>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Audit {
    pub schema: String,
    pub decision: Decision,
    pub exit_code: i32,
    /// The reasons that produce `decision` (for PASS: why nothing failed).
    pub reasons: Vec<Reason>,
    pub axes: Axes,
    pub components: Vec<ComponentAudit>,
    pub circumstantial: Vec<CircumstantialFinding>,
    pub entries: Vec<EntryOutcome>,
    pub scope: Scope,
    pub licence_policy: LicencePolicy,
    pub inputs: AuditInputs,
}

/// identical > derived > inconclusive > independent.
pub fn seriousness(v: Verdict) -> u8 {
    match v {
        Verdict::Identical => 3,
        Verdict::Derived => 2,
        Verdict::Inconclusive => 1,
        Verdict::Independent => 0,
    }
}

fn is_reuse(v: Verdict) -> bool {
    matches!(v, Verdict::Identical | Verdict::Derived)
}

fn strength(report: &ComponentReport) -> Strength {
    let min_log10_p = report
        .statistics
        .iter()
        .map(|s| s.log10_p)
        .filter(|p| p.is_finite())
        .min_by(f64::total_cmp);
    let max_layer_excess = report
        .layers
        .iter()
        .map(|l| l.median_excess)
        .filter(|e| e.is_finite())
        .max_by(f64::total_cmp);
    Strength {
        min_log10_p,
        max_layer_excess,
        layers: report.layers.len(),
        layers_with_evidence: report.layers.iter().filter(|l| l.carries_evidence).count(),
        identity_paired: report.identity.as_ref().map(|i| i.paired),
        identity_exact: report.identity.as_ref().map(|i| i.exact),
        identity_max_relative_rms: report.identity.as_ref().map(|i| i.max_relative_rms),
    }
}

/// Stronger evidence sorts first: more of the identity check bit-equal, then the larger
/// effect (per-layer excess over the null's maximum: how much of the other model's units
/// survive), then the smaller p, then the smaller identity difference. Effect before p:
/// among related models p-values of 1e-3000 and 1e-2900 say the same thing, and which is
/// smaller depends on the spread of each pair's null more than on kinship.
fn stronger_first(a: &Strength, b: &Strength) -> Ordering {
    let exact_fraction = |s: &Strength| match (s.identity_exact, s.identity_paired) {
        (Some(e), Some(p)) if p > 0 => e as f64 / p as f64,
        _ => 0.0,
    };
    let rms = |s: &Strength| s.identity_max_relative_rms.unwrap_or(f64::INFINITY);
    exact_fraction(b)
        .total_cmp(&exact_fraction(a))
        .then_with(|| {
            b.max_layer_excess
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&a.max_layer_excess.unwrap_or(f64::NEG_INFINITY))
        })
        .then_with(|| {
            a.min_log10_p
                .unwrap_or(0.0)
                .total_cmp(&b.min_log10_p.unwrap_or(0.0))
        })
        .then_with(|| rms(a).total_cmp(&rms(b)))
}

fn component_rank(name: &str) -> (usize, String) {
    let i = COMPONENT_ORDER
        .iter()
        .position(|c| *c == name)
        .unwrap_or(COMPONENT_ORDER.len());
    (i, name.to_string())
}

/// The decision for `input`. Total: any input gives an audit (validation of the input against
/// the registry is the caller's job, see [`crate::validate`]).
pub fn decide(input: &AuditInput) -> Audit {
    let compared: Vec<(&crate::input::EntryResult, &Comparison)> = input
        .results
        .iter()
        .filter_map(|r| r.comparison.as_ref().map(|c| (r, c)))
        .collect();

    // Weight components: the candidate's own list plus whatever the comparisons covered.
    let mut names: Vec<String> = input.candidate.components.clone();
    for (_, c) in &compared {
        for comp in c.components.iter().filter(|x| !x.circumstantial) {
            names.push(comp.component.clone());
        }
    }
    names.sort_by_key(|n| component_rank(n));
    names.dedup();

    let mut components = Vec::new();
    for name in &names {
        let mut against: Vec<(EntryVerdict, &crate::input::EntryResult, &Comparison, usize)> =
            Vec::new();
        for (r, c) in &compared {
            if let Some(i) = c
                .components
                .iter()
                .position(|x| !x.circumstantial && &x.component == name)
            {
                let rep = &c.components[i];
                against.push((
                    EntryVerdict {
                        entry_id: r.entry.id.clone(),
                        entry_name: r.entry.name.clone(),
                        verdict: rep.verdict,
                        reason: rep.reason.clone(),
                        strength: strength(rep),
                    },
                    r,
                    c,
                    i,
                ));
            }
        }
        // Stable sort: equal evidence keeps registry order, so the result is deterministic.
        against.sort_by(|x, y| {
            seriousness(y.0.verdict)
                .cmp(&seriousness(x.0.verdict))
                .then_with(|| stronger_first(&x.0.strength, &y.0.strength))
        });
        let closest_parent = against.first().map(|(v, r, c, i)| ClosestParent {
            entry: r.entry.clone(),
            licence: assess(r.entry.licence.as_deref()),
            verdict: v.verdict,
            strength: v.strength.clone(),
            evidence: c.components[*i].clone(),
            effect_margin: c.method.effect_margin,
        });
        components.push(ComponentAudit {
            component: name.clone(),
            verdict: closest_parent
                .as_ref()
                .map_or(Verdict::Independent, |p| p.verdict),
            compared_with: against.len(),
            closest_parent,
            against: against.into_iter().map(|x| x.0).collect(),
        });
    }

    let mut circumstantial = Vec::new();
    for (r, c) in &compared {
        for comp in c.components.iter().filter(|x| x.circumstantial) {
            circumstantial.push(CircumstantialFinding {
                component: comp.component.clone(),
                entry_id: r.entry.id.clone(),
                entry_name: r.entry.name.clone(),
                verdict: comp.verdict,
                reason: comp.reason.clone(),
            });
        }
    }
    circumstantial.sort_by(|x, y| {
        x.component
            .cmp(&y.component)
            .then_with(|| seriousness(y.verdict).cmp(&seriousness(x.verdict)))
    });

    let entries: Vec<EntryOutcome> = input
        .results
        .iter()
        .map(|r| EntryOutcome {
            entry: r.entry.clone(),
            licence: assess(r.entry.licence.as_deref()),
            prefilter: r.prefilter.clone(),
            verdict: r.comparison.as_ref().map(|c| c.verdict),
            summary: r.comparison.as_ref().map(|c| c.summary.clone()),
            fingerprint: r.comparison.as_ref().and_then(|c| c.a.fingerprint.clone()),
            components: r
                .comparison
                .iter()
                .flat_map(|c| &c.components)
                .map(|x| ComponentVerdict {
                    component: x.component.clone(),
                    verdict: x.verdict,
                    circumstantial: x.circumstantial,
                })
                .collect(),
            not_compared: r
                .comparison
                .as_ref()
                .map(|c| c.not_compared.clone())
                .unwrap_or_default(),
        })
        .collect();

    let axes = Axes {
        independence: independence_axis(&components, compared.len()),
        policy: policy_axis(&components, input),
    };
    let decision =
        if axes.independence.decision == Decision::Fail || axes.policy.decision == Decision::Fail {
            Decision::Fail
        } else if axes.independence.decision == Decision::Review {
            Decision::Review
        } else {
            Decision::Pass
        };
    let reasons: Vec<Reason> = axes
        .independence
        .reasons
        .iter()
        .chain(&axes.policy.reasons)
        .filter(|r| r.decision == decision)
        .cloned()
        .collect();

    let components_not_compared: Vec<String> = components
        .iter()
        .filter(|c| c.compared_with == 0)
        .map(|c| c.component.clone())
        .collect();
    let scope = Scope {
        statements: scope_statements(input, &components_not_compared),
        comparison_scope: SCOPE.to_string(),
        entries_checked: input.results.len(),
        compared_in_full: compared.len(),
        dropped_by_prefilter: input.results.len() - compared.len(),
        components_not_compared,
    };

    Audit {
        schema: SCHEMA.to_string(),
        decision,
        exit_code: decision.exit_code(),
        reasons,
        axes,
        components,
        circumstantial,
        entries,
        scope,
        licence_policy: policy(),
        inputs: AuditInputs {
            candidate: input.candidate.clone(),
            registry: input.registry.clone(),
            tool: input.tool.clone(),
            seed: input.seed,
            alpha: input.alpha,
            created: input.created.clone(),
            method: compared.first().map(|(_, c)| c.method.clone()),
        },
    }
}

fn entry_label(e: &EntryInfo) -> String {
    format!("{} ({}, {})", e.name, e.id, e.org)
}

fn others(c: &ComponentAudit, verdicts: &[Verdict]) -> Vec<String> {
    c.against
        .iter()
        .skip(1)
        .filter(|v| verdicts.contains(&v.verdict))
        .map(|v| v.entry_id.clone())
        .collect()
}

fn independence_axis(components: &[ComponentAudit], compared: usize) -> AxisOutcome {
    let mut reasons = Vec::new();
    for c in components {
        let Some(p) = &c.closest_parent else { continue };
        match c.verdict {
            Verdict::Identical | Verdict::Derived => {
                let also = others(c, &[Verdict::Identical, Verdict::Derived]);
                reasons.push(Reason {
                    axis: Axis::Independence,
                    decision: Decision::Fail,
                    component: Some(c.component.clone()),
                    entry_id: Some(p.entry.id.clone()),
                    text: format!(
                        "{}: {} {} {}: its weights were not initialized by the team{}",
                        c.component,
                        c.verdict.as_str(),
                        if c.verdict == Verdict::Identical {
                            "to"
                        } else {
                            "from"
                        },
                        entry_label(&p.entry),
                        if also.is_empty() {
                            String::new()
                        } else {
                            format!(" (also reused according to: {})", also.join(", "))
                        }
                    ),
                });
            }
            Verdict::Inconclusive => reasons.push(Reason {
                axis: Axis::Independence,
                decision: Decision::Review,
                component: Some(c.component.clone()),
                entry_id: Some(p.entry.id.clone()),
                text: format!(
                    "{}: inconclusive against {}: {}; a person must review the evidence",
                    c.component,
                    entry_label(&p.entry),
                    p.evidence.reason
                ),
            }),
            Verdict::Independent => {}
        }
    }
    let decision = if reasons.iter().any(|r| r.decision == Decision::Fail) {
        Decision::Fail
    } else if reasons.is_empty() {
        Decision::Pass
    } else {
        Decision::Review
    };
    if decision == Decision::Pass {
        reasons.push(Reason {
            axis: Axis::Independence,
            decision: Decision::Pass,
            component: None,
            entry_id: None,
            text: format!(
                "no weight component is identical to, derived from or inconclusive against any of the {compared} registry models compared in full"
            ),
        });
    }
    AxisOutcome { decision, reasons }
}

fn policy_axis(components: &[ComponentAudit], input: &AuditInput) -> AxisOutcome {
    let mut reasons = Vec::new();
    for c in components.iter().filter(|c| is_reuse(c.verdict)) {
        for v in c.against.iter().filter(|v| is_reuse(v.verdict)) {
            let Some(r) = input.results.iter().find(|r| r.entry.id == v.entry_id) else {
                continue;
            };
            let licence = assess(r.entry.licence.as_deref());
            if licence.class == LicenceClass::Restrictive {
                reasons.push(Reason {
                    axis: Axis::Policy,
                    decision: Decision::Fail,
                    component: Some(c.component.clone()),
                    entry_id: Some(v.entry_id.clone()),
                    text: format!(
                        "{}: reuses weights of {} under a restrictive licence ({}): {}",
                        c.component,
                        entry_label(&r.entry),
                        licence.licence.as_deref().unwrap_or("none recorded"),
                        licence.why
                    ),
                });
            }
        }
    }
    let decision = if reasons.is_empty() {
        Decision::Pass
    } else {
        Decision::Fail
    };
    if decision == Decision::Pass {
        let reused = components.iter().filter(|c| is_reuse(c.verdict)).count();
        reasons.push(Reason {
            axis: Axis::Policy,
            decision: Decision::Pass,
            component: None,
            entry_id: None,
            text: if reused == 0 {
                "no component reuses registry weights, so no licence applies".into()
            } else {
                format!(
                    "the {reused} reused component(s) come only from models under permissive licences"
                )
            },
        });
    }
    AxisOutcome { decision, reasons }
}

fn scope_statements(input: &AuditInput, not_compared: &[String]) -> Vec<String> {
    let mut s = vec![
        "\"No evidence\" is not proof of training from scratch: \"independent\" means only that no \
         comparison rejected independent initialization."
            .to_string(),
        "Only weights were tested: distillation, training on shared data and a shared public \
         initialization are not detected by this audit."
            .to_string(),
        format!(
            "Only the {} models in the registry ({}) were checked; a parent outside the registry \
             cannot be found.",
            input.results.len(),
            input.registry.path
        ),
        "Tokenizer and config findings are circumstantial and never decide.".to_string(),
    ];
    let dropped = input.results.iter().filter(|r| !r.prefilter.passed).count();
    if dropped > 0 {
        s.push(format!(
            "{dropped} registry model(s) were dropped by the prefilter (reasons listed per entry) and not compared in full."
        ));
    }
    if !not_compared.is_empty() {
        s.push(format!(
            "No registry model could be compared on: {}.",
            not_compared.join(", ")
        ));
    }
    s
}
