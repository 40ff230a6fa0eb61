//! The GRU family's `[model]` keys (`architecture = "gru"`).

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::export::Ct2Model;
use crate::family::{Family, TranslationModel};
use crate::params::{ParamStore, Weights};
use crate::shared_config::{
    check_at_least_one, check_dropouts, DecodingConfig, ModelDims, ParameterCount, TieEmbeddings,
};

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

/// A GRU encoder and an attention decoder, with the NMT recipe's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GruConfig {
    pub attention: AttentionKind,
    /// Hidden size of the encoder's and the decoder's GRUs.
    pub hidden_size: usize,
    /// Word embedding size; 0 means the same as hidden_size.
    pub embedding_size: usize,
    /// Stacked GRU layers in the encoder.
    pub encoder_layers: usize,
    /// Run the encoder in both directions (their outputs are summed).
    pub bidirectional: bool,
    /// Dropout probability on embeddings and between encoder layers.
    pub dropout: f64,
    /// The decoder's initial state is `tanh(Linear(encoder final state))` (both directions'
    /// states joined when bidirectional) instead of the encoder's final state itself.
    pub bridge: bool,
    /// Luong's input feeding: the decoder emits an attentional vector
    /// `tanh(Linear([h; context]))` and the previous one joins the next step's input.
    pub input_feeding: bool,
    /// "decoder": the target embedding is the output layer's weight (needs
    /// embedding_size = hidden_size); "none".
    pub tie_embeddings: TieEmbeddings,
    /// Dropout on the vector the output layer reads (the attentional vector with input
    /// feeding, the decoder state without).
    pub hidden_dropout: f64,
}

impl Default for GruConfig {
    fn default() -> Self {
        Self {
            attention: AttentionKind::Bahdanau,
            hidden_size: 256,
            embedding_size: 0,
            encoder_layers: 1,
            bidirectional: false,
            dropout: 0.1,
            bridge: false,
            input_feeding: false,
            tie_embeddings: TieEmbeddings::None,
            hidden_dropout: 0.0,
        }
    }
}

impl GruConfig {
    /// The embedding size, `embedding_size` or else hidden_size.
    pub fn embedding_dim(&self) -> usize {
        if self.embedding_size == 0 {
            self.hidden_size
        } else {
            self.embedding_size
        }
    }

    /// The NMT recipe's options that are on, as `, bridge, input feeding, ...`.
    fn recipe(&self) -> String {
        let mut on = Vec::new();
        if self.bridge {
            on.push("bridge".to_string());
        }
        if self.input_feeding {
            on.push("input feeding".to_string());
        }
        if self.tie_embeddings.decoder() {
            on.push("tied target embeddings".to_string());
        }
        if self.hidden_dropout > 0.0 {
            on.push(format!("hidden dropout {}", self.hidden_dropout));
        }
        on.iter().map(|o| format!(", {o}")).collect()
    }
}

impl Family for GruConfig {
    fn validate(&self) -> Result<()> {
        let bad = |key, message: String| Err(ModelError::InvalidConfig { key, message });
        check_at_least_one(&[("hidden_size", self.hidden_size), ("encoder_layers", self.encoder_layers)])?;
        check_dropouts(&[("dropout", self.dropout), ("hidden_dropout", self.hidden_dropout)])?;
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

    fn describe(&self) -> String {
        format!(
            "GRU, {} attention, hidden {}, embedding {}, {} encoder layer(s){}, dropout {}{}",
            format!("{:?}", self.attention).to_lowercase(),
            self.hidden_size,
            self.embedding_dim(),
            self.encoder_layers,
            if self.bidirectional { " bidirectional" } else { "" },
            self.dropout,
            self.recipe()
        )
    }

    fn logged_keys(&self) -> &'static [&'static str] {
        &["attention", "hidden_size"]
    }

    fn parameter_count(&self, _decoding: &DecodingConfig, dims: &ModelDims) -> ParameterCount {
        let (e, h) = (self.embedding_dim() as u128, self.hidden_size as u128);
        let (src, tgt, slots) = (dims.src_vocab as u128, dims.tgt_vocab as u128, dims.max_length as u128);
        let gru = |input: u128| 3 * h * input + 3 * h * h + 6 * h;
        let directions = if self.bidirectional { 2 } else { 1 };
        let encoder: u128 = (0..self.encoder_layers).map(|k| directions * gru(if k == 0 { e } else { h })).sum();
        let linear = |i: u128, o: u128, bias: bool| i * o + if bias { o } else { 0 };
        let (attention, combine, gru_in) = match self.attention {
            AttentionKind::Location => (linear(e + h, slots, true), linear(e + h, h, true), h),
            AttentionKind::Bahdanau => (2 * linear(h, h, true) + linear(h, 1, true), 0, e + h),
            AttentionKind::LuongDot => (0, 0, e + h),
            AttentionKind::LuongGeneral => (linear(h, h, false), 0, e + h),
        };
        let (gru_in, att_vector) = if self.input_feeding { (gru_in + h, linear(2 * h, h, true)) } else { (gru_in, 0) };
        let bridge = if self.bridge { linear(directions * h, h, true) } else { 0 };
        let tgt_embedding = if self.tie_embeddings.decoder() { 0 } else { tgt * e };
        let vocabulary = src * e + tgt_embedding + linear(h, tgt, true);
        ParameterCount {
            total: vocabulary + encoder + attention + combine + gru(gru_in) + att_vector + bridge,
            vocabulary,
        }
    }

    fn width_key(&self) -> (&'static str, usize) {
        if self.embedding_size > self.hidden_size {
            ("embedding_size", self.embedding_size)
        } else {
            ("hidden_size", self.hidden_size)
        }
    }

    fn shared_embedding_setting(&self) -> Option<&'static str> {
        None
    }

    fn can_run_free(&self) -> bool {
        true
    }

    fn build(
        &self,
        decoding: &DecodingConfig,
        dims: ModelDims,
        weights: Weights,
        device: &Device,
    ) -> Result<Box<dyn TranslationModel>> {
        Ok(Box::new(super::GruModel::new(self, decoding, dims, weights, device)?))
    }

    fn ctranslate2(&self, _: &ParamStore, _: &DecodingConfig, _: &ModelDims) -> Result<Ct2Model> {
        Err(ModelError::CannotExport {
            engine: "CTranslate2",
            reason: "it has no RNN decoder, so a GRU run stays with s2s (`s2s translate`, `s2s eval`); \
                     to use it elsewhere, load checkpoints/<which>/model.safetensors into PyTorch \
                     (torch.nn.GRU's names, e.g. encoder.gru.weight_ih_l0)"
                .into(),
        })
    }
}
