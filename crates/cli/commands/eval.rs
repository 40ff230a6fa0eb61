//! `s2s eval RUN [--split valid|test] [--data PATH]`: loss, perplexity, BLEU, chrF and
//! exact match of a trained run on held-out data.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use s2s_data::{DataConfig, Dataset};

use crate::loaded_run::open;
use crate::run_dir::write_atomic;
use crate::task::{score, Alignment};

#[derive(Debug, Clone)]
pub struct Options {
    pub split: String,
    pub data: Option<PathBuf>,
    pub checkpoint: String,
    pub json: bool,
}

/// What `eval` measured; also saved as `eval-<split>.json` in the run folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalResult {
    pub run: String,
    pub checkpoint: String,
    pub split: String,
    pub pairs: usize,
    pub loss: f64,
    pub ppl: f64,
    pub bleu: f64,
    pub chrf: f64,
    pub exact_match: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alignment: Option<f64>,
}

fn alignment_of(dataset: Dataset) -> Option<Alignment> {
    match dataset {
        Dataset::Copy => Some(|i, _| i),
        Dataset::Reverse => Some(|i, n| n - 1 - i),
        Dataset::Seed | Dataset::Tsv => None,
    }
}

pub fn execute(run_dir: &Path, opts: &Options) -> Result<EvalResult> {
    let run = open(run_dir, &opts.checkpoint)?;
    let (pairs, split) = match &opts.data {
        Some(path) => {
            let cfg = DataConfig {
                dataset: Dataset::Tsv,
                path: None,
                train_path: Some(path.clone()),
                valid_path: None,
                test_path: None,
                ..run.cfg.data.clone()
            };
            (s2s_data::load(&cfg, run.cfg.run.seed)?.train, path.display().to_string())
        }
        None => {
            let corpus = s2s_data::load(&run.cfg.data, run.cfg.run.seed)?;
            let pairs = match opts.split.as_str() {
                "valid" => corpus.valid,
                "test" => corpus.test,
                "train" => corpus.train,
                other => bail!("--split {other:?}: use valid, test or train"),
            };
            (pairs, opts.split.clone())
        }
    };
    if pairs.is_empty() {
        bail!("the {split} split of {} is empty; pass --data PATH to evaluate on a TSV file", run_dir.display());
    }
    let examples = s2s_data::batch::encode(&pairs, &run.src_vocab, &run.tgt_vocab);
    let refs: Vec<String> = pairs.iter().map(|p| p.tgt.join(" ")).collect();
    let alignment = if opts.data.is_none() { alignment_of(run.cfg.data.dataset) } else { None };
    let s = score(&run.model, &examples, &refs, &run.tgt_vocab, alignment)?;
    let result = EvalResult {
        run: run_dir.display().to_string(),
        checkpoint: run.checkpoint.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        split: split.clone(),
        pairs: pairs.len(),
        loss: s.loss,
        ppl: s.ppl,
        bleu: s.bleu,
        chrf: s.chrf,
        exact_match: s.exact_match,
        alignment: s.alignment,
    };
    let file = format!("eval-{}.json", if opts.data.is_some() { "data".to_string() } else { split.clone() });
    write_atomic(&run_dir.join(file), serde_json::to_string_pretty(&result)?.as_bytes())?;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("{} ({} checkpoint), {} pairs of {}", result.run, result.checkpoint, result.pairs, result.split);
        println!("  {:<12} {:>10.4}", "loss", result.loss);
        println!("  {:<12} {:>10.3}", "perplexity", result.ppl);
        println!("  {:<12} {:>10.2}", "BLEU", result.bleu);
        println!("  {:<12} {:>10.2}", "chrF", result.chrf);
        println!("  {:<12} {:>9.1}%", "exact match", 100.0 * result.exact_match);
        if let Some(a) = result.alignment {
            println!("  {:<12} {:>9.1}%", "alignment", 100.0 * a);
        }
    }
    Ok(result)
}
