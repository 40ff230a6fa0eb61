//! Layer normalisation from differentiable ops: candle's fused `ops::layer_norm` (what
//! `candle_nn::LayerNorm` calls for contiguous input) has no backward pass and would
//! silently stop gradients.

use candle_core::{Tensor, D};
use candle_nn::{Init, VarBuilder};

use crate::error::{expect_dims, Result};

/// `torch.nn.LayerNorm(d)` (eps 1e-5): `weight`, `bias`, each `(d)`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    dim: usize,
}

const EPS: f64 = 1e-5;

impl LayerNorm {
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias, dim })
    }

    /// Normalises the last dimension: `(x − mean) / sqrt(var + eps) · weight + bias`
    /// with the biased variance, as PyTorch does.
    ///
    /// # Shapes
    /// `x: (.., d)` → the same
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = x.dims().last().copied().unwrap_or(0);
        if last != self.dim {
            let mut want = x.dims().to_vec();
            if let Some(l) = want.last_mut() {
                *l = self.dim;
            }
            expect_dims("layer norm input", x, &want)?;
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + EPS)?.sqrt()?)?;
        Ok(normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)?)
    }
}
