//! The comparison pipeline: per component, identity first, then alignment and calibrated
//! unit matching; then embeddings and the circumstantial tokenizer finding; then the overall
//! verdict.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dokja_formats::Model;
use dokja_schema::Component;
use dokja_stats::Mat;
use dokja_stats::pvalue::{LogP, cauchy_combination, gaussian_tail};

use crate::align::{Alignment, AlignmentKind, Anchors, median, token_anchors};
use crate::identity::{IdentityOutcome, compare_identity};
use crate::report::*;
use crate::slots::{Kind, ModelSlots, Orientation, Slot};
use crate::subject::{EXPERT_QUERIES, Subject};
use crate::units::{PartnerSketch, QuerySketch, canonical_projection, score};
use crate::{CompareOptions, EFFECT_MARGIN, EMBEDDING_EFFECT_MARGIN, Result};

/// Null replicates whose unit correspondence is destroyed by permuting B's sketch columns.
const SURROGATES: usize = 8;
/// Expert pairs scored per layer before falling back to matching experts by index.
const MAX_EXPERT_PAIRS: usize = 4096;
/// Fewer null values than this cannot calibrate a kind.
const MIN_NULL: usize = 3;
/// The group of matrices that belong to no layer; it corresponds only to itself.
const GLOBAL_LAYER: u32 = u32::MAX;

pub fn compare(a: &Model, b: &Model, opts: &CompareOptions) -> Result<Comparison> {
    compare_subjects(Subject::Weights(a), Subject::Weights(b), opts)
}

/// Compares two models, either of which may be a fingerprint. A fingerprint fixes the seed
/// and sketch parameters: `opts` must agree with them.
pub fn compare_subjects(
    a: Subject<'_>,
    b: Subject<'_>,
    opts: &CompareOptions,
) -> Result<Comparison> {
    for f in [a.fingerprint(), b.fingerprint()].into_iter().flatten() {
        let want = crate::fingerprint::Params::of(opts);
        if f.params() != &want {
            return Err(crate::ProvenanceError::Mismatch(format!(
                "{} was made with seed {} / sketch {} / {} query units; compare with the same (--seed {})",
                f.origin,
                f.params().seed,
                f.params().sketch_dim,
                f.params().query_units,
                f.params().seed
            )));
        }
    }
    let sa = ModelSlots::of_subject(a);
    let sb = ModelSlots::of_subject(b);
    let ca: BTreeSet<Component> = sa
        .components
        .keys()
        .copied()
        .filter(|c| *c != Component::Unclassified)
        .collect();
    let cb: BTreeSet<Component> = sb
        .components
        .keys()
        .copied()
        .filter(|c| *c != Component::Unclassified)
        .collect();
    let compared: Vec<Component> = ca.intersection(&cb).copied().collect();
    let not_compared = ca
        .symmetric_difference(&cb)
        .map(|c| {
            format!(
                "{} (only in {})",
                c.as_str(),
                if ca.contains(c) { "A" } else { "B" }
            )
        })
        .collect();
    // Bonferroni over the weight components tested (embeddings counted as one more).
    let tests = compared.len() + usize::from(compared.contains(&Component::LanguageModel));
    let alpha = opts.alpha / tests.max(1) as f64;

    let mut components = Vec::new();
    for &component in &compared {
        components.extend(compare_component(&sa, &sb, component, opts, alpha)?);
    }
    if let (Some(ta), Some(tb)) = (
        sa.model.sidecars.tokenizer.as_ref(),
        sb.model.sidecars.tokenizer.as_ref(),
    ) {
        let f = crate::tokenizer::compare(ta, tb);
        components.push(ComponentReport {
            component: "tokenizer".into(),
            verdict: f.verdict,
            reason: format!(
                "{} (string Jaccard {:.2}, same id same string {:.2}, merges common prefix {:.2}); circumstantial",
                f.reason, f.string_jaccard, f.same_id_same_string, f.merges_common_prefix
            ),
            circumstantial: true,
            identity: None,
            alignment: None,
            statistics: Vec::new(),
            layers: Vec::new(),
            transformations: Vec::new(),
        });
    }
    let config = crate::config::compare(&sa, &sb)?;
    components.push(ComponentReport {
        component: "config".into(),
        verdict: config.verdict,
        reason: format!("{}; circumstantial", config.reason),
        circumstantial: true,
        identity: None,
        alignment: None,
        statistics: Vec::new(),
        layers: Vec::new(),
        transformations: Vec::new(),
    });
    let verdict = overall(&components);
    let decisive: Vec<String> = components
        .iter()
        .filter(|c| !c.circumstantial)
        .map(|c| format!("{}: {}", c.component, c.verdict.as_str()))
        .collect();
    Ok(Comparison {
        verdict,
        summary: if decisive.is_empty() {
            "no component could be compared".into()
        } else {
            decisive.join("; ")
        },
        a: model_ref(&sa),
        b: model_ref(&sb),
        components,
        not_compared,
        method: Method {
            tool: format!("dokja {}", env!("CARGO_PKG_VERSION")),
            seed: opts.seed,
            sketch_dim: opts.sketch_dim,
            query_units: opts.query_units,
            max_null_pairs: opts.max_null_pairs,
            alpha: opts.alpha,
            effect_margin: EFFECT_MARGIN,
            embedding_effect_margin: EMBEDDING_EFFECT_MARGIN,
            permutation_fit_min: crate::align::PERMUTATION_FIT_MIN,
            layer_combination:
                "Cauchy combination (valid under dependence) of per-kind, then per-layer p-values"
                    .into(),
            multiple_testing: "Bonferroni over the components tested".into(),
        },
        scope: SCOPE.into(),
    })
}

