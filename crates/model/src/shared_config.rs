//! What every family's config shares: the decoding keys ([`DecodingConfig`]), the
//! values of `tie_embeddings`, and the sizes that come from the data.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// How translations are decoded, the same for every family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodingConfig {
    /// Longest translation produced when decoding; 0 means data.max_length.
    pub max_decode_length: usize,
    /// Beam width for translations (1 = greedy).
    pub beam_size: usize,
    /// Length normalisation exponent for beam search scores (0 = none).
    pub length_penalty: f64,
}

impl Default for DecodingConfig {
    fn default() -> Self {
        Self { max_decode_length: 0, beam_size: 1, length_penalty: 0.0 }
    }
}

impl DecodingConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |key, message: String| Err(ModelError::InvalidConfig { key, message });
        if self.beam_size == 0 {
            return bad("beam_size", "must be at least 1, got 0".into());
        }
        if !self.length_penalty.is_finite() || self.length_penalty < 0.0 {
            return bad("length_penalty", format!("must be >= 0, got {}", self.length_penalty));
        }
        Ok(())
    }

    /// The longest translation: `max_decode_length`, or else the data's `max_length`.
    pub fn max_steps(&self, dims: &ModelDims) -> usize {
        if self.max_decode_length > 0 {
            self.max_decode_length
        } else {
            dims.max_length
        }
    }

    /// This struct's keys.
    pub fn keys() -> &'static [&'static str] {
        crate::keys::field_names::<Self>()
    }
}

/// Checks that each `(key, value)` is at least 1 (layer counts, sizes).
pub fn check_at_least_one(keys: &[(&'static str, usize)]) -> Result<()> {
    match keys.iter().find(|(_, v)| *v == 0) {
        Some(&(key, _)) => Err(ModelError::InvalidConfig { key, message: "must be at least 1, got 0".into() }),
        None => Ok(()),
    }
}

/// Checks that each `(key, value)` is a probability in [0, 1) (dropouts).
pub fn check_dropouts(keys: &[(&'static str, f64)]) -> Result<()> {
    match keys.iter().find(|(_, p)| !(0.0..1.0).contains(p)) {
        Some(&(key, p)) => Err(ModelError::InvalidConfig { key, message: format!("must be in [0, 1), got {p}") }),
        None => Ok(()),
    }
}

/// Which embeddings share one matrix. In a config `false`/`true` read as `"none"`/`"decoder"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TieEmbeddings {
    #[default]
    None,
    /// The target embedding is the output layer's weight.
    Decoder,
    /// The source embedding too (needs `data.joint_vocab`).
    All,
}

impl TieEmbeddings {
    /// Whether the output layer reads the target embedding.
    pub fn decoder(self) -> bool {
        self != Self::None
    }
}

impl<'de> Deserialize<'de> for TieEmbeddings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TieEmbeddings;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"none\", \"decoder\", \"all\" or a boolean")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<Self::Value, E> {
                Ok(if v { TieEmbeddings::Decoder } else { TieEmbeddings::None })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                match v {
                    "none" => Ok(TieEmbeddings::None),
                    "decoder" => Ok(TieEmbeddings::Decoder),
                    "all" => Ok(TieEmbeddings::All),
                    other => Err(E::unknown_variant(other, &["none", "decoder", "all"])),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Sizes that come from the data, never typed by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDims {
    pub src_vocab: usize,
    pub tgt_vocab: usize,
    /// Longest source in tokens (EOS included); the location attention has one slot each.
    pub max_length: usize,
}

/// A model's parameter count, from its sizes alone ([`crate::Family::parameter_count`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParameterCount {
    pub total: u128,
    /// Parameters in vocabulary-sized tensors.
    pub vocabulary: u128,
}
