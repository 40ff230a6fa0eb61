//! A trained run folder opened for use: its config, vocabularies and a checkpoint's weights.

use std::path::Path;

use anyhow::{Context, Result};
use s2s_data::Vocab;
use s2s_model::{ModelDims, Seq2Seq};

use crate::checkpoint::{checkpoints_dir, locate, LoadedCheckpoint};
use crate::config::ExperimentConfig;
use crate::device::DeviceSpec;

#[derive(Debug)]
pub struct LoadedRun {
    pub cfg: ExperimentConfig,
    pub src_vocab: Vocab,
    pub tgt_vocab: Vocab,
    pub model: Seq2Seq,
    pub checkpoint: LoadedCheckpoint,
}

/// Reads a run folder's resolved `config.toml`.
pub fn read_config(run_dir: &Path) -> Result<ExperimentConfig> {
    let p = run_dir.join("config.toml");
    let text = std::fs::read_to_string(&p)
        .with_context(|| format!("{} is not a run folder (no config.toml)", run_dir.display()))?;
    toml::from_str(&text).with_context(|| format!("{} cannot be read", p.display()))
}

/// Opens `run_dir` with checkpoint `which` (`best`, `last` or a folder path); `best`
/// falls back to `last` when the run never validated.
pub fn open(run_dir: &Path, which: &str) -> Result<LoadedRun> {
    let cfg = read_config(run_dir)?;
    let ck = checkpoints_dir(run_dir);
    let src_vocab = Vocab::load(&ck.join("src_vocab.json"))?;
    let tgt_vocab = Vocab::load(&ck.join("tgt_vocab.json"))?;
    let checkpoint = match (which, locate(run_dir, which)) {
        (_, Ok(c)) => c,
        ("best", Err(_)) if !ck.join("best").exists() => locate(run_dir, "last")?,
        (_, Err(e)) => return Err(e),
    };
    let device = DeviceSpec::parse(&cfg.run.device)?.open(&cfg.run.device)?;
    let dims = ModelDims { src_vocab: src_vocab.len(), tgt_vocab: tgt_vocab.len(), max_length: cfg.data.max_length };
    let mut model = Seq2Seq::new(&cfg.model, dims, cfg.run.seed, &device)?;
    model.set_threads(crate::commands::run::set_threads(cfg.run.threads));
    checkpoint.load_model(&model)?;
    Ok(LoadedRun { cfg, src_vocab, tgt_vocab, model, checkpoint })
}
