//! The policy on real comparisons: every verdict below was computed by dokja-provenance on
//! models whose relation the test kit built.

mod common;

use common::scenarios::{fine_tuned, independent, vision_tower_copy};
use dokja_audit::{Audit, AuditInput, Axis, Decision, decide, render_json, validate};
use dokja_provenance::Verdict;

fn component<'a>(audit: &'a Audit, name: &str) -> &'a dokja_audit::ComponentAudit {
    audit
        .components
        .iter()
        .find(|c| c.component == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", audit.components))
}

#[test]
fn copied_vision_tower_fails_naming_the_donor_and_the_component() {
    let s = vision_tower_copy(Some("apache-2.0"));
    validate(&s.input).unwrap();
    let audit = decide(&s.input);
    assert_eq!(audit.decision, Decision::Fail, "{:#?}", audit.reasons);
    assert_eq!(audit.exit_code, 1);
    assert_eq!(audit.axes.independence.decision, Decision::Fail);
    // The donor's licence is permissive: reuse fails independence, not the policy axis.
    assert_eq!(audit.axes.policy.decision, Decision::Pass);

    let tower = component(&audit, "vision_encoder");
    assert_eq!(tower.verdict, Verdict::Identical);
    let parent = tower.closest_parent.as_ref().unwrap();
    // The fine-tune of the donor (listed first) is only derived: identical wins.
    assert_eq!(parent.entry.id, "donor-vlm");
    assert_eq!(tower.against[0].entry_id, "donor-vlm");
    assert_eq!(tower.against[1].entry_id, "vlm-finetuned");
    assert_eq!(tower.against[1].verdict, Verdict::Derived);
    assert_eq!(tower.compared_with, 2);

    let lm = component(&audit, "language_model");
    assert_eq!(lm.verdict, Verdict::Independent);
    assert_eq!(lm.compared_with, 3);

    let reason = audit
        .reasons
        .iter()
        .find(|r| r.component.as_deref() == Some("vision_encoder"))
        .expect("a reason for the tower");
    assert_eq!(reason.axis, Axis::Independence);
    assert_eq!(reason.entry_id.as_deref(), Some("donor-vlm"));
    assert!(reason.text.contains("vision_encoder"), "{}", reason.text);
    assert!(reason.text.contains("identical"), "{}", reason.text);
    assert!(reason.text.contains("donor-vlm"), "{}", reason.text);
    assert!(
        audit
            .reasons
            .iter()
            .all(|r| r.component.as_deref() != Some("language_model")),
        "{:#?}",
        audit.reasons
    );

    // The unrelated model was compared through its fingerprint file, whose digest is kept.
    let fingerprint = std::fs::read(s.dir.path().join("other.dokjafp")).unwrap();
    assert_eq!(
        audit.entries[2].fingerprint.as_deref(),
        Some(blake3::hash(&fingerprint).to_hex().as_str())
    );
    assert_eq!(audit.entries[0].fingerprint, None);
    assert_eq!(audit.scope.entries_checked, 4);
    assert_eq!(audit.scope.compared_in_full, 3);
    assert_eq!(audit.scope.dropped_by_prefilter, 1);
    // Tokenizer and config findings are listed but never become reasons.
    assert!(
        audit
            .circumstantial
            .iter()
            .any(|f| f.component == "tokenizer")
    );
    assert!(audit.circumstantial.iter().any(|f| f.component == "config"));
}

#[test]
fn restrictive_licence_on_a_reused_component_fails_the_policy_axis() {
    for licence in [Some("gemma"), Some("llama3.1"), None] {
        let s = vision_tower_copy(licence);
        let audit = decide(&s.input);
        assert_eq!(audit.decision, Decision::Fail);
        assert_eq!(audit.axes.policy.decision, Decision::Fail, "{licence:?}");
        let policy: Vec<_> = audit
            .reasons
            .iter()
            .filter(|r| r.axis == Axis::Policy)
            .collect();
        // Only the donor is restrictive; the fine-tune it was also matched with is MIT.
        assert_eq!(policy.len(), 1, "{licence:?}: {policy:#?}");
        assert_eq!(policy[0].entry_id.as_deref(), Some("donor-vlm"));
        assert_eq!(policy[0].component.as_deref(), Some("vision_encoder"));
        let named = licence.unwrap_or("none recorded");
        assert!(policy[0].text.contains(named), "{}", policy[0].text);
    }
}

#[test]
fn fine_tune_fails_as_derived_from_its_base() {
    let s = fine_tuned();
    let audit = decide(&s.input);
    assert_eq!(audit.decision, Decision::Fail, "{:#?}", audit.reasons);
    let lm = component(&audit, "language_model");
    assert_eq!(lm.verdict, Verdict::Derived);
    let parent = lm.closest_parent.as_ref().unwrap();
    // Both the base and its other fine-tune are ancestors' kin: the stronger evidence wins.
    assert_eq!(parent.entry.id, "base-lm");
    assert!(parent.strength.layers_with_evidence > 0);
    let order: Vec<(&str, Verdict)> = lm
        .against
        .iter()
        .map(|v| (v.entry_id.as_str(), v.verdict))
        .collect();
    assert_eq!(
        order,
        [
            ("base-lm", Verdict::Derived),
            ("sibling-lm", Verdict::Derived),
            ("seed-3-lm", Verdict::Independent)
        ]
    );
    let base = parent.strength.max_layer_excess.unwrap();
    let sibling = lm.against[1].strength.max_layer_excess.unwrap();
    assert!(base > sibling, "excess: base {base}, sibling {sibling}");
    let reason = audit
        .reasons
        .iter()
        .find(|r| r.component.as_deref() == Some("language_model"))
        .unwrap();
    assert!(reason.text.contains("derived"), "{}", reason.text);
    assert!(reason.text.contains("base-lm"), "{}", reason.text);
    assert_eq!(audit.axes.policy.decision, Decision::Pass);
}

