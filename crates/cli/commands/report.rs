//! `s2s report RUN`: rewrite a run's report.html (and loss.svg) from its folder.

use std::path::Path;

use anyhow::Result;

use crate::artifacts::write_loss_curve;
use crate::loaded_run::read_config;

pub fn execute(run_dir: &Path) -> Result<()> {
    let cfg = read_config(run_dir)?;
    if run_dir.join("metrics.csv").exists() {
        write_loss_curve(run_dir, &format!("{}: loss", cfg.run.name))?;
    }
    crate::report_html::write_report(run_dir)?;
    println!("{}", run_dir.join("report.html").display());
    Ok(())
}
