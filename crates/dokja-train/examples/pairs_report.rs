//! Builds (or reads from the cache) the standard labelled pairs and prints how much the
//! models of each pair resemble each other, raw and after aligning hidden dimensions:
//!
//! `cargo run --release -p dokja-train --example pairs_report`
//!
//! (i) raw: element-wise Pearson correlation of same-name matrices (q,k,v,o,gate,up,down),
//! mean over layers; (ii) perm: the same after permuting and sign-flipping B's hidden
//! dimensions to A's by a Hungarian matching of token-embedding columns (|corr| over the
//! shared non-special tokens); (iii) procrustes: after the orthogonal map Q minimizing
//! ||E_B Q - E_A|| (centred embeddings). For (ii) and (iii) each model's RMSNorm gains are
//! folded into the matrices that read the normalized stream. (iv) units: after (ii), the
//! mean |cosine| of up_proj rows matched one-to-one by Hungarian (Zhu et al.'s unit match).
//! Diagnostics only: nothing here is a verdict.

use std::collections::HashMap;
use std::time::Instant;

use dokja_testkit::forward::decoder_logits;
use dokja_testkit::{SynthModel, SynthTensor};
use dokja_train::{
    Bpe, CorpusName, LabelledPair, TrainedModel, cache_root, corpus, eval_loss, relative_changes,
    standard_set, unigram_entropy,
};

const KINDS: [&str; 7] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One thread unless told otherwise: the machine is shared, and candle's worker pool
    // spins. Safe here: no other thread exists yet.
    for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            unsafe { std::env::set_var(var, "1") };
        }
    }
    println!("cache: {}", cache_root().display());
    let t = Instant::now();
    let set = standard_set()?;
    println!(
        "standard_set(): {} models, {} pairs in {:.2}s\n",
        set.models.len(),
        set.pairs.len(),
        t.elapsed().as_secs_f64()
    );
    let pairs = &set.pairs;
    losses(&set.models)?;
    println!();
    println!(
        "{:<24} {:>7} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>6}",
        "pair",
        "derived",
        "E-raw",
        "E-perm",
        "E-proc",
        "raw",
        "perm",
        "procr",
        "cka-r",
        "cka-pm",
        "cka-pr",
        "units"
    );
    let mut per_kind = Vec::new();
    for p in pairs {
        let d = diagnose(p);
        println!(
            "{:<24} {:>7} | {:>6.3} {:>6.3} {:>6.3} | {:>6.3} {:>6.3} {:>6.3} | {:>6.3} {:>6.3} {:>6.3} | {:>6.3}",
            p.name,
            p.derived,
            d.embed_raw,
            d.embed_perm,
            d.embed_procrustes,
            mean(&d.raw),
            mean(&d.perm),
            mean(&d.procrustes),
            d.cka[0],
            d.cka[1],
            d.cka[2],
            d.units
        );
        per_kind.push((p.name.clone(), d));
    }
    println!("\nper matrix kind (mean over layers): raw / perm / procrustes");
    print!("{:<24}", "pair");
    for k in KINDS {
        print!(" {:>17}", k.rsplit('.').next().unwrap_or(k));
    }
    println!();
    for (name, d) in &per_kind {
        print!("{name:<24}");
        for i in 0..KINDS.len() {
            print!(
                " {:>5.2}/{:>5.2}/{:>5.2}",
                d.raw[i], d.perm[i], d.procrustes[i]
            );
        }
        println!();
    }
    println!("\nderived pairs: relative Frobenius change ||W'-W||/||W|| by matrix");
    for p in pairs.iter().filter(|p| p.derived) {
        let ch = relative_changes(&p.a, &p.b);
        let line: Vec<String> = ch
            .iter()
            .map(|c| format!("{}={:.2}", short(&c.name), c.relative))
            .collect();
        println!("{}: {}", p.name, line.join(" "));
    }
    for p in pairs {
        println!("note {}: {}", p.name, p.note);
    }
    println!("\nfingerprints (FNV of all f32 bits, for determinism checks):");
    for m in &set.models {
        println!("  {:<44} {:016x}", m.model.name, fingerprint(&m.model));
    }
    sample(&pairs[0].a, b"Janet has 3 apples. She buys")?;
    Ok(())
}

