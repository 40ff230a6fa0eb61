//! The Transformer's decoder at inference, without candle's graph: every step works on
//! plain `f32` rows that read the weights in place, and no step copies an earlier one.
//!
//! - Rows are hypotheses of any of the encoded sources (greedy: one per source; beam: up to
//!   `beam` per source), stepped together as one product per weight; a source's rows leave
//!   as soon as its search ends ([`crate::decode::BatchState`]).
//! - Each layer's self-attention keys and values are kept time-major: step `τ` appends
//!   one block of `rows × d` values and is never moved again. A row reads position `τ` from
//!   the block row its ancestor had at step `τ` (`lineage`), so choosing the survivors of a
//!   beam copies nothing but indices.
//! - The cross-attention's keys and values over the memory are the encoder's, computed
//!   once per source ([`super::Encoded`]) and read by each row's source index.
//! - The output layer's logits go straight into each row's top-k of the log-softmax
//!   ([`crate::decode::top_k_log_softmax`]); no row of log-probabilities is written.
//!
//! The candle decoder ([`super::decode`]) is the reference this one is tested against.

use std::sync::Arc;

use candle_core::Tensor;

use super::{Encoded, Norm, PositionTable, Transformer};
use crate::decode::{top_k_log_softmax, BatchState, RowStep};
use crate::error::{ModelError, Result};
use crate::kernels::matmul::{add_to_rows, linear_product_with};
use crate::kernels::panels::Panels;
use crate::kernels::with_f32_all;
use crate::parallel::{with_helper, Helper};
use crate::transformer::kernels::moments;

/// Tensors per decoder layer ([`super::DecoderLayer::tensors`]).
const PER_LAYER: usize = 18;

/// A product's weight `(out, in)` and bias, read in place, and the weight packed in
/// column panels ([`Packed`]).
#[derive(Clone, Copy)]
struct Dense<'w> {
    w: &'w [f32],
    b: &'w [f32],
    panels: &'w Arc<Panels>,
}

/// The decoder's product weights packed in column panels ([`Panels`]): per layer the six
/// of [`LayerWeights`] in order, then the output layer (21 MB for `multi30k-transformer`).
/// Kept by a model whose weights no longer change ([`crate::TranslationModel::freeze`]),
/// else packed for each decoding call (about 12 ms for `multi30k-transformer`).
#[derive(Debug)]
pub(super) struct Packed {
    layers: Vec<[Arc<Panels>; 6]>,
    output: Arc<Panels>,
}

impl Packed {
    pub(super) fn of(model: &Transformer) -> Result<Self> {
        let pack = |w: &Tensor| -> Result<Arc<Panels>> {
            let (n, k) = w.dims2()?;
            Ok(Arc::new(crate::kernels::with_f32(w, |v| Panels::of_linear(v, n, k))?))
        };
        let mut layers = Vec::with_capacity(model.decoder.len());
        for layer in &model.decoder {
            let w = layer.tensors()?;
            layers.push([pack(w[0])?, pack(w[2])?, pack(w[4])?, pack(w[6])?, pack(w[8])?, pack(w[10])?]);
        }
        Ok(Self { layers, output: pack(&model.output)? })
    }
}

/// One decoder layer's weights, read in place.
struct LayerWeights<'w> {
    self_qkv: Dense<'w>,
    self_out: Dense<'w>,
    cross_q: Dense<'w>,
    cross_out: Dense<'w>,
    ff1: Dense<'w>,
    ff2: Dense<'w>,
    norms: [(&'w [f32], &'w [f32]); 3],
    /// The memory's keys and values for this layer, `(B, heads, S, d / heads)` each.
    memory: (&'w [f32], &'w [f32]),
}

/// The decoder's state over its rows.
pub(super) struct Decoder<'w> {
    layers: Vec<LayerWeights<'w>>,
    norm: Norm,
    final_norm: (&'w [f32], &'w [f32]),
    embedding: &'w [f32],
    output: Dense<'w>,
    /// Rows of the target position table, `(P, d)`.
    positions: &'w [f32],
    d: usize,
    heads: usize,
    vocab: usize,
    /// Source length and memory width `S` (the longest source).
    lengths: Vec<usize>,
    width: usize,
    helper: Option<&'w Helper<'w, Vec<f32>>>,
    /// Source of each row.
    sources: Vec<usize>,
    /// Per layer, the keys and values of every step, time-major.
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    /// Where step `τ`'s block starts, in rows.
    block_start: Vec<usize>,
    /// `lineage[τ][r]`: the row of step `τ`'s block that row `r` descends from.
    lineage: Vec<Vec<u32>>,
    /// Source of each row of the last step, before [`BatchState::select`].
    stepped: Vec<usize>,
    /// The output layer's logits, kept between steps.
    logits: Vec<f32>,
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

