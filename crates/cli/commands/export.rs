//! `s2s export RUN --to ctranslate2 OUT`: a run's checkpoint for an inference engine.

use crate::args::ExportEngine;
use crate::output::outln;
use std::path::Path;

use anyhow::{Context, Result};
use s2s_run::export::ExportOptions;
use s2s_run::Which;

pub fn execute(dir: &Path, to: ExportEngine, out: &Path, checkpoint: &str, python: &Path) -> Result<()> {
    let opts = ExportOptions { which: Which::parse(checkpoint), out: out.to_path_buf(), python: python.to_path_buf() };
    let exported = match to {
        ExportEngine::CTranslate2 => s2s_run::export::ctranslate2(dir, &opts),
    }
    .with_context(|| format!("cannot export {}", dir.display()))?;
    outln!(
        "exported checkpoint {} of {} ({} variables) to {}",
        exported.checkpoint,
        dir.display(),
        exported.variables,
        out.display()
    )?;
    for f in &exported.files {
        outln!("  {}", f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into_owned()))?;
    }
    outln!("use it with: ctranslate2.Translator(\"{}\")", out.display())?;
    Ok(())
}
