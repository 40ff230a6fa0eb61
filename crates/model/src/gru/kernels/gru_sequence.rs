//! A whole masked GRU recurrence over a sequence as one op, with backpropagation through
//! time written out. Per-step candle ops made a graph node, a gradient tensor and a
//! gradient accumulation of `W_hh`'s size for every position; here the recurrent weight's
//! gradient is one product over all positions, and nothing is allocated per step.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::gru_cell::{gates, gates_mut, unit_backward, unit_forward};
use super::Products;
use crate::kernels::matmul::{add_to_rows, linear_product, matmul, transpose, View};
use crate::kernels::{f32_slice, with_f32};

/// What the forward pass keeps for the backward pass, time-major in processing order.
struct Saved {
    /// `(S, B, H)`: the state before each step.
    h_prev: Vec<f32>,
    /// `(S, B, 3H)`: the hidden-side pre-activations `W_hh h + b_hh` of each step.
    gh: Vec<f32>,
}

struct GruSequence {
    hidden: usize,
    /// `(B, S)` 1.0 at real positions, or `None` when nothing is padded.
    mask: Option<Vec<f32>>,
    reverse: bool,
    /// Detached for inference: nothing is kept for backward.
    products: Products,
    saved: Mutex<Option<Saved>>,
}

/// Runs a GRU over every position of `gi` from a zero state. Masked positions leave the
/// state unchanged and output zeros (what packed sequences give in PyTorch).
///
/// # Shapes
/// `gi: (B, S, 3H)` input pre-activations `W_ih x + b_ih`, `w_hh: (3H, H)`, `b_hh: (3H)`,
/// `mask: (B, S)` → `(B, S + 1, H)`: the outputs of the S positions, then the final state.
pub fn gru_sequence(
    gi: &Tensor,
    w_hh: &Tensor,
    b_hh: &Tensor,
    mask: Option<&Tensor>,
    reverse: bool,
    products: Products,
) -> Result<Tensor> {
    let (b, s, h3) = gi.dims3()?;
    let (rows, hidden) = w_hh.dims2()?;
    if rows != h3 || h3 != 3 * hidden || b_hh.dims1()? != h3 {
        candle_core::bail!("gru-sequence: gi (B, S, 3H), w_hh (3H, H) and b_hh (3H) disagree");
    }
    let mask = match mask {
        Some(m) => {
            if m.dims2()? != (b, s) {
                candle_core::bail!("gru-sequence: mask must be (B, S)");
            }
            Some(m.flatten_all()?.to_vec1::<f32>()?)
        }
        None => None,
    };
    let op = GruSequence { hidden, mask, reverse, products, saved: Mutex::new(None) };
    gi.contiguous()?.apply_op3(&w_hh.contiguous()?, &b_hh.contiguous()?, op)
}

impl GruSequence {
    fn order(&self, s: usize) -> Vec<usize> {
        if self.reverse {
            (0..s).rev().collect()
        } else {
            (0..s).collect()
        }
    }

    fn mask_at(&self, row: usize, t: usize, s: usize) -> f32 {
        self.mask.as_ref().map_or(1.0, |m| m[row * s + t])
    }
}

