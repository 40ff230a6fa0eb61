//! Attention decoder: one GRU step per target token.

use candle_core::{Tensor, D};
use candle_nn::{Module, VarBuilder};
use s2s_data::Rng;

use super::attention::{attend, Attention};
use super::kernels::Products;
use super::layer::GruLayer;
use super::{AttentionKind, GruConfig};
use crate::dropout::dropout;
use crate::error::{expect_dims, Result};
use crate::kernels::SharedProduct;
use crate::params::{embedding, linear, Linear};
use crate::shared_config::ModelDims;

/// Module path `decoder`: `decoder.embedding` (absent with `tie_embeddings`: the embedding
/// is `decoder.out.weight`), `decoder.attention.*`, `decoder.attn_combine` (location
/// attention only), `decoder.att_vector` (input feeding only), `decoder.gru`, `decoder.out`.
///
/// - location (the notebook): weights from `[e; h]`, then
///   `x = relu(attn_combine([e; context]))`, `h' = GRU(x, h)`.
/// - bahdanau / luong-*: weights from the previous hidden `h` against the encoder
///   outputs, then `h' = GRU([e; context], h)` (the modern PyTorch tutorial's decoder).
/// - with input feeding (Luong et al. 2015, section 3.3): the step also makes the
///   attentional vector `o = tanh(att_vector([h'; context]))`, and the next step's GRU
///   input is `[e; context; o_prev]` (`o` is zero before the first step). The decoder
///   *state* is then `[h; o]`, `(B, 2H)`, so that searches carry both.
///
/// The output distribution is `log_softmax(out(dropout(v)))` with `v = o` under input
/// feeding and `v = h'` otherwise (`hidden_dropout`, training only).
#[derive(Debug, Clone)]
pub struct Decoder {
    embedding: candle_nn::Embedding,
    attention: Attention,
    combine: Option<Linear>,
    gru: GruLayer,
    out: Linear,
    /// `decoder.att_vector`, `Linear(2H → H)`: present with input feeding.
    att_vector: Option<Linear>,
    dropout: f64,
    hidden_dropout: f64,
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
    /// The rows `rows` of the batch, in this order (a row may repeat; beam search).
    pub fn rows(&self, rows: &[u32]) -> Result<Self> {
        let idx = Tensor::new(rows, self.outputs.device())?;
        let pick = |t: &Tensor| t.index_select(&idx, 0);
        Ok(Self {
            outputs: pick(&self.outputs)?,
            keys: self.keys.as_ref().map(pick).transpose()?,
            bias: self.bias.as_ref().map(pick).transpose()?,
        })
    }
}

