//! The `[model]` section of an experiment config.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// How the decoder scores encoder positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKind {
    /// The old PyTorch notebook's: Linear(embedded + hidden -> max_length), one score per slot.
    Location,
    /// Additive: v · tanh(W q + U k).
    Bahdanau,
    /// Multiplicative: q · k.
    LuongDot,
    /// Multiplicative with a learned matrix: q · W k.
    LuongGeneral,
}

/// Which model family a run trains; each lives behind [`crate::TranslationModel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// GRU encoder + attention decoder ([`crate::Seq2Seq`]).
    #[default]
    Gru,
    /// Encoder-decoder Transformer ([`crate::Transformer`]).
    Transformer,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gru => "gru",
            Self::Transformer => "transformer",
        }
    }
}

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

/// `[model]` keys only the GRU family reads.
pub const GRU_KEYS: [&str; 6] =
    ["attention", "embedding_size", "bidirectional", "bridge", "input_feeding", "hidden_dropout"];
/// `[model]` keys only the Transformer family reads.
pub const TRANSFORMER_KEYS: [&str; 7] =
    ["decoder_layers", "heads", "ff_size", "attention_dropout", "activation_dropout", "norm", "positions"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// The model family.
    pub architecture: Architecture,
    pub attention: AttentionKind,
    /// GRU hidden size of the encoder and the decoder; the Transformer's d_model.
    pub hidden_size: usize,
    /// Word embedding size; 0 means the same as hidden_size.
    pub embedding_size: usize,
    /// Stacked GRU or Transformer layers in the encoder.
    pub encoder_layers: usize,
    /// Transformer decoder layers (0 = as many as encoder_layers).
    pub decoder_layers: usize,
    /// Attention heads of every Transformer attention (hidden_size must divide by it).
    pub heads: usize,
    /// Width of the Transformer's feed-forward sublayers (0 = 4 × hidden_size).
    pub ff_size: usize,
    /// Dropout on the Transformer's attention weights.
    pub attention_dropout: f64,
    /// Dropout after the feed-forward activation (ReLU).
    pub activation_dropout: f64,
    /// Transformer layer normalisation before ("pre", `norm_first`) or after ("post") each sublayer.
    pub norm: Norm,
    /// Transformer positions: "sinusoidal" or "learned".
    pub positions: Positions,
    /// Run the encoder in both directions (their outputs are summed).
    pub bidirectional: bool,
    /// Dropout probability on embeddings and between encoder layers (GRU); on
    /// embeddings and every sublayer's output (Transformer).
    pub dropout: f64,
    /// Longest translation produced when decoding; 0 means data.max_length.
    pub max_decode_length: usize,
    /// Beam width for translations (1 = greedy).
    pub beam_size: usize,
    /// Length normalisation exponent for beam search scores (0 = none).
    pub length_penalty: f64,
    /// The decoder's initial state is `tanh(Linear(encoder final state))` (both directions'
    /// states joined when bidirectional) instead of the encoder's final state itself.
    pub bridge: bool,
    /// Luong's input feeding: the decoder emits an attentional vector
    /// `tanh(Linear([h; context]))` and the previous one joins the next step's input.
    pub input_feeding: bool,
    /// "decoder": the target embedding is the output layer's weight (needs
    /// embedding_size = hidden_size); "all": the source embedding too; "none".
    pub tie_embeddings: TieEmbeddings,
    /// Dropout on the vector the output layer reads (the attentional vector with input
    /// feeding, the decoder state without).
    pub hidden_dropout: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            architecture: Architecture::Gru,
            attention: AttentionKind::Bahdanau,
            hidden_size: 256,
            embedding_size: 0,
            encoder_layers: 1,
            decoder_layers: 0,
            heads: 4,
            ff_size: 0,
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            norm: Norm::Pre,
            positions: Positions::Sinusoidal,
            bidirectional: false,
            dropout: 0.1,
            max_decode_length: 0,
            beam_size: 1,
            length_penalty: 0.0,
            bridge: false,
            input_feeding: false,
            tie_embeddings: TieEmbeddings::None,
            hidden_dropout: 0.0,
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |key, message: String| Err(ModelError::InvalidConfig { key, message });
        if self.hidden_size == 0 {
            return bad("hidden_size", "must be at least 1, got 0".into());
        }
        if self.encoder_layers == 0 {
            return bad("encoder_layers", "must be at least 1, got 0".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", format!("must be in [0, 1), got {}", self.dropout));
        }
        if self.beam_size == 0 {
            return bad("beam_size", "must be at least 1, got 0".into());
        }
        if !self.length_penalty.is_finite() || self.length_penalty < 0.0 {
            return bad("length_penalty", format!("must be >= 0, got {}", self.length_penalty));
        }
        if !(0.0..1.0).contains(&self.hidden_dropout) {
            return bad("hidden_dropout", format!("must be in [0, 1), got {}", self.hidden_dropout));
        }
        for (key, p) in [("attention_dropout", self.attention_dropout), ("activation_dropout", self.activation_dropout)]
        {
            if !(0.0..1.0).contains(&p) {
                return bad(key, format!("must be in [0, 1), got {p}"));
            }
        }
        if self.architecture == Architecture::Transformer {
            if self.heads == 0 {
                return bad("heads", "must be at least 1, got 0".into());
            }
            if !self.hidden_size.is_multiple_of(self.heads) {
                return bad(
                    "heads",
                    format!("hidden_size {} is not divisible by heads {}", self.hidden_size, self.heads),
                );
            }
            return Ok(());
        }
        if self.tie_embeddings == TieEmbeddings::All {
            return bad(
                "tie_embeddings",
                "\"all\" (the source embedding too) is the transformer's; the gru family ties \"decoder\" or \"none\""
                    .into(),
            );
        }
        if self.tie_embeddings.decoder() && self.embedding_dim() != self.hidden_size {
            return bad(
                "tie_embeddings",
                format!(
                    "needs embedding_size = hidden_size (the output layer reads {} values, the embedding has {})",
                    self.hidden_size,
                    self.embedding_dim()
                ),
            );
        }
        if self.input_feeding && self.attention == AttentionKind::Location {
            return bad(
                "input_feeding",
                "works with the bahdanau and luong attentions, not location (its decoder has no context input)".into(),
            );
        }
        Ok(())
    }

    /// Whether `key` (a `[model]` key) means something for this config's family; the
    /// resolved config writes only these, and a config that sets another is refused.
    pub fn uses_key(&self, key: &str) -> bool {
        match self.architecture {
            Architecture::Gru => !TRANSFORMER_KEYS.contains(&key),
            Architecture::Transformer => !GRU_KEYS.contains(&key),
        }
    }

    /// Transformer decoder layers, `decoder_layers` or else `encoder_layers`.
    pub fn decoder_layer_count(&self) -> usize {
        if self.decoder_layers == 0 {
            self.encoder_layers
        } else {
            self.decoder_layers
        }
    }

    /// The Transformer's feed-forward width, `ff_size` or else 4 × hidden_size.
    pub fn ff_dim(&self) -> usize {
        if self.ff_size == 0 {
            4 * self.hidden_size
        } else {
            self.ff_size
        }
    }

    pub fn embedding_dim(&self) -> usize {
        if self.architecture == Architecture::Transformer {
            return self.hidden_size;
        }
        if self.embedding_size == 0 {
            self.hidden_size
        } else {
            self.embedding_size
        }
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

/// A model's parameter count, from its sizes alone ([`crate::parameter_count`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParameterCount {
    pub total: u128,
    /// Parameters in vocabulary-sized tensors.
    pub vocabulary: u128,
}
