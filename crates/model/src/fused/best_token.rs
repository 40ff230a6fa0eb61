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
            let (mut arg, mut m) = (0usize, f32::NEG_INFINITY);
            for (j, &z) in row.iter().enumerate() {
                if z > m {
                    m = z;
                    arg = j;
                }
            }
            let s: f32 = row.iter().map(|&z| super::fast_math::exp(z - m)).sum();
            ids.push(arg as u32);
            best.push(-s.ln());
        }
        (ids, best)
    })
}
