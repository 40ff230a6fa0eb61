//! The CLI's training observer: a progress bar (or plain lines when stdout is not a
//! terminal) and `metrics.csv`, one row per epoch, appended as training goes.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use s2s_trainer::{EpochRecord, Observer, Summary, TrainError};

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

#[derive(Debug)]
pub struct RunObserver {
    csv: File,
    bar: Option<ProgressBar>,
    total: usize,
    every: usize,
    pub history: Vec<EpochRecord>,
}

impl RunObserver {
    pub fn new(metrics_csv: &Path, total_epochs: usize) -> anyhow::Result<Self> {
        let exists = metrics_csv.exists();
        let mut csv = OpenOptions::new().create(true).append(true).open(metrics_csv)?;
        if !exists {
            writeln!(csv, "{}", COLUMNS.join(","))?;
        }
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::new(total_epochs as u64);
            let style =
                ProgressStyle::with_template("{bar:30} epoch {pos}/{len}  {msg}  [{elapsed_precise} < {eta_precise}]")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Ok(Self { csv, bar, total: total_epochs, every: (total_epochs / 20).max(1), history: Vec::new() })
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

impl Observer for RunObserver {
    fn on_start(&mut self, first_epoch: usize, _total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(first_epoch as u64);
        }
    }

    fn on_epoch(&mut self, r: &EpochRecord) -> s2s_trainer::Result<()> {
        writeln!(self.csv, "{}", Self::row(r)).map_err(|e| TrainError::Task(Box::new(e)))?;
        self.csv.flush().map_err(|e| TrainError::Task(Box::new(e)))?;
        let valid: String = r
            .metrics
            .iter()
            .filter(|(k, _)| k == "valid_loss" || k == "valid_bleu")
            .map(|(k, v)| format!("  {k} {v:.4}"))
            .collect();
        let msg = format!("loss {:.4}{valid}", r.train_loss);
        match &self.bar {
            Some(bar) => {
                bar.set_position(r.epoch as u64);
                bar.set_message(msg);
            }
            None => {
                if r.epoch.is_multiple_of(self.every) || r.epoch == self.total || r.epoch == 1 || !r.metrics.is_empty()
                {
                    println!(
                        "epoch {:>4}/{}  train_loss {:.4}{valid}  lr {:.3e}  {:.1}s",
                        r.epoch, self.total, r.train_loss, r.learning_rate, r.elapsed_s
                    );
                }
            }
        }
        self.history.push(r.clone());
        Ok(())
    }

    fn on_end(&mut self, _summary: &Summary) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
