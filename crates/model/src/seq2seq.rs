//! The whole model: encoder, decoder, loss, greedy and beam decoding.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, D};
use s2s_data::{Batch, Rng, EOS, PAD, SOS};
use serde::{Deserialize, Serialize};

use crate::attention::mask_bias;
use crate::config::{ModelConfig, ModelDims};
use crate::decoder::{Decoder, Memory};
use crate::encoder::Encoder;
use crate::error::{ModelError, Result};
use crate::fused::Products;
use crate::params::{seeded_builder, ParamStore};

/// Rows per thread from which greedy decoding splits a batch between threads (below
/// it, one sentence's step shares its products with a helper thread instead).
const ROWS_PER_THREAD: usize = 8;

/// Random streams used while training, stored in checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainRngs {
    pub dropout: Rng,
    pub teacher_forcing: Rng,
}

impl TrainRngs {
    pub fn new(seed: u64) -> Self {
        Self { dropout: Rng::derive(seed, "dropout"), teacher_forcing: Rng::derive(seed, "teacher_forcing") }
    }
}

/// Training (dropout on, maybe free-running) or evaluation (dropout off, teacher forcing).
#[derive(Debug)]
pub enum Mode<'a> {
    Train { rngs: &'a mut TrainRngs, teacher_forcing_ratio: f64 },
    Eval,
}

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

#[derive(Debug)]
pub struct Seq2Seq {
    cfg: ModelConfig,
    dims: ModelDims,
    encoder: Encoder,
    decoder: Decoder,
    params: ParamStore,
    device: Device,
    /// Threads for training steps and batched decoding (rows split between them).
    threads: usize,
}

impl Seq2Seq {
    /// A freshly initialised model; the initial weights depend only on `seed`.
    pub fn new(cfg: &ModelConfig, dims: ModelDims, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let (params, vb) = seeded_builder(seed, device);
        let encoder = Encoder::new(cfg, dims.src_vocab, vb.pp("encoder"))?;
        let decoder = Decoder::new(cfg, &dims, vb.pp("decoder"))?;
        Ok(Self { cfg: cfg.clone(), dims, encoder, decoder, params, device: device.clone(), threads: 1 })
    }

