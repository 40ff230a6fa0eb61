//! Pure decisions taken after each validation: best checkpoint, early stopping, plateau.

use serde::{Deserialize, Serialize};

use crate::metric::Direction;

/// What the trainer remembers about the monitored metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Best value so far and the epoch (1-based) that reached it.
    pub best: Option<(f64, usize)>,
    /// Validations since the best one.
    pub bad_validations: usize,
    /// Learning-rate reductions made by the plateau schedule.
    pub plateau_reductions: usize,
    /// Validations since the last plateau reduction or improvement.
    pub plateau_wait: usize,
}

/// The outcome of one validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub improved: bool,
    pub stop: bool,
}

/// Updates `progress` with a new metric value and says whether it is the best so far
/// and whether training should stop. `patience = 0` never stops.
pub fn after_validation(
    progress: &mut Progress,
    value: f64,
    epoch: usize,
    direction: Direction,
    patience: usize,
    lr_patience: usize,
) -> Decision {
    let improved = match progress.best {
        None => value.is_finite(),
        Some((best, _)) => direction.improves(value, best),
    };
    if improved {
        progress.best = Some((value, epoch));
        progress.bad_validations = 0;
        progress.plateau_wait = 0;
    } else {
        progress.bad_validations += 1;
        progress.plateau_wait += 1;
        if lr_patience > 0 && progress.plateau_wait >= lr_patience {
            progress.plateau_reductions += 1;
            progress.plateau_wait = 0;
        }
    }
    Decision { improved, stop: patience > 0 && progress.bad_validations >= patience }
}

/// Which numbered checkpoints to keep: the newest `keep_last` plus `best`.
pub fn checkpoints_to_keep(existing: &[usize], best: Option<usize>, keep_last: usize) -> Vec<usize> {
    let mut sorted = existing.to_vec();
    sorted.sort_unstable();
    let mut keep: Vec<usize> = sorted.iter().rev().take(keep_last).copied().collect();
    if let Some(b) = best {
        if sorted.contains(&b) && !keep.contains(&b) {
            keep.push(b);
        }
    }
    keep.sort_unstable();
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_after_patience() {
        let mut p = Progress::default();
        assert!(after_validation(&mut p, 3.0, 1, Direction::Lower, 2, 0).improved);
        assert!(after_validation(&mut p, 2.5, 2, Direction::Lower, 2, 0).improved);
        let d = after_validation(&mut p, 2.6, 3, Direction::Lower, 2, 0);
        assert_eq!(d, Decision { improved: false, stop: false });
        let d = after_validation(&mut p, 2.7, 4, Direction::Lower, 2, 0);
        assert_eq!(d, Decision { improved: false, stop: true });
        assert_eq!(p.best, Some((2.5, 2)));
    }

    #[test]
    fn higher_is_better_and_plateau() {
        let mut p = Progress::default();
        after_validation(&mut p, 10.0, 1, Direction::Higher, 0, 1);
        assert!(after_validation(&mut p, 12.0, 2, Direction::Higher, 0, 1).improved);
        let d = after_validation(&mut p, 11.0, 3, Direction::Higher, 0, 1);
        assert!(!d.improved && !d.stop);
        assert_eq!(p.plateau_reductions, 1);
    }

    #[test]
    fn keep_last_k_plus_best() {
        assert_eq!(checkpoints_to_keep(&[1, 2, 3, 4, 5], Some(2), 2), vec![2, 4, 5]);
        assert_eq!(checkpoints_to_keep(&[5, 1, 3], None, 1), vec![5]);
        assert_eq!(checkpoints_to_keep(&[1, 2], Some(2), 3), vec![1, 2]);
    }
}