impl CustomOp3 for GruSequence {
    fn name(&self) -> &'static str {
        "gru-sequence"
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
        let (gi, w, bias) = (f32_slice(s1, l1, "gi")?, f32_slice(s2, l2, "w_hh")?, f32_slice(s3, l3, "b_hh")?);
        let hs = self.hidden;
        let (b, s) = match l1.dims() {
            [b, s, _] => (*b, *s),
            _ => candle_core::bail!("gru-sequence: gi must be (B, S, 3H)"),
        };
        let mut out = vec![0f32; b * (s + 1) * hs];
        let mut h = vec![0f32; b * hs];
        // What backward needs, kept for every step; for inference, only the step at hand.
        let kept = if self.products.is_detached() { 1 } else { s };
        let mut saved = Saved { h_prev: vec![0f32; kept * b * hs], gh: vec![0f32; kept * b * 3 * hs] };
        for (step, t) in self.order(s).into_iter().enumerate() {
            let slot = step % kept;
            if kept > 1 {
                saved.h_prev[slot * b * hs..(slot + 1) * b * hs].copy_from_slice(&h);
            }
            let gh = &mut saved.gh[slot * b * 3 * hs..(slot + 1) * b * 3 * hs];
            // Weight-major: gemm packs nothing of W_hh (2.6× faster at 32 rows than h W_hhᵀ,
            // which packed the whole weight at every step).
            gh.copy_from_slice(&linear_product(&h, b, hs, w, 3 * hs));
            add_to_rows(gh, bias);
            for row in 0..b {
                let m = self.mask_at(row, t, s);
                let gi = &gi[(row * s + t) * 3 * hs..(row * s + t + 1) * 3 * hs];
                let gh = &gh[row * 3 * hs..(row + 1) * 3 * hs];
                let h = &mut h[row * hs..(row + 1) * hs];
                let o = &mut out[(row * (s + 1) + t) * hs..(row * (s + 1) + t + 1) * hs];
                let ((ir, iz, inn), (hr, hz, hn)) = (gates(gi, hs), gates(gh, hs));
                let (h, o) = (&mut h[..hs], &mut o[..hs]);
                for j in 0..hs {
                    let (_, _, _, h_new) = unit_forward([ir[j], iz[j], inn[j]], [hr[j], hz[j], hn[j]], h[j]);
                    h[j] += m * (h_new - h[j]);
                    o[j] = h[j] * m;
                }
            }
        }
        for row in 0..b {
            out[(row * (s + 1) + s) * hs..(row * (s + 1) + s + 1) * hs].copy_from_slice(&h[row * hs..(row + 1) * hs]);
        }
        if kept == s {
            if let Ok(mut slot) = self.saved.lock() {
                *slot = Some(saved);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, s + 1, hs))))
    }

    fn bwd(
        &self,
        gi: &Tensor,
        w_hh: &Tensor,
        _b_hh: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let hs = self.hidden;
        let (b, s, _) = gi.dims3()?;
        let saved = self.saved.lock().ok().and_then(|mut g| g.take());
        let Some(saved) = saved else { candle_core::bail!("gru-sequence: backward without a forward pass") };
        let mut d_gi = vec![0f32; b * s * 3 * hs];
        // Time-major in processing order, like `saved`.
        let mut d_gh = vec![0f32; s * b * 3 * hs];
        let mut dh = vec![0f32; b * hs];
        with_f32(gi, |gi| {
            with_f32(w_hh, |w| {
                with_f32(grad, |g| {
                    for row in 0..b {
                        let from = (row * (s + 1) + s) * hs;
                        dh[row * hs..(row + 1) * hs].copy_from_slice(&g[from..from + hs]);
                    }
                    let order = self.order(s);
                    let w_t = transpose(w, 3 * hs, hs);
                    for (step, &t) in order.iter().enumerate().rev() {
                        let h_prev = &saved.h_prev[step * b * hs..(step + 1) * b * hs];
                        let gh = &saved.gh[step * b * 3 * hs..(step + 1) * b * 3 * hs];
                        let dgh = &mut d_gh[step * b * 3 * hs..(step + 1) * b * 3 * hs];
                        for row in 0..b {
                            let m = self.mask_at(row, t, s);
                            let o3 = row * 3 * hs;
                            let o1 = row * hs;
                            let gi_row = (row * s + t) * 3 * hs..(row * s + t + 1) * 3 * hs;
                            let g_out = (row * (s + 1) + t) * hs..(row * (s + 1) + t + 1) * hs;
                            let ((ir, iz, inn), (hr, hz, hn)) =
                                (gates(&gi[gi_row.clone()], hs), gates(&gh[o3..o3 + 3 * hs], hs));
                            let (dir, diz, din) = gates_mut(&mut d_gi[gi_row], hs);
                            let (dhr, dhz, dhn) = gates_mut(&mut dgh[o3..o3 + 3 * hs], hs);
                            let (g, h_prev, dh) = (&g[g_out], &h_prev[o1..o1 + hs], &mut dh[o1..o1 + hs]);
                            for j in 0..hs {
                                // Output o = h_t * m, state h_t = h_prev + m (h' − h_prev).
                                let d_ht = dh[j] + g[j] * m;
                                let (dgi, dgh_j, dh_z) =
                                    unit_backward([ir[j], iz[j], inn[j]], [hr[j], hz[j], hn[j]], h_prev[j], m * d_ht);
                                (dir[j], diz[j], din[j]) = (dgi[0], dgi[1], dgi[2]);
                                (dhr[j], dhz[j], dhn[j]) = (dgh_j[0], dgh_j[1], dgh_j[2]);
                                dh[j] = (1.0 - m) * d_ht + dh_z;
                            }
                        }
                        // dh_prev += dgh · W_hh, weight-major over W_hhᵀ (made once above).
                        let back = linear_product(dgh, b, 3 * hs, &w_t, hs);
                        dh.iter_mut().zip(&back).for_each(|(d, &x)| *d += x);
                    }
                })
            })
        })???;
        // dW_hh = Σ_steps dghᵀ h_prev, as one product over all steps and rows.
        let mut d_w = vec![0f32; 3 * hs * hs];
        matmul(&mut d_w, View::rows(&d_gh, s * b, 3 * hs).t(), View::rows(&saved.h_prev, s * b, hs), false);
        let d_b = crate::kernels::matmul::column_sums(&d_gh, 3 * hs);
        let dev = gi.device();
        Ok((
            Some(Tensor::from_vec(d_gi, (b, s, 3 * hs), dev)?),
            Some(Tensor::from_vec(d_w, (3 * hs, hs), dev)?),
            Some(Tensor::from_vec(d_b, 3 * hs, dev)?),
        ))
    }
}
