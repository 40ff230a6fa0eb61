//! Greedy decoding and beam search over many sources at once, for any family whose decoder
//! state can step a batch of rows ([`BatchState`]): every alive hypothesis of every source
//! is one row of one product per step, and a source's rows leave the batch as soon as its
//! search ends. Each source is searched exactly as [`super::BeamSearch::search`] searches
//! it alone (the same candidates, order and stopping rule); only the batching differs.

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

/// One row's step: its `k` most likely next tokens with their log-probabilities (largest
/// first; ties: lower id first) and its attention over its source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowStep {
    pub best: Vec<(u32, f32)>,
    pub attention: Vec<f32>,
}

/// A decoder's state over rows, each row a hypothesis of one source.
pub(crate) trait BatchState {
    /// Feeds each row its last token; returns each row's `k` best next tokens and its
    /// attention.
    fn step(&mut self, last: &[u32], k: usize) -> Result<Vec<RowStep>>;
    /// Keeps the rows `rows` of the last step's state, in this order (a row may repeat).
    fn select(&mut self, rows: &[u32]) -> Result<()>;
}

/// The `k` largest entries of `row` as (index, value), largest first (ties: lower index
/// first), in linear time: a partial selection, then a sort of the `k` chosen.
pub(crate) fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut all: Vec<(u32, f32)> = row.iter().enumerate().map(|(j, &v)| (j as u32, v)).collect();
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k < all.len() {
        all.select_nth_unstable_by(k, order);
        all.truncate(k);
    }
    all.sort_by(order);
    all
}

/// The `k` largest entries of `row` as [`top_k`] orders them, in one pass that keeps the
/// best `k` so far in order (most entries cost one comparison against the k-th best).
fn best_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    if k == 0 || k * 8 >= row.len() {
        return top_k(row, k);
    }
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    let mut floor = f32::NEG_INFINITY;
    for (j, &v) in row.iter().enumerate() {
        if best.len() == k && v <= floor {
            continue;
        }
        // After every kept value at least as large: ties stay in id order.
        let at = best.partition_point(|e| e.1 >= v);
        best.insert(at, (j as u32, v));
        best.truncate(k);
        if best.len() == k {
            floor = best[k - 1].1;
        }
    }
    best
}

/// The `k` best tokens of one row of logits, as log-softmax values: the values of
/// `log_softmax` then [`top_k`], without writing the whole row of log-probabilities. The
/// sum of exponentials runs in 8 lanes with [`fast_math::exp`](crate::kernels::fast_math::exp).
pub(crate) fn top_k_log_softmax(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let (max, log_sum) = max_and_log_sum_exp(logits);
    let mut best = best_k(logits, k);
    for (_, v) in &mut best {
        *v = *v - max - log_sum;
    }
    best
}

/// One row of logits' max `m` and `log Σ exp(z − m)` (the log-softmax of `z` is
/// `z − m − that`): the sum of exponentials in 8 lanes with
/// [`fast_math::exp`](crate::kernels::fast_math::exp).
pub(crate) fn max_and_log_sum_exp(logits: &[f32]) -> (f32, f32) {
    let (max, sum) = crate::kernels::simd::widest(
        #[inline(always)]
        || {
            let mut lanes = [f32::NEG_INFINITY; 8];
            let chunks = logits.chunks_exact(8);
            let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
            for c in chunks {
                for l in 0..8 {
                    lanes[l] = lanes[l].max(c[l]);
                }
            }
            let max = lanes.iter().copied().fold(tail, f32::max);
            let mut sums = [0f32; 8];
            let chunks = logits.chunks_exact(8);
            let tail: f32 = chunks.remainder().iter().map(|&z| crate::kernels::fast_math::exp(z - max)).sum();
            for c in chunks {
                for l in 0..8 {
                    sums[l] += crate::kernels::fast_math::exp(c[l] - max);
                }
            }
            (max, sums.iter().sum::<f32>() + tail)
        },
    );
    (max, sum.ln())
}

