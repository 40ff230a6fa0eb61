//! Greedy pick over the vocabulary: the argmax of each row of logits and its
//! log-probability, in one pass on the CPU instead of log_softmax + argmax + gather.

use candle_core::{Result, Tensor, D};

use super::with_f32;

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
