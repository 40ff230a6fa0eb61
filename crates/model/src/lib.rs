//! Sequence-to-sequence translation models (candle): the GRU encoder + attention decoder
//! family and the Transformer, each family behind [`TranslationModel`] and built by [`build`].

pub mod attention;
pub mod config;
pub mod decode;
pub mod decoder;
pub mod dropout;
pub mod encoder;
pub mod error;
pub mod family;
pub mod fused;
pub mod gru;
pub(crate) mod parallel;
pub mod params;
pub mod seq2seq;
#[cfg(test)]
#[allow(clippy::excessive_precision)]
mod testdata;
#[cfg(test)]
mod tests;
pub mod transformer;

pub use config::{Architecture, AttentionKind, ModelConfig, ModelDims, Norm, ParameterCount, Positions, TieEmbeddings};
pub use decode::{BeamSearch, Hypothesis, LayerHeads};
pub use error::ModelError;
pub use family::{build, parameter_count, TranslationModel};
pub use params::ParamStore;
pub use seq2seq::{Mode, Seq2Seq, TrainRngs};
pub use transformer::Transformer;
