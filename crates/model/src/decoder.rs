//! Attention decoder: one GRU step per target token.

use candle_core::{Tensor, D};
use candle_nn::{Module, VarBuilder};
use s2s_data::Rng;

use crate::attention::{attend, Attention};
use crate::config::{AttentionKind, ModelConfig, ModelDims};
use crate::dropout::dropout;
use crate::error::{expect_dims, Result};
use crate::fused::{Products, SharedProduct};
use crate::gru::GruLayer;
use crate::params::{embedding, linear, Linear};

/// Module path `decoder`: `decoder.embedding`, `decoder.attention.*`, `decoder.attn_combine`
/// (location attention only), `decoder.gru`, `decoder.out`.
///
/// - location (the notebook): weights from `[e; h]`, then
///   `x = relu(attn_combine([e; context]))`, `h' = GRU(x, h)`.
/// - bahdanau / luong-*: weights from the previous hidden `h` against the encoder
///   outputs, then `h' = GRU([e; context], h)` (the modern PyTorch tutorial's decoder).
///
/// In both, the output distribution is `log_softmax(out(h'))`.
#[derive(Debug, Clone)]
pub struct Decoder {
    embedding: candle_nn::Embedding,
    attention: Attention,
    combine: Option<Linear>,
    gru: GruLayer,
    out: Linear,
    dropout: f64,
}

/// The decoder's parameters by role, read by [`crate::greedy`].
pub(crate) struct DecoderParts<'a> {
    pub embedding: &'a Tensor,
    pub attention: &'a Attention,
    pub combine: Option<&'a Linear>,
    /// `weight_ih`, `bias_ih`, `weight_hh`, `bias_hh`
    pub gru: [&'a Tensor; 4],
    pub out: &'a Linear,
}

/// What the decoder attends to, prepared once per batch.
#[derive(Debug, Clone)]
pub struct Memory {
    /// `(B, S, H)`
    pub outputs: Tensor,
    /// `(B, S, H)` key projections, for the attentions that have them.
    pub keys: Option<Tensor>,
    /// `(B, S)` additive PAD mask, `None` when nothing is padded.
    pub bias: Option<Tensor>,
}

impl Memory {
    /// Row `i` of the batch repeated `n` times (for beam search).
    pub fn repeat_row(&self, i: usize, n: usize) -> Result<Self> {
        let idx = Tensor::new(vec![i as u32; n], self.outputs.device())?;
        let pick = |t: &Tensor| t.index_select(&idx, 0);
        Ok(Self {
            outputs: pick(&self.outputs)?,
            keys: self.keys.as_ref().map(pick).transpose()?,
            bias: self.bias.as_ref().map(pick).transpose()?,
        })
    }
}

impl Decoder {
    pub fn new(cfg: &ModelConfig, dims: &ModelDims, vb: VarBuilder) -> Result<Self> {
        let (e, h) = (cfg.embedding_dim(), cfg.hidden_size);
        let attention = Attention::new(cfg.attention, e, h, dims.max_length, vb.pp("attention"))?;
        let (combine, gru_in) = if cfg.attention == AttentionKind::Location {
            (Some(linear(e + h, h, true, vb.pp("attn_combine"))?), h)
        } else {
            (None, e + h)
        };
        Ok(Self {
            embedding: embedding(dims.tgt_vocab, e, vb.pp("embedding"))?,
            attention,
            combine,
            gru: GruLayer::new(gru_in, h, 0, false, vb.pp("gru"))?,
            out: linear(h, dims.tgt_vocab, true, vb.pp("out"))?,
            dropout: cfg.dropout,
        })
    }

