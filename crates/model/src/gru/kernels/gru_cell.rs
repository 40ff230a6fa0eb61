//! The GRU cell's element-wise part: gates and state update.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};

use crate::kernels::fast_math::sigmoid;
use crate::kernels::{f32_slice, with_f32};

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

/// One unit of the cell: gate pre-activations `gi`, `gh` as (r, z, n) and the old state
/// `h` → (r, z, n, h'). Shared with the fused recurrence so both compute the same bits.
#[inline(always)]
pub(crate) fn unit_forward(gi: [f32; 3], gh: [f32; 3], h: f32) -> (f32, f32, f32, f32) {
    let r = sigmoid(gi[0] + gh[0]);
    let z = sigmoid(gi[1] + gh[1]);
    let n = crate::kernels::fast_math::tanh(gi[2] + r * gh[2]);
    (r, z, n, n + z * (h - n))
}

/// The backward pass of [`unit_forward`] for an incoming gradient `g` on `h'`:
/// (d gi, d gh, d h through the `z ⊙ h` path).
#[inline(always)]
pub(super) fn unit_backward(gi: [f32; 3], gh: [f32; 3], h: f32, g: f32) -> ([f32; 3], [f32; 3], f32) {
    let (r, z, n, _) = unit_forward(gi, gh, h);
    let dz = g * (h - n) * z * (1.0 - z);
    let dn = g * (1.0 - z) * (1.0 - n * n);
    let dr = dn * gh[2] * r * (1.0 - r);
    ([dr, dz, dn], [dr, dz, dn * r], g * z)
}

/// The (r, z, n) thirds of a `3H` row, each exactly `hs` long (so that loops over
/// `0..hs` index them without bounds checks and vectorise).
#[inline(always)]
pub(crate) fn gates(x: &[f32], hs: usize) -> (&[f32], &[f32], &[f32]) {
    let (r, rest) = x.split_at(hs);
    let (z, n) = rest.split_at(hs);
    (&r[..hs], &z[..hs], &n[..hs])
}

/// [`gates`] for a mutable row.
#[inline(always)]
pub(super) fn gates_mut(x: &mut [f32], hs: usize) -> (&mut [f32], &mut [f32], &mut [f32]) {
    let (r, rest) = x.split_at_mut(hs);
    let (z, n) = rest.split_at_mut(hs);
    (&mut r[..hs], &mut z[..hs], &mut n[..hs])
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
            let ((ir, iz, inn), (hr, hz, hn)) = (gates(gi, hs), gates(gh, hs));
            for j in 0..hs {
                let (_, _, _, h_new) = unit_forward([ir[j], iz[j], inn[j]], [hr[j], hz[j], hn[j]], h[j]);
                o[j] = h_new;
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
                            let r3 = row * 3 * hs..(row + 1) * 3 * hs;
                            let r1 = row * hs..(row + 1) * hs;
                            let ((ir, iz, inn), (hr, hz, hn)) =
                                (gates(&gi[r3.clone()], hs), gates(&gh[r3.clone()], hs));
                            let (h, g, d_h) = (&h[r1.clone()], &g[r1.clone()], &mut d_h[r1]);
                            let (dir, diz, din) = gates_mut(&mut d_gi[r3.clone()], hs);
                            let (dhr, dhz, dhn) = gates_mut(&mut d_gh[r3], hs);
                            for j in 0..hs {
                                let (dgi, dgh, dh) =
                                    unit_backward([ir[j], iz[j], inn[j]], [hr[j], hz[j], hn[j]], h[j], g[j]);
                                (dir[j], diz[j], din[j]) = (dgi[0], dgi[1], dgi[2]);
                                (dhr[j], dhz[j], dhn[j]) = (dgh[0], dgh[1], dgh[2]);
                                d_h[j] = dh;
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