impl Decoder {
    pub fn new(cfg: &GruConfig, dims: &ModelDims, vb: VarBuilder) -> Result<Self> {
        let (e, h) = (cfg.embedding_dim(), cfg.hidden_size);
        // The parameters are drawn from one seeded stream in creation order: attention,
        // attn_combine, embedding, gru, out is the first release's order, so that with the
        // recipe's options off a seed gives the same initial weights as before
        // (`tests::initial_weights_are_the_first_releases`).
        let attention = Attention::new(cfg.attention, e, h, dims.max_length, vb.pp("attention"))?;
        let (combine, gru_in) = if cfg.attention == AttentionKind::Location {
            (Some(linear(e + h, h, true, vb.pp("attn_combine"))?), h)
        } else if cfg.input_feeding {
            (None, e + 2 * h)
        } else {
            (None, e + h)
        };
        let untied =
            if cfg.tie_embeddings.decoder() { None } else { Some(embedding(dims.tgt_vocab, e, vb.pp("embedding"))?) };
        let gru = GruLayer::new(gru_in, h, 0, false, vb.pp("gru"))?;
        let att_vector = if cfg.input_feeding { Some(linear(2 * h, h, true, vb.pp("att_vector"))?) } else { None };
        let out = linear(h, dims.tgt_vocab, true, vb.pp("out"))?;
        let embedding = match untied {
            Some(emb) => emb,
            None => candle_nn::Embedding::new(out.weight().clone(), e),
        };
        Ok(Self {
            embedding,
            attention,
            combine,
            gru,
            out,
            att_vector,
            dropout: cfg.dropout,
            hidden_dropout: cfg.hidden_dropout,
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
    /// gradients once per batch (see [`crate::kernels::SharedProduct`]). Returns the products
    /// too: the initial state must go through each one's `anchor` before the first step.
    pub fn shared(&self) -> Result<(Self, Vec<SharedProduct>)> {
        let mut products = Vec::new();
        let attention = self.attention.shared(&mut products)?;
        let combine = self.combine.as_ref().map(|c| c.shared_into(&mut products)).transpose()?;
        let att_vector = self.att_vector.as_ref().map(|a| a.shared_into(&mut products)).transpose()?;
        let (gru, gru_products) = self.gru.shared()?;
        products.extend(gru_products);
        Ok((Self { attention, combine, gru, att_vector, ..self.clone() }, products))
    }

    pub fn attention(&self) -> &Attention {
        &self.attention
    }

    /// A copy for searches (beam, greedy through candle's ops): every per-step product
    /// carries no gradient and packs nothing of its weight, the output layer's included.
    pub fn detached(&self) -> Self {
        Self {
            attention: self.attention.detached(),
            combine: self.combine.as_ref().map(Linear::detached),
            gru: self.gru.detached(),
            out: self.out.detached(),
            att_vector: self.att_vector.as_ref().map(Linear::detached),
            ..self.clone()
        }
    }

    /// Whether the state carries the attentional vector (input feeding).
    pub fn input_feeding(&self) -> bool {
        self.att_vector.is_some()
    }

    /// Width of the decoder state: `H`, or `2H` (`[h; o]`) with input feeding.
    pub fn state_size(&self) -> usize {
        self.gru.hidden_size() * if self.input_feeding() { 2 } else { 1 }
    }

    /// The state the first step starts from, given the initial GRU state.
    ///
    /// # Shapes
    /// `h0: (B, H)` → `(B, state_size)`
    pub fn initial_state(&self, h0: Tensor) -> Result<Tensor> {
        if !self.input_feeding() {
            return Ok(h0);
        }
        Ok(Tensor::cat(&[&h0, &h0.zeros_like()?], D::Minus1)?)
    }

    /// The vector the output layer reads from a state: `o` with input feeding, else `h`.
    ///
    /// # Shapes
    /// `state: (N, state_size)` → `(N, H)`
    pub fn output_vector(&self, state: &Tensor) -> Result<Tensor> {
        if !self.input_feeding() {
            return Ok(state.clone());
        }
        let h = self.gru.hidden_size();
        Ok(state.narrow(D::Minus1, h, h)?)
    }

    /// [`Self::output_vector`] with `hidden_dropout` (training, `rng` given).
    pub fn dropped_output(&self, state: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor> {
        dropout(&self.output_vector(state)?, self.hidden_dropout, rng)
    }

    /// The decoder memory of encoder outputs (detached `products` for inference).
    ///
    /// The outputs are made contiguous here, once: a unidirectional encoder's are a narrow
    /// of its fused sequence, and every decoder step would otherwise copy them (and keep the
    /// copy in the graph until backward).
    pub fn memory(&self, outputs: Tensor, bias: Option<Tensor>, products: Products) -> Result<Memory> {
        let outputs = outputs.contiguous()?;
        let keys = self.attention.precompute_keys(&outputs, products)?;
        Ok(Memory { outputs, keys, bias })
    }

    /// One decoding step.
    ///
    /// # Shapes
    /// `prev: (B)` u32 previous tokens, `h: (B, state_size)` → new state `(B, state_size)`,
    /// attention weights `(B, S)`
    pub fn step(&self, prev: &Tensor, h: &Tensor, mem: &Memory, rng: Option<&mut Rng>) -> Result<(Tensor, Tensor)> {
        let b = prev.dims1()?;
        expect_dims("decoder state", h, &[b, self.state_size()])?;
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
    /// `e: (B, E)`, `state: (B, state_size)` → new state `(B, state_size)`, attention
    /// weights `(B, S)`
    pub fn step_embedded(&self, e: &Tensor, state: &Tensor, mem: &Memory) -> Result<(Tensor, Tensor)> {
        let b = e.dim(0)?;
        let hs = self.gru.hidden_size();
        expect_dims("decoder state", state, &[b, self.state_size()])?;
        let (h, feed) = match &self.att_vector {
            Some(_) => (state.narrow(D::Minus1, 0, hs)?, Some(state.narrow(D::Minus1, hs, hs)?)),
            None => (state.clone(), None),
        };
        let scores = self.attention.scores(e, &h, &mem.outputs, mem.keys.as_ref())?;
        let (weights, context) = attend(&scores, mem.bias.as_ref(), &mem.outputs)?;
        let joined = match &feed {
            Some(o) => Tensor::cat(&[e, &context, o], D::Minus1)?,
            None => Tensor::cat(&[e, &context], D::Minus1)?,
        };
        let x = match &self.combine {
            Some(c) => c.forward(&joined)?.relu()?,
            None => joined,
        };
        let h_new = self.gru.step(&self.gru.project_step(&x)?, &h)?;
        let state = match &self.att_vector {
            Some(a) => {
                let o = a.forward(&Tensor::cat(&[&h_new, &context], D::Minus1)?)?.tanh()?;
                Tensor::cat(&[&h_new, &o], D::Minus1)?
            }
            None => h_new,
        };
        Ok((state, weights))
    }

    /// Greedy choice for each row of a state: the most likely next token and its
    /// log-probability (on the CPU, [`crate::greedy`] decodes without this).
    ///
    /// # Shapes
    /// `state: (B, state_size)` → two vectors of length B
    pub fn greedy_pick(&self, state: &Tensor) -> Result<(Vec<u32>, Vec<f32>)> {
        Ok(crate::kernels::best_tokens(&self.logits(state)?)?)
    }

    /// Unnormalised scores over the target vocabulary from decoder states (evaluation:
    /// no hidden dropout).
    ///
    /// # Shapes
    /// `state: (B, state_size)` → `(B, V)`
    pub fn logits(&self, state: &Tensor) -> Result<Tensor> {
        self.out.forward(&self.output_vector(state)?)
    }

    /// Per-row loss of `targets` given the output layer's input vectors `v` (see
    /// [`Self::dropped_output`]): cross-entropy against targets smoothed by
    /// `label_smoothing` (0 = the plain NLL), the output layer and the loss in one fused
    /// op on the CPU.
    ///
    /// # Shapes
    /// `v: (N, H)`, `targets: (N)` u32, `weights: (N)` → `(N)`
    pub fn nll(&self, v: &Tensor, targets: &Tensor, weights: &Tensor, label_smoothing: f64) -> Result<Tensor> {
        let bias = match self.out.bias() {
            Some(b) => b.clone(),
            None => Tensor::zeros(self.out.weight().dim(0)?, v.dtype(), v.device())?,
        };
        Ok(crate::kernels::output_nll(v, self.out.weight(), &bias, targets, weights, label_smoothing)?)
    }
}
