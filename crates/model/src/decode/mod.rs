//! Decoding that every family shares: what a translation is ([`Hypothesis`]), a greedy
//! step's bookkeeping, and beam search over any family's decoder state (`BeamState`).
//! A family's own decoders (the GRU's greedy buffers, the Transformer's incremental
//! caches) live in its folder.

mod batched;
mod beam;

use s2s_data::{EOS, PAD};

pub use batched::BeamSearch;
pub(crate) use batched::{greedy, max_and_log_sum_exp, top_k_log_softmax, BatchState, RowStep};
pub(crate) use beam::{BeamState, StepRows};

/// Sources of several lengths in one row-major `(B, width)` grid, PAD after each one's end.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Padded {
    pub grid: Vec<u32>,
    pub lengths: Vec<usize>,
    /// The longest source's length.
    pub width: usize,
}

impl Padded {
    pub fn new(sources: &[Vec<u32>]) -> Self {
        let lengths: Vec<usize> = sources.iter().map(Vec::len).collect();
        let width = lengths.iter().copied().max().unwrap_or(0);
        let grid = sources.iter().flat_map(|x| x.iter().copied().chain(std::iter::repeat(PAD)).take(width)).collect();
        Self { grid, lengths, width }
    }
}

/// Cross-attention of every decoder layer and head: `[layer][head][step][source position]`.
pub type LayerHeads = Vec<Vec<Vec<Vec<f32>>>>;

/// One decoded translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Target ids, without the final EOS.
    pub ids: Vec<u32>,
    /// Sum of the log-probabilities of the emitted tokens (EOS included when emitted).
    pub log_prob: f32,
    /// One row of source-position weights per emitted token (EOS included when emitted).
    pub attention: Vec<Vec<f32>>,
}

/// Adds one greedy step to the hypotheses not yet ended: the chosen id (EOS ends one), its
/// log-probability and the attention row `attention(i)`. Returns whether all have ended.
pub(crate) fn record_greedy_step(
    hyps: &mut [Hypothesis],
    done: &mut [bool],
    ids: &[u32],
    best: &[f32],
    attention: impl Fn(usize) -> Vec<f32>,
) -> bool {
    for i in 0..hyps.len() {
        if done[i] {
            continue;
        }
        hyps[i].attention.push(attention(i));
        hyps[i].log_prob += best[i];
        if ids[i] == EOS {
            done[i] = true;
        } else {
            hyps[i].ids.push(ids[i]);
        }
    }
    done.iter().all(|&d| d)
}
