//! Where a training run is, saved with every checkpoint so that a resume continues exactly.

use serde::{Deserialize, Serialize};

use crate::policy::Progress;

/// Where-we-are of a training run, saved with every checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainerState {
    pub epochs_done: usize,
    pub steps: usize,
    /// Batches of epoch `epochs_done` already trained (a mid-epoch checkpoint).
    pub batch_in_epoch: usize,
    /// The current epoch's running loss sum and weight, so a resumed epoch reports the same mean.
    pub epoch_loss_sum: f64,
    pub epoch_weight_sum: usize,
    /// Learning rate and gradient norm of the last step taken.
    pub last_lr: f64,
    pub last_grad_norm: f64,
    pub progress: Progress,
    pub stopped_early: bool,
    pub last_train_loss: Option<f64>,
}
