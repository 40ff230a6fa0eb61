//! `s2s compare [RUN ...]`: the config keys that differ and the key results as a table,
//! JSON or CSV, plus a comparison folder.

use crate::output::outln;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use s2s_run::compare::{build, write_folder, Comparison, FOLDER_PREFIX};
use s2s_run::{find_runs, RunSummary};
use s2s_sweep::SweepDir;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub all_keys: bool,
    pub sort: Option<String>,
    pub json: bool,
    pub csv: bool,
    pub out: Option<PathBuf>,
    /// Where to look when no runs are named.
    pub dir: PathBuf,
}

pub fn execute(names: &[PathBuf], opts: &Options) -> Result<Comparison> {
    let mut runs: Vec<RunSummary> = Vec::new();
    // A sweep folder stands for its runs; its comparison folder goes inside it.
    let mut sweep_dir = None;
    for n in names {
        if SweepDir::is_sweep(n) {
            let sweep = SweepDir::at(n);
            runs.extend(sweep.run_paths().iter().filter_map(|p| RunSummary::load(p)));
            sweep_dir = Some(sweep.path().to_path_buf());
        } else {
            runs.push(RunSummary::load(n).ok_or_else(|| anyhow!("{} is not a run folder", n.display()))?);
        }
    }
    if names.is_empty() {
        runs = find_runs(&opts.dir);
    }
    if runs.is_empty() {
        bail!("no runs to compare in {}", opts.dir.display());
    }
    for r in &runs {
        if let Some(problem) = &r.problem {
            eprintln!("warning: {} is damaged: {problem}", r.name);
        }
    }
    let mut cmp = build(&runs, opts.all_keys);
    if let Some(metric) = &opts.sort {
        cmp.sort_by(metric)?;
    }
    if opts.json {
        outln!("{}", serde_json::to_string_pretty(&cmp)?)?;
    } else if opts.csv {
        crate::tables::print_csv(&cmp)?;
    } else {
        crate::tables::print_table(&cmp)?;
    }
    let parent = sweep_dir.filter(|_| names.len() == 1).unwrap_or_else(|| opts.dir.clone());
    let out =
        opts.out.clone().unwrap_or_else(|| parent.join(format!("{FOLDER_PREFIX}{}", s2s_run::clock::stamp_now())));
    let index = write_folder(&out, &runs, &cmp)?;
    if !opts.json && !opts.csv {
        outln!("\ncomparison: {}", index.display())?;
    }
    Ok(cmp)
}
