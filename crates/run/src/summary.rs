//! What a run folder says about itself, for `list`, `compare`, `sweep` and the report:
//! status (with `stale` for a running run whose process is gone), metrics columns and the
//! headline results, each result knowing which way is better.

use std::path::{Path, PathBuf};

use s2s_trainer::Direction;

use crate::config::ExperimentConfig;
use crate::error::{Result, RunError};
use crate::metrics_csv::{read_metrics, MetricColumn};
use crate::run_dir::RunDir;
use crate::run_info::RunInfo;
use crate::task::direction_of;

/// A run folder, read.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub dir: RunDir,
    pub name: String,
    /// completed | running | interrupted | failed | stale | damaged | unknown
    pub status: String,
    /// Why the status is `damaged`: a file of the run that cannot be read.
    pub problem: Option<String>,
    pub info: Option<RunInfo>,
    pub epochs: usize,
    /// Column → (epoch, value) points from metrics.csv.
    pub metrics: Vec<MetricColumn>,
}

/// A headline result: its column name, which way is better, and how it is read.
#[derive(Debug, Clone, Copy)]
pub struct ResultColumn {
    pub name: &'static str,
    /// `None` for counts that rank nothing (epochs).
    pub direction: Option<Direction>,
}

/// The headline results of every run, in display order.
pub fn result_columns() -> Vec<ResultColumn> {
    let task = |metric: &str| direction_of(metric);
    vec![
        ResultColumn { name: "epochs", direction: None },
        ResultColumn { name: "train_loss", direction: Some(Direction::Lower) },
        ResultColumn { name: "best_train_loss", direction: Some(Direction::Lower) },
        ResultColumn { name: "valid_loss", direction: task("valid_loss") },
        ResultColumn { name: "best_valid_loss", direction: task("valid_loss") },
        ResultColumn { name: "valid_bleu", direction: task("valid_bleu") },
        ResultColumn { name: "best_valid_bleu", direction: task("valid_bleu") },
        ResultColumn { name: "valid_chrf", direction: task("valid_chrf") },
        ResultColumn { name: "best_valid_chrf", direction: task("valid_chrf") },
        ResultColumn { name: "wall_s", direction: Some(Direction::Lower) },
        ResultColumn { name: "tokens_per_s", direction: Some(Direction::Higher) },
    ]
}

impl RunSummary {
    /// Reads a run folder; `None` when it is not one.
    pub fn load(dir: &Path) -> Option<Self> {
        let run = RunDir::at(dir);
        if !run.is_run() {
            return None;
        }
        let info = RunInfo::load(&run);
        let metrics = read_metrics(&run.metrics_csv());
        let problem = match (&info, &metrics) {
            (Err(e), _) if run.run_json().exists() => Some(e.to_string()),
            (_, Err(e)) if run.metrics_csv().exists() => Some(e.to_string()),
            _ => None,
        };
        let (info, metrics) = (info.ok(), metrics.unwrap_or_default());
        let epochs = metrics.iter().find(|(k, _)| k == "train_loss").map_or(0, |(_, p)| p.len());
        let mut status = info.as_ref().map_or("unknown".to_string(), |i| i.status.clone());
        if status == "running" && !run.is_locked() {
            status = "stale".into();
        }
        if problem.is_some() {
            status = "damaged".into();
        }
        Some(Self { name: run.name(), dir: run, status, problem, info, epochs, metrics })
    }

    pub fn column(&self, name: &str) -> &[(f64, f64)] {
        self.metrics.iter().find(|(k, _)| k == name).map_or(&[], |(_, p)| p.as_slice())
    }

    pub fn last(&self, name: &str) -> Option<f64> {
        self.column(name).last().map(|p| p.1)
    }

    /// The best value of a metrics column, by the direction `direction`.
    pub fn best(&self, name: &str, direction: Direction) -> Option<f64> {
        self.column(name).iter().map(|p| p.1).filter(|v| !v.is_nan()).min_by(|a, b| direction.best_first(*a, *b))
    }

