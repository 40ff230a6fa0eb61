//! One point of a sweep, as its array task (or local process) trains it: start the point's
//! run, or resume it when its folder already has a checkpoint, so that a requeued or
//! resubmitted task continues the same run bit for bit. Under Slurm, a task stopped by a
//! signal (USR2 before the time limit, or preemption's SIGTERM) requeues itself after its
//! checkpoint, unless `s2s sweep cancel` stopped it.

use crate::folder::SweepDir;
use crate::slurm;
use s2s_run::checkpoint::numbered;
use s2s_run::config::ExperimentConfig;
use s2s_run::error::{io, Result, RunError};
use s2s_run::run_info::RunInfo;
use s2s_run::session::{self, Finished, Outcome, SessionHooks};

/// How a point's task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum PointOutcome {
    /// Trained to its end now, or had before.
    Completed(Option<Finished>),
    /// Stopped with a checkpoint and requeued by Slurm (as `<job>_<task>`).
    Requeued(String),
    /// Stopped with a checkpoint, not requeued: local, cancelled, or the requeue failed
    /// (its error; `s2s sweep resubmit` continues the point).
    Interrupted(Option<String>),
}

/// Trains point `index` of the sweep in `dir`.
pub fn run_point(dir: &SweepDir, index: usize, hooks: SessionHooks) -> Result<PointOutcome> {
    let points = dir.read_points()?;
    let point = points.points.get(index).ok_or_else(|| {
        RunError::Refused(format!("{} has no point {index} (it has {})", dir.path().display(), points.points.len()))
    })?;
    let task = slurm::this_task();
    let mut state = dir.read_state(index)?.unwrap_or_default();
    state.state = "running".into();
    state.error = None;
    state.attempts += 1;
    state.job = task.as_ref().map(|t| t.0.clone());
    state.restarts = task.as_ref().map_or(0, |t| t.1);
    state.updated_at = s2s_run::clock::utc_now();
    dir.write_state(index, &state)?;
    let result = train(dir, point, &points.config, hooks);
    let (outcome, error) = match result {
        Ok(Outcome::Completed(f)) => (Ok(PointOutcome::Completed(Some(f))), None),
        Ok(Outcome::Interrupted(_)) => match &task {
            Some((id, _)) if !cancelled(dir, id) => match slurm::requeue(id) {
                Ok(()) => (Ok(PointOutcome::Requeued(id.clone())), None),
                // A cluster that preempts with PreemptMode=REQUEUE may have requeued it.
                Err(e) => (Ok(PointOutcome::Interrupted(Some(e.to_string()))), Some(e.to_string())),
            },
            _ => (Ok(PointOutcome::Interrupted(None)), None),
        },
        Err(RunError::Refused(m)) if m.starts_with(ALREADY) => (Ok(PointOutcome::Completed(None)), None),
        Err(e) => {
            let msg = e.to_string();
            (Err(e), Some(msg))
        }
    };
    state.state = match &outcome {
        Ok(PointOutcome::Completed(_)) => "completed",
        Ok(PointOutcome::Requeued(_)) => "requeued",
        Ok(PointOutcome::Interrupted(_)) => "interrupted",
        Err(_) => "failed",
    }
    .into();
    state.error = error;
    state.updated_at = s2s_run::clock::utc_now();
    dir.write_state(index, &state)?;
    outcome
}

const ALREADY: &str = "already completed: ";

/// Starts the point's run, or resumes it from its newest checkpoint.
fn train(
    dir: &SweepDir,
    point: &crate::folder::Point,
    config: &std::path::Path,
    hooks: SessionHooks,
) -> Result<Outcome> {
    let run = dir.run_dir(point);
    if run.path().exists() {
        if run.is_locked() {
            return Err(RunError::Refused(format!("{} is being trained by another process", run.path().display())));
        }
        if RunInfo::load(&run).is_ok_and(|i| i.status == "completed") {
            return Err(RunError::Refused(format!("{ALREADY}{}", run.path().display())));
        }
        if !numbered(&run).is_empty() {
            return session::resume(&run, None, &[], hooks);
        }
        // A start that ended before its first checkpoint left nothing to continue.
        std::fs::remove_dir_all(run.path()).map_err(io(run.path()))?;
    }
    let cfg = ExperimentConfig::load(config, &point.overrides)?;
    session::start_at(cfg, config, &run, hooks)
}

/// Whether `s2s sweep cancel` cancelled the submission that `task` (`<job>_<i>`) belongs to.
fn cancelled(dir: &SweepDir, task: &str) -> bool {
    let job = task.split('_').next().unwrap_or(task);
    dir.read_jobs().is_ok_and(|jobs| jobs.iter().any(|s| s.job_id == job && s.cancelled))
}
