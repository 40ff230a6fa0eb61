//! `torch.nn.TransformerEncoderLayer` and `TransformerDecoderLayer` (ReLU, `batch_first`,
//! either `norm_first`), with their state_dict names.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};
use s2s_data::Rng;

use super::kernels::KeyMask;
use super::layer_norm::LayerNorm;
use super::multi_head::{KeyValues, MultiHeadAttention};
use super::Norm;
use crate::dropout::{dropout, residual_dropout};
use crate::error::Result;
use crate::params::Linear;

/// The dropout probabilities of one layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropouts {
    /// On each sublayer's output before the residual sum.
    pub residual: f64,
    /// On attention weights.
    pub attention: f64,
    /// After the feed-forward ReLU.
    pub activation: f64,
}

/// `linear1 (ff, d)`, `linear2 (d, ff)`: Xavier-uniform matrices (`nn.Transformer`'s
/// reset) and `nn.Linear`'s default biases.
#[derive(Debug, Clone)]
struct FeedForward {
    linear1: Linear,
    linear2: Linear,
}

fn xavier_linear(i: usize, o: usize, vb: VarBuilder) -> Result<Linear> {
    let b = (6.0 / (i + o) as f64).sqrt();
    let w = vb.get_with_hints((o, i), "weight", Init::Uniform { lo: -b, up: b })?;
    let bb = 1.0 / (i as f64).sqrt();
    let bias = vb.get_with_hints(o, "bias", Init::Uniform { lo: -bb, up: bb })?;
    Linear::new(w, Some(bias))
}

impl FeedForward {
    fn new(d: usize, ff: usize, vb: &VarBuilder) -> Result<Self> {
        Ok(Self { linear1: xavier_linear(d, ff, vb.pp("linear1"))?, linear2: xavier_linear(ff, d, vb.pp("linear2"))? })
    }

    fn forward(&self, x: &Tensor, p: f64, rng: Option<&mut Rng>) -> Result<Tensor> {
        let h = dropout(&self.linear1.forward_fused_relu(x)?, p, rng)?;
        self.linear2.forward_fused(&h)
    }
}

/// `x + dropout(sublayer(norm(x)))` (pre) or `norm(x + dropout(sublayer(x)))` (post).
fn residual(
    norm: Norm,
    ln: &LayerNorm,
    x: &Tensor,
    p: f64,
    mut rng: Option<&mut Rng>,
    sublayer: impl FnOnce(&Tensor, Option<&mut Rng>) -> Result<Tensor>,
) -> Result<Tensor> {
    match norm {
        Norm::Pre => {
            let y = sublayer(&ln.forward(x)?, rng.as_deref_mut())?;
            residual_dropout(x, &y, p, rng)
        }
        Norm::Post => {
            let y = sublayer(x, rng.as_deref_mut())?;
            ln.forward(&residual_dropout(x, &y, p, rng)?)
        }
    }
}

/// Module path `encoder.layers.N`: `self_attn`, `linear1`, `linear2`, `norm1`, `norm2`.
#[derive(Debug, Clone)]
pub struct EncoderLayer {
    self_attn: MultiHeadAttention,
    ff: FeedForward,
    norm1: LayerNorm,
    norm2: LayerNorm,
    norm: Norm,
    drop: Dropouts,
}

impl EncoderLayer {
    pub fn new(d: usize, heads: usize, ff: usize, norm: Norm, drop: Dropouts, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            self_attn: MultiHeadAttention::new(d, heads, vb.pp("self_attn"))?,
            ff: FeedForward::new(d, ff, &vb)?,
            norm1: LayerNorm::new(d, vb.pp("norm1"))?,
            norm2: LayerNorm::new(d, vb.pp("norm2"))?,
            norm,
            drop,
        })
    }

    /// Its tensors as graph-free inference reads them (`super::inference`), in this order:
    /// self-attention `in_proj` weight and bias, its `out_proj` weight and bias, `linear1`
    /// and `linear2` weights and biases, `norm1` and `norm2` weights and biases (12).
    pub(super) fn tensors(&self) -> Result<Vec<&Tensor>> {
        let [qkv, _, out] = self.self_attn.projections();
        let mut all = Vec::with_capacity(12);
        for l in [qkv, out, &self.ff.linear1, &self.ff.linear2] {
            all.push(l.weight());
            all.push(l.bias().ok_or(crate::ModelError::MissingParameter { name: "an encoder layer's bias".into() })?);
        }
        for n in [&self.norm1, &self.norm2] {
            all.extend(n.parameters());
        }
        Ok(all)
    }

    /// Pre- or post-norm.
    pub(super) fn norm(&self) -> Norm {
        self.norm
    }

    /// # Shapes
    /// `x: (B, S, d)` → `(B, S, d)`; `mask`: the sources' padding
    pub fn forward(&self, x: &Tensor, mask: &KeyMask, mut rng: Option<&mut Rng>) -> Result<Tensor> {
        let d = self.drop;
        let x = residual(self.norm, &self.norm1, x, d.residual, rng.as_deref_mut(), |y, r| {
            Ok(self.self_attn.self_attention(y, mask, d.attention, r, false)?.0)
        })?;
        residual(self.norm, &self.norm2, &x, d.residual, rng, |y, r| self.ff.forward(y, d.activation, r))
    }
}

