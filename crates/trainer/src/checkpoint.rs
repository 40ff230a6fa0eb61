//! What the trainer asks of whoever persists its checkpoints.

use crate::error::Result;
use crate::optimizer::Optimizer;
use crate::state::TrainerState;

/// Why a checkpoint is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// The newest state (every `checkpoint_every` epochs and at the end).
    Last,
    /// The best validation so far.
    Best,
}

/// Persists checkpoints of a task whose own state is `S`; a run writes them into its
/// folder, tests may keep them in memory or ignore them.
pub trait Checkpointer<S> {
    fn save(&mut self, kind: CheckpointKind, state: &TrainerState, optimizer: &Optimizer, task: &S) -> Result<()>;
}

/// A [`Checkpointer`] that writes nothing.
#[derive(Debug, Default)]
pub struct NoCheckpoints;

impl<S> Checkpointer<S> for NoCheckpoints {
    fn save(&mut self, _: CheckpointKind, _: &TrainerState, _: &Optimizer, _: &S) -> Result<()> {
        Ok(())
    }
}