/// Identical only if every weight component is; otherwise any reuse makes the pair derived.
fn overall(components: &[ComponentReport]) -> Verdict {
    let weights: Vec<Verdict> = components
        .iter()
        .filter(|c| !c.circumstantial)
        .map(|c| c.verdict)
        .collect();
    if weights.is_empty() {
        Verdict::Inconclusive
    } else if weights.iter().all(|v| *v == Verdict::Identical) {
        Verdict::Identical
    } else if weights
        .iter()
        .any(|v| matches!(v, Verdict::Identical | Verdict::Derived))
    {
        Verdict::Derived
    } else if weights.contains(&Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else {
        Verdict::Independent
    }
}

fn model_ref(s: &ModelSlots<'_>) -> ModelRef {
    ModelRef {
        path: s.model.path.display().to_string(),
        format: s.model.format.name().into(),
        fingerprint: s.subject.fingerprint().map(|f| f.digest.clone()),
        family: s.family.display_name().to_string(),
        tensors: s.model.tensors.len(),
        parameters: s
            .model
            .tensors
            .iter()
            .zip(&s.classes)
            .filter(|(_, c)| c.learned)
            .map(|(t, _)| t.n_elements())
            .sum(),
    }
}

fn report(component: &str, verdict: Verdict, reason: String) -> ComponentReport {
    ComponentReport {
        component: component.to_string(),
        verdict,
        reason,
        circumstantial: false,
        identity: None,
        alignment: None,
        statistics: Vec::new(),
        layers: Vec::new(),
        transformations: Vec::new(),
    }
}

fn compare_component(
    sa: &ModelSlots<'_>,
    sb: &ModelSlots<'_>,
    component: Component,
    opts: &CompareOptions,
    alpha: f64,
) -> Result<Vec<ComponentReport>> {
    let name = component.as_str();
    let identity = compare_identity(sa, sb, component, opts.seed)?;
    let mut transformations = identity_transformations(&identity);
    let is_lm = component == Component::LanguageModel;
    let has_embeddings = is_lm
        && sa.components[&component].token_embedding.is_some()
        && sb.components[&component].token_embedding.is_some();
    let vocab = |s: &ModelSlots<'_>| {
        s.components[&component]
            .token_embedding
            .map(|i| s.model.tensors[i].shape[0])
    };
    if let (Some(va), Some(vb)) = (vocab(sa), vocab(sb))
        && va != vb
    {
        transformations.push(format!("vocabulary change ({va} -> {vb} rows)"));
    }
    // The identity layer alone decides copies and re-quantizations.
    let settled = match identity.outcome {
        IdentityOutcome::Exact => Some((
            Verdict::Identical,
            format!(
                "every tensor holds the same values to the last bit ({} tensors or experts paired)",
                identity.paired
            ),
            "part of an identical language model",
        )),
        IdentityOutcome::Cast => Some((
            Verdict::Identical,
            format!(
                "every tensor holds the same values up to the rounding of a dtype cast ({} tensors or experts paired)",
                identity.paired
            ),
            "part of an identical language model",
        )),
        IdentityOutcome::Quantized => Some((
            Verdict::Derived,
            format!(
                "every tensor matches within quantization error (largest relative RMS difference {:.4})",
                identity.max_relative_rms
            ),
            "part of a re-quantized language model",
        )),
        IdentityOutcome::Different => None,
    };
    if let Some((verdict, reason, embeddings_reason)) = settled {
        let mut r = report(name, verdict, reason);
        r.transformations = transformations;
        r.identity = Some(identity);
        let mut out = vec![r];
        if has_embeddings {
            out.push(report("embeddings", verdict, embeddings_reason.into()));
        }
        return Ok(out);
    }

    let alignment = component_alignment(sa, sb, component, opts)?;
    // Two fingerprints hold each side's units under its own canonical projection, which the
    // statistics can relate only when B's basis is A's in stored order.
    let both_fingerprints = sa.subject.is_fingerprint() && sb.subject.is_fingerprint();
    let stored_order;
    let unit_alignment = if both_fingerprints && !alignment.is_stored_order() {
        let (wa, wb) = (alignment.summary.width_a, alignment.summary.width_b);
        if alignment.shows_inherited_basis() || wa != wb {
            let (verdict, reason) = if alignment.shows_inherited_basis() {
                (
                    Verdict::Inconclusive,
                    "the anchors show B's residual basis to be A's, transformed; two fingerprints cannot follow the transformation unit by unit: compare a fingerprint against the other model's weights".to_string(),
                )
            } else {
                (
                    Verdict::Independent,
                    format!(
                        "the residual bases share no structure (widths {wa} and {wb}, anchors fit no inherited basis) and two fingerprints cannot relate units across different widths; compare against either model's weights for the unit-level test"
                    ),
                )
            };
            let mut out = Vec::new();
            if has_embeddings && alignment.held_out.is_some() {
                out.push(embeddings_report(&alignment, verdict, opts, alpha)?);
            }
            let mut r = report(name, verdict, reason);
            r.identity = Some(identity);
            r.alignment = Some(alignment.summary.clone());
            out.insert(0, r);
            return Ok(out);
        }
        // No inherited basis: test the stored order, which any independent pair passes and a
        // copy with retrained embeddings fails.
        stored_order = Alignment::identity(wa);
        &stored_order
    } else {
        &alignment
    };
    let evidence = unit_evidence(sa, sb, component, unit_alignment, opts)?;
    let (verdict, reason) = decide(&evidence, alpha);
    transformations.extend(evidence.transformations.iter().cloned());
    match alignment.summary.kind {
        AlignmentKind::SignedPermutation
            if alignment.summary.permutation_is_identity == Some(false)
                && verdict == Verdict::Derived =>
        {
            transformations.push("permutation of the residual stream".into())
        }
        // A rotation is a finding only if it explains the held-out anchors well.
        AlignmentKind::Rotation
            if verdict == Verdict::Derived
                && alignment.summary.rotation_fit.is_some_and(|f| f >= 0.5) =>
        {
            transformations.push("rotation of the residual stream".into())
        }
        _ => {}
    }
    if alignment.summary.width_a != alignment.summary.width_b {
        transformations.push(format!(
            "width change ({} -> {})",
            alignment.summary.width_a, alignment.summary.width_b
        ));
    }
    let mut out = Vec::new();
    if has_embeddings && alignment.held_out.is_some() {
        out.push(embeddings_report(&alignment, verdict, opts, alpha)?);
    }
    let mut r = report(name, verdict, reason);
    r.identity = Some(identity);
    r.alignment = Some(alignment.summary.clone());
    r.statistics = evidence.statistics;
    r.layers = evidence.layers;
    r.transformations = if verdict == Verdict::Derived {
        transformations
    } else {
        Vec::new()
    };
    out.insert(0, r);
    Ok(out)
}

