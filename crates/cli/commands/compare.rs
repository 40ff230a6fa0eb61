//! `s2s compare [RUN ...]`: the config keys that differ and the key results as a table,
//! JSON or CSV, plus a comparison folder.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use s2s_run::compare::{build, write_folder, Comparison, FOLDER_PREFIX};
use s2s_run::{find_runs, RunSummary};

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
    let runs: Vec<RunSummary> = if names.is_empty() {
        find_runs(&opts.dir)
    } else {
        names
            .iter()
            .map(|n| RunSummary::load(n).ok_or_else(|| anyhow!("{} is not a run folder", n.display())))
            .collect::<Result<_>>()?
    };
    if runs.is_empty() {
        bail!("no runs to compare in {}", opts.dir.display());
    }
    let mut cmp = build(&runs, opts.all_keys);
    if let Some(metric) = &opts.sort {
        cmp.sort_by(metric)?;
    }
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&cmp)?);
    } else if opts.csv {
        crate::tables::print_csv(&cmp);
    } else {
        crate::tables::print_table(&cmp);
    }
    let out =
        opts.out.clone().unwrap_or_else(|| opts.dir.join(format!("{FOLDER_PREFIX}{}", s2s_run::clock::stamp_now())));
    let index = write_folder(&out, &runs, &cmp)?;
    if !opts.json && !opts.csv {
        println!("\ncomparison: {}", index.display());
    }
    Ok(cmp)
}