impl<'w> Decoder<'w> {
    /// `x Wᵀ` for `n` rows of `x` into `y` (resized to `n` × the output width): from the
    /// packed panels, half of them on the helper thread when there is one; through gemm
    /// for many rows on a CPU without AVX-512.
    #[inline(never)] // its own line in a profile
    fn product_into(&self, y: &mut Vec<f32>, x: &[f32], n: usize, dense: Dense) {
        let panels = dense.panels;
        let (k, out) = (panels.inputs(), panels.outputs());
        if !Panels::fits(n) {
            *y = linear_product_with(x, n, k, dense.w, out, None);
            return;
        }
        y.resize(n * out, 0.0);
        match self.helper.filter(|_| panels.count() >= 2) {
            None => panels.product_all_into(y, x, n),
            Some(helper) => {
                let half = panels.count() / 2;
                let (theirs, rows) = (Arc::clone(panels), x.to_vec());
                let (first, second) = helper.join(
                    || {
                        let mut part = vec![0f32; n * panels.columns(&(0..half)).len()];
                        panels.product_into(&mut part, x, n, 0..half);
                        part
                    },
                    move || {
                        let all = half..theirs.count();
                        let mut part = vec![0f32; n * theirs.columns(&all).len()];
                        theirs.product_into(&mut part, &rows, n, all);
                        part
                    },
                );
                let split = first.len() / n.max(1);
                for ((row, a), b) in
                    y.chunks_exact_mut(out).zip(first.chunks_exact(split)).zip(second.chunks(out - split))
                {
                    row[..split].copy_from_slice(a);
                    row[split..].copy_from_slice(b);
                }
            }
        }
    }

    /// `x Wᵀ + b` for `n` rows of `x`.
    #[inline(never)] // its own line in a profile
    fn linear(&self, x: &[f32], n: usize, dense: Dense) -> Vec<f32> {
        let mut y = Vec::new();
        self.product_into(&mut y, x, n, dense);
        add_to_rows(&mut y, dense.b);
        y
    }

    /// `x + sublayer(norm(x))` (pre) or `norm(x + sublayer(x))` (post), in place.
    fn residual(&self, x: &mut Vec<f32>, norm: (&[f32], &[f32]), sublayer: impl FnOnce(&[f32]) -> Vec<f32>) {
        let y = match self.norm {
            Norm::Pre => sublayer(&layer_norm(x, self.d, norm)),
            Norm::Post => sublayer(x),
        };
        for (a, b) in x.iter_mut().zip(&y) {
            *a += b;
        }
        if self.norm == Norm::Post {
            *x = layer_norm(x, self.d, norm);
        }
    }

    /// Self-attention of the `n` rows' queries `qkv[.., 0..d]` over every cached position;
    /// the new keys and values (`qkv[.., d..3d]`) join layer `l`'s cache first.
    #[inline(never)] // its own line in a profile
    fn self_attention(&mut self, l: usize, qkv: &[f32], n: usize) -> Vec<f32> {
        let (d, h) = (self.d, self.heads);
        let dh = d / h;
        for row in qkv.chunks_exact(3 * d) {
            self.keys[l].extend_from_slice(&row[d..2 * d]);
            self.values[l].extend_from_slice(&row[2 * d..]);
        }
        let steps = self.lineage.len();
        let scale = 1.0 / (dh as f32).sqrt();
        let mut out = vec![0f32; n * d];
        let mut scores = vec![0f32; steps];
        for r in 0..n {
            let q = &qkv[r * 3 * d..r * 3 * d + d];
            let at = |tau: usize| (self.block_start[tau] + self.lineage[tau][r] as usize) * d;
            for head in 0..h {
                let qh = &q[head * dh..(head + 1) * dh];
                for (tau, s) in scores.iter_mut().enumerate() {
                    let o = at(tau) + head * dh;
                    *s = dot(qh, &self.keys[l][o..o + dh]) * scale;
                }
                softmax_in_place(&mut scores);
                let ctx = &mut out[r * d + head * dh..r * d + (head + 1) * dh];
                for (tau, &w) in scores.iter().enumerate() {
                    let o = at(tau) + head * dh;
                    axpy(ctx, w, &self.values[l][o..o + dh]);
                }
            }
        }
        out
    }