fn identity_transformations(f: &crate::identity::IdentityFinding) -> Vec<String> {
    let mut t = Vec::new();
    if f.dtypes_a != f.dtypes_b {
        t.push(format!(
            "dtype change ({} -> {})",
            f.dtypes_a.join("/"),
            f.dtypes_b.join("/")
        ));
    }
    let quantized = |d: &[String]| d.iter().any(|x| x.starts_with('Q'));
    if quantized(&f.dtypes_a) || quantized(&f.dtypes_b) {
        t.push("quantization".into());
    }
    if !f.renamed.is_empty() {
        t.push(format!(
            "renaming (e.g. {} -> {})",
            f.renamed[0].0, f.renamed[0].1
        ));
    }
    t
}

/// The residual width of a component: the embedding's, or the width of its first matrix
/// that reads from the residual.
fn residual_width(s: &ModelSlots<'_>, component: Component) -> Option<usize> {
    let c = &s.components[&component];
    if let Some(e) = c.token_embedding.or(c.lm_head) {
        return Some(s.model.tensors[e].shape[1] as usize);
    }
    c.matrices
        .iter()
        .find(|m| m.orientation == Orientation::ReadsResidual && !matches!(m.kind, Kind::Router))
        .map(|m| m.units_by_width().1)
}

fn component_alignment(
    sa: &ModelSlots<'_>,
    sb: &ModelSlots<'_>,
    component: Component,
    opts: &CompareOptions,
) -> Result<Alignment> {
    let anchors = match component {
        Component::LanguageModel => {
            let (ca, cb) = (&sa.components[&component], &sb.components[&component]);
            match (
                ca.token_embedding.or(ca.lm_head),
                cb.token_embedding.or(cb.lm_head),
            ) {
                (Some(ea), Some(eb)) => {
                    token_anchors(sa.subject, ea, sb.subject, eb, opts.max_anchors)?
                }
                _ => None,
            }
        }
        Component::VisionEncoder | Component::AudioEncoder => encoder_anchors(sa, sb, component)?,
        _ => None,
    };
    if let Some(anchors) = anchors {
        return Alignment::fit(anchors);
    }
    match (residual_width(sa, component), residual_width(sb, component)) {
        (Some(wa), Some(wb)) if wa == wb => Ok(Alignment::identity(wa)),
        (Some(wa), Some(wb)) => Ok(Alignment::unaligned(wa, wb)),
        _ => Ok(Alignment::unaligned(0, 0)),
    }
}

/// Encoders have no vocabulary; pixels of the patch embedding and positions of the position
/// embedding mean the same thing in any two towers of the same geometry.
fn encoder_anchors(
    sa: &ModelSlots<'_>,
    sb: &ModelSlots<'_>,
    component: Component,
) -> Result<Option<Anchors>> {
    let find = |s: &ModelSlots<'_>, kind: Kind| {
        s.components[&component]
            .matrices
            .iter()
            .enumerate()
            .find(|(_, m)| m.kind == kind)
            .map(|(i, m)| (i, m.clone()))
    };
    let mut parts_a = Vec::new();
    let mut parts_b = Vec::new();
    let mut sources = Vec::new();
    if let (Some((ia, pa)), Some((ib, pb))) = (
        find(sa, Kind::PatchEmbedding),
        find(sb, Kind::PatchEmbedding),
    ) && pa.stored.1 == pb.stored.1
    {
        // Stored [residual, pixels]: the pixels are the anchors.
        parts_a.push(sa.subject.matrix(component, ia, &pa)?.transpose());
        parts_b.push(sb.subject.matrix(component, ib, &pb)?.transpose());
        sources.push(format!("{} patch pixels", pa.stored.1));
    }
    if let (Some((ia, pa)), Some((ib, pb))) = (
        find(sa, Kind::PositionEmbedding),
        find(sb, Kind::PositionEmbedding),
    ) && pa.stored.0 == pb.stored.0
    {
        parts_a.push(sa.subject.matrix(component, ia, &pa)?);
        parts_b.push(sb.subject.matrix(component, ib, &pb)?);
        sources.push(format!("{} positions", pa.stored.0));
    }
    let (Some(a), Some(b)) = (vstack(&parts_a)?, vstack(&parts_b)?) else {
        return Ok(None);
    };
    if a.rows() < crate::align::MIN_ANCHORS {
        return Ok(None);
    }
    Ok(Some(Anchors {
        source: sources.join(" + "),
        a,
        b,
    }))
}

fn vstack(parts: &[Mat]) -> Result<Option<Mat>> {
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    let cols = first.cols();
    if parts.iter().any(|p| p.cols() != cols) {
        return Ok(None);
    }
    let rows = parts.iter().map(Mat::rows).sum();
    let data = parts
        .iter()
        .flat_map(|p| p.as_slice().iter().copied())
        .collect();
    Ok(Some(Mat::from_vec(rows, cols, data)?))
}

struct Evidence {
    statistics: Vec<Statistic>,
    layers: Vec<LayerEvidence>,
    log_p: Option<LogP>,
    carrying: usize,
    /// Layers whose excess reaches half the effect margin: too weak to decide, too strong to
    /// dismiss as structure independent models share.
    partial: usize,
    matched_layers: usize,
    transformations: Vec<String>,
}

type GroupKey = (Kind, bool, u32);

/// Slots grouped by (kind, shared expert, layer); slots a fingerprint did not keep are left
/// out.
fn groups(slots: &[Slot], available: impl Fn(usize) -> bool) -> BTreeMap<GroupKey, Vec<usize>> {
    let mut g: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
    for (i, s) in slots.iter().enumerate() {
        if !available(i) {
            continue;
        }
        // Patch and position embeddings serve as anchors: their fit is not independent evidence.
        if matches!(s.kind, Kind::PatchEmbedding | Kind::PositionEmbedding) {
            continue;
        }
        // Matrices outside any layer (projectors, tower-level heads) form one group of their own.
        g.entry((s.kind, s.shared_expert, s.layer.unwrap_or(GLOBAL_LAYER)))
            .or_default()
            .push(i);
    }
    g
}

