//! What a training step asks of a model, the same for every family: the [`Mode`], the
//! random streams it draws from, and the options decided once per batch.

use candle_core::{DType, Tensor};
use s2s_data::{Batch, Rng};
use serde::{Deserialize, Serialize};

use crate::error::Result;

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

impl StepOptions {
    /// The options of one batch in `mode`: training draws whether to feed the reference
    /// from the teacher forcing stream (no draw at ratio 1).
    pub fn of(mode: &mut Mode) -> Self {
        match mode {
            Mode::Train { rngs, teacher_forcing_ratio, label_smoothing } => Self {
                teacher_forcing: *teacher_forcing_ratio >= 1.0
                    || f64::from(rngs.teacher_forcing.next_f32()) < *teacher_forcing_ratio,
                label_smoothing: *label_smoothing,
            },
            Mode::Eval => Self::EVAL,
        }
    }
}

/// The rows of `states` that hold real target tokens, with their targets and unit weights:
/// PAD rows have weight 0, and skipping them saves the output layer's vocabulary-sized
/// product and softmax there. `order(row)` is the index into `batch.tgt` of state row
/// `row` (the identity for batch-major states).
///
/// # Shapes
/// `states: (B·T, d)` → `(N, d)`, targets `(N)`, weights `(N)`
pub(crate) fn real_target_rows(
    states: Tensor,
    batch: &Batch,
    order: impl Fn(usize) -> usize,
) -> Result<(Tensor, Tensor, Tensor)> {
    let device = states.device().clone();
    let rows = batch.size * batch.tgt_len;
    let mask = batch.tgt_mask();
    let real: Vec<u32> = (0..rows).filter(|&i| mask[order(i)] > 0.0).map(|i| i as u32).collect();
    let states =
        if real.len() == rows { states } else { states.index_select(&Tensor::new(real.as_slice(), &device)?, 0)? };
    let targets: Vec<u32> = real.iter().map(|&i| batch.tgt[order(i as usize)]).collect();
    let n = targets.len();
    Ok((states, Tensor::from_vec(targets, n, &device)?, Tensor::ones(n, DType::F32, &device)?))
}
