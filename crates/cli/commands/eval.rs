//! `s2s eval RUN [--split valid|test|train] [--data PATH]`: loss, perplexity, BLEU, chrF
//! and exact match of a trained run on held-out data (saved as `eval-<split>.json`).

use crate::output::outln;
use std::path::Path;

use anyhow::Result;
use s2s_run::eval::{evaluate, EvalData, EvalResult};
use s2s_run::opened::DecodingChoice;
use s2s_run::Which;

pub fn execute(
    dir: &Path,
    data: &EvalData,
    checkpoint: &str,
    decoding: &DecodingChoice,
    json: bool,
) -> Result<EvalResult> {
    let r = evaluate(dir, &Which::parse(checkpoint), data, decoding)?;
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(note) = &r.note {
        eprintln!("note: {note}");
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&r)?)?;
        return Ok(r);
    }
    outln!("{} ({} checkpoint), {} pairs of {}, {} decoding", r.run, r.checkpoint, r.pairs, r.split, r.decoding)?;
    outln!("  {:<12} {:>10}", "loss", s2s_run::report::number::fmt(r.loss))?;
    outln!("  {:<12} {:>10.3}", "perplexity", r.ppl)?;
    outln!("  {:<12} {:>10.2}", "BLEU", r.bleu)?;
    outln!("  {:<12} {:>10.2}", "chrF", r.chrf)?;
    outln!("  {:<12} {:>9.1}%", "exact match", 100.0 * r.exact_match)?;
    if let Some(a) = r.alignment {
        outln!("  {:<12} {:>9.1}%", "alignment", 100.0 * a)?;
    }
    // A Transformer: which layer and head follows the known alignment.
    for (l, heads) in r.alignment_by_head.iter().flatten().enumerate() {
        let cells: Vec<String> = heads.iter().enumerate().map(|(h, a)| format!("head {h} {:.1}%", 100.0 * a)).collect();
        outln!("  {:<12} {}", format!("layer {l}"), cells.join("  "))?;
    }
    Ok(r)
}
