//! The Transformer family's `[model]` keys (`architecture = "transformer"`).

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::export::Ct2Model;
use crate::family::{Family, TranslationModel};
use crate::params::{ParamStore, Weights};
use crate::shared_config::{
    check_at_least_one, check_dropouts, DecodingConfig, ModelDims, ParameterCount, TieEmbeddings,
};

/// Where a Transformer layer normalises: before each sublayer (`norm_first`) or after
/// the residual sum (the original paper's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    #[default]
    Pre,
    Post,
}

/// How a Transformer knows token positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Positions {
    /// Fixed sines and cosines (Vaswani et al.), any length.
    #[default]
    Sinusoidal,
    /// A learned embedding per position, up to the longest source or translation.
    Learned,
}

/// An encoder-decoder Transformer (`torch.nn.Transformer`'s layers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformerConfig {
    /// d_model: the width of every layer.
    pub hidden_size: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Decoder layers (0 = as many as encoder_layers).
    pub decoder_layers: usize,
    /// Attention heads of every attention (hidden_size must divide by it).
    pub heads: usize,
    /// Width of the feed-forward sublayers (0 = 4 × hidden_size).
    pub ff_size: usize,
    /// Dropout on the attention weights.
    pub attention_dropout: f64,
    /// Dropout after the feed-forward activation (ReLU).
    pub activation_dropout: f64,
    /// Layer normalisation before ("pre", `norm_first`) or after ("post") each sublayer.
    pub norm: Norm,
    /// Positions: "sinusoidal" or "learned".
    pub positions: Positions,
    /// Dropout on the embeddings and every sublayer's output.
    pub dropout: f64,
    /// "decoder": the target embedding is the output layer's weight; "all": the source
    /// embedding too (needs `data.joint_vocab`); "none".
    pub tie_embeddings: TieEmbeddings,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        Self {
            hidden_size: 256,
            encoder_layers: 1,
            decoder_layers: 0,
            heads: 4,
            ff_size: 0,
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            norm: Norm::Pre,
            positions: Positions::Sinusoidal,
            dropout: 0.1,
            tie_embeddings: TieEmbeddings::None,
        }
    }
}

impl TransformerConfig {
    /// Decoder layers, `decoder_layers` or else `encoder_layers`.
    pub fn decoder_layer_count(&self) -> usize {
        if self.decoder_layers == 0 {
            self.encoder_layers
        } else {
            self.decoder_layers
        }
    }

    /// The feed-forward width, `ff_size` or else 4 × hidden_size.
    pub fn ff_dim(&self) -> usize {
        if self.ff_size == 0 {
            4 * self.hidden_size
        } else {
            self.ff_size
        }
    }

    /// Rows of the position tables: the longest source or translation.
    pub(crate) fn position_slots(decoding: &DecodingConfig, dims: &ModelDims) -> usize {
        dims.max_length.max(decoding.max_decode_length).max(1)
    }
}

impl Family for TransformerConfig {
    fn validate(&self) -> Result<()> {
        let bad = |key, message: String| Err(ModelError::InvalidConfig { key, message });
        check_at_least_one(&[
            ("hidden_size", self.hidden_size),
            ("encoder_layers", self.encoder_layers),
            ("heads", self.heads),
        ])?;
        check_dropouts(&[
            ("dropout", self.dropout),
            ("attention_dropout", self.attention_dropout),
            ("activation_dropout", self.activation_dropout),
        ])?;
        if !self.hidden_size.is_multiple_of(self.heads) {
            return bad("heads", format!("hidden_size {} is not divisible by heads {}", self.hidden_size, self.heads));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "Transformer, {}+{} layers, {} heads, d_model {}, ff {}, {}-norm, {} positions, dropout {} (attention {}, activation {}), tied embeddings: {}",
            self.encoder_layers,
            self.decoder_layer_count(),
            self.heads,
            self.hidden_size,
            self.ff_dim(),
            format!("{:?}", self.norm).to_lowercase(),
            format!("{:?}", self.positions).to_lowercase(),
            self.dropout,
            self.attention_dropout,
            self.activation_dropout,
            format!("{:?}", self.tie_embeddings).to_lowercase()
        )
    }

    fn logged_keys(&self) -> &'static [&'static str] {
        &["heads", "hidden_size"]
    }

    fn parameter_count(&self, decoding: &DecodingConfig, dims: &ModelDims) -> ParameterCount {
        let (d, f) = (self.hidden_size as u128, self.ff_dim() as u128);
        let (src, tgt) = (dims.src_vocab as u128, dims.tgt_vocab as u128);
        let attention = 4 * d * d + 4 * d;
        let ff = 2 * d * f + f + d;
        let encoder = self.encoder_layers as u128 * (attention + ff + 4 * d) + 2 * d;
        let decoder = self.decoder_layer_count() as u128 * (2 * attention + ff + 6 * d) + 2 * d;
        let positions =
            if self.positions == Positions::Learned { 2 * Self::position_slots(decoding, dims) as u128 * d } else { 0 };
        let vocabulary = tgt * d
            + if self.tie_embeddings == TieEmbeddings::All { 0 } else { src * d }
            + if self.tie_embeddings.decoder() { 0 } else { tgt * d };
        ParameterCount { total: vocabulary + positions + encoder + decoder, vocabulary }
    }

    fn width_key(&self) -> (&'static str, usize) {
        ("hidden_size", self.hidden_size)
    }

    fn shared_embedding_setting(&self) -> Option<&'static str> {
        (self.tie_embeddings == TieEmbeddings::All).then_some("tie_embeddings = \"all\"")
    }

    fn can_run_free(&self) -> bool {
        false
    }

    fn build(
        &self,
        decoding: &DecodingConfig,
        dims: ModelDims,
        weights: Weights,
        device: &Device,
    ) -> Result<Box<dyn TranslationModel>> {
        Ok(Box::new(super::Transformer::new(self, decoding, dims, weights, device)?))
    }

    fn ctranslate2(&self, params: &ParamStore, decoding: &DecodingConfig, dims: &ModelDims) -> Result<Ct2Model> {
        self.ctranslate2_model(params, decoding, dims)
    }
}