struct Scorer<'a> {
    sa: &'a ModelSlots<'a>,
    sb: &'a ModelSlots<'a>,
    component: Component,
    slots_a: &'a [Slot],
    slots_b: &'a [Slot],
    /// Which side contributes query units (the other contributes all its units). A
    /// fingerprint can only be the query side unless both are fingerprints.
    query_is_a: bool,
    /// (G_A, G_B): the query side's canonical projection and its image on the other side.
    residual: Option<(Mat, Mat)>,
    residual_widths: (usize, usize),
    private: HashMap<usize, Mat>,
    queries: HashMap<usize, QuerySketch>,
    partners: HashMap<usize, PartnerSketch>,
    opts: &'a CompareOptions,
    total_slots: u64,
    done_slots: u64,
    bytes_read: u64,
}

impl Scorer<'_> {
    /// The projection that sketches a partner-side slot's units: the alignment's image of the
    /// query side's canonical projection for residual-width matrices, else the canonical
    /// projection of the slot's width (private bases are compared in stored order).
    fn partner_projection(&mut self, slot: &Slot) -> Result<&Mat> {
        let width = slot.units_by_width().1;
        let residual_width = if self.query_is_a {
            self.residual_widths.1
        } else {
            self.residual_widths.0
        };
        if slot.orientation != Orientation::Private
            && width == residual_width
            && let Some((ga, gb)) = &self.residual
        {
            return Ok(if self.query_is_a { gb } else { ga });
        }
        if !self.private.contains_key(&width) {
            let g = canonical_projection(width, self.opts.sketch_dim, self.opts.seed)?;
            self.private.insert(width, g);
        }
        Ok(&self.private[&width])
    }

    fn tick(&mut self, subject: Subject<'_>, slot: &Slot) {
        if !subject.is_fingerprint() {
            let t = &subject.model().tensors[slot.tensor];
            let per_row = t.byte_len / t.n_rows().max(1);
            self.bytes_read += per_row * (slot.rows.end - slot.rows.start);
        }
        self.done_slots += 1;
        // A sketch dropped to bound memory may be computed again (unequal depths).
        self.total_slots = self.total_slots.max(self.done_slots);
        if let Some(progress) = &self.opts.progress {
            progress(crate::Progress {
                component: self.component.as_str(),
                done: self.done_slots,
                total: self.total_slots,
                bytes: self.bytes_read,
            });
        }
    }

    /// Reads and sketches a query-side slot once.
    fn ensure_query(&mut self, index: usize) -> Result<bool> {
        if !self.queries.contains_key(&index) {
            let (side, slots) = if self.query_is_a {
                (self.sa, self.slots_a)
            } else {
                (self.sb, self.slots_b)
            };
            let Some(q) =
                side.subject
                    .query_sketch(self.component, index, &slots[index], self.opts)?
            else {
                return Ok(false);
            };
            self.queries.insert(index, q);
            self.tick(side.subject, &slots[index]);
        }
        Ok(true)
    }

    /// Reads and sketches a partner-side slot once.
    fn ensure_partner(&mut self, index: usize) -> Result<bool> {
        if !self.partners.contains_key(&index) {
            let (side, slots) = if self.query_is_a {
                (self.sb, self.slots_b)
            } else {
                (self.sa, self.slots_a)
            };
            let slot = slots[index].clone();
            let g = self.partner_projection(&slot)?.clone();
            let Some(p) = side
                .subject
                .partner_sketch(self.component, index, &slot, &g)?
            else {
                return Ok(false);
            };
            self.partners.insert(index, p);
            self.tick(side.subject, &slot);
        }
        Ok(true)
    }

    /// Scores `requests` (results in request order), taking them partner layer by partner
    /// layer and dropping that layer's partner sketches as soon as it is done. The working
    /// set is one layer's partner sketches of one kind (plus the kind's query sketches),
    /// whatever the depth or the number of experts; a partner sketch is computed once per
    /// batch.
    fn score_requests(
        &mut self,
        ga: &BTreeMap<GroupKey, Vec<usize>>,
        gb: &BTreeMap<GroupKey, Vec<usize>>,
        kind: Kind,
        shared: bool,
        requests: &[Request],
    ) -> Result<Vec<Option<PairScore>>> {
        let query_is_a = self.query_is_a;
        let partner_layer = |r: &Request| if query_is_a { r.lb } else { r.la };
        let mut order: Vec<usize> = (0..requests.len()).collect();
        order.sort_by_key(|&i| partner_layer(&requests[i]));
        let mut out = vec![None; requests.len()];
        for run in
            order.chunk_by(|&i, &j| partner_layer(&requests[i]) == partner_layer(&requests[j]))
        {
            for &i in run {
                let r = requests[i];
                let (Some(a), Some(b)) =
                    (ga.get(&(kind, shared, r.la)), gb.get(&(kind, shared, r.lb)))
                else {
                    continue;
                };
                out[i] = self.pair_score(a, b, r.permute)?;
            }
            let layer = partner_layer(&requests[run[0]]);
            let partners = if query_is_a { gb } else { ga };
            for index in partners.get(&(kind, shared, layer)).into_iter().flatten() {
                self.partners.remove(index);
            }
        }
        Ok(out)
    }

    /// Score between the slots of one kind at one layer of A and one layer of B: one pair,
    /// or experts matched one to one by their scores. `permute` destroys the unit
    /// correspondence (surrogate null).
    fn pair_score(
        &mut self,
        a: &[usize],
        b: &[usize],
        permute: Option<u64>,
    ) -> Result<Option<PairScore>> {
        let n_pairs = a.len() * b.len();
        let q = if n_pairs == 1 {
            self.opts.query_units
        } else {
            EXPERT_QUERIES.min(self.opts.query_units)
        };
        let mut scores = Vec::with_capacity(n_pairs);
        let by_index = n_pairs > MAX_EXPERT_PAIRS;
        let unscored = PairScore {
            best: f64::NEG_INFINITY,
            same_index: 0.0,
            same_cos: None,
        };
        for (i, &ia) in a.iter().enumerate() {
            for (j, &ib) in b.iter().enumerate() {
                if by_index && i != j {
                    scores.push(unscored);
                    continue;
                }
                let (iq, ip) = if self.query_is_a { (ia, ib) } else { (ib, ia) };
                if !self.ensure_query(iq)? || !self.ensure_partner(ip)? {
                    scores.push(unscored);
                    continue;
                }
                let slots_q = if self.query_is_a {
                    self.slots_a
                } else {
                    self.slots_b
                };
                let budget = crate::subject::query_budget(&slots_q[iq], self.opts);
                let qs = self.queries[&iq].prefix(q.min(budget))?;
                let partner = &self.partners[&ip];
                if qs.rows.cols() != partner.rows.cols() {
                    return Ok(None);
                }
                let permuted;
                let partner = match permute {
                    Some(seed) => {
                        permuted = PartnerSketch {
                            n_units: partner.n_units,
                            indices: partner.indices.clone(),
                            rows: permute_columns(&partner.rows, seed),
                        };
                        &permuted
                    }
                    None => partner,
                };
                let s = score(&qs, partner)?;
                scores.push(PairScore {
                    best: s.median_best,
                    same_index: s.same_index,
                    same_cos: s.same_index_cosine,
                });
            }
        }
        if scores.iter().all(|s| !s.best.is_finite()) {
            return Ok(None);
        }
        if n_pairs == 1 {
            return Ok(Some(scores[0]));
        }
        // Experts: matched one to one on their best-partner scores (expert order is arbitrary).
        let weights: Vec<f64> = scores
            .iter()
            .map(|s| if s.best.is_finite() { s.best } else { -1.0 })
            .collect();
        let m = dokja_stats::linear_sum_assignment(
            &weights,
            a.len(),
            b.len(),
            dokja_stats::Objective::Maximize,
        )?;
        let (mut total, mut same, mut same_cos) = (0.0, 0.0, Some(0.0));
        for (&r, &c) in m.rows.iter().zip(&m.cols) {
            let s = &scores[r * b.len() + c];
            total += weights[r * b.len() + c];
            same += s.same_index;
            same_cos = match (same_cos, s.same_cos) {
                (Some(acc), Some(x)) => Some(acc + x),
                _ => None,
            };
        }
        let n = m.rows.len().max(1) as f64;
        Ok(Some(PairScore {
            best: total / n,
            same_index: same / n,
            same_cos: same_cos.map(|x| x / n),
        }))
    }
}

