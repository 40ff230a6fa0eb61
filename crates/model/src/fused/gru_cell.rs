//! The GRU cell's element-wise part: gates and state update.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};

use super::{f32_slice, sigmoid, with_f32};

struct GruCell {
    hidden: usize,
}

/// `h' = (1 − z) ⊙ n + z ⊙ h` with `r = σ(gi_r + gh_r)`, `z = σ(gi_z + gh_z)`,
/// `n = tanh(gi_n + r ⊙ gh_n)`; gate order (r, z, n) as PyTorch.
///
/// # Shapes
/// `gi: (B, 3H)`, `gh: (B, 3H)`, `h: (B, H)` → `(B, H)`
pub fn gru_cell(gi: &Tensor, gh: &Tensor, h: &Tensor) -> Result<Tensor> {
    let hidden = h.dim(D::Minus1)?;
    if !h.device().is_cpu() {
        return composed(gi, gh, h, hidden);
    }
    gi.contiguous()?.apply_op3(&gh.contiguous()?, &h.contiguous()?, GruCell { hidden })
}

/// The same with candle's ops, for devices without the fused kernel.
pub(crate) fn composed(gi: &Tensor, gh: &Tensor, h: &Tensor, hs: usize) -> Result<Tensor> {
    // Every slice made contiguous: the CUDA kernels are then given plain row-major inputs.
    let part = |t: &Tensor, from: usize, len: usize| t.narrow(D::Minus1, from, len)?.contiguous();
    let rz = candle_nn::ops::sigmoid(&(part(gi, 0, 2 * hs)? + part(gh, 0, 2 * hs)?)?)?;
    let r = part(&rz, 0, hs)?;
    let z = part(&rz, hs, hs)?;
    let n = (part(gi, 2 * hs, hs)? + (r * part(gh, 2 * hs, hs)?)?)?.tanh()?;
    &n + (z * (h - &n)?)?
}

impl CustomOp3 for GruCell {
    fn name(&self) -> &'static str {
        "gru-cell"
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
        let (gi, gh, h) = (f32_slice(s1, l1, "gi")?, f32_slice(s2, l2, "gh")?, f32_slice(s3, l3, "h")?);
        let hs = self.hidden;
        let b = h.len() / hs;
        if gi.len() != b * 3 * hs || gh.len() != b * 3 * hs {
            candle_core::bail!("gru-cell: gates must be (B, 3H) for h (B, H)");
        }
        let mut out = vec![0f32; b * hs];
        for row in 0..b {
            let (gi, gh) = (&gi[row * 3 * hs..(row + 1) * 3 * hs], &gh[row * 3 * hs..(row + 1) * 3 * hs]);
            let (h, o) = (&h[row * hs..(row + 1) * hs], &mut out[row * hs..(row + 1) * hs]);
            for j in 0..hs {
                let r = sigmoid(gi[j] + gh[j]);
                let z = sigmoid(gi[hs + j] + gh[hs + j]);
                let n = super::fast_math::tanh(gi[2 * hs + j] + r * gh[2 * hs + j]);
                o[j] = n + z * (h[j] - n);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, hs))))
    }

    fn bwd(
        &self,
        gi: &Tensor,
        gh: &Tensor,
        h: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let hs = self.hidden;
        let (b, _) = h.dims2()?;
        let mut d_gi = vec![0f32; b * 3 * hs];
        let mut d_gh = vec![0f32; b * 3 * hs];
        let mut d_h = vec![0f32; b * hs];
        with_f32(gi, |gi| {
            with_f32(gh, |gh| {
                with_f32(h, |h| {
                    with_f32(grad, |g| {
                        for row in 0..b {
                            let o3 = row * 3 * hs;
                            let o1 = row * hs;
                            for j in 0..hs {
                                let r = sigmoid(gi[o3 + j] + gh[o3 + j]);
                                let z = sigmoid(gi[o3 + hs + j] + gh[o3 + hs + j]);
                                let ghn = gh[o3 + 2 * hs + j];
                                let n = super::fast_math::tanh(gi[o3 + 2 * hs + j] + r * ghn);
                                let gj = g[o1 + j];
                                d_h[o1 + j] = gj * z;
                                let dz = gj * (h[o1 + j] - n) * z * (1.0 - z);
                                let dn = gj * (1.0 - z) * (1.0 - n * n);
                                let dr = dn * ghn * r * (1.0 - r);
                                d_gi[o3 + j] = dr;
                                d_gh[o3 + j] = dr;
                                d_gi[o3 + hs + j] = dz;
                                d_gh[o3 + hs + j] = dz;
                                d_gi[o3 + 2 * hs + j] = dn;
                                d_gh[o3 + 2 * hs + j] = dn * r;
                            }
                        }
                    })
                })
            })
        })????;
        let dev = h.device();
        Ok((
            Some(Tensor::from_vec(d_gi, (b, 3 * hs), dev)?),
            Some(Tensor::from_vec(d_gh, (b, 3 * hs), dev)?),
            Some(Tensor::from_vec(d_h, (b, hs), dev)?),
        ))
    }
}
