//! Negative log-likelihood of targets under `log_softmax(x W^T + bias)`, taking the
//! pre-bias logits, without materialising the biased logits or the log-probabilities.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, D};

use super::{f32_slice, with_f32};

struct NllFromLogits;

/// `nll[i] = weight[i] · (logsumexp(z_i) − z_i[target[i]])` with `z_i = logits[i] + bias`.
///
/// # Shapes
/// `logits: (N, V)`, `bias: (V)`, `targets: (N)` u32, `weights: (N)` f32 → `(N)`
pub fn nll_from_logits(logits: &Tensor, bias: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    if !logits.device().is_cpu() {
        let logp = candle_nn::ops::log_softmax(&logits.broadcast_add(bias)?, D::Minus1)?;
        let picked = logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
        return picked.neg()? * weights;
    }
    let tw = Tensor::stack(&[&targets.to_dtype(DType::F32)?, weights], 1)?;
    logits.contiguous()?.apply_op3(&bias.contiguous()?, &tw, NllFromLogits)
}

/// `max + log Σ exp(x + bias − max)` of one row, with 8-lane partial sums so that the
/// loops vectorise.
fn row_lse(row: &[f32], bias: &[f32]) -> f32 {
    const L: usize = 8;
    let mut mx = [f32::NEG_INFINITY; L];
    let (rc, bc) = (row.chunks_exact(L), bias.chunks_exact(L));
    let (rr, br) = (rc.remainder(), bc.remainder());
    for (r, b) in rc.zip(bc) {
        for k in 0..L {
            let z = r[k] + b[k];
            mx[k] = if z > mx[k] { z } else { mx[k] };
        }
    }
    let mut m = mx.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (x, b) in rr.iter().zip(br) {
        m = m.max(x + b);
    }
    let mut acc = [0f32; L];
    for (r, b) in row.chunks_exact(L).zip(bias.chunks_exact(L)) {
        for k in 0..L {
            acc[k] += super::fast_math::exp(r[k] + b[k] - m);
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, b) in rr.iter().zip(br) {
        s += super::fast_math::exp(x + b - m);
    }
    m + s.ln()
}

impl CustomOp3 for NllFromLogits {
    fn name(&self) -> &'static str {
        "nll-from-logits"
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
        let (n, v) = l1.shape().dims2()?;
        let (x, bias, tw) = (f32_slice(s1, l1, "logits")?, f32_slice(s2, l2, "bias")?, f32_slice(s3, l3, "targets")?);
        if tw.len() != 2 * n || bias.len() != v {
            candle_core::bail!("nll-from-logits: need a bias per column and a target and weight per row");
        }
        let mut out = vec![0f32; n];
        for i in 0..n {
            let row = &x[i * v..(i + 1) * v];
            let ti = tw[2 * i] as usize;
            if ti >= v {
                candle_core::bail!("nll-from-logits: target {ti} outside the vocabulary of {v}");
            }
            out[i] = tw[2 * i + 1] * (row_lse(row, bias) - (row[ti] + bias[ti]));
        }
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        bias: &Tensor,
        tw: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, v) = logits.dims2()?;
        let mut d = vec![0f32; n * v];
        let mut db = vec![0f32; v];
        with_f32(logits, |x| {
            with_f32(bias, |bias| {
                with_f32(tw, |tw| {
                    with_f32(grad, |g| {
                        for i in 0..n {
                            let scale = g[i] * tw[2 * i + 1];
                            if scale == 0.0 {
                                continue;
                            }
                            let row = &x[i * v..(i + 1) * v];
                            let shift = row_lse(row, bias);
                            let drow = &mut d[i * v..(i + 1) * v];
                            for ((dj, &xj), &bj) in drow.iter_mut().zip(row).zip(bias) {
                                *dj = scale * super::fast_math::exp(xj + bj - shift);
                            }
                            drow[tw[2 * i] as usize] -= scale;
                            for (acc, &dj) in db.iter_mut().zip(drow.iter()) {
                                *acc += dj;
                            }
                        }
                    })
                })
            })
        })????;
        let dev = logits.device();
        Ok((Some(Tensor::from_vec(d, (n, v), dev)?), Some(Tensor::from_vec(db, v, dev)?), None))
    }
}
