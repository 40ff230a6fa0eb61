//! Padded, masked batches of id sequences, reshuffled each epoch from the run's seed.

use crate::dataset::Pair;
use crate::rng::Rng;
use crate::vocab::{Vocab, PAD};

/// One pair as ids; both sides end with EOS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub src: Vec<u32>,
    pub tgt: Vec<u32>,
}

pub fn encode(pairs: &[Pair], src_vocab: &Vocab, tgt_vocab: &Vocab) -> Vec<Example> {
    pairs.iter().map(|p| Example { src: src_vocab.encode(&p.src), tgt: tgt_vocab.encode(&p.tgt) }).collect()
}

/// Row-major `(size, src_len)` and `(size, tgt_len)` id grids, right-padded with PAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub size: usize,
    pub src_len: usize,
    pub tgt_len: usize,
    pub src: Vec<u32>,
    pub src_lengths: Vec<usize>,
    pub tgt: Vec<u32>,
    pub tgt_lengths: Vec<usize>,
    /// Which examples, in row order.
    pub indices: Vec<usize>,
}

impl Batch {
    pub fn new(examples: &[Example], indices: &[usize]) -> Self {
        let src_len = indices.iter().map(|&i| examples[i].src.len()).max().unwrap_or(0);
        let tgt_len = indices.iter().map(|&i| examples[i].tgt.len()).max().unwrap_or(0);
        Self {
            size: indices.len(),
            src_len,
            tgt_len,
            src: indices.iter().flat_map(|&i| pad(&examples[i].src, src_len)).collect(),
            src_lengths: indices.iter().map(|&i| examples[i].src.len()).collect(),
            tgt: indices.iter().flat_map(|&i| pad(&examples[i].tgt, tgt_len)).collect(),
            tgt_lengths: indices.iter().map(|&i| examples[i].tgt.len()).collect(),
            indices: indices.to_vec(),
        }
    }

    /// 1.0 at real tokens, 0.0 at PAD, `(size, src_len)`.
    pub fn src_mask(&self) -> Vec<f32> {
        mask(&self.src_lengths, self.src_len)
    }

    /// 1.0 at real tokens (EOS included), 0.0 at PAD, `(size, tgt_len)`.
    pub fn tgt_mask(&self) -> Vec<f32> {
        mask(&self.tgt_lengths, self.tgt_len)
    }

    /// Real (non-PAD) target tokens.
    pub fn target_tokens(&self) -> usize {
        self.tgt_lengths.iter().sum()
    }

    /// The rows split into at most `parts` consecutive groups of near-equal size (the first
    /// ones one row larger), each keeping the whole batch's padded lengths.
    pub fn split_rows(&self, parts: usize) -> Vec<Batch> {
        let parts = parts.clamp(1, self.size.max(1));
        let (base, extra) = (self.size / parts, self.size % parts);
        let mut out = Vec::with_capacity(parts);
        let mut from = 0;
        for p in 0..parts {
            let n = base + usize::from(p < extra);
            let rows = from..from + n;
            out.push(Batch {
                size: n,
                src_len: self.src_len,
                tgt_len: self.tgt_len,
                src: self.src[rows.start * self.src_len..rows.end * self.src_len].to_vec(),
                src_lengths: self.src_lengths[rows.clone()].to_vec(),
                tgt: self.tgt[rows.start * self.tgt_len..rows.end * self.tgt_len].to_vec(),
                tgt_lengths: self.tgt_lengths[rows.clone()].to_vec(),
                indices: self.indices[rows].to_vec(),
            });
            from += n;
        }
        out
    }
}

fn pad(seq: &[u32], len: usize) -> impl Iterator<Item = u32> + '_ {
    seq.iter().copied().chain(std::iter::repeat(PAD)).take(len)
}

fn mask(lengths: &[usize], len: usize) -> Vec<f32> {
    lengths.iter().flat_map(|&l| (0..len).map(move |j| if j < l { 1.0 } else { 0.0 })).collect()
}

/// How an epoch's batches are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPlan {
    pub batch_size: usize,
    pub shuffle: bool,
    pub length_bucketing: bool,
    /// Batches by token count instead of `batch_size` sentences (0 = off; `batch_size` is
    /// then unused): each batch holds as many sentences as fit `batch_tokens` padded tokens
    /// of its longer side, rows × the widest row's longer side. Alone, the batches are
    /// random: consecutive runs of the shuffled order, as JoeyNMT's `batch_type: token`
    /// ([`token_batches`]). With `length_bucketing`, sentences of similar length, as
    /// fairseq's `--max-tokens` (less padding, more sentences per batch).
    pub batch_tokens: usize,
    pub seed: u64,
}

