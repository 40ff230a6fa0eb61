//! Multi-head attention as `torch.nn.MultiheadAttention` computes it (`batch_first`,
//! one packed input projection), with additive masks and a key/value cache for
//! incremental decoding.

use candle_core::{Device, Tensor, D};
use candle_nn::{Init, VarBuilder};
use s2s_data::Rng;

use crate::dropout::dropout;
use crate::error::{expect_dims, Result};
use crate::params::Linear;

/// The additive bias of masked scores: `exp` of it underflows to exactly 0, as `-inf`
/// does in PyTorch, without the NaN of a row that is masked entirely.
pub const MASKED: f32 = -1e9;

/// The additive key-padding bias `(B, 1, 1, S)`: 0 on real positions, [`MASKED`] on
/// padding; `None` when nothing is padded.
pub fn pad_bias(lengths: &[usize], s: usize, device: &Device) -> Result<Option<Tensor>> {
    if lengths.iter().all(|&l| l == s) {
        return Ok(None);
    }
    let v: Vec<f32> = lengths.iter().flat_map(|&l| (0..s).map(move |j| if j < l { 0.0 } else { MASKED })).collect();
    Ok(Some(Tensor::from_vec(v, (lengths.len(), 1, 1, s), device)?))
}

/// The causal bias `(1, 1, T, T)`: position `i` sees positions `..=i`.
pub fn causal_bias(t: usize, device: &Device) -> Result<Tensor> {
    let v: Vec<f32> = (0..t * t).map(|k| if k % t > k / t { MASKED } else { 0.0 }).collect();
    Ok(Tensor::from_vec(v, (1, 1, t, t), device)?)
}

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

    /// `(B, T, d)` → `(B, heads, T, d / heads)`, contiguous.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.d / self.heads))?.transpose(1, 2)?.contiguous()?)
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

    /// Self-attention over `x`; returns the output and the weights.
    ///
    /// # Shapes
    /// `x: (B, T, d)`, `bias: (B or 1, 1, T or 1, T)` → `(B, T, d)`, `(B, heads, T, T)`
    pub fn self_attention(
        &self,
        x: &Tensor,
        bias: Option<&Tensor>,
        p: f64,
        rng: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor)> {
        let (b, t, _) = x.dims3()?;
        expect_dims("self-attention input", x, &[b, t, self.d])?;
        let (q, kv) = self.self_qkv(x)?;
        self.attend(&q, &kv, bias, p, rng)
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
        let out = self.attend(&q, &kv, None, 0.0, None)?;
        *cache = Some(kv);
        Ok(out)
    }

    /// Attention of `x`'s positions over a memory's keys and values ([`Self::memory`]).
    ///
    /// # Shapes
    /// `x: (B, T, d)`, `bias: (B, 1, 1, S)` → `(B, T, d)`, `(B, heads, T, S)`
    pub fn cross_attention(
        &self,
        x: &Tensor,
        memory: &KeyValues,
        bias: Option<&Tensor>,
        p: f64,
        rng: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor)> {
        let (b, t, _) = x.dims3()?;
        expect_dims("cross-attention input", x, &[b, t, self.d])?;
        let q = self.split_heads(&self.q.forward_fused(x)?)?;
        self.attend(&q, memory, bias, p, rng)
    }

    /// `softmax(q kᵀ / sqrt(d_head) + bias) v`, heads joined and projected; dropout `p`
    /// on the weights while training (the returned weights are before dropout).
    fn attend(
        &self,
        q: &Tensor,
        kv: &KeyValues,
        bias: Option<&Tensor>,
        p: f64,
        rng: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor)> {
        let (b, h, t, dh) = q.dims4()?;
        let scale = 1.0 / (dh as f64).sqrt();
        let scores = (q.matmul(&kv.k.t()?)? * scale)?;
        let scores = match bias {
            Some(bias) => scores.broadcast_add(bias)?,
            None => scores,
        };
        // Not candle_nn::ops::softmax_last_dim: it has no backward pass.
        let weights = crate::fused::softmax(&scores)?;
        let dropped = dropout(&weights, p, rng)?;
        let context = dropped.matmul(&kv.v)?.transpose(1, 2)?.reshape((b, t, h * dh))?;
        Ok((self.out.forward_fused(&context)?, weights))
    }
}
