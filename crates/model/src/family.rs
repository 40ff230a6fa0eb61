//! The seam between a run and a model family. [`Family`] is what a family's config says
//! about it (validation, a one-line description, its size, the hyperparameters worth
//! logging) and how it builds its model; [`TranslationModel`] is everything the run needs
//! of a built model (loss, gradients, decoding with attention, parameters). What every
//! family shares (config, sizes, parameters, device, threads, the data-parallel step,
//! beam-or-greedy translation) is written once, here and in [`crate::training`]. The
//! families themselves are listed in [`crate::registry`] only.

use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use s2s_data::{Batch, Rng};

use crate::config::{DecodingConfig, ModelConfig, ModelDims, ParameterCount};
use crate::decode::{Hypothesis, LayerHeads};
use crate::error::Result;
use crate::params::ParamStore;
use crate::training::{Mode, StepOptions};

/// Where a new model's weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights<'a> {
    /// Drawn from the run's seed (PyTorch's default initialisations): a new run.
    Seed(u64),
    /// Read from a checkpoint's safetensors file; names and shapes must match.
    File(&'a Path),
}

/// A model family, implemented by its config struct.
pub trait Family: std::fmt::Debug + Send + Sync {
    /// Checks the family's keys.
    fn validate(&self) -> Result<()>;
    /// The family and its sizes in one line (`GRU, Bahdanau attention, hidden 256, ...`).
    fn describe(&self) -> String;
    /// The `[model]` keys worth logging as hyperparameters beside the shared ones.
    fn logged_keys(&self) -> &'static [&'static str];
    /// The number of parameters [`Family::build`] would create, from the sizes alone (no
    /// allocation), and the share of them whose size grows with the vocabularies.
    fn parameter_count(&self, decoding: &DecodingConfig, dims: &ModelDims) -> ParameterCount;
    /// The key, and its value, that sets the width of the model's other tensors: what a
    /// model too big for the machine is blamed on when the vocabularies are not.
    fn width_key(&self) -> (&'static str, usize);
    /// The setting (`key = value`) that makes the source and target embeddings one
    /// matrix, when it is on (it needs one vocabulary for both sides).
    fn shared_embedding_setting(&self) -> Option<&'static str>;
    /// Whether training can feed the decoder its own previous choices (a teacher forcing
    /// ratio below 1); a family that reads the whole reference at once cannot.
    fn can_run_free(&self) -> bool;
    /// The model. With [`Weights::Seed`] the initial weights depend only on the seed.
    fn build(
        &self,
        cfg: &ModelConfig,
        dims: ModelDims,
        weights: Weights,
        device: &Device,
    ) -> Result<Box<dyn TranslationModel>>;
}

/// A model of the configured family, its weights drawn from a seed or read from a file.
pub fn build(
    cfg: &ModelConfig,
    dims: ModelDims,
    weights: Weights,
    device: &Device,
) -> Result<Box<dyn TranslationModel>> {
    cfg.validate()?;
    cfg.family.as_family().build(cfg, dims, weights, device)
}

/// The number of parameters [`build`] would create, computed from the sizes alone, so that
/// a run can refuse a model too big for the machine.
pub fn parameter_count(cfg: &ModelConfig, dims: &ModelDims) -> ParameterCount {
    cfg.family.as_family().parameter_count(&cfg.decoding, dims)
}

/// What every family's model holds besides its modules.
#[derive(Debug)]
pub struct ModelBase {
    cfg: ModelConfig,
    dims: ModelDims,
    params: ParamStore,
    device: Device,
    /// Threads for training steps and batched decoding (rows split between them).
    threads: usize,
}

