//! Bahdanau's additive scores `v · tanh(k + q)` over every source position.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};

use crate::kernels::{f32_slice, with_f32};

/// Keeps nothing for the backward pass: it recomputes `tanh(k + q)` a row at a time. Saving
/// it took `(B, S, H)` floats per decoder step, `T · B · S · H` a batch: most of a GRU
/// batch's autograd graph (about 130 MB of a 64-sentence Multi30k batch of 45 pieces a
/// side), where the recomputation costs one more `tanh` per element in backward.
struct AdditiveScore;

/// `tanh(k + q)` of one source position's row into `e` (the forward and backward passes
/// share it, so both see the same bits).
#[inline(always)]
fn tanh_row(e: &mut [f32], k: &[f32], q: &[f32]) {
    for ((e, &k), &q) in e.iter_mut().zip(k).zip(q) {
        *e = crate::kernels::fast_math::tanh(k + q);
    }
}

/// `scores[b, s] = Σ_h va[h] · tanh(keys[b, s, h] + query[b, h])`.
///
/// # Shapes
/// `keys: (B, S, H)`, `query: (B, H)`, `va: (H)` → `(B, S)`
pub fn additive_score(keys: &Tensor, query: &Tensor, va: &Tensor) -> Result<Tensor> {
    if !keys.device().is_cpu() {
        let e = keys.broadcast_add(&query.unsqueeze(1)?)?.tanh()?;
        return e.broadcast_mul(va)?.sum(D::Minus1);
    }
    keys.contiguous()?.apply_op3(&query.contiguous()?, &va.contiguous()?, AdditiveScore)
}

impl CustomOp3 for AdditiveScore {
    fn name(&self) -> &'static str {
        "additive-score"
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
        let (b, s, h) = l1.shape().dims3()?;
        let (k, q, v) = (f32_slice(s1, l1, "keys")?, f32_slice(s2, l2, "query")?, f32_slice(s3, l3, "va")?);
        if q.len() != b * h || v.len() != h {
            candle_core::bail!("additive-score: query must be (B, H) and va (H)");
        }
        let mut out = vec![0f32; b * s];
        let mut e = vec![0f32; h];
        for bi in 0..b {
            let q = &q[bi * h..(bi + 1) * h];
            for si in 0..s {
                // Two simple loops (tanh, then a dot product in lanes) so that both vectorise.
                tanh_row(&mut e, &k[(bi * s + si) * h..(bi * s + si + 1) * h], q);
                out[bi * s + si] = crate::kernels::fast_math::lane_sum3(v, &e, &e, |v, e, _| v * e);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, s))))
    }

    fn bwd(
        &self,
        keys: &Tensor,
        query: &Tensor,
        va: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, s, h) = keys.dims3()?;
        let mut d_k = vec![0f32; b * s * h];
        let mut d_q = vec![0f32; b * h];
        let mut d_v = vec![0f32; h];
        let mut e = vec![0f32; h];
        with_f32(keys, |k| {
            with_f32(query, |q| {
                with_f32(va, |v| {
                    with_f32(grad, |g| {
                        for bi in 0..b {
                            let q = &q[bi * h..(bi + 1) * h];
                            let d_q = &mut d_q[bi * h..(bi + 1) * h];
                            for si in 0..s {
                                let gs = g[bi * s + si];
                                let row = (bi * s + si) * h..(bi * s + si + 1) * h;
                                tanh_row(&mut e, &k[row.clone()], q);
                                let d_k = &mut d_k[row];
                                for ((((d_k, d_q), d_v), &t), &v) in
                                    d_k.iter_mut().zip(d_q.iter_mut()).zip(d_v.iter_mut()).zip(&e).zip(v)
                                {
                                    let u = gs * v * (1.0 - t * t);
                                    *d_k = u;
                                    *d_q += u;
                                    *d_v += gs * t;
                                }
                            }
                        }
                    })
                })
            })
        })????;
        let dev = keys.device();
        Ok((
            Some(Tensor::from_vec(d_k, (b, s, h), dev)?),
            Some(Tensor::from_vec(d_q, (b, h), dev)?),
            Some(Tensor::from_vec(d_v, h, dev)?),
        ))
    }
}
