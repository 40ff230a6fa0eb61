//! The `[train]` section of an experiment config.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::metric::MetricSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Adam with L2 weight decay added to the gradient (torch.optim.Adam).
    Adam,
    /// Adam with decoupled weight decay (torch.optim.AdamW).
    Adamw,
    /// SGD with optional momentum (torch.optim.SGD).
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    Constant,
    /// Multiply by `lr_gamma` every `lr_step_epochs` epochs.
    Step,
    /// Multiply by `lr_gamma` when the early-stopping metric has not improved for `lr_patience` validations.
    Plateau,
    /// The Transformer's (Vaswani et al., fairseq's `inverse_sqrt`): after the linear
    /// warmup, `learning_rate · sqrt(warmup_steps / step)`, step counted from 1.
    #[serde(rename = "inverse_sqrt")]
    InverseSqrt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub lr_schedule: Schedule,
    pub lr_step_epochs: usize,
    pub lr_gamma: f64,
    pub lr_patience: usize,
    /// Linear warmup from 0 over this many optimizer steps (0 = none), on top of the schedule.
    pub warmup_steps: usize,
    /// Clip the global gradient L2 norm to this value (0 = no clipping).
    pub clip_grad_norm: f64,
    /// Validate every N epochs (0 = never).
    pub validate_every: usize,
    /// Metric that decides `best` and early stopping: one the task declares
    /// ([`crate::TrainStep::metrics`]), which also says whether higher is better.
    pub early_stopping_metric: String,
    /// Stop after this many validations without improvement (0 = never stop early).
    pub early_stopping_patience: usize,
    /// Write a checkpoint every N epochs (0 = only at the end).
    pub checkpoint_every: usize,
    /// Also write a checkpoint every N optimizer steps, mid-epoch included (0 = off).
    pub checkpoint_every_steps: usize,
    /// How many of the newest checkpoints to keep (besides `best`).
    pub keep_checkpoints: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            optimizer: OptimizerKind::Adam,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            momentum: 0.0,
            weight_decay: 0.0,
            lr_schedule: Schedule::Constant,
            lr_step_epochs: 10,
            lr_gamma: 0.5,
            lr_patience: 2,
            warmup_steps: 0,
            clip_grad_norm: 0.0,
            validate_every: 1,
            early_stopping_metric: "valid_loss".into(),
            early_stopping_patience: 0,
            checkpoint_every: 0,
            checkpoint_every_steps: 0,
            keep_checkpoints: 2,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |key, message: String| Err(TrainError::InvalidConfig { key, message });
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", format!("must be a positive number, got {}", self.learning_rate));
        }
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1, got 0".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1, got 0".into());
        }
        for (key, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return bad(key, format!("must be in [0, 1), got {v}"));
            }
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return bad("epsilon", format!("must be positive, got {}", self.epsilon));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", format!("must be in [0, 1), got {}", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay", format!("must be >= 0, got {}", self.weight_decay));
        }
        if !(self.lr_gamma.is_finite() && self.lr_gamma > 0.0 && self.lr_gamma <= 1.0) {
            return bad("lr_gamma", format!("must be in (0, 1], got {}", self.lr_gamma));
        }
        if self.lr_schedule == Schedule::InverseSqrt && self.warmup_steps == 0 {
            return bad(
                "warmup_steps",
                "must be at least 1 with lr_schedule = \"inverse_sqrt\" (it decays from there)".into(),
            );
        }
        if self.lr_schedule == Schedule::Step && self.lr_step_epochs == 0 {
            return bad("lr_step_epochs", "must be at least 1 with lr_schedule = \"step\"".into());
        }
        if !(self.clip_grad_norm.is_finite() && self.clip_grad_norm >= 0.0) {
            return bad("clip_grad_norm", format!("must be >= 0, got {}", self.clip_grad_norm));
        }
        if self.keep_checkpoints == 0 {
            return bad("keep_checkpoints", "must be at least 1 (the newest checkpoint is what resume uses)".into());
        }
        Ok(())
    }

    /// Checks `early_stopping_metric` against the metrics a task declares and returns
    /// the declaration (with its direction).
    pub fn monitored(&self, declared: &[MetricSpec]) -> Result<MetricSpec> {
        declared.iter().find(|m| m.name == self.early_stopping_metric).copied().ok_or_else(|| {
            let names: Vec<&str> = declared.iter().map(|m| m.name).collect();
            TrainError::InvalidConfig {
                key: "early_stopping_metric",
                message: format!("unknown metric {:?}; choose one of {}", self.early_stopping_metric, names.join(", ")),
            }
        })
    }
}
