//! Learning a config's BPE tokenizers ahead of its runs (`s2s tokenizer train`).

use std::path::{Path, PathBuf};

use crate::config::ExperimentConfig;
use crate::error::{Result, RunError};

/// What [`learn`] wrote.
#[derive(Debug, Clone)]
pub struct Learned {
    /// Training pairs the tokenizers were learned on.
    pub pairs: usize,
    /// Vocabulary sizes, source and target (equal for a joint vocabulary).
    pub sizes: [usize; 2],
    /// The files written and their SHA-256.
    pub files: Vec<(PathBuf, String)>,
    pub seconds: f64,
}

/// Where `s2s tokenizer train` writes by default: `tokenizers/<config name>.json` for a
/// joint vocabulary, else the folder `tokenizers/<config name>/`.
pub fn default_out(cfg: &ExperimentConfig, config: &Path) -> PathBuf {
    let stem = config.file_stem().map_or("tokenizer".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("tokenizers").join(if cfg.data.joint_vocab { format!("{stem}.json") } else { stem })
}

/// Learns the tokenizers a run of `cfg` would learn on its train split and writes them to
/// `out` (refused when `out` exists: nothing is overwritten).
pub fn learn(cfg: &ExperimentConfig, out: &Path) -> Result<Learned> {
    if out.exists() {
        return Err(RunError::Refused(format!("{} already exists; remove it or pass another --out", out.display())));
    }
    let t0 = std::time::Instant::now();
    let (source, target, pairs) = s2s_data::learn_tokenizers(&cfg.data, cfg.run.seed)?;
    let written = s2s_data::tokenizer::save_pair(&source, &target, out)?;
    let hashes = [source.sha256()?, target.sha256()?];
    let files = written.into_iter().zip(hashes).collect();
    Ok(Learned {
        pairs,
        sizes: [source.vocab().len(), target.vocab().len()],
        files,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
