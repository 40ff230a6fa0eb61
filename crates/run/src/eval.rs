//! Evaluating a trained run on held-out data; the figures are saved as
//! `eval-<split>.json` in the run folder.

use std::path::{Path, PathBuf};

use s2s_data::{DataConfig, Dataset};

use crate::checkpoint::Which;
use crate::error::{damaged, Result, RunError};
use crate::opened::{DecodingChoice, OpenedRun};
use crate::run_dir::write_atomic;
use crate::scoring::{alignment_of, score, Decoding};

/// What to evaluate on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalData {
    /// A split of the run's own data: valid, test or train.
    Split(String),
    /// A TSV file, normalized as the run's data.
    File(PathBuf),
}

/// What `eval` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalResult {
    pub run: String,
    pub checkpoint: String,
    pub split: String,
    pub pairs: usize,
    /// How the translations were decoded: the run's `model.beam_size` and
    /// `model.length_penalty` ("greedy", or "beam 5, length penalty 1").
    pub decoding: String,
    pub loss: f64,
    pub ppl: f64,
    pub bleu: f64,
    pub chrf: f64,
    pub exact_match: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alignment: Option<f64>,
    /// `alignment` per decoder layer and head (`[layer][head]`), for a Transformer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alignment_by_head: Option<Vec<Vec<f64>>>,
    /// Source tokens fed as UNK: words the vocabulary lacks, or with BPE characters its
    /// alphabet lacks (emoji, CJK, control characters).
    pub unknown_tokens: usize,
    /// Why other pairs than the ones asked for were scored (a run without a validation
    /// split is scored on its training pairs, as the notebook does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Damaged checkpoints passed over on the way to the one used.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Scores checkpoint `which` of the run at `dir` on `data` and saves the result; decodes as
/// the run's config says, or as `choice` overrides it.
pub fn evaluate(dir: &Path, which: &Which, data: &EvalData, choice: &DecodingChoice) -> Result<EvalResult> {
    let run = OpenedRun::open_decoding(dir, which, choice)?;
    // The run's own tokenizers: BPE is not learned again, and words the run never saw
    // stay unknown.
    let tokenizers = || (run.source.clone(), run.target.clone());
    let mut note = None;
    let mut return_split = match data {
        EvalData::Split(s) => s.clone(),
        EvalData::File(_) => String::new(),
    };
    let (pairs, split, file_key) = match data {
        EvalData::File(path) => {
            let cfg = DataConfig {
                dataset: Dataset::Tsv,
                path: None,
                train_path: Some(path.clone()),
                valid_path: None,
                test_path: None,
                ..run.cfg.data.clone()
            };
            let corpus = s2s_data::load_with(&cfg, run.cfg.run.seed, Some(tokenizers()), run.cfg.run.thread_count())?;
            (corpus.train, path.display().to_string(), "data".to_string())
        }
        EvalData::Split(split) => {
            let corpus =
                s2s_data::load_with(&run.cfg.data, run.cfg.run.seed, Some(tokenizers()), run.cfg.run.thread_count())?;
            let pairs = match split.as_str() {
                "valid" if corpus.valid.is_empty() => {
                    note = Some("the run has no validation split; these are its training pairs".to_string());
                    return_split = "train".to_string();
                    corpus.train
                }
                "valid" => corpus.valid,
                "test" => corpus.test,
                "train" => corpus.train,
                other => return Err(RunError::Refused(format!("--split {other:?}: use valid, test or train"))),
            };
            (pairs, return_split.clone(), return_split)
        }
    };
    if pairs.is_empty() {
        return Err(RunError::Refused(format!(
            "the {split} split of {} is empty; pass --data PATH to evaluate on a TSV file",
            dir.display()
        )));
    }
    let examples = s2s_data::batch::encode(&pairs, run.source.vocab(), run.target.vocab());
    let refs: Vec<String> = pairs.iter().map(|p| p.reference.clone()).collect();
    let unknown_tokens = examples.iter().flat_map(|e| &e.src).filter(|&&id| id == s2s_data::UNK).count();
    let alignment = match data {
        EvalData::Split(_) => alignment_of(run.cfg.data.dataset),
        EvalData::File(_) => None,
    };
    let s = score(run.model.as_ref(), &examples, &refs, &run.target, alignment, Decoding::Configured)?;
    if s.bleu == 0.0 && !refs.is_empty() && refs.iter().all(|r| r.split_whitespace().count() < 4) {
        let why = "BLEU is 0 because every reference is shorter than 4 tokens: BLEU multiplies 1- to 4-gram \
                   precisions, and there are no 4-grams; chrF and exact match still measure these"
            .to_string();
        note = Some(note.map_or(why.clone(), |n| format!("{n}; {why}")));
    }
    let m = run.model.decoding();
    let decoding = if m.beam_size <= 1 {
        "greedy".to_string()
    } else {
        format!("beam {}, length penalty {}", m.beam_size, m.length_penalty)
    };
    let result = EvalResult {
        run: dir.display().to_string(),
        checkpoint: run.checkpoint.name(),
        split,
        pairs: pairs.len(),
        decoding,
        loss: s.loss,
        ppl: s.ppl,
        bleu: s.bleu,
        chrf: s.chrf,
        exact_match: s.exact_match,
        alignment: s.alignment,
        alignment_by_head: s.alignment_by_head,
        unknown_tokens,
        note,
        warnings: run.checkpoint.skipped.clone(),
    };
    // One file per split, checkpoint and decoding: `eval-valid.json` for the default (best
    // checkpoint, the run's own decoding), `eval-valid-average-beam5.json` otherwise.
    let mut key = file_key;
    if *which != Which::Best {
        key.push('-');
        key.push_str(&run.checkpoint.name());
    }
    if choice.beam_size.is_some() || choice.length_penalty.is_some() {
        key.push_str(&format!("-beam{}", m.beam_size));
        if m.beam_size > 1 {
            key.push_str(&format!("-lp{}", m.length_penalty));
        }
    }
    let path = run.dir.eval_json(&key);
    let json = serde_json::to_string_pretty(&result).map_err(|e| damaged(&path, e))?;
    write_atomic(&path, json.as_bytes())?;
    Ok(result)
}
