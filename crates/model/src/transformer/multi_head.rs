//! Multi-head attention as `torch.nn.MultiheadAttention` computes it (`batch_first`,
//! one packed input projection), with key masks and a key/value cache for incremental
//! decoding. Where nobody needs the weights (training, PyTorch's `need_weights=False`)
//! and no dropout falls on them, the heads run as one fused op that keeps none of its
//! intermediates ([`super::kernels::attention`]).

use candle_core::{Tensor, D};
use candle_nn::{Init, VarBuilder};
use s2s_data::Rng;

use super::kernels::KeyMask;
use crate::dropout::dropout;
use crate::error::{expect_dims, Result};
use crate::params::Linear;

/// Module path `…self_attn` / `…multihead_attn`: `in_proj_weight (3d, d)`,
/// `in_proj_bias (3d)`, `out_proj.weight (d, d)`, `out_proj.bias (d)`.
#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    /// All of `in_proj`: query, key and value at once (self-attention).
    qkv: Linear,
    /// Rows `0..d` of `in_proj`.
    q: Linear,
    /// Rows `d..3d` of `in_proj`: key and value of a memory (cross-attention).
    kv: Linear,
    out: Linear,
    heads: usize,
    d: usize,
}

/// Keys and values of the positions seen so far, `(B, heads, S, d / heads)` each.
#[derive(Debug, Clone)]
pub struct KeyValues {
    pub k: Tensor,
    pub v: Tensor,
}

impl KeyValues {
    /// The rows `idx` (beam search's survivors).
    pub fn select(&self, idx: &Tensor) -> Result<Self> {
        Ok(Self { k: self.k.index_select(idx, 0)?, v: self.v.index_select(idx, 0)? })
    }
}

impl MultiHeadAttention {
    /// PyTorch's initialisation: Xavier-uniform packed projection, zero biases, and the
    /// output projection Xavier-uniform (as `nn.Transformer` resets every matrix).
    pub fn new(d: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        let xavier = |fan_out: usize, fan_in: usize| {
            let b = (6.0 / (fan_in + fan_out) as f64).sqrt();
            Init::Uniform { lo: -b, up: b }
        };
        let w = vb.get_with_hints((3 * d, d), "in_proj_weight", xavier(3 * d, d))?;
        let b = vb.get_with_hints(3 * d, "in_proj_bias", Init::Const(0.0))?;
        let out_w = vb.pp("out_proj").get_with_hints((d, d), "weight", xavier(d, d))?;
        let out_b = vb.pp("out_proj").get_with_hints(d, "bias", Init::Const(0.0))?;
        Ok(Self {
            qkv: Linear::new(w.clone(), Some(b.clone()))?,
            q: Linear::new(w.narrow(0, 0, d)?, Some(b.narrow(0, 0, d)?))?,
            kv: Linear::new(w.narrow(0, d, 2 * d)?, Some(b.narrow(0, d, 2 * d)?))?,
            out: Linear::new(out_w, Some(out_b))?,
            heads,
            d,
        })
    }

    /// The packed query-key-value projection, the query part alone, and the output
    /// projection (graph-free inference reads their weights in place).
    pub(super) fn projections(&self) -> [&Linear; 3] {
        [&self.qkv, &self.q, &self.out]
    }

