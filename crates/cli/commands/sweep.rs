//! `s2s sweep CONFIG --grid key=v1,v2 ...` or `s2s sweep SWEEP.toml`: a sweep folder with
//! one run per point, trained here (`--jobs` at a time) or as one Slurm array job
//! (`--launcher slurm`); then `s2s sweep status|cancel|resubmit DIR`. Each point trains in
//! its own process, `s2s sweep point DIR I` (hidden), which is also what the array tasks run.

use crate::output::outln;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use s2s_run::compare::{build, write_folder, FOLDER_PREFIX};
use s2s_run::RunSummary;
use s2s_sweep::launch::{self, LocalFailure};
use s2s_sweep::point::{run_point, PointOutcome};
use s2s_sweep::status::{status as point_status, tally, to_resubmit, PointStatus};
use s2s_sweep::{Launcher, Sweep, SweepArgs, SweepDir};

/// What `s2s sweep` was given besides the config.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    pub args: SweepArgs,
    /// Write the sweep folder (points.json, job.sbatch) without training or submitting.
    pub dry_run: bool,
}

fn program() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the s2s executable")?;
    Ok(std::path::absolute(&exe).unwrap_or(exe))
}

pub fn execute(config: &Path, opts: &LaunchOptions) -> Result<()> {
    let sweep = if Sweep::is_sweep_file(config) {
        Sweep::from_file(config, &opts.args)?
    } else {
        Sweep::from_config(config, &opts.args)?
    };
    let program = program()?;
    let (dir, points) = launch::create(&sweep, &program)?;
    let n = points.points.len();
    let all: Vec<usize> = (0..n).collect();
    if opts.dry_run {
        outln!(
            "sweep: {n} points written, nothing {}",
            if sweep.launcher == Launcher::Slurm { "submitted" } else { "trained" }
        )?;
        outln!("sweep folder: {}", dir.path().display())?;
        return Ok(());
    }
    match sweep.launcher {
        Launcher::Slurm => {
            let subs = match launch::submit(&dir, &sweep, &all) {
                Ok(s) => s,
                Err(e) => {
                    launch::remove(&dir);
                    return Err(e.into());
                }
            };
            for s in &subs {
                outln!("submitted job {} ({} points: array {})", s.job_id, s.points.len(), array_of(s))?;
            }
            outln!("sweep folder: {}", dir.path().display())?;
            outln!("follow it with `s2s sweep status {}`", dir.path().display())?;
            Ok(())
        }
        Launcher::Local => {
            outln!("sweep: {n} runs, {} at a time", sweep.jobs)?;
            outln!("sweep folder: {}", dir.path().display())?;
            let failures = launch::run_local(&dir, &program, &all, sweep.jobs, &mut crate::output::say)?;
            finish_local(&dir, &failures)
        }
    }
}

fn array_of(s: &s2s_sweep::folder::Submission) -> String {
    s2s_sweep::slurm_config::array_spec(&s.points, None)
}

/// After local points ran: the comparison of the sweep's runs, then the failures.
fn finish_local(dir: &SweepDir, failures: &[LocalFailure]) -> Result<()> {
    let runs: Vec<RunSummary> = dir.run_paths().iter().filter_map(|p| RunSummary::load(p)).collect();
    if !runs.is_empty() {
        outln!()?;
        let cmp = build(&runs, false);
        crate::tables::print_table(&cmp)?;
        let out = dir.path().join(format!("{FOLDER_PREFIX}{}", s2s_run::clock::stamp_now()));
        outln!("\ncomparison: {}", write_folder(&out, &runs, &cmp)?.display())?;
    }
    if !failures.is_empty() {
        let list: Vec<String> = failures.iter().map(|(i, e)| format!("point {i}: {e}")).collect();
        bail!("{} sweep point(s) failed: {}", failures.len(), list.join("; "));
    }
    Ok(())
}

/// `s2s sweep status DIR`
pub fn status(dir: &Path, json: bool) -> Result<()> {
    let dir = SweepDir::open(dir)?;
    let (points, warning) = point_status(&dir)?;
    if let Some(w) = &warning {
        eprintln!("warning: cannot ask Slurm ({w}); showing what the run folders say");
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&points)?)?;
        return Ok(());
    }
    print_status(&points)?;
    Ok(())
}

