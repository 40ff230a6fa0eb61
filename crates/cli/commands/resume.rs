//! `s2s resume RUN [--epochs N] [--set ...]`: continue a run in its own folder from its
//! newest good checkpoint, bit for bit as if it had never stopped.

use std::path::Path;

use anyhow::Result;
use s2s_run::{session, Outcome, RunDir};

pub fn execute(run: &Path, epochs: Option<usize>, sets: &[String]) -> Result<Outcome> {
    crate::progress::on_terminal(|hooks| session::resume(&RunDir::at(run), epochs, sets, hooks))
}
