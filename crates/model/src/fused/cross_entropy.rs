//! Negative log-likelihood of targets under `log_softmax(logits)`, without materialising
//! the log-probabilities.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, D};

use super::{f32_slice, with_f32};

struct NllFromLogits;

/// `nll[i] = weight[i] · (logsumexp(logits[i]) − logits[i, target[i]])`.
///
/// # Shapes
/// `logits: (N, V)`, `targets: (N)` u32, `weights: (N)` f32 → `(N)`
pub fn nll_from_logits(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    if !logits.device().is_cpu() {
        let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
        let picked = logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
        return picked.neg()? * weights;
    }
    let targets = targets.to_dtype(DType::F32)?;
    logits.contiguous()?.apply_op3(&targets.contiguous()?, &weights.contiguous()?, NllFromLogits)
}

/// Per row: (max, log Σ exp(x − max)).
fn row_lse(row: &[f32]) -> (f32, f32) {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let s: f32 = row.iter().map(|&x| super::fast_math::exp(x - m)).sum();
    (m, s.ln())
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
        let (x, t, w) = (f32_slice(s1, l1, "logits")?, f32_slice(s2, l2, "targets")?, f32_slice(s3, l3, "weights")?);
        if t.len() != n || w.len() != n {
            candle_core::bail!("nll-from-logits: targets and weights must have one value per row");
        }
        let mut out = vec![0f32; n];
        for i in 0..n {
            let row = &x[i * v..(i + 1) * v];
            let ti = t[i] as usize;
            if ti >= v {
                candle_core::bail!("nll-from-logits: target {ti} outside the vocabulary of {v}");
            }
            let (m, lse) = row_lse(row);
            out[i] = w[i] * (m + lse - row[ti]);
        }
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        weights: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, v) = logits.dims2()?;
        let mut d = vec![0f32; n * v];
        with_f32(logits, |x| {
            with_f32(targets, |t| {
                with_f32(weights, |w| {
                    with_f32(grad, |g| {
                        for i in 0..n {
                            let scale = g[i] * w[i];
                            let drow = &mut d[i * v..(i + 1) * v];
                            if scale == 0.0 {
                                continue;
                            }
                            let row = &x[i * v..(i + 1) * v];
                            let (m, lse) = row_lse(row);
                            let shift = m + lse;
                            for (dj, &xj) in drow.iter_mut().zip(row) {
                                *dj = scale * super::fast_math::exp(xj - shift);
                            }
                            drow[t[i] as usize] -= scale;
                        }
                    })
                })
            })
        })????;
        Ok((Some(Tensor::from_vec(d, (n, v), logits.device())?), None, None))
    }
}