/// Greedy decoding of `rows` sources for up to `steps` steps; with `stop_at_eos` a source's
/// row leaves the batch when it emits EOS (and decoding stops when none is left).
pub(crate) fn greedy(
    state: &mut impl BatchState,
    rows: usize,
    steps: usize,
    stop_at_eos: bool,
) -> Result<Vec<Hypothesis>> {
    let mut hyps = vec![Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() }; rows];
    // The source of each row still in the batch.
    let mut alive: Vec<usize> = (0..rows).collect();
    let mut done = vec![false; rows];
    let mut last = vec![SOS; rows];
    for _ in 0..steps {
        if alive.is_empty() {
            break;
        }
        let stepped = state.step(&last, 1)?;
        let mut keep = Vec::with_capacity(alive.len());
        let mut next = Vec::with_capacity(alive.len());
        for (row, (&i, s)) in alive.iter().zip(stepped).enumerate() {
            let (id, lp) = s.best.first().copied().unwrap_or((EOS, 0.0));
            if !done[i] {
                let h = &mut hyps[i];
                h.attention.push(s.attention);
                h.log_prob += lp;
                if id == EOS {
                    done[i] = true;
                } else {
                    h.ids.push(id);
                }
            }
            if !(stop_at_eos && done[i]) {
                keep.push(row as u32);
                next.push(id);
            }
        }
        if keep.len() < alive.len() {
            alive = keep.iter().map(|&r| alive[r as usize]).collect();
            if !alive.is_empty() {
                state.select(&keep)?;
            }
        }
        last = next;
    }
    Ok(hyps)
}

/// One source's search: its alive hypotheses (rows of the state, in this order) and
/// those that ended.
struct Search {
    alive: Vec<Hypothesis>,
    finished: Vec<Hypothesis>,
    done: bool,
}