/// Pairs per bucketing pool, in batches.
const BUCKET_POOL_BATCHES: usize = 50;

impl BatchPlan {
    /// The batches of epoch `epoch` (0-based). Without bucketing and with shuffling on,
    /// they are exactly `torch_ref.py`'s `make_batches(.., shuffled_indices(n, seed, epoch))`.
    ///
    /// With bucketing, the shuffled pairs are cut into pools of 50 batches' worth, each
    /// pool is sorted by length (target, then source), and cut into batches by a *token
    /// budget*: `batch_size` × the mean target length of all the examples, in padded target
    /// tokens. Batches of short sentences hold more of them, so that every batch carries
    /// about the same number of target tokens, as with random batches: the loss is a mean
    /// per token within a batch, and every optimizer step weighs about the same, so
    /// batches of `batch_size` sentences each would give a short sentence's tokens several
    /// times the weight of a long one's (what sentence-count bucketing did; it cost Tatoeba
    /// 0.8 BLEU, the token budget 0.1: BENCHMARKS.md). The batches are then shuffled.
    /// With `batch_tokens` as well, the pools are sorted the same way and cut by that budget
    /// on both sides' padded widths.
    ///
    /// With `batch_tokens` and no bucketing, the shuffled order is cut into consecutive
    /// runs by [`token_batches`]: random batches, only their sizes set by the budget.
    ///
    /// Every case is a pure function of (`seed`, `epoch`), so a run resumed mid-epoch gets
    /// the same batches again.
    pub fn epoch(&self, examples: &[Example], epoch: usize) -> Vec<Batch> {
        let n = examples.len();
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = Rng::new(self.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        if self.shuffle {
            rng.shuffle(&mut order);
        }
        let bs = self.batch_size.max(1);
        if !self.length_bucketing {
            if self.batch_tokens > 0 {
                return token_batches(examples, &order, self.batch_tokens)
                    .into_iter()
                    .map(|r| Batch::new(examples, &order[r]))
                    .collect();
            }
            return order.chunks(bs).map(|c| Batch::new(examples, c)).collect();
        }
        // Padded tokens a batch of `rows` would take up, its last row being `e`:
        // the target side for length bucketing, the longer side for token batches.
        let (budget, pool_rows) = if self.batch_tokens > 0 {
            let mean = examples.iter().map(|e| e.src.len().max(e.tgt.len())).sum::<usize>() / n.max(1);
            (self.batch_tokens, (self.batch_tokens / mean.max(1)).max(1) * BUCKET_POOL_BATCHES)
        } else {
            (token_budget(examples, bs), bs * BUCKET_POOL_BATCHES)
        };
        let both_sides = self.batch_tokens > 0;
        let mut batches = Vec::new();
        for pool in order.chunks(pool_rows) {
            let mut pool = pool.to_vec();
            pool.sort_by_key(|&i| (examples[i].tgt.len(), examples[i].src.len()));
            let mut start = 0;
            while start < pool.len() {
                // Sorted by target length, a batch's padded target width is its last row's.
                let mut end = start + 1;
                let mut src_width = examples[pool[start]].src.len();
                while end < pool.len() {
                    let e = &examples[pool[end]];
                    let width = if both_sides { e.tgt.len().max(src_width.max(e.src.len())) } else { e.tgt.len() };
                    if (end + 1 - start) * width > budget {
                        break;
                    }
                    src_width = src_width.max(e.src.len());
                    end += 1;
                }
                batches.push(Batch::new(examples, &pool[start..end]));
                start = end;
            }
        }
        if self.shuffle {
            rng.shuffle(&mut batches);
        }
        batches
    }
}

/// Random token batches: `order` cut into consecutive ranges, each closed before the next
/// sentence would make rows × the widest row's longer side (src or tgt, EOS included)
/// exceed `budget` padded tokens. A sentence longer than `budget` on its own gets a batch
/// of its own (config validation keeps `budget` ≥ `data.max_length`, so none should be).
///
/// JoeyNMT 2.3's `TokenBatchSampler` walks its shuffled order the same way but closes a
/// batch *after* the sentence that reaches the budget, so its batches may exceed it by one
/// sentence; here the budget is a bound on every batch's padded tokens (and so its memory).
pub fn token_batches(examples: &[Example], order: &[usize], budget: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut width) = (0, 0);
    for (k, &i) in order.iter().enumerate() {
        let e = &examples[i];
        let w = width.max(e.src.len().max(e.tgt.len()));
        if k > start && (k + 1 - start) * w > budget {
            ranges.push(start..k);
            start = k;
            width = e.src.len().max(e.tgt.len());
        } else {
            width = w;
        }
    }
    if start < order.len() {
        ranges.push(start..order.len());
    }
    ranges
}

