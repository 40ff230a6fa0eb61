//! `s2s bench`: the measurements `scripts/bench.py` compares with PyTorch (prints JSON).

use crate::bench::{measure, measure_data, BenchOptions};
use crate::output::outln;
use anyhow::Result;

pub fn execute(o: &BenchOptions) -> Result<()> {
    outln!("{}", measure(o)?)?;
    Ok(())
}

/// `s2s bench-data CONFIG`: a config's data loaded into one epoch's batches, timed; with
/// `BENCH_DATA_SHA256=1` in the environment, also the SHA-256 of the ids, references and
/// batches loaded.
pub fn data(config: &std::path::Path, sets: &[String]) -> Result<()> {
    let cfg = s2s_run::config::ExperimentConfig::load(config, sets)?;
    let checksum = std::env::var_os("BENCH_DATA_SHA256").is_some_and(|v| !v.is_empty() && v != "0");
    outln!("{}", measure_data(&cfg, checksum)?)?;
    Ok(())
}
