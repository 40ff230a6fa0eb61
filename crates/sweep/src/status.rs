//! Where each point of a sweep stands: its Slurm state (from `squeue`, else `sacct` where
//! the cluster keeps accounting), its run's status, epochs and best metric (from the run
//! folder), and the error line of a failed point. Works without Slurm too (a local sweep,
//! or a cluster that has forgotten the jobs): the run folders and point states say the rest.

use std::collections::HashMap;

use crate::folder::{Submission, SweepDir};
use crate::slurm;
use s2s_run::error::Result;
use s2s_run::summary::RunSummary;

/// One point, as `s2s sweep status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PointStatus {
    pub index: usize,
    pub label: String,
    /// The latest submission's job id for this point, `<job>_<index>`; `None` locally.
    pub job: Option<String>,
    /// `PENDING (BeginTime)`, `RUNNING`, `COMPLETED` (sacct), or `-` when Slurm no longer
    /// lists the task (or never had it).
    pub slurm: String,
    /// The run's status (completed, running, interrupted, failed, stale), else the point's
    /// (failed before its run folder existed), else `not started`.
    pub run: String,
    pub epochs: usize,
    /// `valid_bleu 31.20` or `valid_loss 1.2345`.
    pub best: Option<String>,
    /// Restarts of the run's last session (`SLURM_RESTART_COUNT`).
    pub restarts: u32,
    pub error: Option<String>,
}

impl PointStatus {
    /// Whether Slurm still has it (pending or running).
    pub fn queued(&self) -> bool {
        self.slurm.starts_with("PENDING") || self.slurm.starts_with("RUNNING") || self.slurm.starts_with("CONFIGURING")
    }
}

/// The latest submission holding each point.
fn latest(jobs: &[Submission]) -> HashMap<usize, &Submission> {
    let mut m = HashMap::new();
    for s in jobs {
        for &i in &s.points {
            m.insert(i, s);
        }
    }
    m
}

/// Every point's status; the second value is a warning when Slurm could not be asked.
pub fn status(dir: &SweepDir) -> Result<(Vec<PointStatus>, Option<String>)> {
    let points = dir.read_points()?;
    let jobs = dir.read_jobs()?;
    let latest = latest(&jobs);
    let mut ids: Vec<String> = latest.values().map(|s| s.job_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let (queue, warning) = match slurm::queue(&ids) {
        Ok(q) => (q, None),
        Err(e) => (HashMap::new(), Some(e.to_string())),
    };
    let accounting = if ids.is_empty() || warning.is_some() { HashMap::new() } else { slurm::accounting(&ids) };
    let mut out = Vec::new();
    for p in &points.points {
        let sub = latest.get(&p.index);
        let key = sub.map(|s| (s.job_id.clone(), p.index));
        let slurm = match key.as_ref() {
            None => "-".to_string(),
            Some(k) => match (queue.get(k), accounting.get(k)) {
                (Some(q), _) if q.reason.is_empty() || q.reason == "None" => q.state.clone(),
                (Some(q), _) => format!("{} ({})", q.state, q.reason),
                (None, Some(a)) => a.clone(),
                (None, None) if warning.is_some() => "?".into(),
                (None, None) => "-".into(),
            },
        };
        let state = dir.read_state(p.index).ok().flatten();
        let summary = RunSummary::load(dir.run_dir(p).path());
        let (run, epochs, best, restarts, mut error) = match &summary {
            Some(r) => {
                let best = match (r.best_of("valid_bleu"), r.best_of("valid_loss")) {
                    (Some(b), _) => Some(format!("valid_bleu {b:.2}")),
                    (None, Some(l)) => Some(format!("valid_loss {l:.4}")),
                    (None, None) => r.last("train_loss").map(|l| format!("train_loss {l:.4}")),
                };
                let info = r.info.as_ref();
                let restarts =
                    info.and_then(|i| i.sessions.last()).and_then(|s| s.slurm.as_ref()).map_or(0, |s| s.restart_count);
                let error = info.and_then(|i| i.error.clone()).filter(|_| r.status == "failed");
                (r.status.clone(), r.epochs, best, restarts, error)
            }
            None => {
                let run = state.as_ref().map_or("not started".to_string(), |s| match s.state.as_str() {
                    // Slurm no longer runs it, and it never wrote a run folder.
                    "running" if key.is_some() && !slurm.starts_with("RUNNING") => "lost".to_string(),
                    other => other.to_string(),
                });
                (run, 0, None, state.as_ref().map_or(0, |s| s.restarts), None)
            }
        };
        // A task that failed after its run ended well (a refused requeue, say) says so.
        if state.as_ref().is_some_and(|s| s.state == "failed") && !(run == "completed" && error.is_none()) {
            error = error.or_else(|| state.as_ref().and_then(|s| s.error.clone()));
            error = error.or_else(|| dir.last_error_line(p.index));
        }
        out.push(PointStatus {
            index: p.index,
            label: p.label.clone(),
            job: key.map(|(j, i)| format!("{j}_{i}")),
            slurm,
            run,
            epochs,
            best,
            restarts,
            error: error.map(|e| first_line(&e)),
        });
    }
    Ok((out, warning))
}

fn first_line(e: &str) -> String {
    let line = e.lines().next().unwrap_or("").trim();
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(159).collect::<String>())
    } else {
        line.to_string()
    }
}

/// `4 points: 3 completed, 1 failed`
pub fn tally(points: &[PointStatus]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for p in points {
        let key = if p.queued() && p.run != "running" { p.slurm.to_lowercase() } else { p.run.clone() };
        let key = key.split(' ').next().unwrap_or("").to_string();
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => counts.push((key, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!("{} points: {}", points.len(), parts.join(", "))
}

/// The points `s2s sweep resubmit` takes: not completed, and not pending or running.
pub fn to_resubmit(points: &[PointStatus]) -> Vec<usize> {
    points.iter().filter(|p| p.run != "completed" && !p.queued() && p.run != "running").map(|p| p.index).collect()
}
