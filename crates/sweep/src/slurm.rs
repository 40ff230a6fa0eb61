//! Talking to Slurm through its commands (`sbatch`, `squeue`, `sacct`, `scancel`,
//! `scontrol`), each failure one line that quotes the command's own message.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use s2s_run::error::{Result, RunError};

fn run(program: &str, args: &[String]) -> Result<Output> {
    Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RunError::Refused(format!("launcher = \"slurm\" needs Slurm's `{program}`, which is not on PATH"))
        } else {
            RunError::Refused(format!("cannot run {program}: {e}"))
        }
    })
}

/// A command's stderr (or stdout) as one line.
fn message(out: &Output) -> String {
    let text = String::from_utf8_lossy(if out.stderr.is_empty() { &out.stdout } else { &out.stderr }).into_owned();
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        format!("exit status {}", out.status)
    } else {
        line
    }
}

/// Checks that `sbatch` can be run (before anything is written).
pub fn check_available() -> Result<()> {
    let out = run("sbatch", &["--version".to_string()])?;
    if !out.status.success() {
        return Err(RunError::Refused(format!("sbatch --version failed: {}", message(&out))));
    }
    Ok(())
}

/// Submits `script` with `sbatch --parsable [args]`; the job id.
pub fn submit(script: &Path, args: &[String]) -> Result<(String, Vec<String>)> {
    let mut argv = vec!["--parsable".to_string()];
    argv.extend(args.iter().cloned());
    argv.push(script.display().to_string());
    let out = run("sbatch", &argv)?;
    if !out.status.success() {
        return Err(RunError::Refused(format!("sbatch refused the sweep: {}", message(&out))));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `<id>` or `<id>;<cluster>`.
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(RunError::Refused(format!("sbatch printed no job id: {:?}", text.trim())));
    }
    let mut command = vec!["sbatch".to_string()];
    command.extend(argv);
    Ok((id, command))
}

/// A task's state in the queue: `PENDING`, `RUNNING`, ... and squeue's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    pub state: String,
    pub reason: String,
}

/// `(array job id, task index)` → state, for the given array jobs, from `squeue` (tasks
/// that left the queue are absent).
pub fn queue(job_ids: &[String]) -> Result<HashMap<(String, usize), QueueState>> {
    if job_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let args = ["-h", "-r", "-o", "%F|%K|%T|%r", "-j", &job_ids.join(",")].map(String::from);
    let out = run("squeue", &args)?;
    // squeue refuses the whole query when one id has been purged from its memory; ask
    // for everything then.
    let out = if out.status.success() { out } else { run("squeue", &args[..4])? };
    if !out.status.success() {
        return Err(RunError::Refused(format!("squeue failed: {}", message(&out))));
    }
    Ok(parse_queue(&String::from_utf8_lossy(&out.stdout), job_ids))
}

fn parse_queue(text: &str, job_ids: &[String]) -> HashMap<(String, usize), QueueState> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        let [job, task, state, reason] = f[..] else { continue };
        if !job_ids.iter().any(|j| j == job) {
            continue;
        }
        if let Ok(task) = task.parse::<usize>() {
            map.insert((job.to_string(), task), QueueState { state: state.into(), reason: reason.into() });
        }
    }
    map
}

/// Final states from `sacct` (`COMPLETED`, `FAILED`, `CANCELLED`, ...), when the cluster
/// keeps accounting; empty when it does not ("accounting storage is disabled").
pub fn accounting(job_ids: &[String]) -> HashMap<(String, usize), String> {
    if job_ids.is_empty() {
        return HashMap::new();
    }
    let args = ["-n", "-P", "-X", "-o", "JobID,State", "-j", &job_ids.join(",")].map(String::from);
    let Ok(out) = run("sacct", &args) else { return HashMap::new() };
    if !out.status.success() {
        return HashMap::new();
    }
    let mut map = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((id, state)) = line.split_once('|') else { continue };
        let Some((job, task)) = id.split_once('_') else { continue };
        if let Ok(task) = task.parse::<usize>() {
            // `CANCELLED by 0` → `CANCELLED`
            let state = state.split_whitespace().next().unwrap_or("").to_string();
            map.insert((job.to_string(), task), state);
        }
    }
    map
}

/// `scancel` the jobs.
pub fn cancel(job_ids: &[String]) -> Result<()> {
    if job_ids.is_empty() {
        return Ok(());
    }
    let out = run("scancel", job_ids)?;
    if !out.status.success() {
        return Err(RunError::Refused(format!("scancel failed: {}", message(&out))));
    }
    Ok(())
}

pub use s2s_run::run_info::this_task;

/// `scontrol requeue` of this process's own array task.
pub fn requeue(task: &str) -> Result<()> {
    let out = run("scontrol", &["requeue".to_string(), task.to_string()])?;
    if !out.status.success() {
        return Err(RunError::Refused(format!("scontrol requeue {task} failed: {}", message(&out))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_are_read_per_array_task() {
        let text = "7|0|RUNNING|None\n7|1|PENDING|BeginTime\n8|N/A|RUNNING|None\n9|0|PENDING|Priority\n";
        let q = parse_queue(text, &["7".into(), "8".into()]);
        assert_eq!(q.len(), 2);
        assert_eq!(q[&("7".into(), 1)], QueueState { state: "PENDING".into(), reason: "BeginTime".into() });
        assert!(!q.contains_key(&("9".into(), 0)));
    }
}
