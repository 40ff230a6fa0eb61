//! `metrics.csv`: one row per epoch, appended as training goes (an observer), read back
//! for charts, summaries and comparisons, and cut back on resume.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use s2s_trainer::{EpochRecord, Observer, TrainError};

use crate::error::{damaged, io, Result};
use crate::run_dir::write_atomic;

/// The columns of `metrics.csv`; validation columns stay empty when not validated.
pub const COLUMNS: [&str; 12] = [
    "epoch",
    "step",
    "train_loss",
    "valid_loss",
    "valid_ppl",
    "valid_bleu",
    "valid_chrf",
    "learning_rate",
    "grad_norm",
    "epoch_s",
    "elapsed_s",
    "tokens_per_s",
];

/// One metrics column: its name and (epoch, value) points.
pub type MetricColumn = (String, Vec<(f64, f64)>);

/// Appends a row to `metrics.csv` at every epoch and keeps the records.
#[derive(Debug)]
pub struct MetricsCsv {
    csv: File,
    pub history: Vec<EpochRecord>,
}

impl MetricsCsv {
    /// Opens (or starts, with its header) the file.
    pub fn open(path: &Path) -> Result<Self> {
        let exists = path.exists();
        let mut csv = OpenOptions::new().create(true).append(true).open(path).map_err(io(path))?;
        if !exists {
            writeln!(csv, "{}", COLUMNS.join(",")).map_err(io(path))?;
        }
        Ok(Self { csv, history: Vec::new() })
    }

    fn row(r: &EpochRecord) -> String {
        let metric = |k: &str| r.metrics.iter().find(|(n, _)| n == k).map(|(_, v)| format!("{v}")).unwrap_or_default();
        [
            r.epoch.to_string(),
            r.step.to_string(),
            format!("{}", r.train_loss),
            metric("valid_loss"),
            metric("valid_ppl"),
            metric("valid_bleu"),
            metric("valid_chrf"),
            format!("{}", r.learning_rate),
            format!("{:.6}", r.grad_norm),
            format!("{:.3}", r.epoch_s),
            format!("{:.3}", r.elapsed_s),
            format!("{:.1}", r.tokens_per_s),
        ]
        .join(",")
    }
}

impl Observer for MetricsCsv {
    fn on_epoch(&mut self, r: &EpochRecord) -> s2s_trainer::Result<()> {
        writeln!(self.csv, "{}", Self::row(r)).map_err(TrainError::task)?;
        self.csv.flush().map_err(TrainError::task)?;
        self.history.push(r.clone());
        Ok(())
    }
}

/// Reads `metrics.csv` into (column name → points by epoch).
pub fn read_metrics(path: &Path) -> Result<Vec<MetricColumn>> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    if header.first() != Some(&"epoch") {
        return Err(damaged(path, "not a metrics file (its first column is not `epoch`)"));
    }
    let mut cols: Vec<MetricColumn> = header.iter().map(|h| (h.to_string(), Vec::new())).collect();
    let rows = text.lines().count().saturating_sub(1);
    for (i, line) in lines.enumerate() {
        let vals: Vec<&str> = line.split(',').collect();
        let Some(epoch) = vals.first().and_then(|v| v.parse::<f64>().ok()) else {
            // The last row cut short by a crash is skipped (a resume drops it); any other
            // is damage.
            if i + 1 == rows && !text.ends_with('\n') {
                continue;
            }
            return Err(damaged(path, format!("line {}: no epoch number", i + 2)));
        };
        for (i, v) in vals.iter().enumerate().skip(1) {
            if let (Some(col), Ok(x)) = (cols.get_mut(i), v.parse::<f64>()) {
                col.1.push((epoch, x));
            }
        }
    }
    Ok(cols)
}

/// Drops rows for epochs after `epochs_done` (and a row cut short by a crash): that work
/// was lost and a resumed session redoes it, identically.
pub fn truncate_after(path: &Path, epochs_done: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let mut kept = String::new();
    let columns = text.lines().next().map_or(0, |h| h.split(',').count());
    for (i, line) in text.lines().enumerate() {
        let epoch = line.split(',').next().and_then(|e| e.parse::<usize>().ok());
        let whole = line.split(',').count() == columns && text.contains(&format!("{line}\n"));
        if i == 0 || (whole && epoch.is_some_and(|e| e <= epochs_done)) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if kept != text {
        write_atomic(path, kept.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_truncate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.csv");
        let mut csv = MetricsCsv::open(&path).expect("open");
        for epoch in 1..=3 {
            let r = EpochRecord {
                epoch,
                step: epoch * 2,
                train_loss: 1.0 / epoch as f64,
                learning_rate: 0.1,
                grad_norm: 1.0,
                elapsed_s: 0.0,
                epoch_s: 0.0,
                tokens_per_s: 10.0,
                metrics: if epoch == 2 { vec![("valid_bleu".into(), 12.5)] } else { Vec::new() },
                improved: false,
            };
            csv.on_epoch(&r).expect("row");
        }
        drop(csv);
        std::fs::OpenOptions::new().append(true).open(&path).expect("open").write_all(b"4,8,0.2").expect("torn");
        let cols = read_metrics(&path).expect("read");
        let col = |n: &str| cols.iter().find(|(k, _)| k == n).expect("col").1.clone();
        assert_eq!(col("valid_bleu"), [(2.0, 12.5)]);
        truncate_after(&path, 2).expect("truncate");
        let cols = read_metrics(&path).expect("read");
        let col = |n: &str| cols.iter().find(|(k, _)| k == n).expect("col").1.clone();
        assert_eq!(col("train_loss"), [(1.0, 1.0), (2.0, 0.5)]);
    }
}
