//! The four attention score functions and masked softmax over source positions.

use candle_core::{Tensor, D};
use candle_nn::VarBuilder;

use super::kernels::Products;
use super::AttentionKind;
use crate::error::{expect_dims, ModelError, Result};
use crate::kernels::SharedProduct;
use crate::params::{linear, Linear};

/// Attention parameters; module path `decoder.attention`.
#[derive(Debug, Clone)]
pub enum Attention {
    /// `attn: Linear(E + H → max_length)` over `[embedded; previous hidden]`.
    Location {
        attn: Linear,
        max_length: usize,
    },
    /// `wa: Linear(H → H)`, `ua: Linear(H → H)`, `va: Linear(H → 1)`.
    Bahdanau {
        wa: Linear,
        ua: Linear,
        va: Linear,
    },
    LuongDot,
    /// `w: Linear(H → H, no bias)`.
    LuongGeneral {
        w: Linear,
    },
}

impl Attention {
    pub fn new(kind: AttentionKind, emb: usize, hidden: usize, max_length: usize, vb: VarBuilder) -> Result<Self> {
        Ok(match kind {
            AttentionKind::Location => {
                Self::Location { attn: linear(emb + hidden, max_length, true, vb.pp("attn"))?, max_length }
            }
            AttentionKind::Bahdanau => Self::Bahdanau {
                wa: linear(hidden, hidden, true, vb.pp("wa"))?,
                ua: linear(hidden, hidden, true, vb.pp("ua"))?,
                va: linear(hidden, 1, true, vb.pp("va"))?,
            },
            AttentionKind::LuongDot => Self::LuongDot,
            AttentionKind::LuongGeneral => Self::LuongGeneral { w: linear(hidden, hidden, false, vb.pp("w"))? },
        })
    }

    /// A copy whose per-step products form their weight gradients once per batch (see
    /// [`crate::kernels::SharedProduct`]); the products are pushed to `products`.
    pub fn shared(&self, products: &mut Vec<SharedProduct>) -> Result<Self> {
        let mut share = |l: &Linear| l.shared_into(products);
        Ok(match self {
            Self::Location { attn, max_length } => Self::Location { attn: share(attn)?, max_length: *max_length },
            Self::Bahdanau { wa, ua, va } => Self::Bahdanau { wa: share(wa)?, ua: ua.clone(), va: va.clone() },
            Self::LuongDot | Self::LuongGeneral { .. } => self.clone(),
        })
    }

    /// A copy for inference (see [`Linear::detached`]).
    pub fn detached(&self) -> Self {
        match self {
            Self::Location { attn, max_length } => Self::Location { attn: attn.detached(), max_length: *max_length },
            Self::Bahdanau { wa, ua, va } => Self::Bahdanau { wa: wa.detached(), ua: ua.detached(), va: va.clone() },
            Self::LuongDot => Self::LuongDot,
            Self::LuongGeneral { w } => Self::LuongGeneral { w: w.detached() },
        }
    }

    /// The longest source this attention can handle, if limited.
    pub fn max_source_length(&self) -> Option<usize> {
        match self {
            Self::Location { max_length, .. } => Some(*max_length),
            _ => None,
        }
    }

    /// Per-batch key projections, computed once (Bahdanau's `U k`, Luong-general's `W k`);
    /// detached `products` for inference (no gradients).
    ///
    /// # Shapes
    /// `outputs: (B, S, H)` → `(B, S, H)` or `None`
    pub fn precompute_keys(&self, outputs: &Tensor, products: Products) -> Result<Option<Tensor>> {
        // As (B*S, H) rows: a plain 2-D matmul. A 3-D input would make candle multiply by
        // the weight broadcast over the batch (stride 0), which gave wrong results on CUDA.
        let (b, s, h) = outputs.dims3()?;
        let project = |l: &Linear| -> Result<Tensor> {
            let rows = outputs.reshape((b * s, h))?;
            let keys = match products {
                Products::Detached => l.forward_detached(&rows)?,
                Products::Tracked => l.forward(&rows)?,
            };
            Ok(keys.reshape((b, s, ()))?)
        };
        Ok(match self {
            Self::Bahdanau { ua, .. } => Some(project(ua)?),
            Self::LuongGeneral { w } => Some(project(w)?),
            Self::Location { .. } | Self::LuongDot => None,
        })
    }

    /// Unnormalised scores of every source position.
    ///
    /// # Shapes
    /// `embedded: (B, E)`, `query: (B, H)`, `outputs: (B, S, H)`, `keys: (B, S, H)` → `(B, S)`
    pub fn scores(&self, embedded: &Tensor, query: &Tensor, outputs: &Tensor, keys: Option<&Tensor>) -> Result<Tensor> {
        let (b, s, h) = outputs.dims3()?;
        expect_dims("attention query", query, &[b, h])?;
        let missing =
            || ModelError::Shape { what: "attention keys", expected: "precomputed".into(), got: "none".into() };
        Ok(match self {
            Self::Location { attn, max_length } => {
                if s > *max_length {
                    return Err(ModelError::SourceTooLong { len: s, max: *max_length });
                }
                let all = attn.forward(&Tensor::cat(&[embedded, query], D::Minus1)?)?;
                all.narrow(D::Minus1, 0, s)?
            }
            Self::Bahdanau { wa, va, .. } => {
                let keys = keys.ok_or_else(missing)?;
                let v = va.weight().reshape(h)?;
                let scores = super::kernels::additive_score(keys, &wa.forward(query)?, &v)?;
                match va.bias() {
                    Some(b) => scores.broadcast_add(b)?,
                    None => scores,
                }
            }
            Self::LuongDot => super::kernels::dot_scores(outputs, query)?,
            Self::LuongGeneral { .. } => {
                let keys = keys.ok_or_else(missing)?;
                super::kernels::dot_scores(keys, query)?
            }
        })
    }
}

/// An additive mask: 0 at real positions, −1e9 at PAD, so that after softmax PAD
/// weights are exactly 0.0 (exp underflows) and real scores are untouched.
///
/// # Shapes
/// `mask: (B, S)` of 1.0/0.0 → `(B, S)`
pub fn mask_bias(mask: &Tensor) -> Result<Tensor> {
    Ok(((mask - 1.0)? * 1e9)?)
}

/// Softmax over source positions, optionally masked, and the weighted sum of `values`.
///
/// # Shapes
/// `scores: (B, S)`, `bias: (B, S)`, `values: (B, S, H)` → weights `(B, S)`, context `(B, H)`
pub fn attend(scores: &Tensor, bias: Option<&Tensor>, values: &Tensor) -> Result<(Tensor, Tensor)> {
    let scores = match bias {
        Some(b) => (scores + b)?,
        None => scores.clone(),
    };
    let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
    let context = super::kernels::weighted_sum(&weights, values)?;
    Ok((weights, context))
}
