//! The model's parameters for one inference call over buffers: its weights read in place
//! (for gemm, and the embeddings) beside their packed copies ([`PackedModel`]), as a
//! [`BufferEncoder`] and a [`BufferDecoder`].

use std::sync::Arc;

use super::super::attention::Attention;
use super::super::decoder::Decoder;
use super::super::encoder::Encoder;
use super::affine::Affine;
use super::encoder::BufferEncoder;
use super::packed::{LayerKey, PackedModel};
use super::{BufferDecoder, Scores};
use crate::error::{expect_dims, ModelError, Result};
use crate::params::Linear;

/// Runs `f` with the model's parameters as a [`BufferEncoder`] and a [`BufferDecoder`]
/// over `packed`, the same model's packed layers (CPU only).
pub(crate) fn with_model<'a, R>(
    (encoder, bridge, decoder): (&'a Encoder, Option<&'a Linear>, &'a Decoder),
    packed: &'a Arc<PackedModel>,
    f: impl FnOnce(&BufferEncoder, &BufferDecoder) -> Result<R>,
) -> Result<R> {
    let parts = decoder.parts();
    let enc = encoder.parts();
    // The tensors read in place, in the order the walk below takes them.
    let mut tensors = vec![parts.embedding, parts.gru[0], parts.gru[2], parts.out.weight()];
    tensors.extend(parts.combine.map(Linear::weight));
    let keys = match parts.attention {
        Attention::Location { attn, .. } => {
            tensors.push(attn.weight());
            None
        }
        Attention::Bahdanau { wa, va, ua } => {
            tensors.extend([wa.weight(), va.weight()]);
            Some(ua)
        }
        Attention::LuongDot => None,
        Attention::LuongGeneral { w } => Some(w),
    };
    tensors.extend(keys.map(Linear::weight));
    tensors.push(enc.embedding);
    tensors.extend(enc.layers.iter().flat_map(|[w_ih, _, w_hh, _]| [*w_ih, *w_hh]));
    tensors.extend(bridge.map(Linear::weight));
    let va_bias = match parts.attention {
        Attention::Bahdanau { va, .. } => va.bias().map(|b| b.flatten_all()?.to_vec1::<f32>()).transpose()?,
        _ => None,
    };
    crate::kernels::with_f32_all(&tensors, |values| {
        let mut values = values.iter().copied();
        let mut next = || {
            values.next().ok_or(ModelError::Shape {
                what: "model parameters",
                expected: "one value slice per tensor".into(),
                got: "fewer".into(),
            })
        };
        let embedding = next()?;
        let w_ih = Affine::in_place(packed, LayerKey::DecoderIh, next()?)?;
        let w_hh = Affine::in_place(packed, LayerKey::DecoderHh, next()?)?;
        let out = Affine::in_place(packed, LayerKey::Out, next()?)?;
        let combine = match parts.combine {
            Some(_) => Some(Affine::in_place(packed, LayerKey::Combine, next()?)?),
            None => None,
        };
        let scores = match parts.attention {
            Attention::Location { .. } => Scores::Location(Affine::in_place(packed, LayerKey::Attention, next()?)?),
            Attention::Bahdanau { .. } => {
                let wa = Affine::in_place(packed, LayerKey::Attention, next()?)?;
                let va_bias = va_bias.as_ref().and_then(|b| b.first().copied()).unwrap_or(0.0);
                Scores::Additive { wa, va: next()?, va_bias }
            }
            Attention::LuongDot => Scores::Dot { projected: false },
            Attention::LuongGeneral { .. } => Scores::Dot { projected: true },
        };
        let keys = match keys {
            Some(_) => Some(Affine::in_place(packed, LayerKey::Keys, next()?)?),
            None => None,
        };
        let (gates, input) = (w_ih.rows, w_ih.cols);
        let (e, h) = (parts.embedding.dim(1)?, gates / 3);
        expect_dims("decoder GRU input weights", parts.gru[0], &[gates, input])?;
        // Weight elements read on each side besides the output rows (the attention's
        // element-wise work is small next to them).
        let caller_extra = match (&scores, combine) {
            (_, Some(_)) => 0,
            (Scores::Additive { wa, .. }, None) => wa.rows * wa.cols + gates * h,
            _ => gates * h,
        };
        let balanced = (out.rows * h + caller_extra).saturating_sub(gates * h) / (2 * h.max(1));
        let helper_rows = balanced.min(out.rows);
        let decoder = BufferDecoder { embedding, e, h, scores, keys, combine, w_ih, w_hh, out, helper_rows, packed };

        let source_embedding = next()?;
        let mut layers = Vec::with_capacity(enc.layers.len());
        for i in 0..enc.layers.len() {
            let w_ih = Affine::in_place(packed, LayerKey::EncoderIh(i), next()?)?;
            layers.push((w_ih, Affine::in_place(packed, LayerKey::EncoderHh(i), next()?)?));
        }
        let bridge = match bridge {
            Some(_) => Some(Affine::in_place(packed, LayerKey::Bridge, next()?)?),
            None => None,
        };
        let encoder = BufferEncoder {
            embedding: source_embedding,
            e: enc.embedding.dim(1)?,
            h: enc.hidden,
            directions: enc.directions,
            layers,
            bridge,
            packed,
        };
        f(&encoder, &decoder)
    })?
}
