//! The GRU family's whole model: encoder, decoder and loss; decoding is [`crate::decode`]'s.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, D};
use s2s_data::{Batch, Rng, PAD, SOS};
use serde::{Deserialize, Serialize};

use crate::attention::mask_bias;
use crate::config::{AttentionKind, ModelConfig, ModelDims, ParameterCount};
use crate::decode::Hypothesis;
use crate::decoder::{Decoder, Memory};
use crate::encoder::Encoder;
use crate::error::{ModelError, Result};
use crate::fused::Products;
use crate::params::{linear, seeded_builder, Linear, ParamStore};

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

/// Training (dropout on, maybe free-running, maybe smoothed targets) or evaluation
/// (dropout off, teacher forcing, the plain NLL).
#[derive(Debug)]
pub enum Mode<'a> {
    Train { rngs: &'a mut TrainRngs, teacher_forcing_ratio: f64, label_smoothing: f64 },
    Eval,
}

#[derive(Debug)]
pub struct Seq2Seq {
    cfg: ModelConfig,
    dims: ModelDims,
    encoder: Encoder,
    decoder: Decoder,
    /// `bridge`, `Linear(D·H → H)` from the encoder's final states (`model.bridge`).
    bridge: Option<Linear>,
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
        let bridge = if cfg.bridge {
            let directions = if cfg.bidirectional { 2 } else { 1 };
            Some(linear(directions * cfg.hidden_size, cfg.hidden_size, true, vb.pp("bridge"))?)
        } else {
            None
        };
        Ok(Self { cfg: cfg.clone(), dims, encoder, decoder, bridge, params, device: device.clone(), threads: 1 })
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

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// What [`Self::new`] would allocate, from the sizes alone.
    pub fn parameter_count(cfg: &ModelConfig, dims: &ModelDims) -> ParameterCount {
        let (e, h) = (cfg.embedding_dim() as u128, cfg.hidden_size as u128);
        let (src, tgt, slots) = (dims.src_vocab as u128, dims.tgt_vocab as u128, dims.max_length as u128);
        let gru = |input: u128| 3 * h * input + 3 * h * h + 6 * h;
        let directions = if cfg.bidirectional { 2 } else { 1 };
        let encoder: u128 = (0..cfg.encoder_layers).map(|k| directions * gru(if k == 0 { e } else { h })).sum();
        let linear = |i: u128, o: u128, bias: bool| i * o + if bias { o } else { 0 };
        let (attention, combine, gru_in) = match cfg.attention {
            AttentionKind::Location => (linear(e + h, slots, true), linear(e + h, h, true), h),
            AttentionKind::Bahdanau => (2 * linear(h, h, true) + linear(h, 1, true), 0, e + h),
            AttentionKind::LuongDot => (0, 0, e + h),
            AttentionKind::LuongGeneral => (linear(h, h, false), 0, e + h),
        };
        let (gru_in, att_vector) = if cfg.input_feeding { (gru_in + h, linear(2 * h, h, true)) } else { (gru_in, 0) };
        let bridge = if cfg.bridge { linear(directions * h, h, true) } else { 0 };
        let tgt_embedding = if cfg.tie_embeddings.decoder() { 0 } else { tgt * e };
        let vocabulary = src * e + tgt_embedding + linear(h, tgt, true);
        ParameterCount {
            total: vocabulary + encoder + attention + combine + gru(gru_in) + att_vector + bridge,
            vocabulary,
        }
    }

    pub fn dims(&self) -> &ModelDims {
        &self.dims
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Encodes padded sources; returns the decoder memory and the initial decoder state
    /// (`(B, state_size)`, see [`Decoder::initial_state`]).
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
        let h0 = match &self.bridge {
            Some(bridge) => bridge.forward(&enc.final_states)?.tanh()?,
            None => enc.final_hidden,
        };
        Ok((self.decoder.memory(enc.outputs, bias, products)?, self.decoder.initial_state(h0)?))
    }

    /// Mean negative log-likelihood per real target token (EOS included, PAD excluded).
    ///
    /// # Shapes
    /// returns a scalar
    pub fn loss(&self, batch: &Batch, mode: Mode) -> Result<Tensor> {
        let (rng, teacher, smoothing) = match mode {
            Mode::Train { rngs, teacher_forcing_ratio, label_smoothing } => (
                Some(&mut rngs.dropout),
                Self::teacher_forcing(&mut rngs.teacher_forcing, teacher_forcing_ratio),
                label_smoothing,
            ),
            Mode::Eval => (None, true, 0.0),
        };
        self.loss_over(batch, rng, teacher, batch.target_tokens(), smoothing)
    }

