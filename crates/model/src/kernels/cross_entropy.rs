//! The output layer and the negative log-likelihood of the targets in one op:
//! `nll[i] = weight[i] · (logsumexp(z_i) − z_i[target[i]])` with `z = h Wᵀ + bias`.
//!
//! With label smoothing `ε` the target distribution is `(1 − ε)·onehot + ε/V` (PyTorch's
//! `cross_entropy(.., label_smoothing=ε)`): `loss[i] = weight[i] · ((1 − ε)(lse − z_t) +
//! ε (lse − mean_j z_j))`, whose gradient is `softmax(z) − (1 − ε)·onehot − ε/V`. Every
//! model family's training loss comes through here.
//!
//! Through candle's ops the `(N, V)` logits, their gradient, the product's weight gradient
//! (a zero-filled buffer, then an add through the transposed view) were each a fresh
//! vocabulary-sized tensor. Here the logits live in one buffer that backward turns into
//! their gradient in place, and `dW` comes out of one product in the weight's own layout.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};

use super::matmul::{matmul, View};
use super::{f32_slice, with_f32};

struct OutputNll {
    targets: Vec<u32>,
    weights: Vec<f32>,
    /// Label smoothing `ε` in `[0, 1)`.
    smoothing: f32,
    /// The forward pass's `h Wᵀ + bias`, `(N, V)`, and each row's log-sum-exp, for backward.
    logits: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

/// Per-row cross-entropy of `targets` (smoothed by `smoothing`; 0 gives the NLL) under
/// `log_softmax(h Wᵀ + bias)`, scaled by `weights`.
///
/// # Shapes
/// `h: (N, H)`, `w: (V, H)`, `bias: (V)`, `targets: (N)` u32, `weights: (N)` f32 → `(N)`
pub fn output_nll(
    h: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    targets: &Tensor,
    weights: &Tensor,
    smoothing: f64,
) -> Result<Tensor> {
    if !(0.0..1.0).contains(&smoothing) {
        candle_core::bail!("output-nll: label smoothing must be in [0, 1), got {smoothing}");
    }
    if !h.device().is_cpu() {
        return nll_from_logits(&h.matmul(&w.t()?)?, bias, targets, weights, smoothing);
    }
    let (n, v) = (h.dim(0)?, w.dim(0)?);
    let targets: Vec<u32> = targets.to_vec1()?;
    let weights: Vec<f32> = weights.to_vec1()?;
    if targets.len() != n || weights.len() != n {
        candle_core::bail!("output-nll: need a target and a weight per row");
    }
    if let Some(&t) = targets.iter().find(|&&t| t as usize >= v) {
        candle_core::bail!("output-nll: target {t} outside the vocabulary of {v}");
    }
    let op = OutputNll { targets, weights, smoothing: smoothing as f32, logits: Mutex::new(None) };
    h.contiguous()?.apply_op3(&w.contiguous()?, &bias.contiguous()?, op)
}

/// The same with candle's ops from the logits `h Wᵀ` (other devices, and the tests'
/// reference).
///
/// # Shapes
/// `logits: (N, V)`, `bias: (V)`, `targets: (N)` u32, `weights: (N)` f32 → `(N)`
pub fn nll_from_logits(
    logits: &Tensor,
    bias: &Tensor,
    targets: &Tensor,
    weights: &Tensor,
    smoothing: f64,
) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(&logits.broadcast_add(bias)?, D::Minus1)?;
    let picked = logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    if smoothing == 0.0 {
        return picked.neg()? * weights;
    }
    let uniform = logp.mean(D::Minus1)?;
    ((picked * (1.0 - smoothing))? + (uniform * smoothing)?)?.neg()? * weights
}

