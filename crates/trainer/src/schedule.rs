//! Learning-rate policy: pure functions of the step, epoch and plateau state.

use crate::config::{Schedule, TrainConfig};

/// The learning rate for optimizer step `step` (0-based) in epoch `epoch` (0-based),
/// given how many plateau reductions have happened so far.
pub fn learning_rate(cfg: &TrainConfig, step: usize, epoch: usize, plateau_reductions: usize) -> f64 {
    let decay = match cfg.lr_schedule {
        Schedule::Constant => 1.0,
        Schedule::Step => cfg.lr_gamma.powi((epoch / cfg.lr_step_epochs.max(1)) as i32),
        Schedule::Plateau => cfg.lr_gamma.powi(plateau_reductions as i32),
        Schedule::InverseSqrt => {
            let warmup = cfg.warmup_steps.max(1) as f64;
            (warmup / ((step + 1) as f64).max(warmup)).sqrt()
        }
    };
    let warmup =
        if cfg.warmup_steps > 0 && step < cfg.warmup_steps { (step + 1) as f64 / cfg.warmup_steps as f64 } else { 1.0 };
    cfg.learning_rate * decay * warmup
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_step_and_warmup() {
        let cfg = TrainConfig { learning_rate: 0.1, ..Default::default() };
        assert_eq!(learning_rate(&cfg, 500, 7, 3), 0.1);
        let cfg = TrainConfig {
            learning_rate: 0.1,
            lr_schedule: Schedule::Step,
            lr_step_epochs: 2,
            lr_gamma: 0.5,
            ..Default::default()
        };
        assert_eq!(learning_rate(&cfg, 0, 1, 0), 0.1);
        assert_eq!(learning_rate(&cfg, 0, 2, 0), 0.05);
        assert_eq!(learning_rate(&cfg, 0, 5, 0), 0.025);
        let cfg = TrainConfig { learning_rate: 0.1, warmup_steps: 4, ..Default::default() };
        assert_eq!(learning_rate(&cfg, 0, 0, 0), 0.025);
        assert_eq!(learning_rate(&cfg, 3, 0, 0), 0.1);
        assert_eq!(learning_rate(&cfg, 10, 0, 0), 0.1);
    }

    /// fairseq's inverse_sqrt with `warmup_init_lr = 0`: linear up to `lr` at step
    /// `warmup`, then `lr · sqrt(warmup / step)` (steps counted from 1).
    #[test]
    fn inverse_sqrt_warms_up_then_decays() {
        let cfg = TrainConfig {
            learning_rate: 0.001,
            lr_schedule: Schedule::InverseSqrt,
            warmup_steps: 100,
            ..Default::default()
        };
        let lr = |step| learning_rate(&cfg, step, 0, 0);
        assert!((lr(0) - 0.001 / 100.0).abs() < 1e-15);
        assert!((lr(49) - 0.0005).abs() < 1e-15);
        assert!((lr(99) - 0.001).abs() < 1e-15);
        assert!((lr(399) - 0.0005).abs() < 1e-15, "four times the warmup: half the rate");
        assert!((lr(9_999) - 0.0001).abs() < 1e-15);
        assert!(lr(1_000) < lr(999));
    }

    #[test]
    fn plateau_uses_reductions() {
        let cfg =
            TrainConfig { learning_rate: 1.0, lr_schedule: Schedule::Plateau, lr_gamma: 0.1, ..Default::default() };
        assert_eq!(learning_rate(&cfg, 0, 0, 0), 1.0);
        assert!((learning_rate(&cfg, 0, 0, 2) - 0.01).abs() < 1e-12);
    }
}
