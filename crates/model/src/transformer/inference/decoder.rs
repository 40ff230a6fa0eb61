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
//!   once per source ([`super::encoder::Memory`]) and read by each row's source index.
//! - The output layer's logits go straight into each row's top-k of the log-softmax
//!   ([`crate::decode::top_k_log_softmax`]); no row of log-probabilities is written.
//!
//! The candle decoder (`transformer::decode`) is the reference this one is tested against.

use candle_core::Tensor;
use s2s_data::SOS;

use super::encoder::Memory;
use super::{add_residual, attend_head, layer_norm, linear, product_into, residual, Dense, Packed};
use crate::decode::{max_and_log_sum_exp, top_k_log_softmax, BatchState, RowStep};
use crate::error::{ModelError, Result};
use crate::kernels::with_f32_all;
use crate::parallel::Helper;
use crate::transformer::{Norm, PositionTable, Transformer};

/// Tensors per decoder layer ([`crate::transformer::layers::DecoderLayer::tensors`]).
const PER_LAYER: usize = 18;

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
pub(in crate::transformer) struct Decoder<'w> {
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
    helper: Option<&'w Helper<'w>>,
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

impl<'w> Decoder<'w> {
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
        let (keys, values) = (&self.keys[l], &self.values[l]);
        for r in 0..n {
            let q = &qkv[r * 3 * d..r * 3 * d + d];
            for head in 0..h {
                let at = |tau: usize| (self.block_start[tau] + self.lineage[tau][r] as usize) * d + head * dh;
                let ctx = &mut out[r * d + head * dh..r * d + (head + 1) * dh];
                let (key, value) = (|tau| &keys[at(tau)..at(tau) + dh], |tau| &values[at(tau)..at(tau) + dh]);
                attend_head(&q[head * dh..(head + 1) * dh], scale, key, value, &mut scores, ctx);
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
            let mut scores = vec![0f32; len];
            for head in 0..h {
                let base = (b * h + head) * s * dh;
                let qh = &q[r * d + head * dh..r * d + (head + 1) * dh];
                let ctx = &mut out[r * d + head * dh..r * d + (head + 1) * dh];
                let at = |j: usize| base + j * dh..base + (j + 1) * dh;
                attend_head(qh, scale, |j| &mk[at(j)], |j| &mv[at(j)], &mut scores, ctx);
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
        let (x, attention) = self.advance(last, true)?;
        Ok(self
            .output_layer(&x, last.len(), k)
            .into_iter()
            .zip(attention)
            .map(|(best, attention)| RowStep { best, attention })
            .collect())
    }

    /// Feeds each row `last` (teacher forcing: the reference's previous token) and returns
    /// each row's log-probability of `targets` (its reference's next token).
    pub(in crate::transformer) fn target_log_probs(&mut self, last: &[u32], targets: &[u32]) -> Result<Vec<f32>> {
        if targets.len() != last.len() {
            return Err(ModelError::Shape {
                what: "forced decoder step",
                expected: format!("{} targets", last.len()),
                got: targets.len().to_string(),
            });
        }
        let (x, _) = self.advance(last, false)?;
        let mut logits = std::mem::take(&mut self.logits);
        product_into(self.helper, &mut logits, &x, last.len(), self.output);
        let out = logits
            .chunks_exact(self.vocab)
            .zip(targets)
            .map(|(z, &t)| {
                let z_t = z.get(t as usize).copied().ok_or(ModelError::Shape {
                    what: "target id",
                    expected: format!("below {}", self.vocab),
                    got: t.to_string(),
                })?;
                let (max, log_sum) = max_and_log_sum_exp(z);
                Ok(z_t - max - log_sum)
            })
            .collect();
        self.logits = logits;
        out
    }

    /// One step of every row: the final (normed) states, `(n, d)`, and with `attention`
    /// each row's last-layer cross-attention weights averaged over heads.
    fn advance(&mut self, last: &[u32], attention: bool) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
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
        let mut weights_of_last = Vec::new();
        let layers = self.layers.len();
        for l in 0..layers {
            let lw = &self.layers[l];
            let (qkv_w, out_w, q_w, cross_w, ff1, ff2, norms) =
                (lw.self_qkv, lw.self_out, lw.cross_q, lw.cross_out, lw.ff1, lw.ff2, lw.norms);
            let h = match self.norm {
                Norm::Pre => layer_norm(&x, d, norms[0]),
                Norm::Post => x.clone(),
            };
            let qkv = linear(self.helper, &h, n, qkv_w);
            let ctx = self.self_attention(l, &qkv, n);
            let y = linear(self.helper, &ctx, n, out_w);
            add_residual(self.norm, &mut x, &y, d, norms[0]);
            let mut weights = Vec::new();
            residual(self.norm, &mut x, d, norms[1], |h| {
                let q = linear(self.helper, h, n, q_w);
                let (ctx, w) = self.cross_attention(l, &q, n, attention && l + 1 == layers);
                weights = w;
                linear(self.helper, &ctx, n, cross_w)
            });
            weights_of_last = weights;
            residual(self.norm, &mut x, d, norms[2], |h| {
                let mut a = linear(self.helper, h, n, ff1);
                for v in &mut a {
                    *v = v.max(0.0);
                }
                linear(self.helper, &a, n, ff2)
            });
        }
        self.stepped = self.sources.clone();
        Ok((layer_norm(&x, d, self.final_norm), weights_of_last))
    }

    /// Each row's `k` best tokens: the output layer's logits (into a buffer kept between
    /// steps), then the log-softmax's top k.
    #[inline(never)] // its own line in a profile
    fn output_layer(&mut self, x: &[f32], n: usize, k: usize) -> Vec<Vec<(u32, f32)>> {
        let mut logits = std::mem::take(&mut self.logits);
        product_into(self.helper, &mut logits, x, n, self.output);
        let best = logits.chunks_exact(self.vocab).take(n).map(|z| top_k_log_softmax(z, k)).collect();
        self.logits = logits;
        best
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
/// from the model's `packed` weights; `helper` takes half of each product's panels.
pub(super) fn with_decoder<R>(
    model: &Transformer,
    memory: &Memory,
    steps: usize,
    helper: Option<&Helper<'_>>,
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
    for layer in &model.decoder {
        tensors.extend(layer.tensors()?);
    }
    let (d, heads) = (model.family.hidden_size, model.family.heads);
    let norm = model.decoder.first().map_or(model.family.norm, |l| l.norm());
    let layers = model.decoder.len();
    if packed.decoder.len() != layers || memory.keys.len() != layers || memory.values.len() != layers {
        return Err(ModelError::Shape {
            what: "packed decoder layers and memory",
            expected: layers.to_string(),
            got: format!("{} and {}", packed.decoder.len(), memory.keys.len()),
        });
    }
    with_f32_all(&tensors, |v| {
        let layers = v[5..]
            .chunks_exact(PER_LAYER)
            .zip(&packed.decoder)
            .zip(memory.keys.iter().zip(&memory.values))
            .map(|((t, p), (k, mv))| {
                let dense = |i: usize| Dense { w: t[2 * i], b: t[2 * i + 1], panels: &p[i] };
                LayerWeights {
                    self_qkv: dense(0),
                    self_out: dense(1),
                    cross_q: dense(2),
                    cross_out: dense(3),
                    ff1: dense(4),
                    ff2: dense(5),
                    norms: [(t[12], t[13]), (t[14], t[15]), (t[16], t[17])],
                    memory: (&k[..], &mv[..]),
                }
            })
            .collect::<Vec<_>>();
        let count = layers.len();
        let rows = memory.lengths.len();
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
            width: memory.width,
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
    })?
}

/// The sum of each source's negative log-likelihood of its `targets` (which end with EOS)
/// under teacher forcing: the decoder is fed SOS then each reference token, and a source's
/// row leaves once its reference is scored.
pub(in crate::transformer) fn forced_nll(decoder: &mut Decoder, targets: &[Vec<u32>]) -> Result<Vec<f64>> {
    let mut sums = vec![0f64; targets.len()];
    // Rows still in the decoder, by source; a source with an empty reference is stepped
    // once (every source starts with a row) and scores nothing.
    let mut alive: Vec<usize> = (0..targets.len()).collect();
    for t in 0.. {
        if alive.is_empty() {
            break;
        }
        let last: Vec<u32> = alive.iter().map(|&i| if t == 0 { SOS } else { targets[i][t - 1] }).collect();
        let next: Vec<u32> = alive.iter().map(|&i| targets[i].get(t).copied().unwrap_or(SOS)).collect();
        let log_probs = decoder.target_log_probs(&last, &next)?;
        for (&i, &lp) in alive.iter().zip(&log_probs) {
            if t < targets[i].len() {
                sums[i] -= f64::from(lp);
            }
        }
        let kept: Vec<u32> = (0..alive.len() as u32).filter(|&r| t + 1 < targets[alive[r as usize]].len()).collect();
        if kept.len() < alive.len() {
            alive = kept.iter().map(|&r| alive[r as usize]).collect();
            if !alive.is_empty() {
                decoder.select(&kept)?;
            }
        }
    }
    Ok(sums)
}
