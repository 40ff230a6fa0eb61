//! Beam search over one encoded source, for any family's decoder state ([`BeamState`]).

use s2s_data::{EOS, SOS};

use super::Hypothesis;
use crate::error::Result;

/// The settings of one beam search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamSearch {
    /// Hypotheses kept alive at each step (at least 1).
    pub beam_size: usize,
    /// Hypotheses returned.
    pub n_best: usize,
    pub max_steps: usize,
    /// Finished hypotheses are ranked by `log_prob / len^length_penalty`.
    pub length_penalty: f64,
}

/// The `k` largest entries of `row` as (index, value), largest first (ties: lower index
/// first), in linear time: a partial selection, then a sort of the `k` chosen.
fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut all: Vec<(u32, f32)> = row.iter().enumerate().map(|(j, &v)| (j as u32, v)).collect();
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k < all.len() {
        all.select_nth_unstable_by(k, order);
        all.truncate(k);
    }
    all.sort_by(order);
    all
}

/// Per alive row: log-probabilities over the vocabulary, and attention over the source.
pub(crate) type StepRows = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// A model's decoder state over the hypotheses alive in a beam search.
pub(crate) trait BeamState {
    /// Feeds each alive row its last token; returns each row's log-probabilities over
    /// the vocabulary and its attention over the source.
    fn step(&mut self, last: &[u32]) -> Result<StepRows>;
    /// Keeps the rows `rows` of the last step's state, in this order (a row may repeat).
    fn select(&mut self, rows: &[u32]) -> Result<()>;
}

impl BeamSearch {
    /// The search itself over any model's [`BeamState`] (one source, one row to start).
    pub(crate) fn search(&self, state: &mut impl BeamState) -> Result<Vec<Hypothesis>> {
        let k = self.beam_size.max(1);
        let norm = |h: &Hypothesis| {
            let len = (h.attention.len().max(1)) as f32;
            h.log_prob / len.powf(self.length_penalty as f32)
        };
        let mut alive = vec![Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() }];
        let mut finished: Vec<Hypothesis> = Vec::new();
        let mut last = vec![SOS];
        for _ in 0..self.max_steps {
            let (logp, w) = state.step(&last)?;
            let mut cands: Vec<(f32, usize, u32)> = Vec::new();
            for (i, row) in logp.iter().enumerate() {
                cands.extend(top_k(row, k).into_iter().map(|(tok, lp)| (alive[i].log_prob + lp, i, tok)));
            }
            cands.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut next = Vec::new();
            let mut rows = Vec::new();
            for (score, i, tok) in cands.into_iter().take(k) {
                let mut hyp = alive[i].clone();
                hyp.log_prob = score;
                hyp.attention.push(w[i].clone());
                if tok == EOS {
                    finished.push(hyp);
                } else {
                    hyp.ids.push(tok);
                    next.push(hyp);
                    rows.push((i as u32, tok));
                }
            }
            if finished.len() >= k.max(self.n_best) || next.is_empty() {
                alive = next;
                break;
            }
            state.select(&rows.iter().map(|r| r.0).collect::<Vec<_>>())?;
            last = rows.iter().map(|r| r.1).collect();
            alive = next;
        }
        finished.extend(alive);
        finished.sort_by(|a, b| norm(b).total_cmp(&norm(a)));
        finished.truncate(self.n_best.max(1));
        Ok(finished)
    }
}

#[cfg(test)]
mod tests {
    use super::top_k;

    #[test]
    fn top_k_is_the_head_of_a_full_sort() {
        let row: Vec<f32> = (0..200).map(|i| ((i * 37 % 101) as f32 * 0.13).sin()).collect();
        let mut full: Vec<(u32, f32)> = row.iter().enumerate().map(|(j, &v)| (j as u32, v)).collect();
        full.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [1, 5, 199, 200, 300] {
            assert_eq!(top_k(&row, k), full[..k.min(200)].to_vec(), "k = {k}");
        }
    }
}
