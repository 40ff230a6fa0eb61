//! Launching a sweep: check every point, write the sweep folder, then train the points
//! here ([`run_local`]) or submit them as one Slurm array job ([`submit`]). A sweep that
//! cannot start (a bad point, no `sbatch`, a refused submission) leaves no folder behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::folder::{Point, Points, Submission, SweepDir};
use crate::slurm;
use crate::slurm_config::{job_script, JobPlan};
use crate::spec::{Launcher, Sweep};
use s2s_run::config::{ConfigSource, ExperimentConfig};
use s2s_run::error::{io, Result, RunError};

/// The `--set` list of each point: the sweep's fixed overrides, the point's own, and
/// (added by [`create`]) its run name; TensorBoard's HPARAMS tab shows the keys the sweep
/// varies (a fixed `report.hparams` of the user's, given after it, wins).
fn point_overrides(sweep: &Sweep, own: &[(String, String)]) -> Vec<String> {
    let keys: Vec<String> = sweep.varied_keys().iter().map(|k| format!("{k:?}")).collect();
    let mut o = vec![format!("report.hparams=[{}]", keys.join(", "))];
    o.extend(sweep.set.iter().map(|(k, v)| format!("{k}={v}")));
    o.extend(own.iter().map(|(k, v)| format!("{k}={v}")));
    o
}

/// Checks every point's config and writes the sweep folder (sweep.toml, points.json and,
/// for Slurm, job.sbatch running `program`) under the first point's `run.output_dir`.
/// Nothing is written when a point is bad. A sweep without a name takes its points'
/// `run.name`; each point's run is `<run.name>-<label>`.
pub fn create(sweep: &Sweep, program: &Path) -> Result<(SweepDir, Points)> {
    let config = std::fs::canonicalize(&sweep.config)
        .or_else(|_| std::path::absolute(&sweep.config))
        .map_err(io(&sweep.config))?;
    let mut points = Vec::new();
    let mut first: Option<ExperimentConfig> = None;
    let source = ConfigSource::read(&config)?;
    for (index, (label, own)) in sweep.points().into_iter().enumerate() {
        let mut overrides = point_overrides(sweep, &own);
        let cfg =
            source.load(&overrides).map_err(|e| RunError::Refused(format!("sweep point {index} ({label}): {e}")))?;
        let name = format!("{}-{label}", cfg.run.name);
        overrides.push(format!("run.name={name}"));
        points.push(Point {
            index,
            run: PathBuf::from("runs").join(&name),
            gpu: cfg.run.device.starts_with("cuda"),
            label,
            overrides,
        });
        first.get_or_insert(cfg);
    }
    let first = first.ok_or_else(|| RunError::Refused("the sweep has no points".into()))?;
    if sweep.launcher == Launcher::Slurm {
        slurm::check_available()?;
    }
    let mut sweep = sweep.clone();
    if sweep.name.is_empty() {
        sweep.name.clone_from(&first.run.name);
    }
    let dir = SweepDir::create(&first.run.output_dir, &sweep.name)?;
    let points = Points { config, points };
    let written = write_files(&dir, &sweep, &points, program);
    if let Err(e) = written {
        remove(&dir);
        return Err(e);
    }
    Ok((dir, points))
}

fn write_files(dir: &SweepDir, sweep: &Sweep, points: &Points, program: &Path) -> Result<()> {
    s2s_run::run_dir::write_atomic(&dir.sweep_toml(), sweep.to_toml()?.as_bytes())?;
    dir.write_points(points)?;
    if sweep.launcher == Launcher::Slurm {
        let workdir = std::env::current_dir().map_err(io(Path::new(".")))?;
        let indices: Vec<usize> = points.points.iter().map(|p| p.index).collect();
        let plan = JobPlan {
            name: &sweep.name,
            sweep_dir: dir.path(),
            program,
            workdir: &workdir,
            indices: &indices,
            gpu: points.points.iter().all(|p| p.gpu),
        };
        let script = job_script(&sweep.slurm, &plan, &dir.log_pattern());
        s2s_run::run_dir::write_atomic(&dir.job_sbatch(), script.as_bytes())?;
    }
    Ok(())
}

/// Removes a sweep folder that could not start (best effort: the error that stopped it
/// is the one to report).
pub fn remove(dir: &SweepDir) {
    let _ = std::fs::remove_dir_all(dir.path());
}

