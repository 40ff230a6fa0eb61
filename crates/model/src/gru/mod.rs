//! The GRU family: a GRU encoder and an attention decoder (the PyTorch notebook's model
//! and the NMT recipe's options), its config ([`GruConfig`]), its kernels, and its
//! inference (encoding, greedy and beam search over plain buffers on the CPU, `buffers`;
//! step by step with candle's ops elsewhere and with input feeding, `buffers::greedy_rows`
//! and `beam`).
//!
//! Parameter names: `encoder.embedding.weight`, `encoder.gru.*` (PyTorch's `nn.GRU`
//! names), `decoder.*` (see `decoder::Decoder`), `bridge.*` (with `bridge` only).

mod attention;
mod beam;
pub(crate) mod buffers;
mod config;
mod decoder;
mod encoder;
pub mod kernels;
mod layer;
#[cfg(test)]
#[allow(clippy::excessive_precision)]
mod testdata;
#[cfg(test)]
mod tests;

use candle_core::{Device, Tensor, D};
use s2s_data::{Batch, Rng, SOS};

use crate::decode::{BeamSearch, Hypothesis, Padded};
use crate::error::{ModelError, Result};
use crate::family::{Family, ModelBase, TranslationModel};
use crate::packed_copy::PackedCopy;
use crate::parallel::{with_helper, Helper};
use crate::params::Weights;
use crate::params::{linear, Linear};
use crate::shared_config::{DecodingConfig, ModelDims};
use crate::training::{real_target_rows, StepOptions};
use attention::mask_bias;
pub use config::{AttentionKind, GruConfig};
use decoder::{Decoder, Memory};
use encoder::Encoder;
use kernels::Products;

/// Rows per thread from which greedy decoding splits a batch between threads (below
/// it, one sentence's step shares its products with a helper thread instead).
const ROWS_PER_THREAD: usize = 8;

/// The GRU family's model.
#[derive(Debug)]
pub struct GruModel {
    base: ModelBase,
    encoder: Encoder,
    decoder: Decoder,
    /// `bridge`, `Linear(D·H → H)` from the encoder's final states (`model.bridge`).
    bridge: Option<Linear>,
    /// The model's layers packed for inference on the CPU (`crate::packed_copy`).
    packed: PackedCopy<buffers::PackedModel>,
}

impl GruModel {
    /// A new model of `family` decoding as `decoding` says, its weights drawn from `seed`.
    pub fn seeded(
        family: &GruConfig,
        decoding: &DecodingConfig,
        dims: ModelDims,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        family.validate()?;
        decoding.validate()?;
        Self::new(family, decoding, dims, Weights::Seed(seed), device)
    }

    /// The model of `family` decoding as `decoding` says, its weights from `weights`.
    pub fn new(
        family: &GruConfig,
        decoding: &DecodingConfig,
        dims: ModelDims,
        weights: Weights,
        device: &Device,
    ) -> Result<Self> {
        let (params, vb, check) = crate::params::builder(weights, device)?;
        let encoder = Encoder::new(family, dims.src_vocab, vb.pp("encoder"))?;
        let decoder = Decoder::new(family, &dims, vb.pp("decoder"))?;
        let bridge = if family.bridge {
            let directions = if family.bidirectional { 2 } else { 1 };
            Some(linear(directions * family.hidden_size, family.hidden_size, true, vb.pp("bridge"))?)
        } else {
            None
        };
        check.finish(&params)?;
        Ok(Self {
            base: ModelBase::new(decoding, dims, params, device),
            encoder,
            decoder,
            bridge,
            packed: PackedCopy::default(),
        })
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
        self.check_lengths(lengths.iter().copied())?;
        let src = Tensor::from_slice(src, (b, s), self.base.device())?;
        let mask = if lengths.iter().all(|&l| l == s) {
            None
        } else {
            let m: Vec<f32> =
                lengths.iter().flat_map(|&l| (0..s).map(move |j| if j < l { 1.0 } else { 0.0 })).collect();
            Some(Tensor::from_vec(m, (b, s), self.base.device())?)
        };
        let enc = self.encoder.forward(&src, mask.as_ref(), rng, products)?;
        let bias = mask.as_ref().map(mask_bias).transpose()?;
        let h0 = match &self.bridge {
            Some(bridge) => bridge.forward(&enc.final_states)?.tanh()?,
            None => enc.final_hidden,
        };
        Ok((self.decoder.memory(enc.outputs, bias, products)?, self.decoder.initial_state(h0)?))
    }

