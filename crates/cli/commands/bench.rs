//! `s2s bench`: the measurements `scripts/bench.py` compares with PyTorch (prints JSON).

use anyhow::Result;
use s2s_run::bench::{measure, BenchOptions};

pub fn execute(o: &BenchOptions) -> Result<()> {
    println!("{}", measure(o)?);
    Ok(())
}