/// Submits `indices` (all points, the first time) with job.sbatch: one array job, or two
/// when only some points train on CUDA (those get `gres`). Records the submissions in
/// jobs.json and returns them.
pub fn submit(dir: &SweepDir, sweep: &Sweep, indices: &[usize]) -> Result<Vec<Submission>> {
    let points = dir.read_points()?;
    let all: Vec<usize> = points.points.iter().map(|p| p.index).collect();
    let script_gpu = points.points.iter().all(|p| p.gpu);
    let is_gpu = |i: &usize| points.points.get(*i).is_some_and(|p| p.gpu);
    let (gpu, cpu): (Vec<usize>, Vec<usize>) = indices.iter().copied().partition(is_gpu);
    let mut groups = Vec::new();
    if indices == all.as_slice() && (gpu.is_empty() || cpu.is_empty()) {
        groups.push((indices.to_vec(), Vec::new()));
    } else {
        let array = |ix: &[usize]| format!("--array={}", slurm_array(ix, sweep));
        if !cpu.is_empty() {
            groups.push((cpu.clone(), vec![array(&cpu)]));
        }
        if !gpu.is_empty() {
            let mut args = vec![array(&gpu)];
            if let (Some(g), false) = (&sweep.slurm.gres, script_gpu) {
                args.push(format!("--gres={g}"));
            }
            groups.push((gpu.clone(), args));
        }
    }
    let mut jobs = dir.read_jobs()?;
    let mut made = Vec::new();
    for (ix, args) in groups {
        let (job_id, command) = slurm::submit(&dir.job_sbatch(), &args)?;
        let s = Submission { job_id, points: ix, submitted_at: s2s_run::clock::utc_now(), command, cancelled: false };
        jobs.push(s.clone());
        dir.write_jobs(&jobs)?;
        made.push(s);
    }
    Ok(made)
}

fn slurm_array(ix: &[usize], sweep: &Sweep) -> String {
    crate::slurm_config::array_spec(ix, sweep.slurm.array_parallelism)
}

/// A point that did not complete locally: its index and the error line of its log.
pub type LocalFailure = (usize, String);

/// Trains `indices` here, `jobs` processes at a time (`program sweep point DIR I`, output
/// appended to the point's log); `say` hears of each start and end.
pub fn run_local(
    dir: &SweepDir,
    program: &Path,
    indices: &[usize],
    jobs: usize,
    say: &mut dyn FnMut(&str),
) -> Result<Vec<LocalFailure>> {
    let points = dir.read_points()?;
    let mut queue: std::collections::VecDeque<usize> = indices.iter().copied().collect();
    let mut running: Vec<(usize, Child)> = Vec::new();
    let mut failures = Vec::new();
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < jobs.max(1) {
            let Some(i) = queue.pop_front() else { break };
            let log_path = dir.log(i);
            let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(io(&log_path))?;
            let err = log.try_clone().map_err(io(&log_path))?;
            let child = Command::new(program)
                .args(["sweep", "point"])
                .arg(dir.path())
                .arg(i.to_string())
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .map_err(|e| RunError::Refused(format!("cannot start {}: {e}", program.display())))?;
            let name = points.points.get(i).map_or(String::new(), |p| p.run.display().to_string());
            say(&format!("  starting point {i}: {name}"));
            running.push((i, child));
        }
        let mut k = 0;
        while k < running.len() {
            let status = running[k].1.try_wait().map_err(|e| RunError::Refused(format!("sweep point: {e}")))?;
            match status {
                Some(st) => {
                    let (i, _) = running.swap_remove(k);
                    if !st.success() {
                        let line = dir.last_error_line(i).unwrap_or_else(|| format!("exit status {st}"));
                        say(&format!("  point {i} failed: {line}"));
                        failures.push((i, line));
                    }
                }
                None => k += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    failures.sort();
    Ok(failures)
}

/// `s2s sweep cancel`: marks every submission cancelled (so that signalled tasks do not
/// requeue themselves), then `scancel`s the jobs that still have tasks queued or running.
/// Returns the job ids cancelled.
pub fn cancel(dir: &SweepDir) -> Result<Vec<String>> {
    let mut jobs = dir.read_jobs()?;
    if jobs.is_empty() {
        return Err(RunError::Refused(format!(
            "{} was not submitted to Slurm; stop a local sweep with Ctrl-C",
            dir.path().display()
        )));
    }
    for s in &mut jobs {
        s.cancelled = true;
    }
    dir.write_jobs(&jobs)?;
    let ids: Vec<String> = jobs.iter().map(|s| s.job_id.clone()).collect();
    let queued = slurm::queue(&ids)?;
    let mut live: Vec<String> = ids.into_iter().filter(|id| queued.keys().any(|(j, _)| j == id)).collect();
    live.dedup();
    slurm::cancel(&live)?;
    Ok(live)
}
