//! A small, model-agnostic training loop: optimizers, learning-rate schedules,
//! early stopping and checkpoint policies, progress through an [`Observer`].

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod metric;
pub mod observer;
pub mod optimizer;
pub mod policy;
pub mod schedule;
pub mod state;
pub mod trainer;

pub use checkpoint::{CheckpointKind, Checkpointer, NoCheckpoints};
pub use config::{OptimizerKind, Schedule, TrainConfig};
pub use error::{Result, TrainError};
pub use metric::{Direction, MetricSpec};
pub use observer::{EpochRecord, Observer, Observers, Recorder, StepRecord, Summary};
pub use optimizer::Optimizer;
pub use state::TrainerState;
pub use trainer::{TrainStep, Trainer};