fn print_status(points: &[PointStatus]) -> std::io::Result<()> {
    let header = ["point", "label", "job", "slurm", "run", "epochs", "best", "restarts", "error"];
    let rows: Vec<[String; 9]> = points
        .iter()
        .map(|p| {
            [
                p.index.to_string(),
                p.label.clone(),
                p.job.clone().unwrap_or_else(|| "-".into()),
                p.slurm.clone(),
                p.run.clone(),
                p.epochs.to_string(),
                p.best.clone().unwrap_or_else(|| "-".into()),
                p.restarts.to_string(),
                p.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).chain([header[c].len()]).max().unwrap_or(0);
    let widths: Vec<usize> = (0..9).map(width).collect();
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (c, cell) in cells.iter().enumerate() {
            if c == 8 {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        outln!("{}", s.trim_end())
    };
    line(header.to_vec())?;
    for r in &rows {
        line(r.iter().map(String::as_str).collect())?;
    }
    outln!("{}", tally(points))
}

/// `s2s sweep cancel DIR`
pub fn cancel(dir: &Path) -> Result<()> {
    let dir = SweepDir::open(dir)?;
    let ids = launch::cancel(&dir)?;
    if ids.is_empty() {
        outln!("nothing to cancel: no task of {} is queued or running", dir.path().display())?;
    } else {
        outln!(
            "cancelled job(s) {}; `s2s sweep resubmit {}` runs what did not finish",
            ids.join(", "),
            dir.path().display()
        )?;
    }
    Ok(())
}

/// `s2s sweep resubmit DIR`: the failed or cancelled points only.
pub fn resubmit(dir: &Path) -> Result<()> {
    let dir = SweepDir::open(dir)?;
    let sweep = Sweep::from_file(&dir.sweep_toml(), &SweepArgs::default())
        .with_context(|| format!("cannot read {}", dir.sweep_toml().display()))?;
    let (points, _) = point_status(&dir)?;
    let indices = to_resubmit(&points);
    if indices.is_empty() {
        outln!("nothing to resubmit: {}", tally(&points))?;
        return Ok(());
    }
    let list: Vec<String> = indices.iter().map(ToString::to_string).collect();
    match sweep.launcher {
        Launcher::Slurm => {
            // Tasks of the new submission must requeue themselves again.
            for s in launch::submit(&dir, &sweep, &indices)? {
                outln!("resubmitted point(s) {} as job {}", list.join(", "), s.job_id)?;
            }
            Ok(())
        }
        Launcher::Local => {
            outln!("rerunning point(s) {} here", list.join(", "))?;
            let failures = launch::run_local(&dir, &program()?, &indices, sweep.jobs, &mut crate::output::say)?;
            finish_local(&dir, &failures)
        }
    }
}

/// `s2s sweep point DIR I` (an array task, or a local sweep's process).
pub fn point(dir: &Path, index: usize) -> Result<std::process::ExitCode> {
    let dir = SweepDir::open(dir)?;
    outln!("== point {index}, {} ({})", s2s_run::clock::utc_now(), task_line())?;
    let outcome = crate::progress::with_hooks(|hooks| run_point(&dir, index, hooks))?;
    Ok(match outcome {
        PointOutcome::Completed(Some(done)) => {
            crate::progress::print_outcome(&s2s_run::Outcome::Completed(done));
            std::process::ExitCode::SUCCESS
        }
        PointOutcome::Completed(None) => {
            outln!("point {index} had already completed")?;
            std::process::ExitCode::SUCCESS
        }
        PointOutcome::Requeued(task) => {
            outln!("stopped by a signal: checkpoint written, task {task} requeued")?;
            std::process::ExitCode::SUCCESS
        }
        PointOutcome::Interrupted(requeue_error) => {
            if let Some(e) = requeue_error {
                eprintln!("warning: not requeued: {e}");
            }
            eprintln!("interrupted: checkpoint written; `s2s sweep resubmit {}` continues it", dir.path().display());
            std::process::ExitCode::from(130)
        }
    })
}

fn task_line() -> String {
    match s2s_run::run_info::SlurmTask::of_this_process() {
        Some(t) => format!("Slurm task {} on {}, restart {}", t.job, t.node, t.restart_count),
        None => "local".into(),
    }
}