/// Module path `decoder.layers.N`: `self_attn`, `multihead_attn`, `linear1`, `linear2`,
/// `norm1`..`norm3`.
#[derive(Debug, Clone)]
pub struct DecoderLayer {
    self_attn: MultiHeadAttention,
    cross_attn: MultiHeadAttention,
    ff: FeedForward,
    norm1: LayerNorm,
    norm2: LayerNorm,
    norm3: LayerNorm,
    norm: Norm,
    drop: Dropouts,
}

/// What a decoder layer attends to: the memory's keys and values and its padding.
#[derive(Debug, Clone)]
pub struct LayerMemory {
    pub kv: KeyValues,
    pub mask: KeyMask,
}

impl LayerMemory {
    /// The rows `idx`, whose sources are `lengths` long.
    pub fn select(&self, idx: &Tensor, lengths: &[usize]) -> Result<Self> {
        let kv = self.kv.select(idx)?;
        let mask = KeyMask::padding(lengths, kv.k.dim(2)?);
        Ok(Self { kv, mask })
    }
}

impl DecoderLayer {
    pub fn new(d: usize, heads: usize, ff: usize, norm: Norm, drop: Dropouts, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            self_attn: MultiHeadAttention::new(d, heads, vb.pp("self_attn"))?,
            cross_attn: MultiHeadAttention::new(d, heads, vb.pp("multihead_attn"))?,
            ff: FeedForward::new(d, ff, &vb)?,
            norm1: LayerNorm::new(d, vb.pp("norm1"))?,
            norm2: LayerNorm::new(d, vb.pp("norm2"))?,
            norm3: LayerNorm::new(d, vb.pp("norm3"))?,
            norm,
            drop,
        })
    }

    /// Its tensors as graph-free inference reads them (`super::inference`), in this order:
    /// self-attention `in_proj` weight and bias, its `out_proj` weight and bias,
    /// cross-attention query weight and bias, its `out_proj` weight and bias, `linear1`
    /// and `linear2` weights and biases, `norm1`..`norm3` weights and biases (18).
    pub(super) fn tensors(&self) -> Result<Vec<&Tensor>> {
        let [qkv, _, self_out] = self.self_attn.projections();
        let [_, q, cross_out] = self.cross_attn.projections();
        let mut all = Vec::with_capacity(18);
        for l in [qkv, self_out, q, cross_out, &self.ff.linear1, &self.ff.linear2] {
            all.push(l.weight());
            all.push(l.bias().ok_or(crate::ModelError::MissingParameter { name: "a decoder layer's bias".into() })?);
        }
        for n in [&self.norm1, &self.norm2, &self.norm3] {
            all.extend(n.parameters());
        }
        Ok(all)
    }

    /// Pre- or post-norm.
    pub(super) fn norm(&self) -> Norm {
        self.norm
    }

    /// The cross-attention's key and value projection `(2d, d)` (rows `d..3d` of its
    /// `in_proj`), which makes [`DecoderLayer::memory`].
    pub(super) fn memory_projection(&self) -> &Linear {
        self.cross_attn.key_value()
    }

    /// The keys and values of the encoder output for this layer's cross-attention.
    pub fn memory(&self, encoded: &Tensor, mask: &KeyMask) -> Result<LayerMemory> {
        Ok(LayerMemory { kv: self.cross_attn.memory(encoded)?, mask: mask.clone() })
    }

    /// The whole target at once (training, forced decoding); returns the output and,
    /// with `need_weights`, the cross-attention weights.
    ///
    /// # Shapes
    /// `x: (B, T, d)` → `(B, T, d)`, `(B, heads, T, S)`
    pub fn forward(
        &self,
        x: &Tensor,
        memory: &LayerMemory,
        mut rng: Option<&mut Rng>,
        need_weights: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let d = self.drop;
        let x = residual(self.norm, &self.norm1, x, d.residual, rng.as_deref_mut(), |y, r| {
            Ok(self.self_attn.self_attention(y, &KeyMask::causal(), d.attention, r, false)?.0)
        })?;
        let mut weights = None;
        let x = residual(self.norm, &self.norm2, &x, d.residual, rng.as_deref_mut(), |y, r| {
            let (out, w) =
                self.cross_attn.cross_attention(y, &memory.kv, &memory.mask, d.attention, r, need_weights)?;
            weights = w;
            Ok(out)
        })?;
        let x = residual(self.norm, &self.norm3, &x, d.residual, rng, |y, r| self.ff.forward(y, d.activation, r))?;
        Ok((x, weights))
    }

    /// One new position (inference): self-attention through `cache`.
    ///
    /// # Shapes
    /// `x: (B, 1, d)` → `(B, 1, d)`, `(B, heads, 1, S)`
    pub fn step(&self, x: &Tensor, cache: &mut Option<KeyValues>, memory: &LayerMemory) -> Result<(Tensor, Tensor)> {
        let x =
            residual(self.norm, &self.norm1, x, 0.0, None, |y, _| Ok(self.self_attn.self_attention_step(y, cache)?.0))?;
        let mut weights = None;
        let x = residual(self.norm, &self.norm2, &x, 0.0, None, |y, _| {
            let (out, w) = self.cross_attn.cross_attention(y, &memory.kv, &memory.mask, 0.0, None, true)?;
            weights = w;
            Ok(out)
        })?;
        let x = residual(self.norm, &self.norm3, &x, 0.0, None, |y, _| self.ff.forward(y, 0.0, None))?;
        Ok((x, weights.ok_or(crate::ModelError::Worker)?))
    }
}
