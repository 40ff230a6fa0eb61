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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// The model family.
    pub architecture: Architecture,
    pub attention: AttentionKind,
    /// GRU hidden size of the encoder and the decoder.
    pub hidden_size: usize,
    /// Word embedding size; 0 means the same as hidden_size.
    pub embedding_size: usize,
    /// Stacked GRU layers in the encoder.
    pub encoder_layers: usize,
    /// Run the encoder in both directions (their outputs are summed).
    pub bidirectional: bool,
    /// Dropout probability on embeddings and between encoder layers.
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
    /// The target embedding is the output layer's weight (needs embedding_size = hidden_size).
    pub tie_embeddings: bool,
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
            bidirectional: false,
            dropout: 0.1,
            max_decode_length: 0,
            beam_size: 1,
            length_penalty: 0.0,
            bridge: false,
            input_feeding: false,
            tie_embeddings: false,
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
        if self.tie_embeddings && self.embedding_dim() != self.hidden_size {
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

    pub fn embedding_dim(&self) -> usize {
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