    /// `(B, T, d)` → `(B, heads, T, d / heads)`, contiguous.
    /// The key and value projection of a memory (`in_proj`'s rows `d..3d`).
    pub(super) fn key_value(&self) -> &Linear {
        &self.kv
    }

    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        Ok(super::kernels::split_heads(x, self.heads)?)
    }

    /// The projected keys and values of `memory` (`(B, S, d)`), once per source.
    pub fn memory(&self, memory: &Tensor) -> Result<KeyValues> {
        let kv = self.kv.forward_fused(memory)?;
        Ok(KeyValues {
            k: self.split_heads(&kv.narrow(D::Minus1, 0, self.d)?)?,
            v: self.split_heads(&kv.narrow(D::Minus1, self.d, self.d)?)?,
        })
    }

    /// The queries, keys and values of `x` itself.
    fn self_qkv(&self, x: &Tensor) -> Result<(Tensor, KeyValues)> {
        let qkv = self.qkv.forward_fused(x)?;
        let part = |i: usize| self.split_heads(&qkv.narrow(D::Minus1, i * self.d, self.d)?);
        Ok((part(0)?, KeyValues { k: part(1)?, v: part(2)? }))
    }

    /// Self-attention over `x`; returns the output and, with `need_weights`, the weights.
    ///
    /// # Shapes
    /// `x: (B, T, d)` → `(B, T, d)`, `(B, heads, T, T)`
    pub fn self_attention(
        &self,
        x: &Tensor,
        mask: &KeyMask,
        p: f64,
        rng: Option<&mut Rng>,
        need_weights: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (b, t, _) = x.dims3()?;
        expect_dims("self-attention input", x, &[b, t, self.d])?;
        if fused(need_weights, p, rng.as_deref()) {
            let qkv = self.qkv.forward_fused(x)?;
            let part = |i: usize| qkv.narrow(D::Minus1, i * self.d, self.d);
            let context = super::kernels::attention(&part(0)?, &part(1)?, &part(2)?, self.heads, mask)?;
            return Ok((self.out.forward_fused(&context)?, None));
        }
        let (q, kv) = self.self_qkv(x)?;
        let (out, w) = self.attend(&q, &kv, mask, p, rng)?;
        Ok((out, Some(w)))
    }

    /// One new position of self-attention: its key and value join `cache`, and it
    /// attends to every cached position (no mask needed: all are earlier).
    ///
    /// # Shapes
    /// `x: (B, 1, d)` → `(B, 1, d)`, `(B, heads, 1, S + 1)`
    pub fn self_attention_step(&self, x: &Tensor, cache: &mut Option<KeyValues>) -> Result<(Tensor, Tensor)> {
        let b = x.dim(0)?;
        expect_dims("self-attention step input", x, &[b, 1, self.d])?;
        let (q, new) = self.self_qkv(x)?;
        let kv = match cache.take() {
            Some(old) => KeyValues { k: Tensor::cat(&[&old.k, &new.k], 2)?, v: Tensor::cat(&[&old.v, &new.v], 2)? },
            None => new,
        };
        let out = self.attend(&q, &kv, &KeyMask::default(), 0.0, None)?;
        *cache = Some(kv);
        Ok(out)
    }

    /// Attention of `x`'s positions over a memory's keys and values ([`Self::memory`]);
    /// returns the output and, with `need_weights`, the weights.
    ///
    /// # Shapes
    /// `x: (B, T, d)` → `(B, T, d)`, `(B, heads, T, S)`
    pub fn cross_attention(
        &self,
        x: &Tensor,
        memory: &KeyValues,
        mask: &KeyMask,
        p: f64,
        rng: Option<&mut Rng>,
        need_weights: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (b, t, _) = x.dims3()?;
        expect_dims("cross-attention input", x, &[b, t, self.d])?;
        let q = self.q.forward_fused(x)?;
        if fused(need_weights, p, rng.as_deref()) {
            let context = super::kernels::attention(&q, &memory.k, &memory.v, self.heads, mask)?;
            return Ok((self.out.forward_fused(&context)?, None));
        }
        let (out, w) = self.attend(&self.split_heads(&q)?, memory, mask, p, rng)?;
        Ok((out, Some(w)))
    }

    /// `softmax(q kᵀ / sqrt(d_head) + mask) v` from candle's ops, heads joined and
    /// projected; dropout `p` on the weights while training (the returned weights are
    /// before dropout).
    fn attend(
        &self,
        q: &Tensor,
        kv: &KeyValues,
        mask: &KeyMask,
        p: f64,
        rng: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor)> {
        let (b, h, t, dh) = q.dims4()?;
        let scale = 1.0 / (dh as f64).sqrt();
        let scores = (q.matmul(&kv.k.t()?)? * scale)?;
        let scores = match mask.bias(t, kv.k.dim(2)?, q.device())? {
            Some(bias) => scores.broadcast_add(&bias)?,
            None => scores,
        };
        // Not candle_nn::ops::softmax_last_dim: it has no backward pass.
        let weights = super::kernels::softmax(&scores)?;
        let dropped = dropout(&weights, p, rng)?;
        let context = dropped.matmul(&kv.v)?.transpose(1, 2)?.reshape((b, t, h * dh))?;
        Ok((self.out.forward_fused(&context)?, weights))
    }
}

/// Whether the fused op serves: nobody wants the weights, and no dropout falls on them.
fn fused(need_weights: bool, p: f64, rng: Option<&Rng>) -> bool {
    !need_weights && (p <= 0.0 || rng.is_none())
}
