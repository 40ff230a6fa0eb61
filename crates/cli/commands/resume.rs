//! `s2s resume RUN [--epochs N] [--set ...]`: continue a run in its own folder from its
//! newest good checkpoint, bit for bit as if it had never stopped.

use std::path::Path;

use anyhow::Result;
use s2s_run::{session, Outcome, RunDir, SessionHooks};

use crate::progress::{print_outcome, Progress};

pub fn execute(run: &Path, epochs: Option<usize>, sets: &[String]) -> Result<Outcome> {
    let mut progress = Progress::new();
    let hooks = SessionHooks {
        stop: crate::signal::stop_flag(),
        progress: &mut progress,
        say: &mut |l| println!("{l}"),
        warn: &mut |w| eprintln!("warning: {w}"),
    };
    let outcome = session::resume(&RunDir::at(run), epochs, sets, hooks)?;
    print_outcome(&outcome);
    Ok(outcome)
}
