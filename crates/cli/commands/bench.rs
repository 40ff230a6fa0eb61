//! `s2s bench`: the measurements `scripts/bench.py` compares with PyTorch (prints JSON).

use anyhow::Result;
use s2s_run::bench::{measure, BenchOptions};

pub fn execute(o: &BenchOptions) -> Result<()> {
    println!("{}", measure(o)?);
    Ok(())
}

/// `s2s bench-data CONFIG`: a config's data loaded into one epoch's batches, timed.
pub fn data(config: &std::path::Path, sets: &[String]) -> Result<()> {
    let cfg = s2s_run::config::ExperimentConfig::load(config, sets)?;
    s2s_run::session::set_threads(cfg.run.threads);
    println!("{}", s2s_run::bench::measure_data(&cfg)?);
    Ok(())
}
