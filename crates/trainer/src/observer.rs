//! What the trainer reports while it runs. A run writes its metrics file and report
//! through observers, the CLI draws progress; tests record events in memory.

use serde::{Deserialize, Serialize};

use crate::checkpoint::CheckpointKind;
use crate::state::TrainerState;

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: usize,
    /// Mean training loss over the epoch, weighted by each batch's weight (target tokens).
    pub train_loss: f64,
    /// Learning rate of the epoch's last step.
    pub learning_rate: f64,
    /// Gradient norm of the last step (before clipping).
    pub grad_norm: f64,
    /// Seconds since training started (this session).
    pub elapsed_s: f64,
    /// Seconds spent in this epoch's training steps (validation excluded).
    pub epoch_s: f64,
    /// Target tokens trained per second in this epoch.
    pub tokens_per_s: f64,
    /// Validation metrics, empty when not validated this epoch.
    pub metrics: Vec<(String, f64)>,
    /// Whether the monitored metric reached a new best.
    pub improved: bool,
}

/// One optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepRecord {
    /// 0-based epoch and batch within it.
    pub epoch: usize,
    pub batch: usize,
    /// Optimizer steps taken so far, this one included (1-based).
    pub step: usize,
    pub loss: f64,
    pub learning_rate: f64,
    /// Before clipping.
    pub grad_norm: f64,
}

/// The end of a `fit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub epochs_done: usize,
    pub steps: usize,
    pub final_train_loss: f64,
    pub best: Option<(f64, usize)>,
    pub wall_s: f64,
    pub stopped_early: bool,
    /// Stopped on request (Ctrl-C / SIGTERM) with a checkpoint written.
    pub interrupted: bool,
}

pub trait Observer {
    fn on_start(&mut self, _first_epoch: usize, _total_epochs: usize) {}
    fn on_epoch_start(&mut self, _epoch: usize, _batches: usize) {}
    fn on_step(&mut self, _step: &StepRecord) {}
    /// Called after each epoch; an error stops training (e.g. metrics cannot be written).
    fn on_epoch(&mut self, _record: &EpochRecord) -> crate::Result<()> {
        Ok(())
    }
    /// Called after a checkpoint was written; an error stops training.
    fn on_checkpoint(&mut self, _kind: CheckpointKind, _state: &TrainerState) -> crate::Result<()> {
        Ok(())
    }
    fn on_end(&mut self, _summary: &Summary) {}
}

/// Several observers as one, each told of every event in order.
#[derive(Default)]
pub struct Observers<'a>(pub Vec<&'a mut dyn Observer>);

impl std::fmt::Debug for Observers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Observers({})", self.0.len())
    }
}

impl Observer for Observers<'_> {
    fn on_start(&mut self, first_epoch: usize, total_epochs: usize) {
        self.0.iter_mut().for_each(|o| o.on_start(first_epoch, total_epochs));
    }
    fn on_epoch_start(&mut self, epoch: usize, batches: usize) {
        self.0.iter_mut().for_each(|o| o.on_epoch_start(epoch, batches));
    }
    fn on_step(&mut self, step: &StepRecord) {
        self.0.iter_mut().for_each(|o| o.on_step(step));
    }
    fn on_epoch(&mut self, record: &EpochRecord) -> crate::Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_epoch(record))
    }
    fn on_checkpoint(&mut self, kind: CheckpointKind, state: &TrainerState) -> crate::Result<()> {
        self.0.iter_mut().try_for_each(|o| o.on_checkpoint(kind, state))
    }
    fn on_end(&mut self, summary: &Summary) {
        self.0.iter_mut().for_each(|o| o.on_end(summary));
    }
}

/// Keeps every epoch record; for tests.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    pub epochs: Vec<EpochRecord>,
    pub steps: usize,
    pub summary: Option<Summary>,
}

impl Observer for Recorder {
    fn on_step(&mut self, _step: &StepRecord) {
        self.steps += 1;
    }
    fn on_epoch(&mut self, record: &EpochRecord) -> crate::Result<()> {
        self.epochs.push(record.clone());
        Ok(())
    }
    fn on_end(&mut self, summary: &Summary) {
        self.summary = Some(summary.clone());
    }
}
