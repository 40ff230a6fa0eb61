//! The seam between a run and a model family. [`Family`] is what a family's config says
//! about it (validation, a one-line description, its size, the hyperparameters worth
//! logging) and how it builds its model; [`TranslationModel`] is everything the run needs
//! of a built model (loss, gradients, decoding with attention, parameters). What every
//! family shares (config, sizes, parameters, device, threads, the data-parallel step,
//! beam-or-greedy translation) is written once, here and in [`crate::training`]. The
//! families themselves are listed in [`crate::registry`] only.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use s2s_data::{Batch, Rng};

use crate::decode::{Hypothesis, LayerHeads};
use crate::error::{ModelError, Result};
use crate::export::Ct2Model;
use crate::params::{ParamStore, Weights};
use crate::shared_config::{DecodingConfig, ModelDims, ParameterCount};
use crate::training::{Mode, StepOptions};

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
        decoding: &DecodingConfig,
        dims: ModelDims,
        weights: Weights,
        device: &Device,
    ) -> Result<Box<dyn TranslationModel>>;
    /// The model whose parameters are `params` (a built model's, named as in the
    /// checkpoint) in CTranslate2's layout. A family CTranslate2 cannot run refuses with
    /// [`ModelError::CannotExport`], saying what works instead.
    fn ctranslate2(&self, params: &ParamStore, decoding: &DecodingConfig, dims: &ModelDims) -> Result<Ct2Model> {
        let _ = (params, decoding, dims);
        Err(ModelError::CannotExport {
            engine: "CTranslate2",
            reason: "this model family has no mapping to CTranslate2's layers; translate with `s2s translate`".into(),
        })
    }
}

/// What every family's model holds besides its modules.
#[derive(Debug)]
pub struct ModelBase {
    decoding: DecodingConfig,
    dims: ModelDims,
    params: ParamStore,
    device: Device,
    /// Threads for training steps and batched decoding (rows split between them).
    threads: usize,
}

impl ModelBase {
    pub fn new(decoding: &DecodingConfig, dims: ModelDims, params: ParamStore, device: &Device) -> Self {
        Self { decoding: decoding.clone(), dims, params, device: device.clone(), threads: 1 }
    }

    /// How the model decodes (`model.beam_size`, ...).
    pub fn decoding(&self) -> &DecodingConfig {
        &self.decoding
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
        self.decoding.max_steps(&self.dims)
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

    /// How the model decodes (`model.beam_size`, ...).
    fn decoding(&self) -> &DecodingConfig {
        self.base().decoding()
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
    /// Says that the weights will not change any more (a model opened to translate, not to
    /// train): a family may keep copies of them laid out for decoding. Training a frozen
    /// model would decode with stale copies.
    fn freeze(&mut self) -> Result<()> {
        Ok(())
    }
    /// Begins a series of inference calls during which the weights do not change
    /// (validation's and `eval`'s passes over a split): a family may keep copies of them
    /// laid out for decoding until [`TranslationModel::end_inference`]. A frozen model
    /// keeps its copies either way.
    fn begin_inference(&self) -> Result<()> {
        Ok(())
    }
    /// Ends what [`TranslationModel::begin_inference`] began: copies it made are dropped,
    /// so that training on goes on from the weights themselves.
    fn end_inference(&self) {}
    /// Mean loss per real target token.
    ///
    /// # Shapes
    /// returns a scalar
    fn loss(&self, batch: &Batch, mut mode: Mode) -> Result<Tensor> {
        let step = StepOptions::of(&mut mode);
        let rng = match mode {
            Mode::Train { rngs, .. } => Some(&mut rngs.dropout),
            Mode::Eval => None,
        };
        self.part_loss(batch, rng, step, batch.target_tokens())
    }
    /// The mean loss per real target token of `batch` without a graph for training
    /// (evaluation and validation), the rows split over the model's CPU threads as
    /// [`Self::loss_and_grads`] splits them and the parts' sums added in order.
    fn eval_loss(&self, batch: &Batch) -> Result<f64> {
        eval_loss_by_parts(self, batch)
    }
    /// The loss's value and the gradients of every parameter, with the batch's rows split
    /// over the model's CPU threads (one part each, same padding) whose gradients are
    /// summed (`crate::parallel::summed_grads`). Each part draws its dropout from its own
    /// stream, seeded from the run's dropout stream, so a run is reproducible for a given
    /// thread count.
    fn loss_and_grads(&self, batch: &Batch, mut mode: Mode) -> Result<(f64, GradStore)> {
        let parts = batch.split_rows(self.base().cpu_threads());
        if parts.len() <= 1 {
            let loss = self.loss(batch, mode)?;
            let value = f64::from(loss.to_scalar::<f32>()?);
            return Ok((value, loss.backward()?));
        }
        let step = StepOptions::of(&mut mode);
        let seeds: Option<Vec<u64>> = match mode {
            Mode::Train { rngs, .. } => Some(parts.iter().map(|_| rngs.dropout.next_u64()).collect()),
            Mode::Eval => None,
        };
        let total = batch.target_tokens();
        crate::parallel::summed_grads(self.params(), parts.len(), |i| {
            let mut rng = seeds.as_ref().map(|s| Rng::derive(s[i], "dropout-part"));
            let loss = self.part_loss(&parts[i], rng.as_mut(), step, total)?;
            Ok((f64::from(loss.to_scalar::<f32>()?), loss.backward()?))
        })
    }
    /// Greedy decoding up to the configured length.
    fn greedy(&self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>> {
        self.greedy_steps(sources, self.base().max_steps(), true)
    }
    /// Beam search for each of `sources`: up to `n_best` hypotheses each, best first. By
    /// default each sentence is searched alone, the sentences shared out between
    /// [`Self::threads`] threads on the CPU (the results do not depend on the split); a
    /// family that steps many sentences' beams as one batch overrides it.
    fn beam_batch(&self, sources: &[Vec<u32>], beam_size: usize, n_best: usize) -> Result<Vec<Vec<Hypothesis>>> {
        let search = |part: &[Vec<u32>]| -> Result<Vec<Vec<Hypothesis>>> {
            part.iter().map(|s| self.beam(s, beam_size, n_best)).collect()
        };
        let threads = if self.device().is_cpu() { self.threads().clamp(1, sources.len().max(1)) } else { 1 };
        crate::parallel::in_chunks(sources, threads, search)
    }
    /// Decodes with the configured beam size (greedy when 1), one best hypothesis each.
    fn translate(&self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>> {
        let beam = self.decoding().beam_size;
        if beam <= 1 {
            return self.greedy(sources);
        }
        let empty = || Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() };
        Ok(self.beam_batch(sources, beam, 1)?.into_iter().map(|h| h.into_iter().next().unwrap_or_else(empty)).collect())
    }
}

/// [`TranslationModel::eval_loss`] through the training graph's forward pass
/// ([`TranslationModel::part_loss`]): what a family without an inference path of its own
/// for the loss uses.
pub(crate) fn eval_loss_by_parts<M: TranslationModel + ?Sized>(model: &M, batch: &Batch) -> Result<f64> {
    let parts = batch.split_rows(model.base().cpu_threads());
    if parts.len() <= 1 {
        return Ok(f64::from(model.loss(batch, Mode::Eval)?.detach().to_scalar::<f32>()?));
    }
    let total = batch.target_tokens();
    let values = crate::parallel::in_chunks(&parts, parts.len(), |part| {
        part.iter()
            .map(|p| Ok(f64::from(model.part_loss(p, None, StepOptions::EVAL, total)?.to_scalar::<f32>()?)))
            .collect()
    })?;
    Ok(values.iter().sum())
}
