//! Decoding: what a translation is ([`Hypothesis`]), beam search, and the two greedy
//! paths (candle's ops step by step on any device, `greedy`'s plain buffers on the CPU).
//! Everything here works on an encoded source and a [`crate::decoder::Decoder`]; it never calls back
//! into the model that encoded it.

mod beam;
pub(crate) mod greedy;
mod greedy_rows;

use s2s_data::EOS;

pub use beam::BeamSearch;
pub(crate) use beam::{BeamState, StepRows};
pub(crate) use greedy_rows::greedy_rows;

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