/// One score a kind's statistics need: A's slots of the kind at layer `la` against B's at
/// `lb`; `permute` destroys the unit correspondence (surrogate null).
#[derive(Clone, Copy, Debug)]
struct Request {
    la: u32,
    lb: u32,
    permute: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct PairScore {
    /// Median best-partner cosine.
    best: f64,
    /// Fraction of best partners with the same index.
    same_index: f64,
    /// Median same-index cosine (equal unit counts only).
    same_cos: Option<f64>,
}

/// The two unit statistics: best partner (survives unit permutations and pruning) and same
/// index (no maximum over candidates, so its null sits at 0; survives everything but a
/// permutation of units).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UnitStat {
    BestPartner,
    SameIndex,
}

impl UnitStat {
    fn of(self, p: &PairScore) -> Option<f64> {
        match self {
            UnitStat::BestPartner => Some(p.best),
            UnitStat::SameIndex => p.same_cos,
        }
    }
    fn label(self) -> &'static str {
        match self {
            UnitStat::BestPartner => "best-partner unit cosine",
            UnitStat::SameIndex => "same-index unit cosine",
        }
    }
}

fn permute_columns(m: &Mat, seed: u64) -> Mat {
    let perm = dokja_stats::random::random_permutation(seed, 0, m.cols());
    let mut out = Mat::zeros(m.rows(), m.cols());
    for r in 0..m.rows() {
        let (src, dst) = (m.row(r), out.row_mut(r));
        for (j, &p) in perm.iter().enumerate() {
            dst[j] = src[p];
        }
    }
    out
}

