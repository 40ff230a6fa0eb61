//! A layer's product over columns (the encoder's and the decoder's): from its packed panels
//! for a few columns, else from its weight in place through gemm; a product's rows shared
//! with the helper thread; and the output layer's rows, chunk by chunk, into the greedy
//! pick.

use std::ops::Range;
use std::sync::Arc;

use super::helper_work::HelperWork;
use super::packed::{LayerKey, PackedLinear, PackedModel, Start};
use crate::error::{ModelError, Result};
use crate::kernels::matmul::{matmul, View};
use crate::kernels::panels::Panels;
use crate::kernels::ColumnPick;
use crate::parallel::Helper;

/// Output rows multiplied at a time before the greedy pick reads them (at 32 sentences,
/// 64 KiB of logits: still in cache; the whole vocabulary's were not).
pub(super) const OUTPUT_CHUNK: usize = 512;

/// Sentences (columns) from which a product reads its weight in place through gemm rather
/// than from the panels. Measured with `s2s bench --decode-batches 2,4,8,12,16,32` (hidden
/// 256, 5,000 target words, 2 threads, 2026-12-07): the panels decode 1.4–2.5× more
/// sentences/s up to 8 columns a thread, and 0.7–0.8× gemm's at 16.
const GEMM_COLUMNS: usize = 16;

/// Whether a product over `n` columns reads the packed panels.
pub(super) fn panels_for(n: usize) -> bool {
    n < GEMM_COLUMNS && Panels::fits(n)
}

/// `W x + b` with PyTorch's `(out, in)` weight: from its packed panels for a few columns,
/// else read in place through gemm ([`panels_for`]; a helper's view has no weight in place:
/// a helper takes part only where the panels serve, so that it changes no sum).
#[derive(Clone, Copy)]
pub(super) struct Affine<'a> {
    pub(super) w: Option<&'a [f32]>,
    pub(super) packed: &'a PackedLinear,
    /// Which of the model's layers this is (what a helper's job looks up).
    pub(super) key: LayerKey,
    pub(super) rows: usize,
    pub(super) cols: usize,
}

impl<'a> Affine<'a> {
    /// The packed layer `packed`, the model's layer `key`, alone (a helper's jobs).
    pub(super) fn of(packed: &'a PackedLinear, key: LayerKey) -> Self {
        let (rows, cols) = packed.dims();
        Self { w: None, packed, key, rows, cols }
    }

    /// The packed layer `key` alone (a helper's jobs), if the model has it.
    pub(super) fn packed(model: &'a PackedModel, key: LayerKey) -> Result<Self> {
        let packed = model.layer(key).ok_or_else(|| ModelError::Shape {
            what: "packed layer",
            expected: format!("{key:?}"),
            got: "none".into(),
        })?;
        Ok(Self::of(packed, key))
    }

    /// The packed layer `key` and its weight `w` in place.
    pub(super) fn in_place(model: &'a PackedModel, key: LayerKey, w: &'a [f32]) -> Result<Self> {
        let a = Self::packed(model, key)?;
        if w.len() != a.rows * a.cols {
            return Err(ModelError::Shape {
                what: "layer weight",
                expected: format!("{} × {} values", a.rows, a.cols),
                got: w.len().to_string(),
            });
        }
        Ok(Self { w: Some(w), ..a })
    }

    /// `dst = start + W[rows, cols] X` (the bias only if this layer has one).
    ///
    /// # Shapes
    /// `x: (cols.len(), N)` → `dst: (rows.len(), N)`
    pub(super) fn apply_part(
        &self,
        rows: Range<usize>,
        cols: Range<usize>,
        x: &[f32],
        n: usize,
        dst: &mut [f32],
        start: Start,
    ) {
        let Some(weight) = self.w.filter(|_| !panels_for(n)) else {
            return self.packed.apply_part(rows, cols, x, n, dst, start);
        };
        let accumulate = match (start, &self.packed.bias) {
            (Start::Bias, Some(b)) => {
                for (row, &c) in dst.chunks_exact_mut(n).zip(&b[rows.clone()]) {
                    row.fill(c);
                }
                true
            }
            (Start::Add, _) => true,
            _ => false,
        };
        let w = View {
            data: &weight[rows.start * self.cols + cols.start..],
            rows: rows.len(),
            cols: cols.len(),
            rs: self.cols,
            cs: 1,
        };
        matmul(dst, w, View::rows(x, cols.len(), n), accumulate);
    }

    /// `dst = W X + b`
    pub(super) fn apply(&self, x: &[f32], n: usize, dst: &mut [f32]) {
        self.apply_part(0..self.rows, 0..self.cols, x, n, dst, Start::Bias);
    }
}

impl Affine<'_> {
    /// `dst = start + W[.., cols] X` with its rows shared with `helper` when there is one,
    /// `work` holds the helper's buffers and the panels serve `N` columns ([`panels_for`]):
    /// this thread computes the first half, the helper's job the rest from a copy of `x`
    /// and the packed layer in `model`. The same products either way.
    ///
    /// # Shapes
    /// `x: (cols.len(), N)` → `dst: (rows, N)`
    #[allow(clippy::too_many_arguments)] // a product's operands, and who shares it
    pub(super) fn apply_shared(
        &self,
        cols: Range<usize>,
        x: &[f32],
        n: usize,
        dst: &mut [f32],
        start: Start,
        helper: Option<&Helper<'_>>,
        (model, work): (&Arc<PackedModel>, &mut Option<HelperWork>),
    ) -> Result<()> {
        let (rows, half) = (self.rows, self.rows / 2);
        // The helper's buffers are taken only when it takes part (and given back below).
        let shared = helper.filter(|_| panels_for(n)).and_then(|helper| Some((helper, work.take()?)));
        let Some((helper, mut theirs)) = shared else {
            self.apply_part(0..rows, cols, x, n, dst, start);
            return Ok(());
        };
        let (first, second) = dst.split_at_mut(half * n);
        theirs.input.clear();
        theirs.input.extend_from_slice(x);
        theirs.gates.clear();
        match start {
            Start::Add => theirs.gates.extend_from_slice(second),
            Start::Bias | Start::Zero => theirs.gates.resize(second.len(), 0.0),
        }
        let (model, key, their_cols) = (Arc::clone(model), self.key, cols.clone());
        let here = || self.apply_part(0..half, cols, x, n, first, start);
        let ((), (theirs, found)) = helper.join(here, move || {
            let layer = model.layer(key);
            if let Some(l) = layer {
                l.apply_part(half..rows, their_cols, &theirs.input, n, &mut theirs.gates, start);
            }
            let found = layer.is_some();
            (theirs, found)
        });
        second.copy_from_slice(&theirs.gates);
        *work = Some(theirs);
        if !found {
            return Err(ModelError::Shape { what: "packed layer", expected: format!("{key:?}"), got: "none".into() });
        }
        Ok(())
    }
}

/// The output rows `rows` over the state `(H, N)`, chunk by chunk into `chunk`, each chunk
/// picked from while it is still in cache.
pub(super) fn output_rows(out: &Affine, rows: Range<usize>, state: &[f32], n: usize, chunk: &mut [f32]) -> ColumnPick {
    let mut pick = ColumnPick::new(n);
    for from in rows.clone().step_by(OUTPUT_CHUNK) {
        let to = (from + OUTPUT_CHUNK).min(rows.end);
        let z = &mut chunk[..(to - from) * n];
        out.apply_part(from..to, 0..out.cols, state, n, z, Start::Bias);
        pick.update(z, from);
    }
    pick
}