    /// Cross-attention of the `n` rows' queries over their sources' memory; returns the
    /// context and, when `weights`, each row's weights averaged over heads (its source's
    /// length).
    #[inline(never)] // its own line in a profile
    fn cross_attention(&self, l: usize, q: &[f32], n: usize, weights: bool) -> (Vec<f32>, Vec<Vec<f32>>) {
        let (d, h, s) = (self.d, self.heads, self.width);
        let dh = d / h;
        let scale = 1.0 / (dh as f32).sqrt();
        let (mk, mv) = self.layers[l].memory;
        let mut out = vec![0f32; n * d];
        let mut mean = Vec::with_capacity(if weights { n } else { 0 });
        for r in 0..n {
            let b = self.sources[r];
            let len = self.lengths[b];
            let mut row_mean = vec![0f32; if weights { len } else { 0 }];
            for head in 0..h {
                let base = (b * h + head) * s * dh;
                let qh = &q[r * d + head * dh..r * d + (head + 1) * dh];
                let mut scores: Vec<f32> =
                    (0..len).map(|j| dot(qh, &mk[base + j * dh..base + (j + 1) * dh]) * scale).collect();
                softmax_in_place(&mut scores);
                let ctx = &mut out[r * d + head * dh..r * d + (head + 1) * dh];
                for (j, &w) in scores.iter().enumerate() {
                    axpy(ctx, w, &mv[base + j * dh..base + (j + 1) * dh]);
                }
                for (m, &w) in row_mean.iter_mut().zip(&scores) {
                    *m += w;
                }
            }
            if weights {
                for m in &mut row_mean {
                    *m /= h as f32;
                }
                mean.push(row_mean);
            }
        }
        (out, mean)
    }

    fn step_rows(&mut self, last: &[u32], k: usize) -> Result<Vec<RowStep>> {
        let (n, d) = (last.len(), self.d);
        if n != self.sources.len() {
            return Err(ModelError::Shape {
                what: "decoder step",
                expected: format!("{} rows", self.sources.len()),
                got: format!("{n} tokens"),
            });
        }
        let position = self.lineage.len();
        let pos = self.positions.get(position * d..(position + 1) * d).ok_or(ModelError::TooLong {
            len: position + 1,
            max: self.positions.len() / d,
            what: "target position table",
        })?;
        let scale = (d as f64).sqrt() as f32;
        let mut x = Vec::with_capacity(n * d);
        for &t in last {
            let e = self.embedding.get(t as usize * d..(t as usize + 1) * d).ok_or(ModelError::Shape {
                what: "target id",
                expected: format!("below {}", self.vocab),
                got: t.to_string(),
            })?;
            x.extend(e.iter().zip(pos).map(|(&v, &p)| v * scale + p));
        }
        // Step `position`'s block starts after every row stored so far.
        self.block_start.push(self.keys.first().map_or(0, |k| k.len() / d));
        self.lineage.push((0..n as u32).collect());
        let mut attention = Vec::new();
        let layers = self.layers.len();
        for l in 0..layers {
            let lw = &self.layers[l];
            let (qkv_w, out_w, q_w, cross_w, ff1, ff2, norms) =
                (lw.self_qkv, lw.self_out, lw.cross_q, lw.cross_out, lw.ff1, lw.ff2, lw.norms);
            let h = match self.norm {
                Norm::Pre => layer_norm(&x, d, norms[0]),
                Norm::Post => x.clone(),
            };
            let qkv = self.linear(&h, n, qkv_w);
            let ctx = self.self_attention(l, &qkv, n);
            let y = self.linear(&ctx, n, out_w);
            self.add_residual(&mut x, &y, norms[0]);
            let mut weights = Vec::new();
            self.residual(&mut x, norms[1], |h| {
                let q = self.linear(h, n, q_w);
                let (ctx, w) = self.cross_attention(l, &q, n, l + 1 == layers);
                weights = w;
                self.linear(&ctx, n, cross_w)
            });
            attention = weights;
            self.residual(&mut x, norms[2], |h| {
                let mut a = self.linear(h, n, ff1);
                for v in &mut a {
                    *v = v.max(0.0);
                }
                self.linear(&a, n, ff2)
            });
        }
        let x = layer_norm(&x, d, self.final_norm);
        self.stepped = self.sources.clone();
        Ok(self
            .output_layer(&x, n, k)
            .into_iter()
            .zip(attention)
            .map(|(best, attention)| RowStep { best, attention })
            .collect())
    }

