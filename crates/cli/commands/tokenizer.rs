//! `s2s tokenizer train CONFIG [--out PATH]`: learns a config's BPE tokenizer(s) once, for
//! reuse across runs with `--set data.tokenizer_path=PATH`.

use crate::output::outln;
use std::path::Path;

use anyhow::{Context, Result};
use s2s_run::config::ExperimentConfig;

pub fn train(config: &Path, sets: &[String], out: Option<&Path>) -> Result<()> {
    let cfg = ExperimentConfig::load(config, sets)?;
    let out = out.map_or_else(|| s2s_run::tokenizer::default_out(&cfg, config), Path::to_path_buf);
    let learned = s2s_run::tokenizer::learn(&cfg, &out)
        .with_context(|| format!("cannot learn the tokenizer of {}", config.display()))?;
    let [s, t] = learned.sizes;
    let sizes =
        if cfg.data.joint_vocab { format!("{s} pieces (joint)") } else { format!("{s} source / {t} target pieces") };
    outln!("learned BPE on {} training pairs in {:.1} s: {sizes}", learned.pairs, learned.seconds)?;
    for (file, sha) in &learned.files {
        outln!("wrote {} (sha256 {})", file.display(), sha.get(..12).unwrap_or(sha))?;
    }
    outln!("use it with: --set data.tokenizer_path={}", out.display())?;
    Ok(())
}
