//! Sequence-to-sequence translation models (candle), one folder per family: [`gru`] (a
//! GRU encoder and an attention decoder) and [`transformer`]. A family owns its config
//! struct, its modules and its kernels; [`registry`] is the one place that lists the
//! families, [`family`] the seam every family implements, and the rest is shared:
//! parameters ([`params`]), the training step ([`training`]), decoding ([`decode`]), the
//! CPU kernels both use ([`kernels`]) and threads ([`parallel`]).
//!
//! Read first: [`family`], then [`registry`] and [`config`], then one family's `mod.rs`.

#[cfg(feature = "example-family")]
pub mod bag_of_words;
pub mod config;
pub mod decode;
pub mod dropout;
pub mod error;
pub mod export;
pub mod family;
pub mod gru;
pub mod kernels;
pub mod keys;
mod packed_copy;
pub mod parallel;
pub mod params;
pub mod registry;
pub mod shared_config;
pub mod training;
pub mod transformer;

pub use config::{build, parameter_count, ModelConfig};
pub use decode::{BeamSearch, Hypothesis, LayerHeads};
pub use error::ModelError;
pub use export::{Ct2Model, Ct2Options};
pub use family::{Family, ModelBase, TranslationModel};
pub use params::{ParamStore, Weights};
pub use registry::{Architecture, FamilyConfig};
pub use shared_config::{DecodingConfig, ModelDims, ParameterCount, TieEmbeddings};
pub use training::{Mode, StepOptions, TrainRngs};