    /// The best of a column the task reports (by its own direction).
    pub fn best_of(&self, metric: &str) -> Option<f64> {
        direction_of(metric).and_then(|d| self.best(metric, d))
    }

    /// Each of [`result_columns`]; `None` where the run has no such figure.
    pub fn results(&self) -> Vec<(&'static str, Option<f64>)> {
        result_columns()
            .into_iter()
            .map(|c| {
                let value = match c.name {
                    "epochs" => Some(self.epochs as f64),
                    "wall_s" => {
                        self.info.as_ref().and_then(|i| i.final_metric("wall_s")).or_else(|| self.last("elapsed_s"))
                    }
                    name => match (name.strip_prefix("best_"), c.direction) {
                        (Some(col), Some(d)) => self.best(col, d),
                        _ => self.last(name),
                    },
                };
                (c.name, value)
            })
            .collect()
    }

    pub fn config(&self) -> Option<ExperimentConfig> {
        self.dir.read_config().ok()
    }
}

/// Comparison folders (`compare-<timestamp>`, see [`crate::compare`]) sit beside run
/// folders; run listings skip them.
pub const FOLDER_PREFIX: &str = "compare-";

/// Where commands look for a run named without its folder: `experiments/` under the
/// current directory (the configs' default `run.output_dir`).
pub const DEFAULT_RUNS_DIR: &str = "experiments";

/// The run folder `arg` names: a run folder itself, or else `latest` (the newest run under
/// `runs_dir`, by its start) or the unique run under `runs_dir` whose folder name starts
/// with `arg` (`base` for `experiments/base-20261207-011507`).
pub fn resolve_run(arg: &Path, runs_dir: &Path) -> Result<PathBuf> {
    if RunDir::at(arg).is_run() {
        return Ok(arg.to_path_buf());
    }
    let text = arg.to_string_lossy();
    let runs = find_runs(runs_dir);
    let not_found = |why: String| RunError::Refused(format!("{}: not a run folder, {why}", arg.display()));
    if text == "latest" {
        let started = |r: &&RunSummary| r.info.as_ref().map(|i| i.started_at.clone()).unwrap_or_default();
        return runs
            .iter()
            .max_by_key(|r| (started(r), r.name.clone()))
            .map(|r| r.dir.path().to_path_buf())
            .ok_or_else(|| not_found(format!("and there is no run in {}", runs_dir.display())));
    }
    let matching: Vec<&RunSummary> = runs.iter().filter(|r| r.name.starts_with(text.as_ref())).collect();
    match matching.as_slice() {
        [one] => Ok(one.dir.path().to_path_buf()),
        [] => Err(not_found(format!(
            "and no run in {} starts with it (`s2s list` shows them; `latest` is the newest)",
            runs_dir.display()
        ))),
        many => Err(not_found(format!(
            "and {} runs in {} start with it: {}",
            many.len(),
            runs_dir.display(),
            many.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A folder that groups runs without being one (a sweep folder) keeps them in this
/// subfolder.
pub const GROUPED_RUNS: &str = "runs";

/// Run folders under `dir`, by folder name: those directly in it and those grouped in the
/// folders in it (a sweep's; comparison folders excluded).
pub fn find_runs(dir: &Path) -> Vec<RunSummary> {
    let subfolders = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    for p in subfolders(dir) {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with(FOLDER_PREFIX) {
            continue;
        }
        let grouped = p.join(GROUPED_RUNS);
        if !RunDir::at(&p).is_run() && grouped.is_dir() {
            dirs.extend(subfolders(&grouped));
        } else {
            dirs.push(p);
        }
    }
    dirs.sort_by_key(|d| d.file_name().map(std::ffi::OsStr::to_os_string));
    dirs.iter().filter_map(|d| RunSummary::load(d)).collect()
}
