//! Greedy decoding with candle's ops, one step at a time: the path for devices other
//! than the CPU, and the reference the CPU's buffer path is tested against.

use candle_core::Tensor;
use s2s_data::SOS;

use crate::decode::{record_greedy_step, Hypothesis};
use crate::error::{expect_dims, Result};
use crate::gru::decoder::{Decoder, Memory};

/// Decodes encoded sentences for up to `steps` steps (all of them unless `stop_at_eos`).
///
/// # Shapes
/// `mem.outputs: (N, S, H)`, `h0: (N, H)`, `lengths: (N)`
pub(crate) fn greedy_rows(
    decoder: &Decoder,
    mem: &Memory,
    h0: Tensor,
    lengths: &[usize],
    steps: usize,
    stop_at_eos: bool,
) -> Result<Vec<Hypothesis>> {
    let b = lengths.len();
    let hidden = h0.dim(1)?;
    expect_dims("initial decoder state", &h0, &[b, hidden])?;
    let device = h0.device().clone();
    let decoder = &decoder.detached();
    let mut h = h0;
    let mut prev = Tensor::full(SOS, b, &device)?;
    let mut hyps = vec![Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() }; b];
    let mut done = vec![false; b];
    for _ in 0..steps {
        let (h_new, w) = decoder.step(&prev, &h, mem, None)?;
        h = h_new.detach();
        let (ids, best) = decoder.greedy_pick(&h)?;
        let w: Vec<Vec<f32>> = w.to_vec2()?;
        let all_done = record_greedy_step(&mut hyps, &mut done, &ids, &best, |i| w[i][..lengths[i]].to_vec());
        if stop_at_eos && all_done {
            break;
        }
        prev = Tensor::new(ids, &device)?;
    }
    Ok(hyps)
}
