//! Translation as a [`TrainStep`]: the bridge between a model and the trainer, and the
//! task's own settings.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use s2s_data::{Batch, BatchPlan, Example, Tokenizer};
use s2s_model::{Mode, TrainRngs, TranslationModel};
use s2s_trainer::{Direction, MetricSpec, TrainError, TrainStep};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::scoring::{score, Decoding};

/// The translation task's keys of the `[train]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskConfig {
    /// Probability that a batch is trained with the reference as decoder input.
    pub teacher_forcing_ratio: f64,
    /// Share ε of the target distribution spread over the vocabulary while training
    /// (0 = the plain NLL). Validation loss and perplexity stay the plain NLL.
    pub label_smoothing: f64,
    /// Validation translates with the configured beam (`model.beam_size`,
    /// `model.length_penalty`) instead of greedily, so that `best` is chosen by the
    /// decoding users get.
    pub validate_beam: bool,
    /// Batches by token count (0 = off, batches of `batch_size` sentences): each holds as
    /// many sentences as fit this many padded tokens of its longer side (rows × the widest
    /// row, source or target, EOS included), so no batch's grid exceeds it. Alone, random
    /// sentences in the shuffled order (JoeyNMT's `batch_type: token`); with
    /// `data.length_bucketing`, sentences of similar length (fairseq's `--max-tokens`).
    /// Must hold one sentence of `data.max_length`.
    pub batch_tokens: usize,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self { teacher_forcing_ratio: 1.0, label_smoothing: 0.0, validate_beam: false, batch_tokens: 0 }
    }
}

impl TaskConfig {
    /// The keys this struct reads from `[train]`.
    pub const KEYS: [&'static str; 4] = ["teacher_forcing_ratio", "label_smoothing", "validate_beam", "batch_tokens"];

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.teacher_forcing_ratio) {
            return Err(ConfigError(format!(
                "train.teacher_forcing_ratio: must be in [0, 1], got {}",
                self.teacher_forcing_ratio
            )));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(ConfigError(format!("train.label_smoothing: must be in [0, 1), got {}", self.label_smoothing)));
        }
        Ok(())
    }
}

/// A model being trained to translate.
#[derive(Debug)]
pub struct TranslationTask<'a> {
    pub model: &'a dyn TranslationModel,
    pub train: Vec<Example>,
    pub valid: Vec<Example>,
    /// Reference translations of `valid` (normalized text), for BLEU and chrF.
    pub valid_refs: Vec<String>,
    /// Turns translations into text.
    pub target: &'a Tokenizer,
    pub plan: BatchPlan,
    pub rngs: TrainRngs,
    pub config: TaskConfig,
}

impl TranslationTask<'_> {
    /// What [`TrainStep::validate`] reports; `train.early_stopping_metric` is one of them.
    pub const METRICS: [MetricSpec; 4] = [
        MetricSpec { name: "valid_loss", direction: Direction::Lower },
        MetricSpec { name: "valid_ppl", direction: Direction::Lower },
        MetricSpec { name: "valid_bleu", direction: Direction::Higher },
        MetricSpec { name: "valid_chrf", direction: Direction::Higher },
    ];

    fn mode(&mut self) -> Mode<'_> {
        Mode::Train {
            rngs: &mut self.rngs,
            teacher_forcing_ratio: self.config.teacher_forcing_ratio,
            label_smoothing: self.config.label_smoothing,
        }
    }
}

impl TrainStep for TranslationTask<'_> {
    type Batch = Batch;
    type State = TrainRngs;

    fn parameters(&self) -> Vec<(String, Var)> {
        self.model.params().vars()
    }

    fn epoch_batches(&mut self, epoch: usize) -> s2s_trainer::Result<Vec<Batch>> {
        Ok(self.plan.epoch(&self.train, epoch))
    }

    fn batch_weight(&self, batch: &Batch) -> usize {
        batch.target_tokens()
    }

    fn loss(&mut self, batch: &Batch) -> s2s_trainer::Result<Tensor> {
        let model = self.model;
        model.loss(batch, self.mode()).map_err(TrainError::task)
    }

    fn loss_and_grads(&mut self, batch: &Batch) -> s2s_trainer::Result<(f64, GradStore)> {
        let model = self.model;
        model.loss_and_grads(batch, self.mode()).map_err(TrainError::task)
    }

    fn metrics(&self) -> Vec<MetricSpec> {
        Self::METRICS.to_vec()
    }

    fn validate(&mut self) -> s2s_trainer::Result<Vec<(String, f64)>> {
        if self.valid.is_empty() {
            return Ok(Vec::new());
        }
        let decoding = if self.config.validate_beam { Decoding::Configured } else { Decoding::Greedy };
        let s =
            score(self.model, &self.valid, &self.valid_refs, self.target, None, decoding).map_err(TrainError::task)?;
        Ok(vec![
            ("valid_loss".into(), s.loss),
            ("valid_ppl".into(), s.ppl),
            ("valid_bleu".into(), s.bleu),
            ("valid_chrf".into(), s.chrf),
        ])
    }

    fn snapshot(&self) -> TrainRngs {
        self.rngs.clone()
    }
}

/// The direction of a metric the task reports, by name.
pub fn direction_of(metric: &str) -> Option<Direction> {
    TranslationTask::METRICS.iter().find(|m| m.name == metric).map(|m| m.direction)
}