    /// Each row's `k` best tokens: the output layer's logits (into a buffer kept between
    /// steps), then the log-softmax's top k.
    #[inline(never)] // its own line in a profile
    fn output_layer(&mut self, x: &[f32], n: usize, k: usize) -> Vec<Vec<(u32, f32)>> {
        let mut logits = std::mem::take(&mut self.logits);
        self.product_into(&mut logits, x, n, self.output);
        let best = logits.chunks_exact(self.vocab).take(n).map(|z| top_k_log_softmax(z, k)).collect();
        self.logits = logits;
        best
    }

    /// `x += y`, then layer norm `norm` for a post-norm layer (the self-attention's
    /// residual, whose sublayer needs `&mut self`).
    fn add_residual(&self, x: &mut Vec<f32>, y: &[f32], norm: (&[f32], &[f32])) {
        for (a, b) in x.iter_mut().zip(y) {
            *a += b;
        }
        if self.norm == Norm::Post {
            *x = layer_norm(x, self.d, norm);
        }
    }
}

impl BatchState for Decoder<'_> {
    fn step(&mut self, last: &[u32], k: usize) -> Result<Vec<RowStep>> {
        self.step_rows(last, k)
    }

    fn select(&mut self, rows: &[u32]) -> Result<()> {
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= self.stepped.len()) {
            return Err(ModelError::Shape {
                what: "selected row",
                expected: format!("below {}", self.stepped.len()),
                got: bad.to_string(),
            });
        }
        self.sources = rows.iter().map(|&r| self.stepped[r as usize]).collect();
        for line in &mut self.lineage {
            *line = rows.iter().map(|&r| line[r as usize]).collect();
        }
        Ok(())
    }
}

/// Runs `search` over a graph-free decoder of `memory`'s sources (one row each to start),
/// from the model's `packed` weights. With `helped`, a
/// helper thread takes half of each product's panels.
pub(super) fn with_decoder<R>(
    model: &Transformer,
    memory: &Encoded,
    steps: usize,
    helped: bool,
    packed: &Packed,
    search: impl FnOnce(&mut Decoder) -> Result<R>,
) -> Result<R> {
    let positions = match &model.tgt_positions {
        PositionTable::Sinusoidal { .. } => model.tgt_positions.rows(0, steps.max(1))?,
        PositionTable::Learned { weight } => weight.clone(),
    };
    let positions = positions.contiguous()?;
    let mut tensors: Vec<&Tensor> = vec![&model.tgt_embedding, &model.output, &positions];
    tensors.extend(model.decoder_norm.parameters());
    for (layer, mem) in model.decoder.iter().zip(&memory.layers) {
        tensors.extend(layer.tensors()?);
        tensors.push(&mem.kv.k);
        tensors.push(&mem.kv.v);
    }
    let (d, heads) = (model.family.hidden_size, model.family.heads);
    let width = memory.layers.first().map(|m| m.kv.k.dim(2)).transpose()?.unwrap_or(0);
    let norm = model.decoder.first().map_or(model.family.norm, |l| l.norm());
    if packed.layers.len() != model.decoder.len() {
        return Err(ModelError::Shape {
            what: "packed decoder layers",
            expected: model.decoder.len().to_string(),
            got: packed.layers.len().to_string(),
        });
    }
    with_f32_all(&tensors, |v| {
        let layers = v[5..]
            .chunks_exact(PER_LAYER + 2)
            .zip(&packed.layers)
            .map(|(t, p)| {
                let dense = |i: usize| Dense { w: t[2 * i], b: t[2 * i + 1], panels: &p[i] };
                LayerWeights {
                    self_qkv: dense(0),
                    self_out: dense(1),
                    cross_q: dense(2),
                    cross_out: dense(3),
                    ff1: dense(4),
                    ff2: dense(5),
                    norms: [(t[12], t[13]), (t[14], t[15]), (t[16], t[17])],
                    memory: (t[18], t[19]),
                }
            })
            .collect::<Vec<_>>();
        let count = layers.len();
        let rows = memory.lengths.len();
        let run = |helper: Option<&Helper<'_, Vec<f32>>>| {
            let mut decoder = Decoder {
                layers,
                norm,
                final_norm: (v[3], v[4]),
                embedding: v[0],
                output: Dense { w: v[1], b: &[], panels: &packed.output },
                positions: v[2],
                d,
                heads,
                vocab: v[1].len() / d.max(1),
                lengths: memory.lengths.clone(),
                width,
                helper,
                sources: (0..rows).collect(),
                keys: vec![Vec::new(); count],
                values: vec![Vec::new(); count],
                block_start: Vec::new(),
                lineage: Vec::new(),
                stepped: Vec::new(),
                logits: Vec::new(),
            };
            search(&mut decoder)
        };
        if helped {
            with_helper(run)
        } else {
            run(None)
        }
    })?
}
