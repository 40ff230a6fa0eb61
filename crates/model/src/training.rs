//! What a training step asks of a model, the same for every family: the [`Mode`], the
//! random streams it draws from, and the loss and gradients of a batch whose rows are
//! split over threads ([`loss_and_grads`]).

use candle_core::backprop::GradStore;
use candle_core::Tensor;
use s2s_data::{Batch, Rng};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::family::TranslationModel;

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

/// How one batch is trained, decided once per batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOptions {
    /// Feed the reference words (else the model's own previous choices).
    pub teacher_forcing: bool,
    /// Label smoothing of the targets (0 = the plain NLL).
    pub label_smoothing: f64,
}

impl StepOptions {
    /// Evaluation's: teacher forcing, the plain NLL.
    pub const EVAL: Self = Self { teacher_forcing: true, label_smoothing: 0.0 };
}

/// Whether this batch feeds the reference words: one draw per batch, none at ratio 1.
fn teacher_forcing(rng: &mut Rng, ratio: f64) -> bool {
    ratio >= 1.0 || f64::from(rng.next_f32()) < ratio
}

/// Mean loss per real target token of the whole batch, on one thread.
///
/// # Shapes
/// returns a scalar
pub fn loss<M: TranslationModel + ?Sized>(model: &M, batch: &Batch, mode: Mode) -> Result<Tensor> {
    let (rng, step) = match mode {
        Mode::Train { rngs, teacher_forcing_ratio, label_smoothing } => (
            Some(&mut rngs.dropout),
            StepOptions {
                teacher_forcing: teacher_forcing(&mut rngs.teacher_forcing, teacher_forcing_ratio),
                label_smoothing,
            },
        ),
        Mode::Eval => (None, StepOptions::EVAL),
    };
    model.part_loss(batch, rng, step, batch.target_tokens())
}

/// The loss's value and the gradients of every parameter, with the batch's rows split
/// over the model's CPU threads (one part each, same padding) whose gradients are summed
/// ([`crate::parallel::summed_grads`]). Each part draws its dropout from its own stream,
/// seeded from the run's dropout stream, so a run is reproducible for a given thread
/// count.
pub fn loss_and_grads<M: TranslationModel + ?Sized>(model: &M, batch: &Batch, mode: Mode) -> Result<(f64, GradStore)> {
    let parts = batch.split_rows(model.base().cpu_threads());
    if parts.len() <= 1 {
        let loss = loss(model, batch, mode)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        return Ok((value, loss.backward()?));
    }
    let (seeds, step): (Option<Vec<u64>>, StepOptions) = match mode {
        Mode::Train { rngs, teacher_forcing_ratio, label_smoothing } => {
            let teacher = teacher_forcing(&mut rngs.teacher_forcing, teacher_forcing_ratio);
            (
                Some(parts.iter().map(|_| rngs.dropout.next_u64()).collect()),
                StepOptions { teacher_forcing: teacher, label_smoothing },
            )
        }
        Mode::Eval => (None, StepOptions::EVAL),
    };
    let total = batch.target_tokens();
    crate::parallel::summed_grads(model.params(), parts.len(), |i| {
        let mut rng = seeds.as_ref().map(|s| Rng::derive(s[i], "dropout-part"));
        let loss = model.part_loss(&parts[i], rng.as_mut(), step, total)?;
        Ok((f64::from(loss.to_scalar::<f32>()?), loss.backward()?))
    })
}
