//! A small, model-agnostic training loop: optimizers, learning-rate schedules,
//! early stopping and checkpoint policies, progress through an [`Observer`].

pub mod config;
pub mod error;
pub mod metric;
pub mod observer;
pub mod optimizer;
pub mod policy;
pub mod schedule;
pub mod trainer;

pub use config::{OptimizerKind, Schedule, TrainConfig};
pub use error::{Result, TrainError};
pub use metric::{Direction, MetricSpec};
pub use observer::{EpochRecord, Observer, Observers, Recorder, Summary};
pub use optimizer::Optimizer;
pub use trainer::{CheckpointKind, Checkpointer, NoCheckpoints, TrainStep, Trainer, TrainerState};
