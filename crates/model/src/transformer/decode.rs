//! Transformer inference: incremental decoding with one key/value cache per decoder
//! layer (each step feeds one token, O(T) steps), greedy over a batch and beam search,
//! and the recomputing decoder the cache is tested against.

use candle_core::{Tensor, D};
use s2s_data::SOS;

use super::{Encoded, KeyValues, Transformer};
use crate::decode::{record_greedy_step, BeamSearch, BeamState, Hypothesis, StepRows};
use crate::error::{ModelError, Result};
use crate::family::TranslationModel;

/// The decoder's state over some rows: the encoded sources and what each layer's
/// self-attention has cached.
struct Incremental<'a> {
    model: &'a Transformer,
    memory: Encoded,
    caches: Vec<Option<KeyValues>>,
    /// Tokens fed so far, per row (the same for all rows).
    position: usize,
    /// Every token fed so far, when recomputing instead of caching (`(N, t)` ids).
    history: Option<Vec<Vec<u32>>>,
}

impl<'a> Incremental<'a> {
    fn new(model: &'a Transformer, memory: Encoded, cached: bool) -> Self {
        let memory = memory.detached();
        let rows = memory.lengths.len();
        let caches = vec![None; model.decoder.len()];
        Self { model, memory, caches, position: 0, history: (!cached).then(|| vec![Vec::new(); rows]) }
    }

    /// Feeds each row its next token; returns the log-probabilities `(N, V)` and the
    /// last layer's cross-attention averaged over heads `(N, S)`.
    fn step(&mut self, tokens: &[u32]) -> Result<(Tensor, Tensor)> {
        let m = self.model;
        let n = tokens.len();
        let (states, weights) = match &mut self.history {
            Some(history) => {
                for (h, &t) in history.iter_mut().zip(tokens) {
                    h.push(t);
                }
                let t = self.position + 1;
                let ids: Vec<u32> = history.iter().flatten().copied().collect();
                let (states, weights) =
                    m.decode_forced(&Tensor::from_vec(ids, (n, t), m.device())?, &self.memory, None, true)?;
                let last = weights.last().ok_or(ModelError::Worker)?;
                (states.narrow(1, t - 1, 1)?, last.narrow(2, t - 1, 1)?)
            }
            None => {
                let ids = Tensor::from_slice(tokens, (n, 1), m.device())?;
                let mut x = m.embed(&m.tgt_embedding, &m.tgt_positions, &ids, self.position, None)?;
                let mut last = None;
                for ((layer, mem), cache) in m.decoder.iter().zip(&self.memory.layers).zip(&mut self.caches) {
                    let (y, w) = layer.step(&x, cache, mem)?;
                    // Inference keeps no graph: a cache that remembered how it was made
                    // would hold every earlier step's tensors (O(T²) memory).
                    if let Some(kv) = cache {
                        *kv = KeyValues { k: kv.k.detach(), v: kv.v.detach() };
                    }
                    x = y.detach();
                    last = Some(w);
                }
                (m.decoder_norm.forward(&x)?, last.ok_or(ModelError::Worker)?)
            }
        };
        self.position += 1;
        let logits = m.logits(&states.squeeze(1)?)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        // (N, heads, 1, S) → mean over heads → (N, S)
        Ok((logp, weights.squeeze(2)?.mean(1)?))
    }

    fn select_rows(&mut self, rows: &[u32]) -> Result<()> {
        let idx = Tensor::new(rows, self.model.device())?;
        let lengths = rows.iter().map(|&r| self.memory.lengths[r as usize]).collect();
        self.memory = self.memory.select(&idx, lengths)?;
        for c in self.caches.iter_mut().flatten() {
            *c = c.select(&idx)?;
        }
        if let Some(h) = &mut self.history {
            *h = rows.iter().map(|&r| h[r as usize].clone()).collect();
        }
        Ok(())
    }
}

impl BeamState for Incremental<'_> {
    fn step(&mut self, last: &[u32]) -> Result<StepRows> {
        let (logp, w) = Incremental::step(self, last)?;
        Ok((logp.to_vec2()?, w.to_vec2()?))
    }

    fn select(&mut self, rows: &[u32]) -> Result<()> {
        self.select_rows(rows)
    }
}

/// Rows per thread from which greedy decoding splits a batch between threads.
pub(super) const ROWS_PER_THREAD: usize = 8;

impl Transformer {
    /// Greedy decoding with the key/value caches (`cached`) or recomputing the whole
    /// prefix at every step (the reference the caches are tested against).
    pub(crate) fn greedy_with(
        &self,
        sources: &[Vec<u32>],
        steps: usize,
        stop_at_eos: bool,
        cached: bool,
    ) -> Result<Vec<Hypothesis>> {
        let b = sources.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let mut state = Incremental::new(self, self.encode_sources(sources)?, cached);
        let mut hyps = vec![Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() }; b];
        let mut done = vec![false; b];
        let mut tokens = vec![SOS; b];
        for _ in 0..steps {
            let (logp, w) = state.step(&tokens)?;
            let ids: Vec<u32> = logp.argmax(D::Minus1)?.to_vec1()?;
            let best: Vec<f32> =
                logp.gather(&Tensor::new(ids.as_slice(), self.device())?.unsqueeze(1)?, 1)?.squeeze(1)?.to_vec1()?;
            let w: Vec<Vec<f32>> = w.to_vec2()?;
            let lengths = &state.memory.lengths;
            let all_done = record_greedy_step(&mut hyps, &mut done, &ids, &best, |i| w[i][..lengths[i]].to_vec());
            if stop_at_eos && all_done {
                break;
            }
            tokens = ids;
        }
        Ok(hyps)
    }

    pub(crate) fn beam_with(
        &self,
        source: &[u32],
        beam_size: usize,
        n_best: usize,
        cached: bool,
    ) -> Result<Vec<Hypothesis>> {
        let memory = self.encode(source, &[source.len()], source.len(), None)?;
        let search = BeamSearch {
            beam_size,
            n_best,
            max_steps: self.base().max_steps(),
            length_penalty: self.decoding().length_penalty,
        };
        search.search(&mut Incremental::new(self, memory, cached))
    }
}
