//! Learning-rate policy: pure functions of the step, epoch and plateau state.

use crate::config::{Schedule, TrainConfig};

/// The learning rate for optimizer step `step` (0-based) in epoch `epoch` (0-based),
/// given how many plateau reductions have happened so far.
pub fn learning_rate(cfg: &TrainConfig, step: usize, epoch: usize, plateau_reductions: usize) -> f64 {
    let decay = match cfg.lr_schedule {
        Schedule::Constant => 1.0,
        Schedule::Step => cfg.lr_gamma.powi((epoch / cfg.lr_step_epochs.max(1)) as i32),
        Schedule::Plateau => cfg.lr_gamma.powi(plateau_reductions as i32),
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

    #[test]
    fn plateau_uses_reductions() {
        let cfg =
            TrainConfig { learning_rate: 1.0, lr_schedule: Schedule::Plateau, lr_gamma: 0.1, ..Default::default() };
        assert_eq!(learning_rate(&cfg, 0, 0, 0), 1.0);
        assert!((learning_rate(&cfg, 0, 0, 2) - 0.01).abs() < 1e-12);
    }
}
