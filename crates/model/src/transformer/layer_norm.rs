//! `torch.nn.LayerNorm` as a module: candle's fused `ops::layer_norm` (what
//! `candle_nn::LayerNorm` calls for contiguous input) has no backward pass and would
//! silently stop gradients, so the arithmetic is [`super::kernels::layer_norm`]'s.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use crate::error::{expect_dims, Result};

/// `torch.nn.LayerNorm(d)` (eps 1e-5): `weight`, `bias`, each `(d)`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    dim: usize,
}

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
    /// The scale and shift, `(d)` each.
    pub fn parameters(&self) -> [&Tensor; 2] {
        [&self.weight, &self.bias]
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = x.dims().last().copied().unwrap_or(0);
        if last != self.dim {
            let mut want = x.dims().to_vec();
            if let Some(l) = want.last_mut() {
                *l = self.dim;
            }
            expect_dims("layer norm input", x, &want)?;
        }
        Ok(super::kernels::layer_norm(x, &self.weight, &self.bias)?)
    }
}