fn short(name: &str) -> String {
    name.trim_start_matches("model.")
        .trim_start_matches("layers.")
        .trim_end_matches(".weight")
        .replace("self_attn.", "")
        .replace("mlp.", "")
        .replace("_proj", "")
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Loss figures of every model: train loss at start and end (means of 20 steps), held-out
/// loss on both corpora, against each corpus's unigram entropy.
fn losses(models: &[TrainedModel]) -> Result<(), Box<dyn std::error::Error>> {
    let en = corpus(CorpusName::English)?;
    let ko = corpus(CorpusName::Korean)?;
    let tok = models[0].model.tokenizer.as_ref().ok_or("no tokenizer")?;
    let bpe = Bpe::from_tokenizer(tok)?;
    println!(
        "unigram entropy (nats): English {:.3}, Korean {:.3}; ln(vocab) {:.3}",
        unigram_entropy(&bpe, &en),
        unigram_entropy(&bpe, &ko),
        (bpe.vocab_size() as f64).ln()
    );
    println!(
        "{:<44} {:>6} {:>6} {:>6} {:>10} {:>10}",
        "model", "steps", "loss0", "lossN", "heldout-en", "heldout-ko"
    );
    for t in models {
        let (l0, ln) = t.loss_head_tail(20);
        println!(
            "{:<44} {:>6} {:>6.3} {:>6.3} {:>10.3} {:>10.3}",
            t.model.name,
            t.losses.len(),
            l0,
            ln,
            eval_loss(&t.model, &en, 64, 64)?,
            eval_loss(&t.model, &ko, 64, 64)?
        );
    }
    let l = &models[0].losses;
    let curve: Vec<String> = (0..l.len())
        .step_by(50)
        .map(|i| {
            let w = &l[i..(i + 10).min(l.len())];
            format!("{i}:{:.2}", w.iter().sum::<f32>() / w.len() as f32)
        })
        .collect();
    println!(
        "loss curve of {} (step:mean of 10): {}",
        models[0].model.name,
        curve.join(" ")
    );
    Ok(())
}

struct Diag {
    embed_raw: f64,
    /// Correlation of A's embeddings with B's mapped into A's basis (the alignment's fit).
    embed_perm: f64,
    embed_procrustes: f64,
    /// Debiased linear CKA of q and k (samples = residual dims), mean over layers:
    /// unaligned, permutation-aligned, Procrustes-aligned.
    cka: [f64; 3],
    raw: Vec<f64>,
    perm: Vec<f64>,
    procrustes: Vec<f64>,
    units: f64,
}

fn diagnose(p: &LabelledPair) -> Diag {
    let (a, b) = (&p.a, &p.b);
    let layers = a.cfg_usize("num_hidden_layers").unwrap_or(0);
    let ea = a.tensor("model.embed_tokens.weight");
    let eb = b.tensor("model.embed_tokens.weight");
    let (rows_a, rows_b) = shared_rows(a, b);
    let xa = gather(ea, &rows_a);
    let xb = gather(eb, &rows_b);
    let h = ea.shape[1];
    let n = rows_a.len();

    // (ii) Permutation + sign from embedding-column correlations.
    let cols = |x: &[f64], j: usize| (0..n).map(|r| x[r * h + j]).collect::<Vec<_>>();
    let ca: Vec<Vec<f64>> = (0..h).map(|j| cols(&xa, j)).collect();
    let cb: Vec<Vec<f64>> = (0..h).map(|j| cols(&xb, j)).collect();
    let corr: Vec<Vec<f64>> = ca
        .iter()
        .map(|u| cb.iter().map(|v| pearson(u, v)).collect())
        .collect();
    let cost: Vec<Vec<f64>> = corr
        .iter()
        .map(|r| r.iter().map(|c| -c.abs()).collect())
        .collect();
    let pi = hungarian(&cost);
    // Map M (h x h) with x_B = M x_A: B's dim pi[i] carries A's dim i, up to sign.
    let mut perm_m = vec![0.0; h * h];
    for i in 0..h {
        perm_m[pi[i] * h + i] = corr[i][pi[i]].signum();
    }
    // (iii) Procrustes: Q minimizing ||E_B Q - E_A|| (centred), x_B = Q x_A.
    let q = procrustes(&center(&xb, n, h), &center(&xa, n, h), n, h);

    // Embedding rows in A's basis: E_B M (as for any reader of the stream).
    let eb_all: Vec<f64> = eb.data.iter().map(|&v| v as f64).collect();
    let ea_all: Vec<f64> = ea.data.iter().map(|&v| v as f64).collect();
    let eb_mat = Mat {
        rows: eb.shape[0],
        data: eb_all,
    };
    let mut d = Diag {
        embed_raw: pearson_f32(&ea.data, &eb.data),
        embed_perm: pearson(&ea_all, &matmul_right(&eb_mat, &perm_m, h)),
        embed_procrustes: pearson(&ea_all, &matmul_right(&eb_mat, &q, h)),
        cka: [0.0; 3],
        raw: vec![0.0; KINDS.len()],
        perm: vec![0.0; KINDS.len()],
        procrustes: vec![0.0; KINDS.len()],
        units: 0.0,
    };
    for l in 0..layers {
        let fa = folded(a, l);
        let fb = folded(b, l);
        for (k, kind) in KINDS.iter().enumerate() {
            let name = format!("model.layers.{l}.{kind}.weight");
            d.raw[k] += pearson_f32(&a.tensor(&name).data, &b.tensor(&name).data);
            let (wa, wb) = (&fa[k], &fb[k]);
            let reads_stream = k != 3 && k != 6; // o_proj and down_proj write it
            let pb = if reads_stream {
                matmul_right(wb, &perm_m, h)
            } else {
                matmul_left_t(&perm_m, wb, h)
            };
            d.perm[k] += pearson(&wa.data, &pb);
            let qb = if reads_stream {
                matmul_right(wb, &q, h)
            } else {
                matmul_left_t(&q, wb, h)
            };
            d.procrustes[k] += pearson(&wa.data, &qb);
            if *kind == "mlp.up_proj" {
                d.units += unit_match(&wa.data, &pb, wa.rows, h);
            }
            if k < 2 {
                d.cka[0] += cka_cols(&wa.data, &wb.data, wa.rows, h) / 2.0;
                d.cka[1] += cka_cols(&wa.data, &pb, wa.rows, h) / 2.0;
                d.cka[2] += cka_cols(&wa.data, &qb, wa.rows, h) / 2.0;
            }
        }
    }
    let l = layers.max(1) as f64;
    for v in [&mut d.raw, &mut d.perm, &mut d.procrustes] {
        v.iter_mut().for_each(|x| *x /= l);
    }
    d.units /= l;
    d.cka.iter_mut().for_each(|x| *x /= l);
    d
}

/// Debiased linear CKA (Song et al. 2012 HSIC estimator, as AWM) between two matrices of
/// shape [rows, h], taking the h residual dimensions as samples and rows as features, so
/// it ignores how each model orders or rotates its heads.
fn cka_cols(a: &[f64], b: &[f64], rows: usize, h: usize) -> f64 {
    let gram = |x: &[f64]| -> Vec<f64> {
        let mut g = vec![0.0; h * h];
        for i in 0..h {
            for j in 0..h {
                if i != j {
                    g[i * h + j] = (0..rows).map(|r| x[r * h + i] * x[r * h + j]).sum();
                }
            }
        }
        g
    };
    let hsic = |k: &[f64], l: &[f64]| -> f64 {
        let n = h as f64;
        let tr: f64 = k.iter().zip(l).map(|(a, b)| a * b).sum();
        let sk: f64 = k.iter().sum();
        let sl: f64 = l.iter().sum();
        let rk: Vec<f64> = (0..h).map(|i| k[i * h..(i + 1) * h].iter().sum()).collect();
        let rl: Vec<f64> = (0..h).map(|i| l[i * h..(i + 1) * h].iter().sum()).collect();
        let cross: f64 = rk.iter().zip(&rl).map(|(a, b)| a * b).sum();
        (tr + sk * sl / ((n - 1.0) * (n - 2.0)) - 2.0 * cross / (n - 2.0)) / (n * (n - 3.0))
    };
    let (ka, kb) = (gram(a), gram(b));
    hsic(&ka, &kb) / (hsic(&ka, &ka) * hsic(&kb, &kb)).sqrt().max(1e-300)
}

/// Row ids of the tokens both vocabularies have, matched by string (specials excluded).
fn shared_rows(a: &SynthModel, b: &SynthModel) -> (Vec<usize>, Vec<usize>) {
    let (Some(ta), Some(tb)) = (&a.tokenizer, &b.tokenizer) else {
        return (Vec::new(), Vec::new());
    };
    let ib: HashMap<&str, usize> = tb
        .vocab
        .iter()
        .enumerate()
        .filter(|(i, _)| !tb.is_special(*i as u32))
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    ta.vocab
        .iter()
        .enumerate()
        .filter(|(i, _)| !ta.is_special(*i as u32))
        .filter_map(|(i, s)| ib.get(s.as_str()).map(|&j| (i, j)))
        .unzip()
}

fn gather(t: &SynthTensor, rows: &[usize]) -> Vec<f64> {
    rows.iter()
        .flat_map(|&r| t.row(r).iter().map(|&v| v as f64))
        .collect()
}

fn center(x: &[f64], n: usize, h: usize) -> Vec<f64> {
    let mut out = x.to_vec();
    for j in 0..h {
        let m = (0..n).map(|r| x[r * h + j]).sum::<f64>() / n as f64;
        (0..n).for_each(|r| out[r * h + j] -= m);
    }
    out
}

/// A layer's matrices as f64, with the RMSNorm gains folded into the matrices that read
/// the normalized stream (q, k, v after input_layernorm; gate, up after
/// post_attention_layernorm), so the comparison is of the maps actually applied.
struct Mat {
    rows: usize,
    data: Vec<f64>,
}

fn folded(m: &SynthModel, l: usize) -> Vec<Mat> {
    let g_in = &m
        .tensor(&format!("model.layers.{l}.input_layernorm.weight"))
        .data;
    let g_post = &m
        .tensor(&format!("model.layers.{l}.post_attention_layernorm.weight"))
        .data;
    KINDS
        .iter()
        .map(|kind| {
            let t = m.tensor(&format!("model.layers.{l}.{kind}.weight"));
            let gain = match *kind {
                "self_attn.q_proj" | "self_attn.k_proj" | "self_attn.v_proj" => Some(g_in),
                "mlp.gate_proj" | "mlp.up_proj" => Some(g_post),
                _ => None,
            };
            let c = t.row_len();
            let data = t
                .data
                .iter()
                .enumerate()
                .map(|(i, &v)| v as f64 * gain.map_or(1.0, |g| g[i % c] as f64))
                .collect();
            Mat {
                rows: t.n_rows(),
                data,
            }
        })
        .collect()
}

/// `W M` for `W` [rows, h] and `M` [h, h] (a reader of the stream, in A's basis).
fn matmul_right(w: &Mat, m: &[f64], h: usize) -> Vec<f64> {
    let mut out = vec![0.0; w.rows * h];
    for r in 0..w.rows {
        let row = &w.data[r * h..(r + 1) * h];
        for (k, &x) in row.iter().enumerate() {
            if x != 0.0 {
                let mk = &m[k * h..(k + 1) * h];
                out[r * h..(r + 1) * h]
                    .iter_mut()
                    .zip(mk)
                    .for_each(|(o, v)| *o += x * v);
            }
        }
    }
    out
}

/// `M^T W` for `W` [h, cols] (a writer of the stream, in A's basis).
fn matmul_left_t(m: &[f64], w: &Mat, h: usize) -> Vec<f64> {
    let cols = w.data.len() / h;
    let mut out = vec![0.0; h * cols];
    for k in 0..h {
        let wk = &w.data[k * cols..(k + 1) * cols];
        for i in 0..h {
            let x = m[k * h + i];
            if x != 0.0 {
                out[i * cols..(i + 1) * cols]
                    .iter_mut()
                    .zip(wk)
                    .for_each(|(o, v)| *o += x * v);
            }
        }
    }
    out
}

/// Mean |cosine| of rows of A and B matched one-to-one (Hungarian on -|cos|).
fn unit_match(a: &[f64], b: &[f64], rows: usize, h: usize) -> f64 {
    let unit = |x: &[f64]| -> Vec<Vec<f64>> {
        (0..rows)
            .map(|r| {
                let v = &x[r * h..(r + 1) * h];
                let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-30);
                v.iter().map(|x| x / n).collect()
            })
            .collect()
    };
    let (ua, ub) = (unit(a), unit(b));
    let cos: Vec<Vec<f64>> = ua
        .iter()
        .map(|x| {
            ub.iter()
                .map(|y| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>().abs())
                .collect()
        })
        .collect();
    let cost: Vec<Vec<f64>> = cos.iter().map(|r| r.iter().map(|c| -c).collect()).collect();
    let pi = hungarian(&cost);
    (0..rows).map(|i| cos[i][pi[i]]).sum::<f64>() / rows as f64
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x - ma, y - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt().max(1e-300)
}

