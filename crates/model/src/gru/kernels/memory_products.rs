//! Products of one decoder step's vectors with the batch's memory `(B, S, H)`: the context
//! `Σ_s w[b, s] · values[b, s, :]` and dot-product scores `keys[b, s, :] · q[b, :]`.
//!
//! Through candle's `matmul` each step's gradient for the memory was a product that recorded
//! its operands, and the memory's summed gradient is a chain of additions over every step:
//! the chain kept all `T` per-step gradients `(B, S, H)` and all `T` partial sums alive until
//! backward reached the memory, after the last decoder step (about 100 MB of a 2,000-pair
//! Multi30k epoch's peak with 64-sentence batches, more with longer sentences). These ops
//! return plain tensors from their backward passes, so each step's gradient is added and
//! freed at once.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, D};

use crate::kernels::{f32_slice, with_f32};

/// `Σ_h a[h] · b[h]` in eight lanes (so that the loop vectorises).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    crate::kernels::fast_math::lane_sum3(a, b, b, |x, y, _| x * y)
}

/// `out += w · x`, element by element.
#[inline(always)]
fn add_scaled(out: &mut [f32], w: f32, x: &[f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o += w * x;
    }
}

/// `out = w · x`, element by element.
#[inline(always)]
fn scaled(out: &mut [f32], w: f32, x: &[f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = w * x;
    }
}

/// The dimensions `(B, S, H)` of a memory and a per-row `(B, n)` operand, checked.
fn dims(memory: &Layout, rows: &Layout, n: usize, what: &str) -> Result<(usize, usize, usize)> {
    let (b, s, h) = memory.shape().dims3()?;
    let (rb, rn) = rows.shape().dims2()?;
    if rb != b || rn != n {
        candle_core::bail!("{what}: expected ({b}, {n}) beside a ({b}, {s}, {h}) memory, got ({rb}, {rn})");
    }
    Ok((b, s, h))
}

/// `weights · values` per row: the attention context.
struct WeightedSum;

/// `context[b, :] = Σ_s weights[b, s] · values[b, s, :]`.
///
/// # Shapes
/// `weights: (B, S)`, `values: (B, S, H)` → `(B, H)`
pub fn weighted_sum(weights: &Tensor, values: &Tensor) -> Result<Tensor> {
    if !values.device().is_cpu() {
        return weights.unsqueeze(1)?.matmul(values)?.squeeze(1);
    }
    weights.contiguous()?.apply_op2(&values.contiguous()?, WeightedSum)
}

impl CustomOp2 for WeightedSum {
    fn name(&self) -> &'static str {
        "weighted-sum"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, s, h) = dims(l2, l1, l2.shape().dims3()?.1, "weighted-sum weights")?;
        let (w, v) = (f32_slice(s1, l1, "weights")?, f32_slice(s2, l2, "values")?);
        let mut out = vec![0f32; b * h];
        for (bi, out) in out.chunks_exact_mut(h).enumerate() {
            for si in 0..s {
                add_scaled(out, w[bi * s + si], &v[(bi * s + si) * h..(bi * s + si + 1) * h]);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, h))))
    }

    fn bwd(
        &self,
        weights: &Tensor,
        values: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (b, s, h) = values.dims3()?;
        let mut d_w = vec![0f32; b * s];
        let mut d_v = vec![0f32; b * s * h];
        with_f32(weights, |w| {
            with_f32(values, |v| {
                with_f32(grad, |g| {
                    for bi in 0..b {
                        let g = &g[bi * h..(bi + 1) * h];
                        for si in 0..s {
                            let row = (bi * s + si) * h..(bi * s + si + 1) * h;
                            d_w[bi * s + si] = dot(g, &v[row.clone()]);
                            scaled(&mut d_v[row], w[bi * s + si], g);
                        }
                    }
                })
            })
        })???;
        let dev = values.device();
        Ok((Some(Tensor::from_vec(d_w, (b, s), dev)?), Some(Tensor::from_vec(d_v, (b, s, h), dev)?)))
    }
}

/// `keys · query` per row: Luong's dot and general scores.
struct DotScores;

/// `scores[b, s] = keys[b, s, :] · query[b, :]`.
///
/// # Shapes
/// `keys: (B, S, H)`, `query: (B, H)` → `(B, S)`
pub fn dot_scores(keys: &Tensor, query: &Tensor) -> Result<Tensor> {
    if !keys.device().is_cpu() {
        return keys.matmul(&query.unsqueeze(D::Minus1)?)?.squeeze(D::Minus1);
    }
    keys.contiguous()?.apply_op2(&query.contiguous()?, DotScores)
}

impl CustomOp2 for DotScores {
    fn name(&self) -> &'static str {
        "dot-scores"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, s, h) = dims(l1, l2, l1.shape().dims3()?.2, "dot-scores query")?;
        let (k, q) = (f32_slice(s1, l1, "keys")?, f32_slice(s2, l2, "query")?);
        let mut out = vec![0f32; b * s];
        for bi in 0..b {
            let q = &q[bi * h..(bi + 1) * h];
            for si in 0..s {
                out[bi * s + si] = dot(&k[(bi * s + si) * h..(bi * s + si + 1) * h], q);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, s))))
    }

    fn bwd(
        &self,
        keys: &Tensor,
        query: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (b, s, h) = keys.dims3()?;
        let mut d_k = vec![0f32; b * s * h];
        let mut d_q = vec![0f32; b * h];
        with_f32(keys, |k| {
            with_f32(query, |q| {
                with_f32(grad, |g| {
                    for bi in 0..b {
                        let (q, d_q) = (&q[bi * h..(bi + 1) * h], &mut d_q[bi * h..(bi + 1) * h]);
                        for si in 0..s {
                            let row = (bi * s + si) * h..(bi * s + si + 1) * h;
                            let gs = g[bi * s + si];
                            add_scaled(d_q, gs, &k[row.clone()]);
                            scaled(&mut d_k[row], gs, q);
                        }
                    }
                })
            })
        })???;
        let dev = keys.device();
        Ok((Some(Tensor::from_vec(d_k, (b, s, h), dev)?), Some(Tensor::from_vec(d_q, (b, h), dev)?)))
    }
}
