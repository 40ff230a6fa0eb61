//! Softmax over the last dimension with a backward pass (candle's fused
//! `ops::softmax_last_dim` has none; its composed `ops::softmax` takes five ops and their
//! temporaries).

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, D};

use crate::kernels::{f32_slice, with_f32_all};

struct SoftmaxOp;

/// `exp(x − max) / Σ exp(x − max)` along the last dimension.
///
/// # Shapes
/// `x: (.., n)` → like `x`
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::ops::softmax(x, D::Minus1);
    }
    x.contiguous()?.apply_op1(SoftmaxOp)
}

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "softmax-rows"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "x")?;
        let n = l.shape().dims().last().copied().unwrap_or(0);
        let mut out = vec![0f32; x.len()];
        if n > 0 {
            for (row, y) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for (y, &v) in y.iter_mut().zip(row) {
                    *y = (v - max).exp();
                    sum += *y;
                }
                let inv = 1.0 / sum;
                for y in y.iter_mut() {
                    *y *= inv;
                }
            }
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    /// `dx = y ⊙ (g − Σ g ⊙ y)` per row.
    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let n = res.dims().last().copied().unwrap_or(0);
        let grad = grad.contiguous()?;
        let dx = with_f32_all(&[res, &grad], |s| {
            let (y, g) = (s[0], s[1]);
            let mut dx = vec![0f32; y.len()];
            if n > 0 {
                for ((yr, gr), dr) in y.chunks_exact(n).zip(g.chunks_exact(n)).zip(dx.chunks_exact_mut(n)) {
                    let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                    for ((d, &y), &g) in dr.iter_mut().zip(yr).zip(gr) {
                        *d = y * (g - dot);
                    }
                }
            }
            dx
        })?;
        Ok(Some(Tensor::from_vec(dx, res.shape(), res.device())?))
    }
}