fn pearson_f32(a: &[f32], b: &[f32]) -> f64 {
    let a: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let b: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    pearson(&a, &b)
}

/// Minimum-cost perfect assignment of a square cost matrix (Kuhn-Munkres with
/// potentials, O(n^3)); returns the column of every row.
fn hungarian(cost: &[Vec<f64>]) -> Vec<usize> {
    let n = cost.len();
    let inf = f64::INFINITY;
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = inf;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![0; n];
    for j in 1..=n {
        if p[j] > 0 {
            out[p[j] - 1] = j - 1;
        }
    }
    out
}

/// The orthogonal Q (h x h, row-major) minimizing ||X Q - Y||_F for X, Y of shape [n, h]:
/// the polar factor of M = X^T Y, Q = M (M^T M)^{-1/2}, via a Jacobi eigendecomposition.
fn procrustes(x: &[f64], y: &[f64], n: usize, h: usize) -> Vec<f64> {
    let mut m = vec![0.0; h * h];
    for r in 0..n {
        for i in 0..h {
            let xi = x[r * h + i];
            for j in 0..h {
                m[i * h + j] += xi * y[r * h + j];
            }
        }
    }
    let mut s = vec![0.0; h * h]; // M^T M
    for i in 0..h {
        for j in 0..h {
            s[i * h + j] = (0..h).map(|k| m[k * h + i] * m[k * h + j]).sum();
        }
    }
    let (vals, vecs) = jacobi_eigen(s, h);
    let top = vals.iter().cloned().fold(0.0, f64::max);
    // S^{-1/2} = V diag(1/sqrt(l)) V^T, with tiny eigenvalues clamped.
    let mut inv = vec![0.0; h * h];
    for k in 0..h {
        let f = 1.0 / vals[k].max(top * 1e-12).sqrt();
        for i in 0..h {
            for j in 0..h {
                inv[i * h + j] += vecs[i * h + k] * f * vecs[j * h + k];
            }
        }
    }
    let mut q = vec![0.0; h * h];
    for i in 0..h {
        for k in 0..h {
            let mik = m[i * h + k];
            for j in 0..h {
                q[i * h + j] += mik * inv[k * h + j];
            }
        }
    }
    q
}

