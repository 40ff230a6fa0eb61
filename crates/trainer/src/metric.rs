//! What a task declares about its validation metrics: a name and a direction. Every place
//! that ranks values of a metric (best checkpoint, early stopping, sorting runs) asks the
//! declaration, never the name.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Smaller is better (a loss, a perplexity, a time).
    Lower,
    /// Larger is better (BLEU, chrF, accuracy, throughput).
    Higher,
}

impl Direction {
    /// Whether `candidate` is strictly better than `incumbent`.
    pub fn improves(self, candidate: f64, incumbent: f64) -> bool {
        match self {
            Self::Lower => candidate < incumbent,
            Self::Higher => candidate > incumbent,
        }
    }

    /// Orders two values best first.
    pub fn best_first(self, a: f64, b: f64) -> Ordering {
        match self {
            Self::Lower => a.total_cmp(&b),
            Self::Higher => b.total_cmp(&a),
        }
    }
}

/// A metric a task reports from [`crate::TrainStep::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSpec {
    pub name: &'static str,
    pub direction: Direction,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_rank_both_ways() {
        assert!(Direction::Lower.improves(1.0, 2.0));
        assert!(!Direction::Lower.improves(2.0, 2.0));
        assert!(Direction::Higher.improves(3.0, 2.0));
        let mut v = vec![1.0, 3.0, 2.0];
        v.sort_by(|a, b| Direction::Higher.best_first(*a, *b));
        assert_eq!(v, [3.0, 2.0, 1.0]);
        v.sort_by(|a, b| Direction::Lower.best_first(*a, *b));
        assert_eq!(v, [1.0, 2.0, 3.0]);
    }
}
