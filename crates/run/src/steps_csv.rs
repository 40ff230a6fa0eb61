//! `steps.csv`: the training loss every `report.loss_every` optimizer steps (the mean over
//! those steps), so that a run of few epochs still draws a loss curve (the notebook plots
//! every few iterations). Appended as training goes (an observer) and cut back on resume.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use s2s_trainer::{Observer, StepRecord, TrainError};

use crate::error::{damaged, io, Result};
use crate::run_dir::write_atomic;

/// The header of `steps.csv`.
pub const HEADER: &str = "step,epoch,train_loss,learning_rate";

/// Appends the mean loss of every `every` steps to `steps.csv`.
#[derive(Debug)]
pub struct StepsCsv {
    csv: Option<File>,
    every: usize,
    sum: f64,
    count: usize,
}

impl StepsCsv {
    /// Opens (or starts, with its header) the file; `every == 0` logs nothing. A resumed
    /// session starts mid-window: its first row comes at the first full window (the
    /// losses before the resume are not in the checkpoint), so a resumed steps.csv may
    /// lack one row that an uninterrupted run has, but never holds a different value.
    pub fn open(path: &Path, every: usize) -> Result<Self> {
        if every == 0 {
            return Ok(Self { csv: None, every, sum: 0.0, count: 0 });
        }
        let exists = path.exists();
        let mut csv = OpenOptions::new().create(true).append(true).open(path).map_err(io(path))?;
        if !exists {
            writeln!(csv, "{HEADER}").map_err(io(path))?;
        }
        Ok(Self { csv: Some(csv), every, sum: 0.0, count: 0 })
    }
}

impl Observer for StepsCsv {
    fn on_step(&mut self, s: &StepRecord) {
        let Some(csv) = &mut self.csv else { return };
        self.sum += s.loss;
        self.count += 1;
        if s.step.is_multiple_of(self.every) {
            if self.count == self.every {
                let mean = self.sum / self.count as f64;
                // A failed write loses a point of a chart, never training: it is said once.
                if let Err(e) = writeln!(csv, "{},{},{mean},{}", s.step, s.epoch + 1, s.learning_rate) {
                    eprintln!("warning: steps.csv: {e}; the loss by step is no longer logged");
                    self.csv = None;
                }
            }
            (self.sum, self.count) = (0.0, 0);
        }
    }

    fn on_epoch(&mut self, _record: &s2s_trainer::EpochRecord) -> s2s_trainer::Result<()> {
        match &mut self.csv {
            Some(csv) => csv.flush().map_err(TrainError::task),
            None => Ok(()),
        }
    }
}

/// (step, mean training loss) points of `steps.csv`; empty when the run has none.
pub fn read_step_losses(path: &Path) -> Result<Vec<(f64, f64)>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(Vec::new()) };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(damaged(path, format!("not a steps file (its header is not `{HEADER}`)")));
    }
    let mut points = Vec::new();
    for line in lines {
        let mut cols = line.split(',');
        let (Some(step), Some(_), Some(loss)) = (cols.next(), cols.next(), cols.next()) else { continue };
        if let (Ok(step), Ok(loss)) = (step.parse::<f64>(), loss.parse::<f64>()) {
            points.push((step, loss));
        }
    }
    Ok(points)
}

/// Drops rows after step `steps` (and a row cut short by a crash): a resumed session
/// redoes those steps.
pub fn truncate_after_step(path: &Path, steps: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let mut kept = String::new();
    for (i, line) in text.lines().enumerate() {
        let step = line.split(',').next().and_then(|s| s.parse::<usize>().ok());
        let whole = line.split(',').count() == 4 && text.contains(&format!("{line}\n"));
        if i == 0 || (whole && step.is_some_and(|s| s <= steps)) {
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

    fn step(step: usize, loss: f64) -> StepRecord {
        StepRecord { epoch: (step - 1) / 4, batch: (step - 1) % 4, step, loss, learning_rate: 0.1, grad_norm: 1.0 }
    }

    #[test]
    fn logs_window_means_and_truncates_on_resume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("steps.csv");
        let mut log = StepsCsv::open(&path, 2).expect("open");
        for s in 1..=6 {
            log.on_step(&step(s, s as f64));
        }
        drop(log);
        assert_eq!(read_step_losses(&path).expect("read"), [(2.0, 1.5), (4.0, 3.5), (6.0, 5.5)]);
        truncate_after_step(&path, 4).expect("truncate");
        assert_eq!(read_step_losses(&path).expect("read"), [(2.0, 1.5), (4.0, 3.5)]);
        // A session resumed at step 5 skips the partial window (5, 6] and logs (6, 8].
        let mut log = StepsCsv::open(&path, 2).expect("open");
        for s in 6..=8 {
            log.on_step(&step(s, s as f64));
        }
        drop(log);
        assert_eq!(read_step_losses(&path).expect("read"), [(2.0, 1.5), (4.0, 3.5), (8.0, 7.5)]);
    }

    #[test]
    fn zero_logs_nothing_and_a_missing_file_reads_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("steps.csv");
        let mut log = StepsCsv::open(&path, 0).expect("open");
        log.on_step(&step(1, 1.0));
        assert!(!path.exists());
        assert!(read_step_losses(&path).expect("read").is_empty());
        std::fs::write(&path, "epoch,x\n").expect("write");
        assert!(read_step_losses(&path).is_err());
    }
}