/// `max + log Σ exp(z − max)` of one row, with 8-lane partial sums so that the loops
/// vectorise.
#[inline(always)]
fn row_lse(row: &[f32]) -> f32 {
    const L: usize = 8;
    let mut mx = [f32::NEG_INFINITY; L];
    let rc = row.chunks_exact(L);
    let rr = rc.remainder();
    for r in rc {
        for k in 0..L {
            mx[k] = if r[k] > mx[k] { r[k] } else { mx[k] };
        }
    }
    let m = rr.iter().chain(mx.iter()).copied().fold(f32::NEG_INFINITY, f32::max);
    let mut acc = [0f32; L];
    for r in row.chunks_exact(L) {
        for k in 0..L {
            acc[k] += super::fast_math::exp(r[k] - m);
        }
    }
    let s = acc.iter().sum::<f32>() + rr.iter().map(|&x| super::fast_math::exp(x - m)).sum::<f32>();
    m + s.ln()
}

impl CustomOp3 for OutputNll {
    fn name(&self) -> &'static str {
        "output-nll"
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
        let (n, hs) = l1.shape().dims2()?;
        let (v, _) = l2.shape().dims2()?;
        let (h, w, bias) = (f32_slice(s1, l1, "h")?, f32_slice(s2, l2, "weight")?, f32_slice(s3, l3, "bias")?);
        if w.len() != v * hs || bias.len() != v || self.targets.len() != n {
            candle_core::bail!("output-nll: h (N, H), weight (V, H), bias (V) and targets (N) disagree");
        }
        let mut z = vec![0f32; n * v];
        for row in z.chunks_exact_mut(v) {
            row.copy_from_slice(bias);
        }
        matmul(&mut z, View::rows(h, n, hs), View::rows(w, v, hs).t(), true);
        let lse: Vec<f32> = super::simd::widest(
            #[inline(always)]
            || z.chunks_exact(v).map(row_lse).collect(),
        );
        let eps = self.smoothing;
        let out: Vec<f32> = z
            .chunks_exact(v)
            .zip(&lse)
            .zip(self.targets.iter().zip(&self.weights))
            .map(|((row, &lse), (&t, &wt))| {
                let nll = lse - row[t as usize];
                if eps == 0.0 {
                    return wt * nll;
                }
                let mean = row.iter().map(|&x| f64::from(x)).sum::<f64>() / v as f64;
                wt * ((1.0 - eps) * nll + eps * (lse - mean as f32))
            })
            .collect();
        if let Ok(mut slot) = self.logits.lock() {
            *slot = Some((z, lse));
        }
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(
        &self,
        h: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, hs) = h.dims2()?;
        let (v, _) = w.dims2()?;
        let saved = self.logits.lock().ok().and_then(|mut g| g.take());
        let Some((mut d, lse)) = saved else { candle_core::bail!("output-nll: backward without a forward pass") };
        let mut db = vec![0f32; v];
        let eps = self.smoothing;
        let spread = eps / v as f32;
        with_f32(grad, |g| {
            super::simd::widest(
                #[inline(always)]
                || {
                    for (i, (row, &shift)) in d.chunks_exact_mut(v).zip(&lse).enumerate() {
                        let scale = g[i] * self.weights[i];
                        if scale == 0.0 {
                            row.fill(0.0);
                            continue;
                        }
                        // d z = scale · (softmax(z) − (1 − ε) onehot(target) − ε/V), written over z.
                        if eps == 0.0 {
                            for x in row.iter_mut() {
                                *x = scale * super::fast_math::exp(*x - shift);
                            }
                        } else {
                            for x in row.iter_mut() {
                                *x = scale * (super::fast_math::exp(*x - shift) - spread);
                            }
                        }
                        row[self.targets[i] as usize] -= scale * (1.0 - eps);
                        for (acc, &dj) in db.iter_mut().zip(row.iter()) {
                            *acc += dj;
                        }
                    }
                },
            )
        })?;
        let mut dh = vec![0f32; n * hs];
        let mut dw = vec![0f32; v * hs];
        with_f32(h, |h| {
            with_f32(w, |w| {
                matmul(&mut dh, View::rows(&d, n, v), View::rows(w, v, hs), false);
                matmul(&mut dw, View::rows(&d, n, v).t(), View::rows(h, n, hs), false);
            })
        })??;
        let dev = h.device();
        Ok((
            Some(Tensor::from_vec(dh, (n, hs), dev)?),
            Some(Tensor::from_vec(dw, (v, hs), dev)?),
            Some(Tensor::from_vec(db, v, dev)?),
        ))
    }
}