    /// An error for a source longer than the attention can handle (the location attention's
    /// `max_length`).
    fn check_lengths(&self, lengths: impl IntoIterator<Item = usize>) -> Result<()> {
        if let Some(max) = self.decoder.attention().max_source_length() {
            if let Some(len) = lengths.into_iter().find(|&l| l > max) {
                return Err(ModelError::SourceTooLong { len, max });
            }
        }
        Ok(())
    }

    /// The parts inference over buffers reads.
    fn parts(&self) -> (&Encoder, Option<&Linear>, &Decoder) {
        (&self.encoder, self.bridge.as_ref(), &self.decoder)
    }

    /// The model's layers packed for inference over buffers.
    fn pack(&self) -> Result<buffers::PackedModel> {
        buffers::PackedModel::of(&self.encoder, self.bridge.as_ref(), &self.decoder)
    }

    /// Pads `sources` into one batch and encodes it for inference: the decoder memory, the
    /// initial decoder state and each source's length.
    fn encode_sources(&self, sources: &[Vec<u32>]) -> Result<(Memory, Tensor, Vec<usize>)> {
        let Padded { grid, lengths, width: s } = Padded::new(sources);
        let (mem, h) = self.encode(&grid, &lengths, s, None, Products::Detached)?;
        Ok((mem, h, lengths))
    }

    /// Beam search with candle's ops (devices other than the CPU, input feeding, and the
    /// reference the buffer search is tested against), the sources shared out by length.
    pub(crate) fn beam_with_candle_ops(
        &self,
        search: &BeamSearch,
        sources: &[Vec<u32>],
    ) -> Result<Vec<Vec<Hypothesis>>> {
        let parts = self.base.cpu_threads().min(sources.len()).max(1);
        crate::parallel::by_length(sources, parts, |group| {
            let (mem, h, lengths) = self.encode_sources(group)?;
            beam::beam_search(search, &self.decoder, &mem, &lengths, h)
        })
    }

    /// Greedy decoding with candle's ops, one step at a time (devices other than the CPU).
    pub(crate) fn greedy_rows(&self, sources: &[Vec<u32>], steps: usize, stop_at_eos: bool) -> Result<Vec<Hypothesis>> {
        let (mem, h, lengths) = self.encode_sources(sources)?;
        buffers::greedy_rows(&self.decoder, &mem, h, &lengths, steps, stop_at_eos)
    }
}

impl TranslationModel for GruModel {
    fn base(&self) -> &ModelBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut ModelBase {
        &mut self.base
    }

