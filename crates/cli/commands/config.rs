//! `s2s config CONFIG [--set ...]`: print the resolved config without training.

use std::path::Path;

use anyhow::Result;
use s2s_run::ExperimentConfig;

pub fn execute(config: &Path, sets: &[String]) -> Result<()> {
    print!("{}", ExperimentConfig::load(config, sets)?.to_toml()?);
    Ok(())
}