impl BeamSearch {
    /// Beam search of `sources` sources at once (one row each to start); each gets up to
    /// `n_best` hypotheses, best first.
    pub(crate) fn search_batch(&self, state: &mut impl BatchState, sources: usize) -> Result<Vec<Vec<Hypothesis>>> {
        let k = self.beam_size.max(1);
        let start = Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() };
        let mut searches: Vec<Search> =
            (0..sources).map(|_| Search { alive: vec![start.clone()], finished: Vec::new(), done: false }).collect();
        let mut last = vec![SOS; sources];
        for _ in 0..self.max_steps {
            if last.is_empty() {
                break;
            }
            let stepped = state.step(&last, k)?;
            let mut rows = Vec::new();
            let mut next_last = Vec::new();
            let mut first_row = 0;
            for s in searches.iter_mut().filter(|s| !s.done) {
                let n = s.alive.len();
                let mine = &stepped[first_row..first_row + n];
                let mut cands: Vec<(f32, usize, u32)> = Vec::new();
                for (i, row) in mine.iter().enumerate() {
                    cands.extend(row.best.iter().map(|&(tok, lp)| (s.alive[i].log_prob + lp, i, tok)));
                }
                cands.sort_by(|a, b| b.0.total_cmp(&a.0));
                let mut next = Vec::new();
                let mut kept = Vec::new();
                for (score, i, tok) in cands.into_iter().take(k) {
                    let mut hyp = s.alive[i].clone();
                    hyp.log_prob = score;
                    hyp.attention.push(mine[i].attention.clone());
                    if tok == EOS {
                        s.finished.push(hyp);
                    } else {
                        hyp.ids.push(tok);
                        next.push(hyp);
                        kept.push(((first_row + i) as u32, tok));
                    }
                }
                first_row += n;
                s.alive = next;
                if s.finished.len() >= k.max(self.n_best) || s.alive.is_empty() {
                    s.done = true;
                    continue;
                }
                rows.extend(kept.iter().map(|r| r.0));
                next_last.extend(kept.iter().map(|r| r.1));
            }
            if !rows.is_empty() {
                state.select(&rows)?;
            }
            last = next_last;
        }
        let norm = |h: &Hypothesis| {
            let len = (h.attention.len().max(1)) as f32;
            h.log_prob / len.powf(self.length_penalty as f32)
        };
        Ok(searches
            .into_iter()
            .map(|mut s| {
                s.finished.extend(s.alive);
                s.finished.sort_by(|a, b| norm(b).total_cmp(&norm(a)));
                s.finished.truncate(self.n_best.max(1));
                s.finished
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_the_head_of_a_full_sort() {
        let row: Vec<f32> = (0..200).map(|i| ((i * 37 % 101) as f32 * 0.13).sin()).collect();
        let mut full: Vec<(u32, f32)> = row.iter().enumerate().map(|(j, &v)| (j as u32, v)).collect();
        full.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [1, 5, 199, 200, 300] {
            assert_eq!(top_k(&row, k), full[..k.min(200)].to_vec(), "k = {k}");
        }
    }

    #[test]
    fn top_k_log_softmax_matches_log_softmax_then_top_k() {
        // Values repeat (ties between ids).
        let row: Vec<f32> = (0..300).map(|i| ((i * 53 % 97) as f32 * 0.21).cos() * 4.0).collect();
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = row.iter().map(|&z| (z - max).exp()).sum::<f32>().ln();
        let logp: Vec<f32> = row.iter().map(|&z| z - max - lse).collect();
        for k in [1, 3, 8, 37] {
            assert_eq!(best_k(&row, k), top_k(&row, k), "k = {k}");
            let want = top_k(&logp, k);
            let got = top_k_log_softmax(&row, k);
            assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), want.iter().map(|w| w.0).collect::<Vec<_>>());
            for (g, w) in got.iter().zip(&want) {
                assert!((g.1 - w.1).abs() < 1e-6, "{g:?} vs {w:?}");
            }
        }
    }

    /// A toy decoder: each row's next-token distribution depends only on its source and
    /// its last token, so the batched search must give each source what searching it alone
    /// gives.
    struct Toy {
        /// Source of each row.
        rows: Vec<usize>,
        stepped: Vec<usize>,
        vocab: usize,
    }

    impl Toy {
        fn logits(&self, source: usize, last: u32) -> Vec<f32> {
            (0..self.vocab)
                .map(|j| (((source * 31 + last as usize * 7 + j * 13) % 17) as f32 * 0.37).sin() * 3.0)
                .collect()
        }
    }

    impl BatchState for Toy {
        fn step(&mut self, last: &[u32], k: usize) -> Result<Vec<RowStep>> {
            assert_eq!(last.len(), self.rows.len());
            self.stepped = self.rows.clone();
            Ok(self
                .rows
                .iter()
                .zip(last)
                .map(|(&s, &t)| RowStep { best: top_k_log_softmax(&self.logits(s, t), k), attention: vec![s as f32] })
                .collect())
        }

        fn select(&mut self, rows: &[u32]) -> Result<()> {
            self.rows = rows.iter().map(|&r| self.stepped[r as usize]).collect();
            Ok(())
        }
    }

    #[test]
    fn a_batch_searches_each_source_as_alone() {
        let search = BeamSearch { beam_size: 3, n_best: 2, max_steps: 9, length_penalty: 1.0 };
        let toy = |rows: Vec<usize>| Toy { rows, stepped: Vec::new(), vocab: 6 };
        let together = search.search_batch(&mut toy(vec![0, 1, 2, 3, 4]), 5).expect("batch");
        for (s, hyps) in together.iter().enumerate() {
            let alone = search.search_batch(&mut toy(vec![s]), 1).expect("alone");
            assert_eq!(&alone[0], hyps, "source {s}");
            assert!(hyps.iter().all(|h| h.attention.iter().all(|a| a == &vec![s as f32])));
        }
        let greedy_together = greedy(&mut toy(vec![0, 1, 2, 3]), 4, 9, true).expect("greedy");
        for (s, h) in greedy_together.iter().enumerate() {
            assert_eq!(&greedy(&mut toy(vec![s]), 1, 9, true).expect("alone")[0], h, "source {s}");
        }
    }
}