fn unit_evidence(
    sa: &ModelSlots<'_>,
    sb: &ModelSlots<'_>,
    component: Component,
    alignment: &Alignment,
    opts: &CompareOptions,
) -> Result<Evidence> {
    let slots_a = &sa.components[&component].matrices;
    let slots_b = &sb.components[&component].matrices;
    let ga = groups(slots_a, |i| sa.subject.has_slot(component, i));
    let gb = groups(slots_b, |i| sb.subject.has_slot(component, i));
    // The query side is A unless only B is a fingerprint (a fingerprint holds no partners).
    let query_is_a = !sb.subject.is_fingerprint() || sa.subject.is_fingerprint();
    let residual = if alignment.aligned_dims() > 0 {
        Some(alignment.projections(opts.sketch_dim, opts.seed, query_is_a)?)
    } else {
        None
    };
    let mut scorer = Scorer {
        sa,
        sb,
        component,
        slots_a,
        slots_b,
        query_is_a,
        residual,
        residual_widths: (alignment.summary.width_a, alignment.summary.width_b),
        private: HashMap::new(),
        queries: HashMap::new(),
        partners: HashMap::new(),
        opts,
        total_slots: (slots_a.len() + slots_b.len()) as u64,
        done_slots: 0,
        bytes_read: 0,
    };
    let layers_a: BTreeSet<u32> = ga.keys().map(|k| k.2).collect();
    let layers_b: BTreeSet<u32> = gb.keys().map(|k| k.2).collect();
    let kinds: BTreeSet<(Kind, bool)> = ga
        .keys()
        .map(|k| (k.0, k.1))
        .filter(|k| gb.keys().any(|kb| (kb.0, kb.1) == *k))
        .collect();
    let mut transformations = Vec::new();
    let layer_map = map_layers(&mut scorer, &ga, &gb, &layers_a, &layers_b, &kinds)?;
    if layers_a.len() != layers_b.len() {
        transformations.push(format!(
            "depth change ({} -> {} layers)",
            layers_a.len(),
            layers_b.len()
        ));
    }
    let dense_a = slots_a
        .iter()
        .any(|s| s.kind == Kind::Gate && s.expert.is_none());
    let experts_b = slots_b
        .iter()
        .any(|s| s.kind == Kind::Gate && s.expert.is_some() && !s.shared_expert);
    let experts_a = slots_a
        .iter()
        .any(|s| s.kind == Kind::Gate && s.expert.is_some() && !s.shared_expert);
    let dense_b = slots_b
        .iter()
        .any(|s| s.kind == Kind::Gate && s.expert.is_none());

    let mut per_layer: BTreeMap<(u32, u32), Vec<KindScore>> = BTreeMap::new();
    let mut per_layer_logp: BTreeMap<(u32, u32), Vec<LogP>> = BTreeMap::new();
    let mut statistics = Vec::new();
    let mut same_index_all = Vec::new();
    for &(kind, shared) in &kinds {
        // The observed pairs and the null of a kind are scored in one batch, so each
        // partner-side sketch is computed once and dropped when its layer is done.
        let mut requests: Vec<Request> = layer_map
            .iter()
            .filter(|(la, lb)| {
                ga.contains_key(&(kind, shared, *la)) && gb.contains_key(&(kind, shared, *lb))
            })
            .map(|&(la, lb)| Request {
                la,
                lb,
                permute: None,
            })
            .collect();
        if requests.is_empty() {
            continue;
        }
        let n_observed = requests.len();
        requests.extend(null_requests(
            &ga,
            &gb,
            (kind, shared),
            &layer_map,
            &layers_b,
            opts,
        )?);
        let scores = scorer.score_requests(&ga, &gb, kind, shared, &requests)?;
        scorer.queries.clear();
        let observed: Vec<(u32, u32, PairScore)> = requests[..n_observed]
            .iter()
            .zip(&scores[..n_observed])
            .filter_map(|(r, s)| s.map(|s| (r.la, r.lb, s)))
            .collect();
        if observed.is_empty() {
            continue;
        }
        let null: Vec<PairScore> = scores[n_observed..].iter().flatten().copied().collect();
        // Choose, per kind, the statistic standing furthest above its own null; the choice
        // between two statistics costs a factor 2 in every p-value of the kind.
        let mut best_choice: Option<(UnitStat, Vec<f64>, Vec<f64>, f64)> = None;
        for stat in [UnitStat::BestPartner, UnitStat::SameIndex] {
            let obs: Option<Vec<f64>> = observed.iter().map(|o| stat.of(&o.2)).collect();
            let nul: Option<Vec<f64>> = null.iter().map(|n| stat.of(n)).collect();
            let (Some(obs), Some(nul)) = (obs, nul) else {
                continue;
            };
            if nul.len() < MIN_NULL {
                continue;
            }
            let null_max = nul.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let excess = median(&mut obs.clone()) - null_max;
            if best_choice.as_ref().is_none_or(|b| excess > b.3) {
                best_choice = Some((stat, obs, nul, excess));
            }
        }
        let Some((stat, obs, null, _)) = best_choice else {
            continue;
        };
        let null_max = null.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for (&(la, lb, ref p), &s) in observed.iter().zip(&obs) {
            let tail = gaussian_tail(s, &null)?;
            let log_p = LogP::new((tail.log_p.ln() + std::f64::consts::LN_2).min(0.0))?;
            same_index_all.push(p.same_index);
            per_layer.entry((la, lb)).or_default().push(KindScore {
                kind: kind.as_str().into(),
                statistic: stat.label().into(),
                score: s,
                same_index: p.same_index,
                null_max,
                excess: s - null_max,
                log10_p: log_p.log10(),
            });
            per_layer_logp.entry((la, lb)).or_default().push(log_p);
        }
        let value = median(&mut obs.clone());
        let tail = gaussian_tail(value, &null)?;
        statistics.push(Statistic {
            name: format!(
                "{}{}: {} (median over layers)",
                kind.as_str(),
                if shared { " (shared expert)" } else { "" },
                stat.label()
            ),
            value,
            null_mean: tail.mean,
            null_sd: tail.sd,
            null_max,
            null_size: null.len(),
            null_method: "same statistic between non-corresponding layers, and with B's unit coordinates permuted".into(),
            z: tail.z,
            log10_p: (tail.log_p.ln() + std::f64::consts::LN_2).min(0.0) / std::f64::consts::LN_10,
            p_method: "Gaussian tail of the null, x2 for the choice of statistic".into(),
            excess: value - null_max,
        });
    }
    let mut layers = Vec::new();
    let mut layer_logps = Vec::new();
    let mut carrying = 0;
    let mut partial = 0;
    for ((la, lb), kinds) in per_layer {
        let logp = cauchy_combination(&per_layer_logp[&(la, lb)], None)?;
        let mut excess: Vec<f64> = kinds.iter().map(|k| k.excess).collect();
        let median_excess = median(&mut excess);
        let carries = median_excess >= EFFECT_MARGIN;
        carrying += usize::from(carries);
        partial += usize::from(!carries && median_excess >= EFFECT_MARGIN / 2.0);
        layer_logps.push(logp);
        layers.push(LayerEvidence {
            layer_a: (la != GLOBAL_LAYER).then_some(la),
            layer_b: (lb != GLOBAL_LAYER).then_some(lb),
            kinds,
            log10_p: logp.log10(),
            median_excess,
            carries_evidence: carries,
        });
    }
    let log_p = if layer_logps.is_empty() {
        None
    } else {
        Some(cauchy_combination(&layer_logps, None)?)
    };
    if carrying > 0 {
        if (dense_a && experts_b && !experts_a) || (experts_a && dense_b && !experts_b) {
            transformations.push("MoE upcycling (dense MLP <-> experts)".into());
        }
        let same = median(&mut same_index_all);
        if same < 0.5 {
            transformations.push(format!(
                "permutation of hidden units (same-index partners: {:.0}%)",
                100.0 * same
            ));
        }
        for s in slots_a
            .iter()
            .zip(slots_b)
            .filter(|(x, y)| x.kind == y.kind && x.units_by_width().0 != y.units_by_width().0)
            .take(1)
        {
            transformations.push(format!(
                "unit count change in {} ({} -> {})",
                s.0.kind.as_str(),
                s.0.units_by_width().0,
                s.1.units_by_width().0
            ));
        }
    }
    Ok(Evidence {
        statistics,
        matched_layers: layers.len(),
        layers,
        log_p,
        carrying,
        partial,
        transformations,
    })
}

