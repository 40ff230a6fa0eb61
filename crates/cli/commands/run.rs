//! `s2s run CONFIG`: train a model and write a run folder.

use std::path::Path;

use anyhow::Result;
use s2s_run::{session, ExperimentConfig, Outcome, SessionHooks};

use crate::progress::{print_outcome, Progress};

pub fn execute(config: &Path, sets: &[String]) -> Result<Outcome> {
    let cfg = ExperimentConfig::load(config, sets)?;
    let mut progress = Progress::new();
    let hooks = SessionHooks {
        stop: crate::signal::stop_flag(),
        progress: &mut progress,
        say: &mut |l| println!("{l}"),
        warn: &mut |w| eprintln!("warning: {w}"),
    };
    let outcome = session::start(cfg, config, hooks)?;
    print_outcome(&outcome);
    Ok(outcome)
}
