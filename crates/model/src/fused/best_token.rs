//! Greedy pick over the vocabulary: the argmax of each row of logits and its
//! log-probability, in one pass on the CPU instead of log_softmax + argmax + gather.

use std::cell::RefCell;

use candle_core::{Result, Tensor, D};

thread_local! {
    /// The logits buffer of [`best_tokens_of_output`], reused by the next step.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

use super::matmul::{matmul, View};
use super::with_f32;

/// Greedy pick straight from decoder states `h`: the output layer `h Wᵀ + bias` is
/// computed vocabulary-major, `(V, B) = W hᵀ` (gemm then packs nothing of the big weight:
/// 1.6× faster at 32 rows), and each sentence's column gives its argmax and log-probability.
/// With `threads` > 1 and a single sentence, the vocabulary is split between two threads
/// (the product reads the whole 5 MB weight for one row and is bound by memory traffic).
///
/// # Shapes
/// `h: (B, H)`, `w: (V, H)`, `bias: (V)` → two vectors of length B
pub fn best_tokens_of_output(
    h: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    threads: usize,
) -> Result<(Vec<u32>, Vec<f32>)> {
    let (b, hs) = h.dims2()?;
    let (v, _) = w.dims2()?;
    if !h.device().is_cpu() {
        let logits = h.matmul(&w.t()?)?;
        return best_tokens(&match bias {
            Some(bias) => logits.broadcast_add(bias)?,
            None => logits,
        });
    }
    // The (V, B) buffer is kept per thread from step to step: a fresh one per step came
    // from the OS as zeroed pages each time (page faults were 8 % of batched decoding).
    let mut zt = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    zt.clear();
    match bias {
        // Each vocabulary row starts at its bias, read in place (no per-step copy).
        Some(t) => with_f32(t, |bias| {
            for &c in bias {
                zt.extend(std::iter::repeat_n(c, b));
            }
        })?,
        None => zt.resize(v * b, 0.0),
    }
    if zt.len() != v * b {
        candle_core::bail!("greedy pick: bias must have one value per vocabulary row");
    }
    with_f32(h, |h| {
        with_f32(w, |w| {
            let product = |dst: &mut [f32], rows: &[f32]| {
                let n = dst.len() / b;
                matmul(dst, View::rows(rows, n, hs), View::rows(h, b, hs).t(), true);
            };
            match super::helper_pool() {
                Some(pool) if threads > 1 && b < 8 && v >= 1024 => {
                    let half = v / 2;
                    let (d1, d2) = zt.split_at_mut(half * b);
                    let (w1, w2) = w.split_at(half * hs);
                    // This thread takes one half itself: one hand-over per product.
                    pool.in_place_scope(|scope| {
                        scope.spawn(|_| product(d2, w2));
                        product(d1, w1);
                    });
                }
                _ => product(&mut zt, w),
            }
        })
    })??;
    if b == 1 {
        let m = row_max(&zt);
        let arg = zt.iter().position(|&z| z == m).unwrap_or(0);
        let picked = (vec![arg as u32], vec![-row_sum_exp(&zt, m).ln()]);
        SCRATCH.with(|s| *s.borrow_mut() = zt);
        return Ok(picked);
    }
    // Column-wise over (V, B), in three passes that each vectorise across the columns:
    // the maxima, the first index holding each, then Σ exp.
    let mut m = vec![f32::NEG_INFINITY; b];
    for row in zt.chunks_exact(b) {
        for (m, &z) in m.iter_mut().zip(row) {
            *m = if z > *m { z } else { *m };
        }
    }
    let mut arg = vec![u32::MAX; b];
    for (j, row) in zt.chunks_exact(b).enumerate() {
        for ((a, &m), &z) in arg.iter_mut().zip(&m).zip(row) {
            *a = if z == m && *a == u32::MAX { j as u32 } else { *a };
        }
    }
    let mut sum = vec![0f32; b];
    for row in zt.chunks_exact(b) {
        for ((s, &m), &z) in sum.iter_mut().zip(&m).zip(row) {
            *s += super::fast_math::exp(z - m);
        }
    }
    // A column of NaNs has no maximum: pick 0, as the row-wise pick does.
    let arg = arg.into_iter().map(|a| if a == u32::MAX { 0 } else { a }).collect();
    SCRATCH.with(|s| *s.borrow_mut() = zt);
    Ok((arg, sum.iter().map(|s| -s.ln()).collect()))
}

/// For each row of `logits`: (argmax id, log-softmax value there).
///
/// # Shapes
/// `logits: (B, V)` → two vectors of length B
pub fn best_tokens(logits: &Tensor) -> Result<(Vec<u32>, Vec<f32>)> {
    let (b, v) = logits.dims2()?;
    if !logits.device().is_cpu() {
        let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
        let ids = logp.argmax_keepdim(D::Minus1)?;
        let best: Vec<f32> = logp.gather(&ids, 1)?.squeeze(1)?.to_vec1()?;
        return Ok((ids.squeeze(1)?.to_vec1()?, best));
    }
    with_f32(logits, |x| {
        let mut ids = Vec::with_capacity(b);
        let mut best = Vec::with_capacity(b);
        for row in x.chunks_exact(v) {
            let m = row_max(row);
            // The first index holding the maximum (what argmax returns on ties).
            let arg = row.iter().position(|&z| z == m).unwrap_or(0);
            ids.push(arg as u32);
            best.push(-row_sum_exp(row, m).ln());
        }
        (ids, best)
    })
}

const LANES: usize = 8;

/// The largest value of a row, over 8 independent lanes so that it vectorises.
fn row_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            acc[k] = acc[k].max(c[k]);
        }
    }
    tail.iter().chain(acc.iter()).fold(f32::NEG_INFINITY, |a, &z| a.max(z))
}

/// `Σ exp(z − m)` over a row, in 8 lanes.
fn row_sum_exp(row: &[f32], m: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            acc[k] += super::fast_math::exp(c[k] - m);
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|&z| super::fast_math::exp(z - m)).sum::<f32>()
}
