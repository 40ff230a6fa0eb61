//! `run.json`: what a run is and how it went.

use serde::{Deserialize, Serialize};

use crate::error::{damaged, Result, RunError};
use crate::run_dir::{write_atomic, RunDir};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub name: String,
    /// running | completed | interrupted | failed (`s2s list` shows a running run whose
    /// process is gone as stale)
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub seed: u64,
    pub device: String,
    pub program_version: String,
    pub config_file: String,
    pub pid: u32,
    pub parameters: ParameterCounts,
    pub data: DataInfo,
    pub final_metrics: serde_json::Map<String, serde_json::Value>,
    pub error: Option<String>,
    /// One entry per `run` / `resume` session, oldest first.
    #[serde(default)]
    pub sessions: Vec<Session>,
}

/// One training session of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Session {
    /// "run" or "resume"
    pub command: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub status: String,
    pub pid: u32,
    /// Epochs done when the session started (and the step within an epoch, if mid-epoch).
    pub from_epoch: usize,
    pub from_step: usize,
    pub to_epoch: Option<usize>,
    /// Config keys changed for this session: "key: old -> new".
    pub changes: Vec<String>,
    /// The Slurm task the session ran as (a sweep point's array task, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmTask>,
}

/// A session's Slurm task: which one, and how often Slurm had restarted it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlurmTask {
    /// `<array job>_<task>` (or the job id of a plain job).
    pub job: String,
    /// `SLURM_RESTART_COUNT`: 0 for the first run, 1 after the first requeue, ...
    pub restart_count: u32,
    /// `SLURMD_NODENAME`
    pub node: String,
}

impl SlurmTask {
    /// From Slurm's environment; `None` outside a Slurm job.
    pub fn of_this_process() -> Option<Self> {
        let (job, restart_count) = this_task()?;
        Some(Self { job, restart_count, node: std::env::var("SLURMD_NODENAME").unwrap_or_default() })
    }
}

/// This process's array task, from Slurm's environment: (`<array job>_<task>`, restarts).
pub fn this_task() -> Option<(String, u32)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let id = match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(a), Some(t)) => format!("{a}_{t}"),
        _ => var("SLURM_JOB_ID")?,
    };
    let restarts = var("SLURM_RESTART_COUNT").and_then(|r| r.parse().ok()).unwrap_or(0);
    Some((id, restarts))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ParameterCounts {
    pub total: usize,
    pub by_module: Vec<(String, usize)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DataInfo {
    pub fingerprint: String,
    pub files: Vec<(String, String)>,
    pub train_pairs: usize,
    pub valid_pairs: usize,
    pub test_pairs: usize,
    pub src_vocab: usize,
    pub tgt_vocab: usize,
    pub skipped_lines: usize,
    pub filtered_pairs: usize,
    /// "word" or "bpe", and the SHA-256 of the source and target tokenizer files
    /// (`tokenizer/` in the run folder); empty in runs made before subwords.
    #[serde(default)]
    pub tokenizer: String,
    #[serde(default)]
    pub tokenizer_sha256: Vec<String>,
}

impl DataInfo {
    pub fn of(c: &s2s_data::Corpus) -> Self {
        Self {
            fingerprint: c.fingerprint.sha256.clone(),
            files: c.fingerprint.files.iter().map(|f| (f.path.display().to_string(), f.sha256.clone())).collect(),
            train_pairs: c.train.len(),
            valid_pairs: c.valid.len(),
            test_pairs: c.test.len(),
            src_vocab: c.src_vocab().len(),
            tgt_vocab: c.tgt_vocab().len(),
            skipped_lines: c.skipped_lines,
            filtered_pairs: c.filtered_pairs,
            tokenizer: format!("{:?}", c.source.kind()).to_lowercase(),
            tokenizer_sha256: c.fingerprint.tokenizers.to_vec(),
        }
    }
}

impl RunInfo {
    pub fn save(&self, run: &RunDir) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| damaged(&run.run_json(), e))?;
        write_atomic(&run.run_json(), json.as_bytes())
    }

    pub fn load(run: &RunDir) -> Result<Self> {
        let p = run.run_json();
        let text = std::fs::read_to_string(&p)
            .map_err(|_| RunError::Refused(format!("{} is not a run folder (no run.json)", run.path().display())))?;
        serde_json::from_str(&text).map_err(|e| damaged(&p, format!("not a valid run.json: {e}")))
    }

    /// A final metric as a number.
    pub fn final_metric(&self, name: &str) -> Option<f64> {
        self.final_metrics.get(name).and_then(serde_json::Value::as_f64)
    }
}
