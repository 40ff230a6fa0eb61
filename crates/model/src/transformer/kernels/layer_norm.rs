//! Layer normalisation over the last dimension in one pass forward and one backward
//! (candle's own fused `ops::layer_norm` has no backward pass).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};

use crate::kernels::{f32_slice, with_f32_all};

/// PyTorch's `nn.LayerNorm` epsilon.
pub const LAYER_NORM_EPS: f32 = 1e-5;

struct LayerNormOp;

/// `(x − mean) / sqrt(var + 1e-5) · weight + bias` over the last dimension (biased
/// variance, as PyTorch).
///
/// # Shapes
/// `x: (.., d)`, `weight: (d)`, `bias: (d)` → like `x`
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return layer_norm_composed(x, weight, bias);
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNormOp)
}

/// The same from candle's differentiable ops (other devices; the tests' reference).
pub fn layer_norm_composed(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + f64::from(LAYER_NORM_EPS))?.sqrt()?)?;
    normed.broadcast_mul(weight)?.broadcast_add(bias)
}

/// Each row's mean and 1 / sqrt(var + eps).
pub(crate) fn moments(row: &[f32]) -> (f32, f32) {
    let d = row.len() as f32;
    let mean = row.iter().sum::<f32>() / d;
    let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / d;
    (mean, 1.0 / (var + LAYER_NORM_EPS).sqrt())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (f32_slice(s1, l1, "x")?, f32_slice(s2, l2, "weight")?, f32_slice(s3, l3, "bias")?);
        let d = w.len();
        if d == 0 || b.len() != d || l1.shape().dims().last() != Some(&d) {
            candle_core::bail!("layer-norm: x (.., d), weight (d) and bias (d) disagree");
        }
        let mut out = vec![0f32; x.len()];
        crate::kernels::simd::widest(
            #[inline(always)]
            || {
                for (row, y) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
                    let (mean, rstd) = moments(row);
                    for (((y, &v), &w), &b) in y.iter_mut().zip(row).zip(w).zip(b) {
                        *y = (v - mean) * rstd * w + b;
                    }
                }
            },
        );
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = w.dim(0)?;
        let grad = grad.contiguous()?;
        let (dx, dw, db) = with_f32_all(&[x, w, &grad], |s| {
            let (x, w, g) = (s[0], s[1], s[2]);
            let mut dx = vec![0f32; x.len()];
            let mut dw = vec![0f32; d];
            let mut db = vec![0f32; d];
            let mut gw = vec![0f32; d];
            let mut xhat = vec![0f32; d];
            crate::kernels::simd::widest(
                #[inline(always)]
                || {
                    for ((row, gr), dxr) in x.chunks_exact(d).zip(g.chunks_exact(d)).zip(dx.chunks_exact_mut(d)) {
                        let (mean, rstd) = moments(row);
                        for j in 0..d {
                            xhat[j] = (row[j] - mean) * rstd;
                            gw[j] = gr[j] * w[j];
                            dw[j] += gr[j] * xhat[j];
                            db[j] += gr[j];
                        }
                        let mean_gw = gw.iter().sum::<f32>() / d as f32;
                        let mean_gwx = gw.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f32>() / d as f32;
                        for j in 0..d {
                            dxr[j] = rstd * (gw[j] - mean_gw - xhat[j] * mean_gwx);
                        }
                    }
                },
            );
            (dx, dw, db)
        })?;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, d, dev)?),
            Some(Tensor::from_vec(db, d, dev)?),
        ))
    }
}
