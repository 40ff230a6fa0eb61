//! `s2s average RUN --last K`: averages the model weights of a run's K newest checkpoints
//! into `checkpoints/average/` (`--checkpoint average` for eval and translate).

use crate::output::outln;
use std::path::Path;

use anyhow::{Context, Result};

pub fn execute(dir: &Path, last: usize) -> Result<()> {
    let avg = s2s_run::average::average_last(dir, last)
        .with_context(|| format!("cannot average the checkpoints of {}", dir.display()))?;
    for w in &avg.skipped {
        eprintln!("warning: {w}");
    }
    outln!("averaged {} checkpoint(s): {}", avg.sources.len(), avg.sources.join(", "))?;
    outln!("wrote {}", avg.dir.display())?;
    outln!("use it with: s2s eval {0} --checkpoint average, s2s translate {0} --checkpoint average", dir.display())?;
    Ok(())
}
