//! A layer's product over the decoder's columns: from its packed panels for a few columns,
//! else from its weight in place through gemm; and the output layer's rows, chunk by chunk,
//! into the greedy pick.

use std::ops::Range;

use super::packed::{PackedLinear, Start};
use crate::kernels::matmul::{matmul, View};
use crate::kernels::panels::Panels;
use crate::kernels::ColumnPick;

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
/// it runs only where the panels serve).
#[derive(Clone, Copy)]
pub(super) struct Affine<'a> {
    pub(super) w: Option<&'a [f32]>,
    pub(super) packed: &'a PackedLinear,
    pub(super) rows: usize,
    pub(super) cols: usize,
}

impl<'a> Affine<'a> {
    /// The packed layer alone (a helper's jobs).
    pub(super) fn packed(packed: &'a PackedLinear) -> Self {
        let (rows, cols) = packed.dims();
        Self { w: None, packed, rows, cols }
    }

    /// The packed layer and its weight `w` in place.
    pub(super) fn in_place(packed: &'a PackedLinear, w: &'a [f32]) -> Self {
        Self { w: Some(w), ..Self::packed(packed) }
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
