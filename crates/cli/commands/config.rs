//! `s2s config CONFIG [--set ...]`: print the resolved config without training.

use std::path::Path;

use anyhow::Result;

use crate::config::ExperimentConfig;

pub fn execute(config: &Path, sets: &[String]) -> Result<()> {
    let cfg = ExperimentConfig::load(config, sets)?;
    print!("{}", cfg.to_toml());
    Ok(())
}
