//! Finding and summarising run folders for `list`, `compare` and `sweep`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::artifacts::read_metrics;
use crate::loaded_run::read_config;
use crate::run_dir::{RunInfo, RunLock};

/// What a run folder says about itself.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub name: String,
    /// completed | running | interrupted | failed | stale
    pub status: String,
    pub info: Option<RunInfo>,
    pub epochs: usize,
    /// Column → (epoch, value) points from metrics.csv.
    pub metrics: Vec<(String, Vec<(f64, f64)>)>,
}

impl RunSummary {
    pub fn load(dir: &Path) -> Option<Self> {
        let info = RunInfo::load(dir).ok();
        if info.is_none() && !dir.join("config.toml").exists() {
            return None;
        }
        let metrics = read_metrics(&dir.join("metrics.csv")).unwrap_or_default();
        let epochs = metrics.iter().find(|(k, _)| k == "train_loss").map_or(0, |(_, p)| p.len());
        let mut status = info.as_ref().map_or("unknown".to_string(), |i| i.status.clone());
        if status == "running" && !RunLock::is_held(dir) {
            status = "stale".into();
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Some(Self { dir: dir.to_path_buf(), name, status, info, epochs, metrics })
    }

    pub fn column(&self, name: &str) -> &[(f64, f64)] {
        self.metrics.iter().find(|(k, _)| k == name).map_or(&[], |(_, p)| p.as_slice())
    }

    pub fn last(&self, name: &str) -> Option<f64> {
        self.column(name).last().map(|p| p.1)
    }

    pub fn min(&self, name: &str) -> Option<f64> {
        self.column(name).iter().map(|p| p.1).reduce(f64::min)
    }

    pub fn max(&self, name: &str) -> Option<f64> {
        self.column(name).iter().map(|p| p.1).reduce(f64::max)
    }

    pub fn final_metric(&self, name: &str) -> Option<f64> {
        self.info.as_ref().and_then(|i| i.final_metrics.get(name)).and_then(serde_json::Value::as_f64)
    }

    /// The headline results, by column name; `None` where the run has no such figure.
    pub fn results(&self) -> Vec<(&'static str, Option<f64>)> {
        vec![
            ("epochs", Some(self.epochs as f64)),
            ("train_loss", self.last("train_loss")),
            ("best_train_loss", self.min("train_loss")),
            ("valid_loss", self.last("valid_loss")),
            ("best_valid_loss", self.min("valid_loss")),
            ("valid_bleu", self.last("valid_bleu")),
            ("best_valid_bleu", self.max("valid_bleu")),
            ("best_valid_chrf", self.max("valid_chrf")),
            ("wall_s", self.final_metric("wall_s").or_else(|| self.last("elapsed_s"))),
            ("tokens_per_s", self.last("tokens_per_s")),
        ]
    }

    pub fn config(&self) -> Option<crate::config::ExperimentConfig> {
        read_config(&self.dir).ok()
    }
}

/// Run folders directly under `dir`, oldest first (comparison folders excluded).
pub fn find_runs(dir: &Path) -> Vec<RunSummary> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("compare-")))
        .collect();
    dirs.sort();
    dirs.iter().filter_map(|d| RunSummary::load(d)).collect()
}

/// "3m", "2h", "5d" since an RFC 3339 UTC time written by `utc_now`.
pub fn age(started_at: &str) -> String {
    let parse = || -> Option<i64> {
        let (date, time) = started_at.trim_end_matches('Z').split_once('T')?;
        let d: Vec<i64> = date.split('-').filter_map(|x| x.parse().ok()).collect();
        let t: Vec<i64> = time.split(':').filter_map(|x| x.parse().ok()).collect();
        if d.len() != 3 || t.len() != 3 {
            return None;
        }
        // days_from_civil
        let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * m + 2) / 5 + d[2] - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2])
    };
    let Some(then) = parse() else { return "?".into() };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let s = (now - then).max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
