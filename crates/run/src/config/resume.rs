//! Which config changes a resume may make: those that do not change what the trained
//! weights mean. A pure policy, tested without a run.

use super::{diff, ExperimentConfig};
use crate::error::ConfigError;

/// One key whose value differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub old: String,
    pub new: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.key, self.old, self.new)
    }
}

/// Keys (or, ending in '.', sections) that may change on resume.
const MAY_CHANGE: [&str; 9] = [
    "train.epochs",
    "train.early_stopping_patience",
    "train.checkpoint_every",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "train.validate_every",
    "report.",
    "run.threads",
    "run.device",
];

/// The changes from `old` to `new`, split into (allowed, refused).
pub fn resume_changes(
    old: &ExperimentConfig,
    new: &ExperimentConfig,
) -> Result<(Vec<Change>, Vec<Change>), ConfigError> {
    Ok(diff(old, new)?
        .into_iter()
        .partition(|c| MAY_CHANGE.iter().any(|p| c.key == *p || (p.ends_with('.') && c.key.starts_with(p)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_and_reports_may_change_the_model_may_not() {
        let old = ExperimentConfig::default().with_sets(&[]).expect("config");
        let mut new = old.with_sets(&["model.hidden_size=7".to_string()]).expect("config");
        new.train.epochs = 99;
        new.report.max_sentences += 1;
        new.task.teacher_forcing_ratio = 0.5;
        let (ok, refused) = resume_changes(&old, &new).expect("diff");
        let keys = |v: &[Change]| v.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&ok), ["report.max_sentences", "train.epochs"]);
        assert_eq!(keys(&refused), ["model.hidden_size", "train.teacher_forcing_ratio"]);
        assert_eq!(refused[0].to_string(), "model.hidden_size: 256 -> 7");
    }
}
