//! Greedy pick over the vocabulary: the argmax of each row (or, vocabulary-major, each
//! column) of logits and its log-probability, without log_softmax + argmax + gather.

use candle_core::{Result, Tensor, D};

use super::with_f32;

/// Greedy pick over vocabulary-major logits `(V, N)` (what greedy decoding's output
/// product gives): each column's argmax id and its log-softmax value. Rows come a chunk at
/// a time, each read right after its product while it is still in cache; per column it
/// keeps the first row holding the maximum so far, the maximum and `Σ exp(z − max)`
/// (rescaled when a later chunk raises the maximum), and two picks over consecutive row
/// ranges merge. Columns are taken 16, then 8, then one at a time, each block's maxima and
/// sums held in registers across the chunk's rows.
#[derive(Debug, Clone)]
pub struct ColumnPick {
    max: Vec<f32>,
    arg: Vec<u32>,
    sum: Vec<f32>,
}

impl ColumnPick {
    pub fn new(n: usize) -> Self {
        Self { max: vec![f32::NEG_INFINITY; n], arg: vec![0; n], sum: vec![0.0; n] }
    }

    /// Takes in the rows `z: (R, N)`, vocabulary rows `first..first + R`, which come after
    /// every row taken in so far.
    pub fn update(&mut self, z: &[f32], first: usize) {
        super::simd::widest(
            #[inline(always)]
            || {
                let n = self.max.len();
                if n == 1 {
                    // One column: the rows are contiguous, taken in 8 lanes.
                    let m = row_max(z);
                    if m > self.max[0] {
                        self.sum[0] *= super::fast_math::exp(self.max[0] - m);
                        self.max[0] = m;
                        self.arg[0] = (first + z.iter().position(|&x| x == m).unwrap_or(0)) as u32;
                    }
                    self.sum[0] += row_sum_exp(z, self.max[0]);
                    return;
                }
                let mut c0 = 0;
                while c0 < n {
                    let width = if n - c0 >= 16 {
                        self.column_block::<16>(z, c0, first)
                    } else if n - c0 >= 8 {
                        self.column_block::<8>(z, c0, first)
                    } else {
                        self.column_block::<1>(z, c0, first)
                    };
                    c0 += width;
                }
            },
        )
    }

    /// Columns `c0..c0 + L` of [`Self::update`]: the chunk's maxima and their first rows,
    /// then the sums rescaled to the new maxima.
    #[inline(always)]
    fn column_block<const L: usize>(&mut self, z: &[f32], c0: usize, first: usize) -> usize {
        let n = self.max.len();
        let mut m = [f32::NEG_INFINITY; L];
        let mut arg = [0u32; L];
        for (j, row) in z.chunks_exact(n).enumerate() {
            let row = &row[c0..c0 + L];
            for k in 0..L {
                // Strictly greater: the first index holding the maximum wins, as argmax's.
                if row[k] > m[k] {
                    m[k] = row[k];
                    arg[k] = (first + j) as u32;
                }
            }
        }
        let mut sum = [0f32; L];
        for k in 0..L {
            let c = c0 + k;
            if m[k] > self.max[c] {
                // A new maximum: the sum so far is rescaled to it (0 when nothing came before).
                sum[k] = self.sum[c] * super::fast_math::exp(self.max[c] - m[k]);
                self.max[c] = m[k];
                self.arg[c] = arg[k];
            } else {
                sum[k] = self.sum[c];
                m[k] = self.max[c];
            }
        }
        for row in z.chunks_exact(n) {
            let row = &row[c0..c0 + L];
            for k in 0..L {
                sum[k] += super::fast_math::exp(row[k] - m[k]);
            }
        }
        self.sum[c0..c0 + L].copy_from_slice(&sum);
        L
    }

    /// Adds a pick over later vocabulary rows.
    pub fn merge(&mut self, later: &Self) {
        for c in 0..self.max.len() {
            let (m1, m2) = (self.max[c], later.max[c]);
            if m2 > m1 {
                self.sum[c] = self.sum[c] * super::fast_math::exp(m1 - m2) + later.sum[c];
                self.max[c] = m2;
                self.arg[c] = later.arg[c];
            } else if m2 > f32::NEG_INFINITY {
                self.sum[c] += later.sum[c] * super::fast_math::exp(m2 - m1);
            }
        }
    }

    /// Each column's (argmax id, log-softmax value there): `−ln Σ exp(z − max)`.
    pub fn finish(self) -> (Vec<u32>, Vec<f32>) {
        (self.arg, self.sum.iter().map(|s| -s.ln()).collect())
    }
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
