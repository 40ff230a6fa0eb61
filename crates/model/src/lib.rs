//! GRU encoder + attention decoder sequence-to-sequence model (candle).

pub mod attention;
pub mod config;
pub mod decoder;
pub mod dropout;
pub mod encoder;
pub mod error;
pub mod fused;
mod greedy;
pub mod gru;
pub mod params;
pub mod seq2seq;
#[cfg(test)]
#[allow(clippy::excessive_precision)]
mod testdata;
#[cfg(test)]
mod tests;

pub use config::{AttentionKind, ModelConfig, ModelDims};
pub use error::ModelError;
pub use params::ParamStore;
pub use seq2seq::{Hypothesis, Mode, Seq2Seq, TrainRngs};
