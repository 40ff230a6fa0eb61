//! `s2s run CONFIG`: train a model and write a run folder.

use std::path::Path;

use anyhow::Result;
use s2s_run::{session, ExperimentConfig, Outcome};

pub fn execute(config: &Path, sets: &[String]) -> Result<Outcome> {
    let cfg = ExperimentConfig::load(config, sets)?;
    crate::progress::on_terminal(|hooks| session::start(cfg, config, hooks))
}
