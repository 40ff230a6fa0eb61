//! The Transformer at inference, without candle's graph: the encoder
//! ([`encoder::encode`]) and the decoder ([`decoder::Decoder`]) work on plain `f32` rows
//! that read the weights in place, and their products read the weights packed once in
//! column panels ([`Packed`]), half of each product on a helper thread when one sentence
//! is decoded alone. The candle model (`super::Transformer::encode`, `super::decode`) is
//! the reference they are tested against.

mod decoder;
mod encoder;

use std::sync::Arc;

use candle_core::Tensor;

use super::{Norm, Transformer};
use crate::error::Result;
use crate::kernels::matmul::{add_to_rows, linear_product};
use crate::kernels::panels::Panels;
use crate::parallel::{product_all_shared, with_helper, Helper};
use crate::transformer::kernels::moments;

pub(super) use decoder::{forced_nll, Decoder};

/// A product's weight `(out, in)` and bias, read in place, and the weight packed in
/// column panels ([`Packed`]).
#[derive(Clone, Copy)]
struct Dense<'w> {
    w: &'w [f32],
    b: &'w [f32],
    panels: &'w Arc<Panels>,
}

/// The model's product weights packed in column panels ([`Panels`]): per encoder layer
/// its four (self-attention q/k/v and output, feed-forward in and out), per decoder layer
/// the memory's key/value projection and its six of [`decoder::Decoder`]'s layers, then
/// the output layer (30 MB for `multi30k-transformer`). Kept by a model whose weights no
/// longer change ([`crate::TranslationModel::freeze`]), else packed for each decoding
/// call (about 20 ms for `multi30k-transformer`).
#[derive(Debug, Clone)]
pub(super) struct Packed {
    encoder: Vec<[Arc<Panels>; 4]>,
    memory: Vec<Arc<Panels>>,
    decoder: Vec<[Arc<Panels>; 6]>,
    output: Arc<Panels>,
}

impl Packed {
    pub(super) fn of(model: &Transformer) -> Result<Self> {
        let pack = |w: &Tensor| -> Result<Arc<Panels>> {
            let (n, k) = w.dims2()?;
            Ok(Arc::new(crate::kernels::with_f32(w, |v| Panels::of_linear(v, n, k))?))
        };
        let mut encoder = Vec::with_capacity(model.encoder.len());
        for layer in &model.encoder {
            let w = layer.tensors()?;
            encoder.push([pack(w[0])?, pack(w[2])?, pack(w[4])?, pack(w[6])?]);
        }
        let (mut memory, mut decoder) = (Vec::new(), Vec::new());
        for layer in &model.decoder {
            memory.push(pack(layer.memory_projection().weight())?);
            let w = layer.tensors()?;
            decoder.push([pack(w[0])?, pack(w[2])?, pack(w[4])?, pack(w[6])?, pack(w[8])?, pack(w[10])?]);
        }
        Ok(Self { encoder, memory, decoder, output: pack(&model.output)? })
    }
}

/// `Σ a·b` over 8 lanes (vectorises).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `out += w · v`.
#[inline(always)]
fn axpy(out: &mut [f32], w: f32, v: &[f32]) {
    for (o, &x) in out.iter_mut().zip(v) {
        *o += w * x;
    }
}

/// Softmax of `scores` in place (as [`super::kernels::softmax`] computes it).
fn softmax_in_place(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    let inv = 1.0 / sum;
    for s in scores.iter_mut() {
        *s *= inv;
    }
}

/// One attention head of one query row `q` over `scores.len()` positions: the scores
/// `(q · key(j)) · scale`, their softmax (left in `scores`), and `ctx += Σ_j w_j value(j)`.
/// Every attention of the graph-free model (the encoder's, the decoder's over its cache and
/// over the memory) is this with its own way of finding position `j`.
#[inline(always)]
fn attend_head<'a>(
    q: &[f32],
    scale: f32,
    key: impl Fn(usize) -> &'a [f32],
    value: impl Fn(usize) -> &'a [f32],
    scores: &mut [f32],
    ctx: &mut [f32],
) {
    for (j, s) in scores.iter_mut().enumerate() {
        *s = dot(q, key(j)) * scale;
    }
    softmax_in_place(scores);
    for (j, &w) in scores.iter().enumerate() {
        axpy(ctx, w, value(j));
    }
}

/// Layer normalisation of every `d`-wide row of `x` (as [`super::kernels::layer_norm`]).
#[inline(never)] // its own line in a profile
fn layer_norm(x: &[f32], d: usize, (w, b): (&[f32], &[f32])) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for (row, y) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let (mean, rstd) = moments(row);
        for (((y, &v), &w), &b) in y.iter_mut().zip(row).zip(w).zip(b) {
            *y = (v - mean) * rstd * w + b;
        }
    }
    out
}

/// `x += y`, then layer norm `norm` when the layers are post-norm.
fn add_residual(order: Norm, x: &mut Vec<f32>, y: &[f32], d: usize, norm: (&[f32], &[f32])) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
    if order == Norm::Post {
        *x = layer_norm(x, d, norm);
    }
}

/// `x + sublayer(norm(x))` (pre) or `norm(x + sublayer(x))` (post), in place.
fn residual(
    order: Norm,
    x: &mut Vec<f32>,
    d: usize,
    norm: (&[f32], &[f32]),
    sublayer: impl FnOnce(&[f32]) -> Vec<f32>,
) {
    let y = match order {
        Norm::Pre => sublayer(&layer_norm(x, d, norm)),
        Norm::Post => sublayer(x),
    };
    add_residual(order, x, &y, d, norm);
}

/// `x Wᵀ` for `n` rows of `x` into `y` (resized to `n` × the output width): from the
/// packed panels, half of them on the `helper` thread when there is one; through gemm for
/// many rows on a CPU without AVX-512.
#[inline(never)] // its own line in a profile
fn product_into(helper: Option<&Helper<'_>>, y: &mut Vec<f32>, x: &[f32], n: usize, dense: Dense) {
    let panels = dense.panels;
    let (k, out) = (panels.inputs(), panels.outputs());
    if n == 0 {
        y.clear();
        return;
    }
    if !Panels::fits(n) {
        *y = linear_product(x, n, k, dense.w, out);
        return;
    }
    product_all_shared(panels, helper, y, x, n);
}

/// `x Wᵀ + b` for `n` rows of `x`.
#[inline(never)] // its own line in a profile
fn linear(helper: Option<&Helper<'_>>, x: &[f32], n: usize, dense: Dense) -> Vec<f32> {
    let mut y = Vec::new();
    product_into(helper, &mut y, x, n, dense);
    add_to_rows(&mut y, dense.b);
    y
}

/// Encodes `sources` and runs `search` over a graph-free decoder of them (one row each to
/// start), from the model's `packed` weights. With `helped`, a helper thread takes half of
/// each product's panels, the encoder's as well as the decoder's.
pub(super) fn decode_sources<R>(
    model: &Transformer,
    sources: &[Vec<u32>],
    steps: usize,
    helped: bool,
    packed: &Packed,
    search: impl FnOnce(&mut Decoder) -> Result<R>,
) -> Result<R> {
    let run = |helper: Option<&Helper<'_>>| -> Result<R> {
        let memory = encoder::encode(model, sources, packed, helper)?;
        decoder::with_decoder(model, &memory, steps, helper, packed, search)
    };
    if helped {
        with_helper(run)
    } else {
        run(None)
    }
}
