//! `s2s report RUN`: rewrite a run's report.html (and loss.svg) from its folder.

use crate::output::outln;
use std::path::Path;

use anyhow::Result;
use s2s_run::report::{artifacts::write_loss_curve, page::write_report};
use s2s_run::RunDir;

pub fn execute(dir: &Path) -> Result<()> {
    let run = RunDir::at(dir);
    let cfg = run.read_config()?;
    if run.metrics_csv().exists() {
        write_loss_curve(&run, &format!("{}: loss", cfg.run.name))?;
    }
    write_report(&run)?;
    outln!("{}", run.report_html().display())?;
    Ok(())
}
