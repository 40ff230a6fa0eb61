//! The decoder's product weights packed once in column panels ([`Panels`]) for decoding
//! (greedy and beam), each with a copy of its bias: what [`super::BufferDecoder`] multiplies by,
//! and what a helper thread's jobs hold a shared handle on ([`PackedDecoder`] in an `Arc`).
//! Kept by a frozen model or for an inference span (`crate::packed_copy`), else packed
//! for each decoding call (about 8 MB, a few milliseconds, at hidden size 256 and 5,000
//! target words).

use std::ops::Range;
use std::sync::Arc;

use candle_core::Tensor;

use super::super::attention::Attention;
use super::super::decoder::Decoder;
use crate::error::Result;
use crate::kernels::panels::Panels;
use crate::params::Linear;

/// What a product's destination holds before `W X` is added.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Start {
    /// The bias, one value per row.
    Bias,
    /// Nothing: the product overwrites it.
    Zero,
    /// A partial product over other input columns.
    Add,
}

/// A layer's weight `(out, in)` packed in panels, and its bias.
#[derive(Debug)]
pub(super) struct PackedLinear {
    pub(super) panels: Arc<Panels>,
    pub(super) bias: Option<Vec<f32>>,
}

impl PackedLinear {
    fn new(w: &Tensor, b: Option<&Tensor>) -> Result<Self> {
        let (n, k) = w.dims2()?;
        let panels = Arc::new(crate::kernels::with_f32(w, |v| Panels::of_linear(v, n, k))?);
        Ok(Self { panels, bias: b.map(Tensor::to_vec1::<f32>).transpose()? })
    }

    fn of(l: &Linear) -> Result<Self> {
        Self::new(l.weight(), l.bias())
    }

    /// The layer's output and input widths.
    pub(super) fn dims(&self) -> (usize, usize) {
        (self.panels.outputs(), self.panels.inputs())
    }

    /// `dst = start + W[rows, cols] X` (the bias only if this layer has one), one column
    /// per sentence.
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
        self.panels.columns_product_into(dst, x, n, rows.clone(), cols, start == Start::Add);
        match (start, &self.bias) {
            // One column: the rows are contiguous.
            (Start::Bias, Some(b)) if n == 1 => dst.iter_mut().zip(&b[rows]).for_each(|(v, &c)| *v += c),
            (Start::Bias, Some(b)) => {
                for (row, &c) in dst.chunks_exact_mut(n).zip(&b[rows]) {
                    row.iter_mut().for_each(|v| *v += c);
                }
            }
            _ => {}
        }
    }
}

/// The buffer decoder's packed layers (greedy and beam).
#[derive(Debug)]
pub(crate) struct PackedDecoder {
    pub(super) out: PackedLinear,
    pub(super) w_ih: PackedLinear,
    pub(super) w_hh: PackedLinear,
    pub(super) combine: Option<PackedLinear>,
    /// The location attention's layer, or Bahdanau's `wa` (the Luong attentions have none
    /// in the step).
    pub(super) attention: Option<PackedLinear>,
}

impl PackedDecoder {
    pub(crate) fn of(decoder: &Decoder) -> Result<Self> {
        let parts = decoder.parts();
        let [w_ih, b_ih, w_hh, b_hh] = parts.gru;
        let attention = match parts.attention {
            Attention::Location { attn, .. } => Some(PackedLinear::of(attn)?),
            Attention::Bahdanau { wa, .. } => Some(PackedLinear::of(wa)?),
            Attention::LuongDot | Attention::LuongGeneral { .. } => None,
        };
        Ok(Self {
            out: PackedLinear::of(parts.out)?,
            w_ih: PackedLinear::new(w_ih, Some(b_ih))?,
            w_hh: PackedLinear::new(w_hh, Some(b_hh))?,
            combine: parts.combine.map(PackedLinear::of).transpose()?,
            attention,
        })
    }
}