    pub(crate) fn parts(&self) -> DecoderParts<'_> {
        DecoderParts {
            embedding: self.embedding.embeddings(),
            attention: &self.attention,
            combine: self.combine.as_ref(),
            gru: self.gru.params(),
            out: &self.out,
        }
    }

    /// A copy for training a batch on the CPU whose per-step products form their weight
    /// gradients once per batch (see [`crate::fused::SharedProduct`]). Returns the products
    /// too: the initial state must go through each one's `anchor` before the first step.
    pub fn shared(&self) -> Result<(Self, Vec<SharedProduct>)> {
        let mut products = Vec::new();
        let attention = self.attention.shared(&mut products)?;
        let combine = match &self.combine {
            Some(c) => Some(match c.shared()? {
                Some((c, p)) => {
                    products.push(p);
                    c
                }
                None => c.clone(),
            }),
            None => None,
        };
        let (gru, gru_products) = self.gru.shared()?;
        products.extend(gru_products);
        Ok((Self { attention, combine, gru, ..self.clone() }, products))
    }

    pub fn attention(&self) -> &Attention {
        &self.attention
    }

    /// The decoder memory of encoder outputs (detached `products` for inference).
    pub fn memory(&self, outputs: Tensor, bias: Option<Tensor>, products: Products) -> Result<Memory> {
        let keys = self.attention.precompute_keys(&outputs, products)?;
        Ok(Memory { outputs, keys, bias })
    }

    /// One decoding step.
    ///
    /// # Shapes
    /// `prev: (B)` u32 previous tokens, `h: (B, H)` → new hidden `(B, H)`, attention weights `(B, S)`
    pub fn step(&self, prev: &Tensor, h: &Tensor, mem: &Memory, rng: Option<&mut Rng>) -> Result<(Tensor, Tensor)> {
        let b = prev.dims1()?;
        expect_dims("decoder hidden", h, &[b, self.gru.hidden_size()])?;
        self.step_embedded(&self.embed(prev, rng)?, h, mem)
    }

    /// Embedded (and, in training, dropped-out) input tokens. Teacher-forced training embeds
    /// every step's inputs in one call: one dense embedding gradient per batch instead of
    /// one per step, and the same dropout draws (taken in the same order).
    ///
    /// # Shapes
    /// `ids: (N)` u32 → `(N, E)`
    pub fn embed(&self, ids: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor> {
        dropout(&self.embedding.forward(ids)?, self.dropout, rng)
    }

    /// One decoding step from already embedded inputs.
    ///
    /// # Shapes
    /// `e: (B, E)`, `h: (B, H)` → new hidden `(B, H)`, attention weights `(B, S)`
    pub fn step_embedded(&self, e: &Tensor, h: &Tensor, mem: &Memory) -> Result<(Tensor, Tensor)> {
        let b = e.dim(0)?;
        expect_dims("decoder hidden", h, &[b, self.gru.hidden_size()])?;
        let scores = self.attention.scores(e, h, &mem.outputs, mem.keys.as_ref())?;
        let (weights, context) = attend(&scores, mem.bias.as_ref(), &mem.outputs)?;
        let joined = Tensor::cat(&[e, &context], D::Minus1)?;
        let x = match &self.combine {
            Some(c) => c.forward(&joined)?.relu()?,
            None => joined,
        };
        Ok((self.gru.step(&self.gru.project_step(&x)?, h)?, weights))
    }

    /// Greedy choice for each row of `h`: the most likely next token and its
    /// log-probability (on the CPU, [`crate::greedy`] decodes without this).
    ///
    /// # Shapes
    /// `h: (B, H)` → two vectors of length B
    pub fn greedy_pick(&self, h: &Tensor) -> Result<(Vec<u32>, Vec<f32>)> {
        Ok(crate::fused::best_tokens(&self.logits(h)?)?)
    }

    /// Unnormalised scores over the target vocabulary.
    ///
    /// # Shapes
    /// `h: (B, H)` → `(B, V)`, or `(B, T, H)` → `(B, T, V)`
    pub fn logits(&self, h: &Tensor) -> Result<Tensor> {
        self.out.forward(h)
    }

    /// Per-row NLL of `targets` given decoder states: the output layer and the
    /// cross-entropy in one fused op on the CPU.
    ///
    /// # Shapes
    /// `h: (N, H)`, `targets: (N)` u32, `weights: (N)` → `(N)`
    pub fn nll(&self, h: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
        let bias = match self.out.bias() {
            Some(b) => b.clone(),
            None => Tensor::zeros(self.out.weight().dim(0)?, h.dtype(), h.device())?,
        };
        Ok(crate::fused::output_nll(h, self.out.weight(), &bias, targets, weights)?)
    }
}
