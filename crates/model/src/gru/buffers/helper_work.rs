//! The buffers a helper thread's jobs own.

use crate::kernels::ColumnPick;

/// What a helper thread's job owns, handed over and back at each step so that a step
/// allocates nothing for it: its input (a copy of the state or of a shared product's input), a
/// chunk of output rows, the gate rows it computes, and its pick.
#[derive(Default)]
pub(crate) struct HelperWork {
    pub(super) input: Vec<f32>,
    pub(super) chunk: Vec<f32>,
    pub(super) gates: Vec<f32>,
    pub(super) pick: Option<ColumnPick>,
}