/// Layers in correspondence: in order when depths agree; otherwise the monotone matching
/// that maximizes the summed score of one reference kind (pruned or duplicated layers).
fn map_layers(
    scorer: &mut Scorer<'_>,
    ga: &BTreeMap<GroupKey, Vec<usize>>,
    gb: &BTreeMap<GroupKey, Vec<usize>>,
    layers_a: &BTreeSet<u32>,
    layers_b: &BTreeSet<u32>,
    kinds: &BTreeSet<(Kind, bool)>,
) -> Result<Vec<(u32, u32)>> {
    let mut pairs = map_numbered_layers(scorer, ga, gb, layers_a, layers_b, kinds)?;
    if layers_a.contains(&GLOBAL_LAYER) && layers_b.contains(&GLOBAL_LAYER) {
        pairs.push((GLOBAL_LAYER, GLOBAL_LAYER));
    }
    Ok(pairs)
}

fn map_numbered_layers(
    scorer: &mut Scorer<'_>,
    ga: &BTreeMap<GroupKey, Vec<usize>>,
    gb: &BTreeMap<GroupKey, Vec<usize>>,
    layers_a: &BTreeSet<u32>,
    layers_b: &BTreeSet<u32>,
    kinds: &BTreeSet<(Kind, bool)>,
) -> Result<Vec<(u32, u32)>> {
    let numbered = |l: &&u32| **l != GLOBAL_LAYER;
    let la: Vec<u32> = layers_a.iter().filter(numbered).copied().collect();
    let lb: Vec<u32> = layers_b.iter().filter(numbered).copied().collect();
    if la.len() == lb.len() {
        return Ok(la.into_iter().zip(lb).collect());
    }
    const REFERENCE: [Kind; 8] = [
        Kind::Q,
        Kind::Gate,
        Kind::Up,
        Kind::K,
        Kind::V,
        Kind::QA,
        Kind::Qkv,
        Kind::GateUp,
    ];
    let Some(&(kind, shared)) = REFERENCE
        .iter()
        .find_map(|k| kinds.iter().find(|(kk, _)| kk == k))
    else {
        return Ok(la.into_iter().zip(lb).collect());
    };
    let requests: Vec<Request> = la
        .iter()
        .flat_map(|&x| {
            lb.iter().map(move |&y| Request {
                la: x,
                lb: y,
                permute: None,
            })
        })
        .collect();
    let scores = scorer.score_requests(ga, gb, kind, shared, &requests)?;
    scorer.queries.clear();
    let s: Vec<Vec<f64>> = scores
        .chunks(lb.len().max(1))
        .map(|row| row.iter().map(|v| v.map_or(0.0, |v| v.best)).collect())
        .collect();
    let (n, m) = (la.len(), lb.len());
    let mut dp = vec![vec![0.0f64; m + 1]; n + 1];
    for i in 1..=n {
        for j in 1..=m {
            dp[i][j] = dp[i - 1][j]
                .max(dp[i][j - 1])
                .max(dp[i - 1][j - 1] + s[i - 1][j - 1]);
        }
    }
    let (mut i, mut j, mut pairs) = (n, m, Vec::new());
    while i > 0 && j > 0 {
        if dp[i][j] == dp[i - 1][j - 1] + s[i - 1][j - 1] {
            pairs.push((la[i - 1], lb[j - 1]));
            i -= 1;
            j -= 1;
        } else if dp[i][j] == dp[i - 1][j] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    Ok(pairs)
}

/// The null of one kind: the same score between layers that do not correspond (they share the
/// residual space, the data and the architecture, but not initialization), and surrogates
/// whose unit coordinates were permuted.
fn null_requests(
    ga: &BTreeMap<GroupKey, Vec<usize>>,
    gb: &BTreeMap<GroupKey, Vec<usize>>,
    (kind, shared): (Kind, bool),
    layer_map: &[(u32, u32)],
    layers_b: &BTreeSet<u32>,
    opts: &CompareOptions,
) -> Result<Vec<Request>> {
    let mut candidates = Vec::new();
    for &(la, lb) in layer_map {
        for &other in layers_b {
            if other != lb
                && la != GLOBAL_LAYER
                && other != GLOBAL_LAYER
                && ga.contains_key(&(kind, shared, la))
                && gb.contains_key(&(kind, shared, other))
            {
                candidates.push((la, other));
            }
        }
    }
    if candidates.len() > opts.max_null_pairs {
        let pick = dokja_stats::random::sample_indices(
            opts.seed ^ kind as u64,
            candidates.len(),
            opts.max_null_pairs,
        )?;
        candidates = pick.into_iter().map(|i| candidates[i]).collect();
    }
    let mut null: Vec<Request> = candidates
        .into_iter()
        .map(|(la, lb)| Request {
            la,
            lb,
            permute: None,
        })
        .collect();
    for (r, &(la, lb)) in layer_map
        .iter()
        .cycle()
        .take(SURROGATES.min(layer_map.len() * SURROGATES))
        .enumerate()
    {
        if ga.contains_key(&(kind, shared, la)) && gb.contains_key(&(kind, shared, lb)) {
            null.push(Request {
                la,
                lb,
                permute: Some(opts.seed ^ ((r as u64 + 1) * 0x9E37)),
            });
        }
    }
    Ok(null)
}

fn decide(e: &Evidence, alpha: f64) -> (Verdict, String) {
    let Some(log_p) = e.log_p else {
        return (
            Verdict::Inconclusive,
            "no matrices could be compared (shapes or bases do not line up)".into(),
        );
    };
    let needed = (e.matched_layers as f64 * 0.1).ceil().max(1.0) as usize;
    let significant = log_p.le_alpha(alpha);
    let p = log_p.scientific();
    if significant && e.carrying >= needed {
        return (
            Verdict::Derived,
            format!(
                "{} of {} matched layers have units far above the null (p = {p}, combined over layers)",
                e.carrying, e.matched_layers
            ),
        );
    }
    if e.carrying > 0 || e.partial > 0 {
        return (
            Verdict::Inconclusive,
            format!(
                "{} of {} layers show unit-level correspondence beyond the null and {} more a partial one, short of a decision (p = {p}); heavy retraining or partial reuse can do this",
                e.carrying, e.matched_layers, e.partial
            ),
        );
    }
    if significant {
        // Independent models trained on similar data share structure that aligned weights
        // reveal (pitfall 14); without unit-level correspondence it says nothing of reuse.
        return (
            Verdict::Independent,
            format!(
                "weak similarity above the null (p = {p}) with no layer near an inherited unit-level correspondence: the shared structure independent models of similar data show"
            ),
        );
    }
    (
        Verdict::Independent,
        format!("no evidence of shared initialization (p = {p})"),
    )
}

/// Embeddings: do held-out shared tokens (not used to fit the alignment) point the same way
/// in both models? Calibrated against random pairings of the tokens.
fn embeddings_report(
    alignment: &Alignment,
    lm_verdict: Verdict,
    opts: &CompareOptions,
    alpha: f64,
) -> Result<ComponentReport> {
    let (ha, hb) = alignment.held_out.as_ref().expect("checked by caller");
    let (ga, gb) = alignment.projections(opts.sketch_dim, opts.seed, true)?;
    let mut sa = ha.matmul(&ga)?;
    let mut sb = hb.matmul(&gb)?;
    sa.normalize_rows();
    sb.normalize_rows();
    let per_token = |perm: Option<&[usize]>| -> f64 {
        let mut cos: Vec<f64> = (0..sa.rows())
            .map(|i| {
                let j = perm.map_or(i, |p| p[i]);
                sa.row(i)
                    .iter()
                    .zip(sb.row(j))
                    .map(|(x, y)| (*x as f64) * (*y as f64))
                    .sum()
            })
            .collect();
        median(&mut cos)
    };
    let value = per_token(None);
    let null: Vec<f64> = (0..32)
        .map(|r| {
            per_token(Some(&dokja_stats::random::random_permutation(
                opts.seed,
                r + 1,
                sa.rows(),
            )))
        })
        .collect();
    let tail = gaussian_tail(value, &null)?;
    let null_max = null.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let excess = value - null_max;
    let significant = tail.log_p.le_alpha(alpha);
    let strong = excess >= EMBEDDING_EFFECT_MARGIN;
    // A rotation fitted on shared tokens can align independent embeddings of similar data;
    // only a signed permutation (or a derived language model) makes this decisive.
    let decisive = alignment.summary.kind == AlignmentKind::SignedPermutation
        || lm_verdict == Verdict::Derived;
    let (verdict, reason) = match (significant && strong, decisive, significant) {
        (true, true, _) => (
            Verdict::Derived,
            format!(
                "held-out shared tokens point the same way (median cosine {value:.3}, null max {null_max:.3})"
            ),
        ),
        (true, false, _) => (
            Verdict::Inconclusive,
            format!(
                "held-out tokens align after a fitted rotation (median cosine {value:.3}) but nothing unit-level confirms it"
            ),
        ),
        (false, _, true) => (
            Verdict::Independent,
            format!(
                "held-out shared tokens align above random pairings (median cosine {value:.3}, null max {null_max:.3}) but far below inherited embeddings (margin {EMBEDDING_EFFECT_MARGIN}): shared language structure, which independent models show"
            ),
        ),
        (false, _, false) => (
            Verdict::Independent,
            format!(
                "held-out shared tokens do not align beyond chance (median cosine {value:.3}, null max {null_max:.3})"
            ),
        ),
    };
    let mut r = report("embeddings", verdict, reason);
    r.statistics.push(Statistic {
        name: "held-out token embedding cosine (median)".into(),
        value,
        null_mean: tail.mean,
        null_sd: tail.sd,
        null_max,
        null_size: null.len(),
        null_method: "random pairings of held-out tokens".into(),
        z: tail.z,
        log10_p: tail.log_p.log10(),
        p_method: "Gaussian tail of the null".into(),
        excess,
    });
    r.alignment = Some(alignment.summary.clone());
    Ok(r)
}

/// The cheap test an audit runs before the full comparison: can `entry` be a parent of any
/// component of `candidate` at all? Only what no derivation changes is used (which components
/// exist and which matrix kinds they have), so no true parent is ever dropped here; an entry
/// that fails shares nothing a comparison could test.
pub fn prefilter(entry: Subject<'_>, candidate: Subject<'_>) -> Prefilter {
    let se = ModelSlots::of_subject(entry);
    let sc = ModelSlots::of_subject(candidate);
    let mut shared = Vec::new();
    for (component, ce) in &se.components {
        let Some(cc) = sc.components.get(component) else {
            continue;
        };
        let kinds_e: BTreeSet<Kind> = ce.matrices.iter().map(|m| m.kind).collect();
        let kinds_c: BTreeSet<Kind> = cc.matrices.iter().map(|m| m.kind).collect();
        let shapes_e: BTreeSet<&[u64]> = ce
            .learned
            .iter()
            .map(|&i| se.model.tensors[i].shape.as_slice())
            .collect();
        let common_shape = cc
            .learned
            .iter()
            .any(|&i| shapes_e.contains(sc.model.tensors[i].shape.as_slice()));
        if common_shape || kinds_e.intersection(&kinds_c).next().is_some() {
            shared.push(component.as_str());
        }
    }
    if shared.is_empty() {
        let list = |s: &ModelSlots<'_>| {
            s.components
                .keys()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Prefilter {
            passed: false,
            reason: format!(
                "no component with a matrix kind or tensor shape in common (entry: {}; candidate: {})",
                list(&se),
                list(&sc)
            ),
        }
    } else {
        Prefilter {
            passed: true,
            reason: format!("shares {} with the candidate", shared.join(", ")),
        }
    }
}