impl ModelBase {
    pub fn new(cfg: &ModelConfig, dims: ModelDims, params: ParamStore, device: &Device) -> Self {
        Self { cfg: cfg.clone(), dims, params, device: device.clone(), threads: 1 }
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn dims(&self) -> &ModelDims {
        &self.dims
    }

    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Threads to split rows over: on a GPU one stream of work is what it wants.
    pub fn cpu_threads(&self) -> usize {
        if self.device.is_cpu() {
            self.threads
        } else {
            1
        }
    }

    /// The longest translation decoded.
    pub fn max_steps(&self) -> usize {
        self.cfg.decoding.max_steps(&self.dims)
    }
}

/// A trainable translation model of any family.
pub trait TranslationModel: std::fmt::Debug + Send + Sync {
    /// The config, sizes, parameters, device and threads.
    fn base(&self) -> &ModelBase;
    fn base_mut(&mut self) -> &mut ModelBase;
    /// The summed loss (NLL, or cross-entropy with smoothed targets) of `batch`'s real
    /// target tokens divided by `denominator` (the whole batch's token count when `batch`
    /// is one part of it); dropout draws from `rng` when training.
    ///
    /// # Shapes
    /// returns a scalar
    fn part_loss(&self, batch: &Batch, rng: Option<&mut Rng>, step: StepOptions, denominator: usize) -> Result<Tensor>;
    /// Greedy decoding for `steps` steps, stopping when every sentence has ended if
    /// `stop_at_eos`. Each source ends with EOS.
    fn greedy_steps(&self, sources: &[Vec<u32>], steps: usize, stop_at_eos: bool) -> Result<Vec<Hypothesis>>;
    /// Beam search for one source: up to `n_best` hypotheses, best first, ranked by
    /// `log_prob / len^length_penalty`.
    fn beam(&self, source: &[u32], beam_size: usize, n_best: usize) -> Result<Vec<Hypothesis>>;
    /// Every layer's and head's cross-attention, `[layer][head][step][source position]`,
    /// while the decoder reads `target` (ids without EOS) after `source`: one step per
    /// target id and one for EOS. `None` for a family with one attention per step (its
    /// [`Hypothesis::attention`] is all there is).
    fn attention_heads(&self, source: &[u32], target: &[u32]) -> Result<Option<LayerHeads>> {
        let _ = (source, target);
        Ok(None)
    }

    fn config(&self) -> &ModelConfig {
        self.base().config()
    }
    fn dims(&self) -> &ModelDims {
        self.base().dims()
    }
    fn device(&self) -> &Device {
        self.base().device()
    }
    /// The parameters, named as in the checkpoint (`vb.pp(..)` paths).
    fn params(&self) -> &ParamStore {
        self.base().params()
    }
    /// Threads the rows of training batches and batched decoding are split over (at
    /// least 1; one is the default).
    fn set_threads(&mut self, threads: usize) {
        self.base_mut().threads = threads.max(1);
    }
    fn threads(&self) -> usize {
        self.base().threads()
    }
    /// Mean loss per real target token.
    ///
    /// # Shapes
    /// returns a scalar
    fn loss(&self, batch: &Batch, mode: Mode) -> Result<Tensor> {
        crate::training::loss(self, batch, mode)
    }
    /// The loss's value and the gradient of every parameter ([`crate::training::loss_and_grads`]).
    fn loss_and_grads(&self, batch: &Batch, mode: Mode) -> Result<(f64, GradStore)> {
        crate::training::loss_and_grads(self, batch, mode)
    }
    /// Greedy decoding up to the configured length.
    fn greedy(&self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>> {
        self.greedy_steps(sources, self.base().max_steps(), true)
    }
    /// Decodes with the configured beam size (greedy when 1), one best hypothesis each.
    /// On the CPU the sentences of a beam search are shared out between
    /// [`Self::threads`] threads (each searches its own sentences; the results do not
    /// depend on the split).
    fn translate(&self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>> {
        let beam = self.config().decoding.beam_size;
        if beam <= 1 {
            return self.greedy(sources);
        }
        let search = |part: &[Vec<u32>]| -> Result<Vec<Hypothesis>> {
            let mut out = Vec::with_capacity(part.len());
            for s in part {
                out.extend(self.beam(s, beam, 1)?.into_iter().take(1));
            }
            Ok(out)
        };
        let threads = if self.device().is_cpu() { self.threads().clamp(1, sources.len().max(1)) } else { 1 };
        crate::parallel::in_chunks(sources, threads, search)
    }
}