    /// Splits the rows of training batches and of batched greedy decoding over `threads`
    /// threads (at least 1). One thread is the default.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Threads to split rows over: on a GPU one stream of work is what it wants.
    fn cpu_threads(&self) -> usize {
        if self.device.is_cpu() {
            self.threads
        } else {
            1
        }
    }

    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    pub fn dims(&self) -> &ModelDims {
        &self.dims
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Encodes padded sources; returns the decoder memory and the initial decoder state.
    /// Detached `products` (inference) compute the products without gradients.
    fn encode(
        &self,
        src: &[u32],
        lengths: &[usize],
        s: usize,
        rng: Option<&mut Rng>,
        products: Products,
    ) -> Result<(Memory, Tensor)> {
        let b = lengths.len();
        if let Some(max) = self.decoder.attention().max_source_length() {
            if let Some(&len) = lengths.iter().find(|&&l| l > max) {
                return Err(ModelError::SourceTooLong { len, max });
            }
        }
        let src = Tensor::from_slice(src, (b, s), &self.device)?;
        let mask = if lengths.iter().all(|&l| l == s) {
            None
        } else {
            let m: Vec<f32> =
                lengths.iter().flat_map(|&l| (0..s).map(move |j| if j < l { 1.0 } else { 0.0 })).collect();
            Some(Tensor::from_vec(m, (b, s), &self.device)?)
        };
        let enc = self.encoder.forward(&src, mask.as_ref(), rng, products)?;
        let bias = mask.as_ref().map(mask_bias).transpose()?;
        Ok((self.decoder.memory(enc.outputs, bias, products)?, enc.final_hidden))
    }

    /// Mean negative log-likelihood per real target token (EOS included, PAD excluded).
    ///
    /// # Shapes
    /// returns a scalar
    pub fn loss(&self, batch: &Batch, mode: Mode) -> Result<Tensor> {
        let (rng, teacher) = match mode {
            Mode::Train { rngs, teacher_forcing_ratio } => {
                (Some(&mut rngs.dropout), Self::teacher_forcing(&mut rngs.teacher_forcing, teacher_forcing_ratio))
            }
            Mode::Eval => (None, true),
        };
        self.loss_over(batch, rng, teacher, batch.target_tokens())
    }

    /// Whether this batch feeds the reference words (one draw per batch).
    fn teacher_forcing(rng: &mut Rng, ratio: f64) -> bool {
        ratio >= 1.0 || f64::from(rng.next_f32()) < ratio
    }

    /// The loss's value and the gradients of every parameter, with the batch's rows split
    /// over [`Self::threads`] threads (one part each, same padding) whose gradients are
    /// summed. Each part draws its dropout from its own stream, seeded from the run's
    /// dropout stream, so a run is reproducible for a given thread count.
    pub fn loss_and_grads(&self, batch: &Batch, mode: Mode) -> Result<(f64, GradStore)> {
        let parts = batch.split_rows(self.cpu_threads());
        if parts.len() <= 1 {
            let loss = self.loss(batch, mode)?;
            let value = f64::from(loss.to_scalar::<f32>()?);
            return Ok((value, loss.backward()?));
        }
        let (seeds, teacher): (Option<Vec<u64>>, bool) = match mode {
            Mode::Train { rngs, teacher_forcing_ratio } => {
                let teacher = Self::teacher_forcing(&mut rngs.teacher_forcing, teacher_forcing_ratio);
                (Some(parts.iter().map(|_| rngs.dropout.next_u64()).collect()), teacher)
            }
            Mode::Eval => (None, true),
        };
        let total = batch.target_tokens();
        let run = |i: usize| -> Result<(f64, GradStore)> {
            let mut rng = seeds.as_ref().map(|s| Rng::derive(s[i], "dropout-part"));
            let loss = self.loss_over(&parts[i], rng.as_mut(), teacher, total)?;
            Ok((f64::from(loss.to_scalar::<f32>()?), loss.backward()?))
        };
        let results: Vec<Result<(f64, GradStore)>> = std::thread::scope(|scope| {
            let others: Vec<_> = (1..parts.len()).map(|i| scope.spawn(move || run(i))).collect();
            let mut all = vec![run(0)];
            for h in others {
                all.push(h.join().unwrap_or_else(|_| Err(ModelError::Worker)));
            }
            all
        });
        let mut value = 0.0;
        let mut stores = Vec::with_capacity(results.len());
        for r in results {
            let (v, g) = r?;
            value += v;
            stores.push(g);
        }
        // Sum each parameter's gradient over the parts, the parameters shared out between
        // the threads (each sum in part order, so the result does not depend on the split).
        let vars: Vec<Tensor> = self.params.vars().into_iter().map(|(_, v)| v.as_tensor().clone()).collect();
        let sum_of = |vars: &[Tensor]| -> Result<Vec<(usize, Tensor)>> {
            let mut out = Vec::new();
            for (i, t) in vars.iter().enumerate() {
                let mut parts = stores.iter().filter_map(|g| g.get(t));
                if let Some(first) = parts.next() {
                    let mut sum = first.clone();
                    for g in parts {
                        sum = (sum + g)?;
                    }
                    out.push((i, sum));
                }
            }
            Ok(out)
        };
        let (first, second) = vars.split_at(vars.len() / 2);
        let (a, b) = std::thread::scope(|scope| {
            let h = scope.spawn(|| sum_of(second));
            (sum_of(first), h.join().unwrap_or_else(|_| Err(ModelError::Worker)))
        });
        let mut grads = stores.swap_remove(0);
        for (i, sum) in a?.into_iter().chain(b?.into_iter().map(|(i, s)| (i + first.len(), s))) {
            grads.insert(&vars[i], sum);
        }
        Ok((value, grads))
    }

    /// The summed NLL of `batch`'s real target tokens divided by `denominator` (the whole
    /// batch's token count when `batch` is one part of it).
    fn loss_over(&self, batch: &Batch, mut rng: Option<&mut Rng>, teacher: bool, denominator: usize) -> Result<Tensor> {
        let (b, t) = (batch.size, batch.tgt_len);
        let (mem, mut h) =
            self.encode(&batch.src, &batch.src_lengths, batch.src_len, rng.as_deref_mut(), Products::Tracked)?;
        // On the CPU the decoder's per-step weights form their gradients once per batch;
        // the initial state carries them (every step depends on it).
        let shared = if self.device.is_cpu() { Some(self.decoder.shared()?) } else { None };
        let decoder = match &shared {
            Some((decoder, products)) => {
                for p in products {
                    h = p.anchor(&h)?;
                }
                decoder
            }
            None => &self.decoder,
        };
        let mut prev = Tensor::full(SOS, b, &self.device)?;
        let mut states = Vec::with_capacity(t);
        // Teacher forcing knows every input in advance: embed them all at once, time-major
        // (SOS, then the reference shifted by one), gathered on the host (a strided column
        // view used as embedding ids was read as if contiguous on CUDA).
        let forced = if teacher {
            let ids: Vec<u32> =
                (0..t * b).map(|i| if i < b { SOS } else { batch.tgt[(i % b) * t + i / b - 1] }).collect();
            Some(decoder.embed(&Tensor::from_vec(ids, t * b, &self.device)?, rng.as_deref_mut())?)
        } else {
            None
        };
        for step in 0..t {
            let (h_new, _) = match &forced {
                Some(all) => decoder.step_embedded(&all.narrow(0, step * b, b)?, &h, &mem)?,
                None => decoder.step(&prev, &h, &mem, rng.as_deref_mut())?,
            };
            h = h_new;
            states.push(h.clone());
            if forced.is_none() && step + 1 < t {
                // Free-running: the model's own previous choice.
                prev = decoder.logits(&h)?.argmax(D::Minus1)?.detach();
            }
        }
        // Time-major rows (step, sentence): a dim-0 stack, and targets/weights reordered on the host.
        let states = Tensor::stack(&states, 0)?.reshape((t * b, ()))?;
        let mask = batch.tgt_mask();
        let order = |i: usize| (i % b) * t + i / b;
        // Only the rows of real target tokens go through the output layer: PAD rows have
        // weight 0, and skipping them saves the vocabulary-sized product and softmax there.
        let real: Vec<u32> = (0..b * t).filter(|&i| mask[order(i)] > 0.0).map(|i| i as u32).collect();
        let states = if real.len() == b * t {
            states
        } else {
            states.index_select(&Tensor::new(real.as_slice(), &self.device)?, 0)?
        };
        let targets: Vec<u32> = real.iter().map(|&i| batch.tgt[order(i as usize)]).collect();
        let n = targets.len();
        let targets = Tensor::from_vec(targets, n, &self.device)?;
        let weights = Tensor::ones(n, candle_core::DType::F32, &self.device)?;
        let nll = decoder.nll(&states, &targets, &weights)?;
        Ok((nll.sum_all()? / denominator.max(1) as f64)?)
    }

    fn max_steps(&self) -> usize {
        if self.cfg.max_decode_length > 0 {
            self.cfg.max_decode_length
        } else {
            self.dims.max_length
        }
    }

    /// Greedy decoding of several sources at once (each ends with EOS).
    pub fn greedy(&self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>> {
        self.greedy_steps(sources, self.max_steps(), true)
    }

    /// Greedy decoding for `steps` steps; with `stop_at_eos` false it always runs them all
    /// (what a benchmark against a fixed-length decoder needs). On the CPU the decoder
    /// runs over plain buffers ([`crate::greedy`]): batches of at least 2 × 8 rows are
    /// split over [`Self::threads`] threads, smaller ones share each step with a helper
    /// thread when there is more than one.
    pub fn greedy_steps(&self, sources: &[Vec<u32>], steps: usize, stop_at_eos: bool) -> Result<Vec<Hypothesis>> {
        let b = sources.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        if !self.device.is_cpu() {
            return self.greedy_rows(sources, steps, stop_at_eos);
        }
        let threads = self.cpu_threads();
        let parts = threads.min(b / ROWS_PER_THREAD).max(1);
        crate::greedy::with_greedy_decoder(&self.decoder, |decoder| {
            let run = |rows: &[Vec<u32>], helper| -> Result<Vec<Hypothesis>> {
                let (mem, h0, lengths) = self.encode_sources(rows, helper)?;
                decoder.decode(&mem, &h0, &lengths, steps, stop_at_eos, helper)
            };
            if parts == 1 {
                return run(sources, crate::fused::helper_pool().filter(|_| threads > 1));
            }
            let size = b.div_ceil(parts);
            let results: Vec<Result<Vec<Hypothesis>>> = std::thread::scope(|scope| {
                let mut chunks = sources.chunks(size);
                let first = chunks.next().unwrap_or(&[]);
                let others: Vec<_> = chunks.map(|c| scope.spawn(move || run(c, None))).collect();
                let mut all = vec![run(first, None)];
                for h in others {
                    all.push(h.join().unwrap_or_else(|_| Err(ModelError::Worker)));
                }
                all
            });
            let mut hyps = Vec::with_capacity(b);
            for r in results {
                hyps.extend(r?);
            }
            Ok(hyps)
        })
    }

    /// Pads `sources` into one batch and encodes it for inference (products shared with
    /// `helper` when given): the decoder memory, the initial decoder state and each
    /// source's length.
    fn encode_sources(
        &self,
        sources: &[Vec<u32>],
        helper: Option<&'static rayon::ThreadPool>,
    ) -> Result<(Memory, Tensor, Vec<usize>)> {
        let lengths: Vec<usize> = sources.iter().map(Vec::len).collect();
        let s = lengths.iter().copied().max().unwrap_or(0);
        let grid: Vec<u32> =
            sources.iter().flat_map(|x| x.iter().copied().chain(std::iter::repeat(PAD)).take(s)).collect();
        let (mem, h) = self.encode(&grid, &lengths, s, None, Products::Detached(helper))?;
        Ok((mem, h, lengths))
    }

    /// Greedy decoding with candle's ops, one step at a time (devices other than the CPU).
    pub(crate) fn greedy_rows(&self, sources: &[Vec<u32>], steps: usize, stop_at_eos: bool) -> Result<Vec<Hypothesis>> {
        let b = sources.len();
        let (mem, mut h, lengths) = self.encode_sources(sources, None)?;
        let decoder = &self.decoder;
        let mut prev = Tensor::full(SOS, b, &self.device)?;
        let mut hyps = vec![Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() }; b];
        let mut done = vec![false; b];
        for _ in 0..steps {
            let (h_new, w) = decoder.step(&prev, &h, &mem, None)?;
            h = h_new.detach();
            let (ids, best) = decoder.greedy_pick(&h)?;
            let w: Vec<Vec<f32>> = w.to_vec2()?;
            let all_done = record_greedy_step(&mut hyps, &mut done, &ids, &best, |i| w[i][..lengths[i]].to_vec());
            if stop_at_eos && all_done {
                break;
            }
            prev = Tensor::new(ids, &self.device)?;
        }
        Ok(hyps)
    }

    /// Beam search for one source; returns up to `n_best` hypotheses, best first, ranked
    /// by `log_prob / len^length_penalty`.
    pub fn beam(&self, source: &[u32], beam_size: usize, n_best: usize) -> Result<Vec<Hypothesis>> {
        let k = beam_size.max(1);
        let (mem1, h1) = self.encode(source, &[source.len()], source.len(), None, Products::Detached(None))?;
        let norm = |h: &Hypothesis| {
            let len = (h.attention.len().max(1)) as f32;
            h.log_prob / len.powf(self.cfg.length_penalty as f32)
        };
        let mut alive = vec![Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() }];
        let mut finished: Vec<Hypothesis> = Vec::new();
        let mut h = h1;
        let mut last = vec![SOS];
        for _ in 0..self.max_steps() {
            let n = alive.len();
            let mem = mem1.repeat_row(0, n)?;
            let prev = Tensor::new(last.clone(), &self.device)?;
            let (h_new, w) = self.decoder.step(&prev, &h, &mem, None)?;
            let h_new = h_new.detach();
            let logp: Vec<Vec<f32>> =
                candle_nn::ops::log_softmax(&self.decoder.logits(&h_new)?, D::Minus1)?.to_vec2()?;
            let w: Vec<Vec<f32>> = w.to_vec2()?;
            let mut cands: Vec<(f32, usize, u32)> = Vec::new();
            for (i, row) in logp.iter().enumerate() {
                let mut top: Vec<(u32, f32)> = row.iter().enumerate().map(|(j, &v)| (j as u32, v)).collect();
                top.sort_by(|a, b| b.1.total_cmp(&a.1));
                cands.extend(top.into_iter().take(k).map(|(tok, lp)| (alive[i].log_prob + lp, i, tok)));
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
            if finished.len() >= k.max(n_best) || next.is_empty() {
                alive = next;
                break;
            }
            let idx = Tensor::new(rows.iter().map(|r| r.0).collect::<Vec<_>>(), &self.device)?;
            h = h_new.index_select(&idx, 0)?;
            last = rows.iter().map(|r| r.1).collect();
            alive = next;
        }
        finished.extend(alive);
        finished.sort_by(|a, b| norm(b).total_cmp(&norm(a)));
        finished.truncate(n_best.max(1));
        Ok(finished)
    }

    /// Decodes with the configured beam size (greedy when 1), one best hypothesis each.
    pub fn translate(&self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>> {
        if self.cfg.beam_size <= 1 {
            return self.greedy(sources);
        }
        let mut out = Vec::with_capacity(sources.len());
        for s in sources {
            out.extend(self.beam(s, self.cfg.beam_size, 1)?.into_iter().take(1));
        }
        Ok(out)
    }
}
