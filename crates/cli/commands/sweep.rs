//! `s2s sweep CONFIG --grid key=v1,v2 ...` or `s2s sweep SWEEP.toml`: one `s2s run`
//! process per point (a grid point, or a sweep file's variant × grid point), then a
//! comparison of the new runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use s2s_run::compare::{build, write_folder, FOLDER_PREFIX};
use s2s_run::sweep::{label, parse_axis, points, Axis, SweepFile};
use s2s_run::{find_runs, ExperimentConfig};

/// A sweep point: its run-name label and its `key=value` overrides.
type Point = (String, Vec<(String, String)>);

pub fn execute(config: &Path, grids: &[String], sets: &[String], jobs: usize) -> Result<()> {
    let mut grid: Vec<Axis> = grids.iter().map(|g| parse_axis(g)).collect::<Result<_, _>>()?;
    let (config, pts): (PathBuf, Vec<Point>) = if SweepFile::is_sweep_file(config) {
        let file = SweepFile::load(config)?;
        if !grid.is_empty() {
            bail!("{} is a sweep file: put the grid in it, not in --grid", config.display());
        }
        grid.clone_from(&file.grid);
        for (_, sets) in &file.variants {
            for (k, _) in sets {
                if !grid.iter().any(|(g, _)| g == k) {
                    grid.push((k.clone(), Vec::new()));
                }
            }
        }
        let pts = file.points();
        (file.config, pts)
    } else {
        if grid.is_empty() {
            bail!("give at least one --grid key=v1,v2 (or a sweep file, see configs/sweeps/)");
        }
        (config.to_path_buf(), points(&grid).into_iter().map(|p| (label(&p), p)).collect())
    };
    let config = config.as_path();
    let base = ExperimentConfig::load(config, sets)?;
    // Check every point's config before starting anything.
    for (name, p) in &pts {
        let mut all = sets.to_vec();
        all.extend(p.iter().map(|(k, v)| format!("{k}={v}")));
        ExperimentConfig::load(config, &all).with_context(|| format!("sweep point {name}"))?;
    }
    let exe = std::env::current_exe().context("cannot find the s2s executable")?;
    let out_dir = base.run.output_dir.clone();
    let before: Vec<PathBuf> = find_runs(&out_dir).into_iter().map(|r| r.dir.path().to_path_buf()).collect();
    println!("sweep: {} runs, {} at a time", pts.len(), jobs.max(1));
    let mut failures = Vec::new();
    for chunk in pts.chunks(jobs.max(1)) {
        let mut children = Vec::new();
        for (point, p) in chunk {
            let name = format!("{}-{point}", base.run.name);
            let mut cmd = Command::new(&exe);
            cmd.arg("run").arg(config);
            // TensorBoard's HPARAMS tab shows the keys the sweep varies (a `--set
            // report.hparams=...` of the user's, given after it, wins).
            let keys: Vec<String> = grid.iter().map(|(k, _)| format!("{k:?}")).collect();
            cmd.arg("--set").arg(format!("report.hparams=[{}]", keys.join(", ")));
            for s in sets {
                cmd.arg("--set").arg(s);
            }
            for (k, v) in p {
                cmd.arg("--set").arg(format!("{k}={v}"));
            }
            cmd.arg("--set").arg(format!("run.name={name}"));
            cmd.stdout(std::process::Stdio::null());
            println!("  starting {name}");
            children.push((name, cmd.spawn().context("cannot start a sweep run")?));
        }
        for (name, mut child) in children {
            if !child.wait()?.success() {
                failures.push(name);
            }
        }
    }
    let new: Vec<_> = find_runs(&out_dir).into_iter().filter(|r| !before.iter().any(|b| b == r.dir.path())).collect();
    if !new.is_empty() {
        println!();
        let cmp = build(&new, false);
        crate::tables::print_table(&cmp);
        let out = out_dir.join(format!("{FOLDER_PREFIX}{}", s2s_run::clock::stamp_now()));
        println!("\ncomparison: {}", write_folder(&out, &new, &cmp)?.display());
    }
    if !failures.is_empty() {
        bail!("{} sweep run(s) failed: {}", failures.len(), failures.join(", "));
    }
    Ok(())
}