    /// Whether this batch feeds the reference words (one draw per batch).
    fn teacher_forcing(rng: &mut Rng, ratio: f64) -> bool {
        ratio >= 1.0 || f64::from(rng.next_f32()) < ratio
    }

    /// The loss's value and the gradients of every parameter, with the batch's rows split
    /// over [`Self::threads`] threads (one part each, same padding) whose gradients are
    /// summed ([`crate::parallel::summed_grads`]). Each part draws its dropout from its own stream, seeded from the run's
    /// dropout stream, so a run is reproducible for a given thread count.
    pub fn loss_and_grads(&self, batch: &Batch, mode: Mode) -> Result<(f64, GradStore)> {
        let parts = batch.split_rows(self.cpu_threads());
        if parts.len() <= 1 {
            let loss = self.loss(batch, mode)?;
            let value = f64::from(loss.to_scalar::<f32>()?);
            return Ok((value, loss.backward()?));
        }
        let (seeds, teacher, smoothing): (Option<Vec<u64>>, bool, f64) = match mode {
            Mode::Train { rngs, teacher_forcing_ratio, label_smoothing } => {
                let teacher = Self::teacher_forcing(&mut rngs.teacher_forcing, teacher_forcing_ratio);
                (Some(parts.iter().map(|_| rngs.dropout.next_u64()).collect()), teacher, label_smoothing)
            }
            Mode::Eval => (None, true, 0.0),
        };
        let total = batch.target_tokens();
        crate::parallel::summed_grads(&self.params, parts.len(), |i| {
            let mut rng = seeds.as_ref().map(|s| Rng::derive(s[i], "dropout-part"));
            let loss = self.loss_over(&parts[i], rng.as_mut(), teacher, total, smoothing)?;
            Ok((f64::from(loss.to_scalar::<f32>()?), loss.backward()?))
        })
    }

    /// The summed loss (NLL, or cross-entropy with smoothed targets) of `batch`'s real
    /// target tokens divided by `denominator` (the whole batch's token count when `batch`
    /// is one part of it).
    fn loss_over(
        &self,
        batch: &Batch,
        mut rng: Option<&mut Rng>,
        teacher: bool,
        denominator: usize,
        smoothing: f64,
    ) -> Result<Tensor> {
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
        let outputs = decoder.dropped_output(&states, rng)?;
        let nll = decoder.nll(&outputs, &targets, &weights, smoothing)?;
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
        // The buffer decoder knows the tutorial's decoder; input feeding's steps go
        // through candle's ops.
        if !self.device.is_cpu() || self.decoder.input_feeding() {
            return self.greedy_rows(sources, steps, stop_at_eos);
        }
        let threads = self.cpu_threads();
        let parts = threads.min(b / ROWS_PER_THREAD).max(1);
        crate::decode::greedy::with_greedy_decoder(&self.decoder, |decoder| {
            let run = |rows: &[Vec<u32>], helper| -> Result<Vec<Hypothesis>> {
                let (mem, h0, lengths) = self.encode_sources(rows, helper)?;
                decoder.decode(&mem, &h0, &lengths, steps, stop_at_eos, helper)
            };
            if parts == 1 {
                return run(sources, crate::fused::helper_pool().filter(|_| threads > 1));
            }
            crate::parallel::in_chunks(sources, parts, |c| run(c, None))
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
        let (mem, h, lengths) = self.encode_sources(sources, None)?;
        crate::decode::greedy_rows(&self.decoder, &mem, h, &lengths, steps, stop_at_eos)
    }

    /// Beam search for one source; returns up to `n_best` hypotheses, best first, ranked
    /// by `log_prob / len^length_penalty`.
    pub fn beam(&self, source: &[u32], beam_size: usize, n_best: usize) -> Result<Vec<Hypothesis>> {
        let (mem, h) = self.encode(source, &[source.len()], source.len(), None, Products::Detached(None))?;
        let search = crate::decode::BeamSearch {
            beam_size,
            n_best,
            max_steps: self.max_steps(),
            length_penalty: self.cfg.length_penalty,
        };
        search.run(&self.decoder, &mem, h)
    }
}