/// Padded target tokens per bucketed batch: `batch_size` sentences of the mean target length.
fn token_budget(examples: &[Example], batch_size: usize) -> usize {
    let tokens: usize = examples.iter().map(|e| e.tgt.len()).sum();
    (batch_size * tokens).div_ceil(examples.len().max(1)).max(1)
}

/// Batches in data order, for evaluation.
pub fn sequential(examples: &[Example], batch_size: usize) -> Vec<Batch> {
    let order: Vec<usize> = (0..examples.len()).collect();
    order.chunks(batch_size.max(1)).map(|c| Batch::new(examples, c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> Vec<Example> {
        (0..10).map(|i| Example { src: vec![4; 1 + i % 4], tgt: vec![5; 1 + (i * 7) % 5] }).collect()
    }

    #[test]
    fn padding_and_masks() {
        let ex = examples();
        let b = Batch::new(&ex, &[0, 3]);
        assert_eq!((b.src_len, b.tgt_len), (4, 2));
        assert_eq!(b.src, vec![4, PAD, PAD, PAD, 4, 4, 4, 4]);
        assert_eq!(b.src_mask(), vec![1., 0., 0., 0., 1., 1., 1., 1.]);
        assert_eq!(b.target_tokens(), 1 + 2);
    }

    #[test]
    fn split_rows_keeps_padding_and_row_order() {
        let ex = examples();
        let b = Batch::new(&ex, &[0, 3, 5, 6, 9]);
        let parts = b.split_rows(2);
        assert_eq!(parts.iter().map(|p| p.size).collect::<Vec<_>>(), vec![3, 2]);
        assert!(parts.iter().all(|p| (p.src_len, p.tgt_len) == (b.src_len, b.tgt_len)));
        let joined: Vec<u32> = parts.iter().flat_map(|p| p.src.clone()).collect();
        assert_eq!(joined, b.src);
        let tgt: Vec<u32> = parts.iter().flat_map(|p| p.tgt.clone()).collect();
        assert_eq!(tgt, b.tgt);
        assert_eq!(parts[1].indices, vec![6, 9]);
        assert_eq!(parts.iter().map(Batch::target_tokens).sum::<usize>(), b.target_tokens());
        assert_eq!(b.split_rows(9).len(), 5);
    }

    #[test]
    fn epochs_cover_every_example_once_and_differ() {
        let ex = examples();
        for bucketing in [false, true] {
            let plan =
                BatchPlan { batch_size: 3, shuffle: true, length_bucketing: bucketing, batch_tokens: 0, seed: 0 };
            let e0 = plan.epoch(&ex, 0);
            let mut seen: Vec<usize> = e0.iter().flat_map(|b| b.indices.clone()).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
            assert_ne!(e0, plan.epoch(&ex, 1));
            assert_eq!(e0, plan.epoch(&ex, 0));
        }
    }

    #[test]
    fn bucketed_batches_carry_about_the_same_number_of_target_tokens() {
        // Targets of 2 to 12 tokens: batches of 8 sentences would carry 16 to 96 tokens.
        let ex: Vec<Example> =
            (0..400).map(|i| Example { src: vec![4; 1 + i % 7], tgt: vec![5; 2 + (i * 7) % 11] }).collect();
        let plan = BatchPlan { batch_size: 8, shuffle: true, length_bucketing: true, batch_tokens: 0, seed: 3 };
        let budget = token_budget(&ex, 8);
        assert_eq!(budget, (8 * ex.iter().map(|e| e.tgt.len()).sum::<usize>()).div_ceil(400));
        let batches = plan.epoch(&ex, 0);
        let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..400).collect::<Vec<_>>());
        for b in &batches {
            assert!(b.size * b.tgt_len <= budget || b.size == 1, "{} rows of {} > {budget}", b.size, b.tgt_len);
        }
        // Short targets come in bigger batches, and all but the pools' last batches are
        // filled to within one sentence of the budget.
        let rows = |len: usize| batches.iter().filter(|b| b.tgt_len == len).map(|b| b.size).max().unwrap_or(0);
        assert!(rows(2) > 3 * rows(12), "{} vs {}", rows(2), rows(12));
        let full = batches.iter().filter(|b| (b.size + 1) * b.tgt_len > budget).count();
        assert!(full * 10 >= batches.len() * 7, "{full} of {} batches are full", batches.len());
        // About as many steps as batches of 8 sentences would make.
        assert!((batches.len() as f64 - 50.0).abs() < 10.0, "{} batches", batches.len());
    }

    #[test]
    fn bucketed_token_batches_fit_the_budget_on_both_sides() {
        // Sources of 1 to 60 tokens, targets of 2 to 12: the source side sets many widths.
        let ex: Vec<Example> =
            (0..2000).map(|i| Example { src: vec![4; 1 + (i * 13) % 60], tgt: vec![5; 2 + (i * 7) % 11] }).collect();
        let plan = BatchPlan { batch_size: 1, shuffle: true, length_bucketing: true, batch_tokens: 400, seed: 1 };
        let batches = plan.epoch(&ex, 0);
        let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..2000).collect::<Vec<_>>());
        for b in &batches {
            assert!(b.size * b.src_len.max(b.tgt_len) <= 400, "{} rows of {}/{}", b.size, b.src_len, b.tgt_len);
        }
        // Full batches: the padded tokens add up to most of the budget on average.
        let padded: usize = batches.iter().map(|b| b.size * b.src_len.max(b.tgt_len)).sum();
        assert!(padded as f64 / batches.len() as f64 > 0.6 * 400.0, "{padded} over {} batches", batches.len());
        assert_ne!(batches, plan.epoch(&ex, 1));
        assert_eq!(batches, plan.epoch(&ex, 0));
    }

    /// Lengths 1 to 30 on either side, uncorrelated: widths vary a lot from batch to batch.
    fn mixed_lengths(n: usize) -> Vec<Example> {
        (0..n).map(|i| Example { src: vec![4; 1 + (i * 13) % 30], tgt: vec![5; 1 + (i * 7 + i / 30) % 30] }).collect()
    }

    fn padded(b: &Batch) -> usize {
        b.size * b.src_len.max(b.tgt_len)
    }

    fn random_tokens(seed: u64) -> BatchPlan {
        BatchPlan { batch_size: 64, shuffle: true, length_bucketing: false, batch_tokens: 300, seed }
    }

    #[test]
    fn random_token_batches_cover_every_example_once_within_the_budget() {
        let ex = mixed_lengths(3000);
        let plan = random_tokens(5);
        for epoch in 0..3 {
            let batches = plan.epoch(&ex, epoch);
            let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..3000).collect::<Vec<_>>());
            for b in &batches {
                // The memory bound: no batch's padded grid, either side, exceeds the budget.
                assert!(
                    b.size * b.src_len <= 300 && b.size * b.tgt_len <= 300,
                    "{} rows of {}/{}",
                    b.size,
                    b.src_len,
                    b.tgt_len
                );
            }
            // Each batch is as full as the order allows: the next sentence would not fit.
            for (b, next) in batches.iter().zip(&batches[1..]) {
                let e = &ex[next.indices[0]];
                let width = b.src_len.max(b.tgt_len).max(e.src.len()).max(e.tgt.len());
                assert!((b.size + 1) * width > 300, "batch of {} rows of {width} had room", b.size);
            }
        }
    }

    #[test]
    fn random_token_batches_are_a_pure_function_of_seed_and_epoch() {
        let ex = mixed_lengths(500);
        let e0 = random_tokens(7).epoch(&ex, 0);
        assert_eq!(e0, random_tokens(7).epoch(&ex, 0));
        assert_ne!(e0, random_tokens(7).epoch(&ex, 1));
        assert_ne!(e0, random_tokens(8).epoch(&ex, 0));
    }

    #[test]
    fn random_token_batches_follow_the_shuffle() {
        // Concatenated, the batches are exactly the order that batches of sentences are cut
        // from (torch_ref.py's shuffle): token batches only choose where to cut it.
        let ex = mixed_lengths(1000);
        let sentences = BatchPlan { batch_size: 1, batch_tokens: 0, ..random_tokens(3) };
        let order: Vec<usize> = sentences.epoch(&ex, 2).iter().flat_map(|b| b.indices.clone()).collect();
        let tokens: Vec<usize> = random_tokens(3).epoch(&ex, 2).iter().flat_map(|b| b.indices.clone()).collect();
        assert_eq!(tokens, order);
        // Without shuffling, data order.
        let plain = BatchPlan { shuffle: false, ..random_tokens(3) };
        let tokens: Vec<usize> = plain.epoch(&ex, 0).iter().flat_map(|b| b.indices.clone()).collect();
        assert_eq!(tokens, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn random_token_batches_mix_lengths_and_bucketed_ones_do_not() {
        // The spread of the batches' mean target lengths: random batches' means stay near
        // the corpus mean, bucketed batches' span the whole range.
        let ex = mixed_lengths(4000);
        let spread = |batches: &[Batch]| {
            let means: Vec<f64> = batches.iter().map(|b| b.target_tokens() as f64 / b.size as f64).collect();
            let m = means.iter().sum::<f64>() / means.len() as f64;
            (means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / means.len() as f64).sqrt()
        };
        let random = random_tokens(1).epoch(&ex, 0);
        let bucketed = BatchPlan { length_bucketing: true, ..random_tokens(1) }.epoch(&ex, 0);
        let sentences = BatchPlan { batch_size: 12, batch_tokens: 0, ..random_tokens(1) }.epoch(&ex, 0);
        let (r, b, s) = (spread(&random), spread(&bucketed), spread(&sentences));
        assert!(b > 3.0 * r, "bucketed spread {b:.2} vs random {r:.2}");
        assert!(r < 1.5 * s, "random token batches' spread {r:.2} vs random sentence batches' {s:.2}");
        // And the rows within a batch are not sorted by length.
        let sorted = random.iter().filter(|b| b.tgt_lengths.windows(2).all(|w| w[0] <= w[1])).count();
        assert!(sorted * 4 < random.len(), "{sorted} of {} batches sorted", random.len());
    }

    #[test]
    fn an_over_long_sentence_gets_a_batch_of_its_own() {
        let mut ex = mixed_lengths(200);
        ex[17] = Example { src: vec![4; 50], tgt: vec![5; 3] };
        let plan = BatchPlan { batch_tokens: 40, ..random_tokens(2) };
        let batches = plan.epoch(&ex, 0);
        let own = batches.iter().find(|b| b.indices.contains(&17)).expect("17 is batched");
        assert_eq!(own.indices, vec![17]);
        assert!(batches.iter().all(|b| padded(b) <= 40 || b.size == 1));
        let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
        // An empty order gives no batches, and the cuts are ranges of the order.
        assert!(token_batches(&ex, &[], 40).is_empty());
        assert_eq!(token_batches(&ex, &[17], 40), vec![0..1]);
    }

    #[test]
    fn bucketed_token_batches_are_unchanged() {
        // batch_tokens with length_bucketing is what batch_tokens alone did before random
        // token batches (figures from that version): the sorted pools, cut, shuffled.
        let ex: Vec<Example> =
            (0..2000).map(|i| Example { src: vec![4; 1 + (i * 13) % 60], tgt: vec![5; 2 + (i * 7) % 11] }).collect();
        let plan = BatchPlan { batch_size: 1, shuffle: true, length_bucketing: true, batch_tokens: 400, seed: 1 };
        let batches = plan.epoch(&ex, 0);
        assert_eq!(batches.len(), 207);
        assert_eq!(batches[0].indices, vec![683, 23, 1343, 1560, 97, 757]);
        let sizes: Vec<usize> = batches.iter().take(10).map(|b| b.size).collect();
        assert_eq!(sizes, vec![6, 11, 18, 6, 11, 8, 11, 13, 21, 9]);
        let hash =
            batches.iter().flat_map(|b| b.indices.iter()).fold(0u64, |h, &i| h.wrapping_mul(1_000_003) ^ i as u64);
        assert_eq!(hash, 5_212_730_626_601_222_154);
    }

    #[test]
    fn unbucketed_order_is_torch_refs() {
        // torch_ref.shuffled_indices(10, 0, 0) == [6, 3, 2, 9, 8, 1, 4, 7, 0, 5]
        let plan = BatchPlan { batch_size: 4, shuffle: true, length_bucketing: false, batch_tokens: 0, seed: 0 };
        let b = plan.epoch(&examples(), 0);
        assert_eq!(b[0].indices, vec![6, 3, 2, 9]);
        assert_eq!(b[2].indices, vec![0, 5]);
    }
}