    fn part_loss(
        &self,
        batch: &Batch,
        mut rng: Option<&mut Rng>,
        step: StepOptions,
        denominator: usize,
    ) -> Result<Tensor> {
        let (teacher, smoothing) = (step.teacher_forcing, step.label_smoothing);
        let (b, t) = (batch.size, batch.tgt_len);
        let (mem, mut h) =
            self.encode(&batch.src, &batch.src_lengths, batch.src_len, rng.as_deref_mut(), Products::Tracked)?;
        // On the CPU the decoder's per-step weights form their gradients once per batch;
        // the initial state carries them (every step depends on it).
        let shared = if self.base.device().is_cpu() { Some(self.decoder.shared()?) } else { None };
        let decoder = match &shared {
            Some((decoder, products)) => {
                for p in products {
                    h = p.anchor(&h)?;
                }
                decoder
            }
            None => &self.decoder,
        };
        let mut prev = Tensor::full(SOS, b, self.base.device())?;
        let mut states = Vec::with_capacity(t);
        // Teacher forcing knows every input in advance: embed them all at once, time-major
        // (SOS, then the reference shifted by one), gathered on the host (a strided column
        // view used as embedding ids was read as if contiguous on CUDA).
        let forced = if teacher {
            let ids: Vec<u32> =
                (0..t * b).map(|i| if i < b { SOS } else { batch.tgt[(i % b) * t + i / b - 1] }).collect();
            Some(decoder.embed(&Tensor::from_vec(ids, t * b, self.base.device())?, rng.as_deref_mut())?)
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
        let (states, targets, weights) = real_target_rows(states, batch, |i| (i % b) * t + i / b)?;
        let outputs = decoder.dropped_output(&states, rng)?;
        let nll = decoder.nll(&outputs, &targets, &weights, smoothing)?;
        Ok((nll.sum_all()? / denominator.max(1) as f64)?)
    }

    /// Greedy decoding for `steps` steps; with `stop_at_eos` false it always runs them all
    /// (what a benchmark against a fixed-length decoder needs). On the CPU the decoder
    /// runs over plain buffers (`buffers`): batches of at least 2 × 8 rows are
    /// split over [`TranslationModel::threads`] threads, smaller ones share each step with a helper
    /// thread when there is more than one.
    fn greedy_steps(&self, sources: &[Vec<u32>], steps: usize, stop_at_eos: bool) -> Result<Vec<Hypothesis>> {
        let b = sources.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        // The buffer decoder knows the tutorial's decoder; input feeding's steps go
        // through candle's ops.
        if !self.base.device().is_cpu() || self.decoder.input_feeding() {
            return self.greedy_rows(sources, steps, stop_at_eos);
        }
        let threads = self.base.cpu_threads();
        let parts = threads.min(b / ROWS_PER_THREAD).max(1);
        self.check_lengths(sources.iter().map(Vec::len))?;
        let packed = self.packed.get(|| self.pack())?;
        buffers::with_model(self.parts(), &packed, |encoder, decoder| {
            let run = |rows: &[Vec<u32>], helper: Option<&Helper<'_>>| {
                let encoded = encoder.encode(rows, helper)?;
                decoder.decode(&encoded, steps, stop_at_eos, helper)
            };
            if parts == 1 && threads > 1 {
                return with_helper(|helper| run(sources, helper));
            }
            crate::parallel::in_chunks(sources, parts, |c| run(c, None))
        })
    }

    /// Keeps the model's layers packed for inference instead of packing them for each
    /// call.
    fn freeze(&mut self) -> Result<()> {
        if self.base.device().is_cpu() {
            self.packed.freeze(|| self.pack())?;
        }
        Ok(())
    }

    /// Packs the model's layers once for the span (validation decodes a batch at a time).
    fn begin_inference(&self) -> Result<()> {
        if self.base.device().is_cpu() {
            self.packed.begin_span(|| self.pack())?;
        }
        Ok(())
    }

    fn end_inference(&self) {
        self.packed.end_span();
    }

    /// Beam search for one source; returns up to `n_best` hypotheses, best first, ranked
    /// by `log_prob / len^length_penalty`.
    fn beam(&self, source: &[u32], beam_size: usize, n_best: usize) -> Result<Vec<Hypothesis>> {
        Ok(self.beam_batch(&[source.to_vec()], beam_size, n_best)?.into_iter().next().unwrap_or_default())
    }

    /// Beam search of many sources at once: the hypotheses of every source are rows of one
    /// decoder state, the sources sorted by length and shared out between the model's
    /// threads on the CPU (over plain buffers, `buffers::beam_search`; one source alone
    /// shares each step with a helper thread when there is a second one).
    fn beam_batch(&self, sources: &[Vec<u32>], beam_size: usize, n_best: usize) -> Result<Vec<Vec<Hypothesis>>> {
        let search = BeamSearch {
            beam_size,
            n_best,
            max_steps: self.base.max_steps(),
            length_penalty: self.base.decoding().length_penalty,
        };
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        if !self.base.device().is_cpu() || self.decoder.input_feeding() {
            return self.beam_with_candle_ops(&search, sources);
        }
        let threads = self.base.cpu_threads();
        let parts = threads.min(sources.len()).max(1);
        self.check_lengths(sources.iter().map(Vec::len))?;
        let packed = self.packed.get(|| self.pack())?;
        buffers::with_model(self.parts(), &packed, |encoder, decoder| {
            let run = |group: &[Vec<u32>], helper: Option<&Helper<'_>>| {
                let encoded = encoder.encode(group, helper)?;
                buffers::beam_search(&search, decoder, &encoded, helper)
            };
            if parts == 1 && threads > 1 {
                return with_helper(|helper| run(sources, helper));
            }
            crate::parallel::by_length(sources, parts, |group| run(group, None))
        })
    }
}