#[test]
fn independent_model_passes_with_its_scope_stated() {
    let s = independent();
    let audit = decide(&s.input);
    assert_eq!(audit.decision, Decision::Pass, "{:#?}", audit.reasons);
    assert_eq!(audit.exit_code, 0);
    assert!(!audit.components.is_empty());
    for c in &audit.components {
        assert_eq!(c.verdict, Verdict::Independent, "{}", c.component);
        assert_eq!(c.compared_with, 2);
    }
    // Restrictive licences of unrelated models do not matter.
    assert_eq!(audit.axes.policy.decision, Decision::Pass);
    let scope = audit.scope.statements.join(" ");
    assert!(scope.contains("not proof"), "{scope}");
    assert!(scope.contains("distillation"), "{scope}");
    assert!(
        scope.contains("Only the 3 models in the registry"),
        "{scope}"
    );
    assert_eq!(audit.entries.len(), 3);
    assert_eq!(audit.entries[2].verdict, None);
}

fn make_inconclusive(input: &mut AuditInput, entry: usize, component: &str) {
    let c = input.results[entry].comparison.as_mut().unwrap();
    let report = c
        .components
        .iter_mut()
        .find(|x| x.component == component)
        .unwrap();
    report.verdict = Verdict::Inconclusive;
    report.reason = "constructed for the test: layers reach half the margin".into();
}

#[test]
fn inconclusive_component_needs_review_unless_something_fails() {
    let mut s = independent();
    make_inconclusive(&mut s.input, 1, "language_model");
    let audit = decide(&s.input);
    assert_eq!(audit.decision, Decision::Review);
    assert_eq!(audit.exit_code, 3);
    let lm = component(&audit, "language_model");
    assert_eq!(lm.verdict, Verdict::Inconclusive);
    assert_eq!(lm.closest_parent.as_ref().unwrap().entry.id, "seed-3-lm");
    assert_eq!(audit.reasons.len(), 1, "{:#?}", audit.reasons);
    assert_eq!(audit.reasons[0].decision, Decision::Review);
    assert!(audit.reasons[0].text.contains("constructed for the test"));

    // A failure elsewhere outranks the review.
    let mut s = fine_tuned();
    make_inconclusive(&mut s.input, 0, "language_model");
    let audit = decide(&s.input);
    assert_eq!(audit.decision, Decision::Fail);
    assert_eq!(
        component(&audit, "language_model").against[1].verdict,
        Verdict::Inconclusive
    );
}

/// Equal texts, or a panic showing where they first differ.
fn same_text(got: &str, want: &str) {
    if let Some(i) = got.bytes().zip(want.bytes()).position(|(a, b)| a != b) {
        let from = i.saturating_sub(80);
        panic!(
            "texts differ at byte {i}:\n got {:?}\nwant {:?}",
            &got[from..(i + 80).min(got.len())],
            &want[from..(i + 80).min(want.len())]
        );
    }
    assert_eq!(got.len(), want.len(), "one text is a prefix of the other");
}

#[test]
fn audit_and_input_round_trip_through_json() {
    let s = vision_tower_copy(Some("gemma"));
    let input_json = serde_json::to_string(&s.input).unwrap();
    let input_back: AuditInput = serde_json::from_str(&input_json).unwrap();
    same_text(&serde_json::to_string(&input_back).unwrap(), &input_json);

    let audit = decide(&s.input);
    let json = render_json(&audit);
    // Deciding again, or from the round-tripped input, gives the same document.
    same_text(&render_json(&decide(&input_back)), &json);
    let back: Audit = serde_json::from_str(&json).unwrap();
    same_text(&render_json(&back), &json);

    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["schema"], "dokja-audit/1");
    assert_eq!(v["decision"], "FAIL");
    assert_eq!(v["exit_code"], 1);
    let tower = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "vision_encoder")
        .unwrap();
    assert_eq!(tower["closest_parent"]["entry"]["id"], "donor-vlm");
    assert_eq!(tower["closest_parent"]["evidence"]["verdict"], "identical");
}

#[test]
fn inconsistent_inputs_are_refused() {
    let s = independent();
    let mut wrong = s.input.clone();
    wrong.registry.entries = 5;
    assert!(
        validate(&wrong)
            .unwrap_err()
            .to_string()
            .contains("5 entries")
    );
    let mut wrong = s.input.clone();
    wrong.results[1].entry.id = "base-lm".into();
    assert!(validate(&wrong).unwrap_err().to_string().contains("twice"));
    let mut wrong = s.input.clone();
    wrong.results[0].prefilter.passed = false;
    assert!(
        validate(&wrong)
            .unwrap_err()
            .to_string()
            .contains("dropped by the prefilter")
    );
    let mut wrong = s.input.clone();
    wrong.created = " ".into();
    assert!(
        validate(&wrong)
            .unwrap_err()
            .to_string()
            .contains("created")
    );
}
