//! Greedy pick over the vocabulary: the argmax of each row of logits and its
//! log-probability, in one pass on the CPU instead of log_softmax + argmax + gather.

use candle_core::{Result, Tensor, D};

use super::with_f32;

/// For each column of vocabulary-major logits (what greedy decoding's output product
/// gives): (argmax id, log-softmax value there). Columns are taken 16, then 8, then one at
/// a time, each block's maxima and sums held in registers across the vocabulary rows.
///
/// # Shapes
/// `z: (V, N)` → two vectors of length N
pub fn best_in_columns(z: &[f32], n: usize) -> (Vec<u32>, Vec<f32>) {
    super::simd::widest(|| best_in_columns_impl(z, n))
}

#[inline(always)]
fn best_in_columns_impl(z: &[f32], n: usize) -> (Vec<u32>, Vec<f32>) {
    let (mut ids, mut best) = (Vec::with_capacity(n), Vec::with_capacity(n));
    if n == 1 {
        let m = row_max(z);
        ids.push(z.iter().position(|&x| x == m).unwrap_or(0) as u32);
        best.push(-row_sum_exp(z, m).ln());
        return (ids, best);
    }
    let mut c0 = 0;
    while c0 < n {
        if n - c0 >= 16 {
            column_block::<16>(z, n, c0, &mut ids, &mut best);
            c0 += 16;
        } else if n - c0 >= 8 {
            column_block::<8>(z, n, c0, &mut ids, &mut best);
            c0 += 8;
        } else {
            column_block::<1>(z, n, c0, &mut ids, &mut best);
            c0 += 1;
        }
    }
    (ids, best)
}

/// Columns `c0..c0 + L` of [`best_in_columns`]: the first index of each maximum, then Σ exp.
#[inline(always)]
fn column_block<const L: usize>(z: &[f32], n: usize, c0: usize, ids: &mut Vec<u32>, best: &mut Vec<f32>) {
    let mut m = [f32::NEG_INFINITY; L];
    let mut arg = [0u32; L];
    for (j, row) in z.chunks_exact(n).enumerate() {
        let row = &row[c0..c0 + L];
        for k in 0..L {
            // Strictly greater: the first index holding the maximum wins, as argmax's.
            if row[k] > m[k] {
                m[k] = row[k];
                arg[k] = j as u32;
            }
        }
    }
    let mut sum = [0f32; L];
    for row in z.chunks_exact(n) {
        let row = &row[c0..c0 + L];
        for k in 0..L {
            sum[k] += super::fast_math::exp(row[k] - m[k]);
        }
    }
    ids.extend_from_slice(&arg);
    best.extend(sum.iter().map(|s| -s.ln()));
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
#[inline(always)]
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
#[inline(always)]
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
