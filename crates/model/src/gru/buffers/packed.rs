//! The model's product weights packed once in column panels ([`Panels`]) for inference
//! (encoding, greedy decoding and beam search), each with a copy of its bias: what
//! [`super::encoder::BufferEncoder`] and [`super::BufferDecoder`] multiply by, and what a helper
//! thread's jobs hold a shared handle on ([`PackedModel`] in an `Arc`, each layer named by
//! a [`LayerKey`]). Kept by a frozen model or for an inference span (`crate::packed_copy`),
//! else packed for each decoding call (about 10 MB, a few milliseconds, for a
//! unidirectional encoder at hidden size 256 and 5,000 target words; 14 MB for
//! `configs/multi30k.toml`), plus 3 KB per target word whose token-side gate row decoding
//! has made (up to 15 MB at 5,000 words).

use std::ops::Range;
use std::sync::Arc;

use candle_core::Tensor;

use super::super::attention::Attention;
use super::super::decoder::Decoder;
use super::super::encoder::Encoder;
use super::token_gates::TokenGates;
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
    pub(super) fn new(w: &Tensor, b: Option<&Tensor>) -> Result<Self> {
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

/// The decoder's packed layers (greedy and beam).
#[derive(Debug)]
pub(crate) struct PackedDecoder {
    pub(super) out: PackedLinear,
    pub(super) w_ih: PackedLinear,
    pub(super) w_hh: PackedLinear,
    pub(super) combine: Option<PackedLinear>,
    /// The location attention's layer, or Bahdanau's `wa` (the Luong attentions have none
    /// in the step).
    pub(super) attention: Option<PackedLinear>,
    /// The keys' projection of the encoder outputs, once per call: Bahdanau's `ua`, Luong
    /// general's `w`.
    pub(super) keys: Option<PackedLinear>,
    /// Without `attn_combine`: the token side of the GRU's input gates, a row per target
    /// word, made as decoding needs them.
    pub(super) token_gates: Option<TokenGates>,
}

impl PackedDecoder {
    fn of(decoder: &Decoder) -> Result<Self> {
        let parts = decoder.parts();
        let [w_ih, b_ih, w_hh, b_hh] = parts.gru;
        let (attention, keys) = match parts.attention {
            Attention::Location { attn, .. } => (Some(PackedLinear::of(attn)?), None),
            Attention::Bahdanau { wa, ua, .. } => (Some(PackedLinear::of(wa)?), Some(PackedLinear::of(ua)?)),
            Attention::LuongDot => (None, None),
            Attention::LuongGeneral { w } => (None, Some(PackedLinear::of(w)?)),
        };
        let (words, gates) = (parts.embedding.dim(0)?, w_ih.dim(0)?);
        let token_gates = parts.combine.is_none().then(|| TokenGates::new(words, gates));
        Ok(Self {
            out: PackedLinear::of(parts.out)?,
            w_ih: PackedLinear::new(w_ih, Some(b_ih))?,
            w_hh: PackedLinear::new(w_hh, Some(b_hh))?,
            combine: parts.combine.map(PackedLinear::of).transpose()?,
            attention,
            keys,
            token_gates,
        })
    }
}

/// One encoder GRU layer's direction, packed: `W_ih` and `W_hh` with their biases.
#[derive(Debug)]
pub(super) struct PackedGru {
    pub(super) w_ih: PackedLinear,
    pub(super) w_hh: PackedLinear,
}

/// The whole model's packed layers: the encoder's (every layer's directions, forward
/// first, and the bridge) and the decoder's.
#[derive(Debug)]
pub(crate) struct PackedModel {
    /// `layer · D + direction`
    pub(super) encoder: Vec<PackedGru>,
    pub(super) bridge: Option<PackedLinear>,
    pub(super) decoder: PackedDecoder,
}

impl PackedModel {
    pub(crate) fn of(encoder: &Encoder, bridge: Option<&Linear>, decoder: &Decoder) -> Result<Self> {
        let mut layers = Vec::new();
        for direction in encoder.parts().layers {
            let [w_ih, b_ih, w_hh, b_hh] = direction;
            layers.push(PackedGru {
                w_ih: PackedLinear::new(w_ih, Some(b_ih))?,
                w_hh: PackedLinear::new(w_hh, Some(b_hh))?,
            });
        }
        Ok(Self {
            encoder: layers,
            bridge: bridge.map(PackedLinear::of).transpose()?,
            decoder: PackedDecoder::of(decoder)?,
        })
    }

    /// The layer `key` names, if this model has it.
    pub(super) fn layer(&self, key: LayerKey) -> Option<&PackedLinear> {
        let d = &self.decoder;
        match key {
            LayerKey::Out => Some(&d.out),
            LayerKey::DecoderIh => Some(&d.w_ih),
            LayerKey::DecoderHh => Some(&d.w_hh),
            LayerKey::Combine => d.combine.as_ref(),
            LayerKey::Attention => d.attention.as_ref(),
            LayerKey::Keys => d.keys.as_ref(),
            LayerKey::EncoderIh(i) => self.encoder.get(i).map(|g| &g.w_ih),
            LayerKey::EncoderHh(i) => self.encoder.get(i).map(|g| &g.w_hh),
            LayerKey::Bridge => self.bridge.as_ref(),
        }
    }
}

/// Names a layer of [`PackedModel`], so that a helper's job (which owns an `Arc` of the
/// whole) finds the layer its caller multiplies by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum LayerKey {
    Out,
    DecoderIh,
    DecoderHh,
    Combine,
    Attention,
    Keys,
    /// `layer · D + direction`
    EncoderIh(usize),
    EncoderHh(usize),
    Bridge,
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// A step's product of the token side for `m` words: what `TokenGates::fill` is given.
    fn token_side(w_ih: &PackedLinear, e: usize) -> impl FnMut(&[f32], usize, &mut [f32]) + '_ {
        move |x, m, y| w_ih.apply_part(0..w_ih.dims().0, 0..e, x, m, y, Start::Bias)
    }

    /// Token-side gate rows made many words at a time hold exactly what one step's product of one column
    /// gives (bit for bit), and ids outside the vocabulary are refused.
    #[test]
    fn rows_equal_a_steps_product_bit_for_bit() {
        let (words, e, gates) = (150, 7, 130);
        let value = |i: usize, c: f32| ((i as f32) * 0.61 + c).sin();
        let w: Vec<f32> = (0..gates * (e + 5)).map(|i| value(i, 0.3)).collect();
        let b: Vec<f32> = (0..gates).map(|i| value(i, 1.1)).collect();
        let embedding: Vec<f32> = (0..words * e).map(|i| value(i, 2.7)).collect();
        let w = Tensor::from_vec(w, (gates, e + 5), &Device::Cpu).expect("weight");
        let b = Tensor::from_vec(b, gates, &Device::Cpu).expect("bias");
        let w_ih = PackedLinear::new(&w, Some(&b)).expect("packed");
        let table = TokenGates::new(words, gates);
        let ids: Vec<u32> = (0..words as u32).rev().chain([3, 3, 140]).collect();
        table.fill(&ids, &embedding, e, token_side(&w_ih, e)).expect("ids inside the vocabulary");
        for id in 0..words {
            let mut one = vec![0.0; gates];
            w_ih.apply_part(0..gates, 0..e, &embedding[id * e..(id + 1) * e], 1, &mut one, Start::Bias);
            let row = table.row(id as u32).expect("made");
            assert_eq!(
                row.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "word {id}"
            );
        }
        assert!(table.fill(&[words as u32], &embedding, e, token_side(&w_ih, e)).is_none());
        assert!(table.row(words as u32).is_none());
    }
}
