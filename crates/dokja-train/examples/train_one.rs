//! Trains one model with the default spec (or env overrides) and prints its loss curve:
//! `cargo run --release -p dokja-train --example train_one [english|korean] [steps]`.

use std::time::Instant;

use dokja_train::{
    Bpe, CorpusName, TrainSpec, corpus, eval_loss, train_from_scratch, unigram_entropy,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let name = match args.get(1).map(String::as_str) {
        Some("korean") => CorpusName::Korean,
        _ => CorpusName::English,
    };
    let mut spec = TrainSpec::default();
    if let Some(s) = args.get(2) {
        spec.steps = s.parse()?;
    }
    // Optional overrides for sizing experiments: layers hidden intermediate batch lr.
    let num = |i: usize| args.get(i).and_then(|s| s.parse::<f64>().ok());
    if let Some(v) = num(3) {
        spec.layers = v as usize;
    }
    if let Some(v) = num(4) {
        spec.hidden_size = v as usize;
    }
    if let Some(v) = num(5) {
        spec.intermediate_size = v as usize;
    }
    if let Some(v) = num(6) {
        spec.batch = v as usize;
    }
    if let Some(v) = num(7) {
        spec.lr = v;
    }
    let text = corpus(name)?;
    let t = Instant::now();
    let bpe = Bpe::learn(&text, spec.vocab_size)?;
    let n_tokens = bpe.encode(&text).len();
    println!(
        "{name:?}: {} bytes, {n_tokens} tokens ({:.2} bytes/token); tokenizer learned+encoded in {:.1}s",
        text.len(),
        text.len() as f64 / n_tokens as f64,
        t.elapsed().as_secs_f64()
    );
    let h = unigram_entropy(&bpe, &text);
    println!(
        "unigram entropy {h:.3} nats; uniform ln V = {:.3}",
        (spec.vocab_size as f64).ln()
    );
    spec.tokenizer = Some(bpe);
    let t = Instant::now();
    let m = train_from_scratch(&spec, &text, 1, 11)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "trained {} steps in {secs:.1}s ({:.1} ms/step), {} params",
        spec.steps,
        1000.0 * secs / spec.steps as f64,
        m.model.n_params()
    );
    let l = &m.losses;
    for i in (0..l.len())
        .step_by((l.len() / 10).max(1))
        .chain([l.len() - 1])
    {
        let w = &l[i.saturating_sub(10)..=i];
        println!(
            "  step {i:5}: loss {:.3} (mean of last {}: {:.3})",
            l[i],
            w.len(),
            w.iter().sum::<f32>() / w.len() as f32
        );
    }
    let mut fp = 0xcbf2_9ce4_8422_2325u64;
    for v in m.model.tensors.iter().flat_map(|t| &t.data) {
        for b in v.to_bits().to_le_bytes() {
            fp = (fp ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    println!("weights fingerprint {fp:016x}");
    println!(
        "held-out loss {:.3}",
        eval_loss(&m.model, &text, spec.seq_len, 64)?
    );
    Ok(())
}