/// Eigenvalues and eigenvectors (columns of the row-major result) of a symmetric matrix,
/// by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    for _sweep in 0..60 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        let diag: f64 = (0..n).map(|i| a[i * n + i].powi(2)).sum();
        if off <= 1e-24 * diag {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

fn fingerprint(m: &SynthModel) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for t in &m.tensors {
        for v in &t.data {
            for b in v.to_bits().to_le_bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01B3);
            }
        }
    }
    h
}

/// Greedy continuation of `prompt`, to show the model learned text.
fn sample(m: &SynthModel, prompt: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    let bpe = Bpe::from_tokenizer(m.tokenizer.as_ref().ok_or("no tokenizer")?)?;
    let mut ids = bpe.encode(prompt);
    let start = ids.len();
    let max = m.cfg_usize("max_position_embeddings").unwrap_or(64);
    while ids.len() < max {
        let logits = decoder_logits(m, &ids);
        let last = logits.last().ok_or("no logits")?;
        let next = (0..last.len())
            .max_by(|&i, &j| last[i].total_cmp(&last[j]))
            .unwrap_or(0);
        ids.push(next as u32);
    }
    println!(
        "\ngreedy sample from {}: {:?} -> {:?}",
        m.name,
        String::from_utf8_lossy(prompt),
        String::from_utf8_lossy(&bpe.decode(&ids[start..]))
    );
    Ok(())
}
