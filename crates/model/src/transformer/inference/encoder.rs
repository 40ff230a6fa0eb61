//! The Transformer's encoder at inference, without candle's graph: the sources' tokens
//! are rows of one product per weight with no padding (each source attends over its own
//! tokens only), and what the decoder needs of them, each decoder layer's keys and values
//! over the memory, is laid out as its cross-attention reads it.
//!
//! The candle encoder (`Transformer::encode`) is the reference this one is tested against:
//! it pads the sources to one length and masks the padding's keys, which gives the real
//! tokens the same values.

use candle_core::Tensor;

use super::{attend_head, layer_norm, linear, residual, Dense, Packed};
use crate::error::{ModelError, Result};
use crate::kernels::with_f32_all;
use crate::parallel::Helper;
use crate::transformer::{PositionTable, Transformer};

/// Tensors per encoder layer ([`crate::transformer::layers::EncoderLayer::tensors`]).
const PER_LAYER: usize = 12;

/// The encoded sources as the graph-free decoder reads them.
pub(super) struct Memory {
    /// Per decoder layer, the memory's keys and values, `(B, heads, S, d / heads)` each
    /// (positions from a source's length on are zeros, never read).
    pub keys: Vec<Vec<f32>>,
    pub values: Vec<Vec<f32>>,
    /// Each source's length, and the longest (`S`).
    pub lengths: Vec<usize>,
    pub width: usize,
}

/// Self-attention of every source's rows over the same source's rows: `qkv` holds each
/// row's query, key and value (`3d` values), sources one after another (`lengths`).
#[inline(never)] // its own line in a profile
fn self_attention(qkv: &[f32], lengths: &[usize], d: usize, heads: usize) -> Vec<f32> {
    let dh = d / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut out = vec![0f32; qkv.len() / 3];
    let mut first = 0;
    for &len in lengths {
        let rows = first..first + len;
        let mut scores = vec![0f32; len];
        for i in rows.clone() {
            for head in 0..heads {
                let q = &qkv[i * 3 * d + head * dh..i * 3 * d + (head + 1) * dh];
                // Row `first + j`'s key (part 1) or value (part 2) for this head.
                let at = |j: usize, part: usize| {
                    let o = (first + j) * 3 * d + part * d + head * dh;
                    &qkv[o..o + dh]
                };
                let ctx = &mut out[i * d + head * dh..i * d + (head + 1) * dh];
                attend_head(q, scale, |j| at(j, 1), |j| at(j, 2), &mut scores, ctx);
            }
        }
        first += len;
    }
    out
}

/// Encodes `sources` (token ids, no padding) and computes every decoder layer's keys and
/// values over them, from the model's `packed` weights; `helper` takes half of each
/// product's panels.
pub(super) fn encode(
    model: &Transformer,
    sources: &[Vec<u32>],
    packed: &Packed,
    helper: Option<&Helper<'_>>,
) -> Result<Memory> {
    let (d, heads) = (model.family.hidden_size, model.family.heads);
    let dh = d / heads.max(1);
    let lengths: Vec<usize> = sources.iter().map(Vec::len).collect();
    let width = lengths.iter().copied().max().unwrap_or(0);
    let rows: usize = lengths.iter().sum();
    let positions = match &model.src_positions {
        PositionTable::Sinusoidal { .. } => model.src_positions.rows(0, width.max(1))?,
        PositionTable::Learned { weight } => weight.clone(),
    };
    let positions = positions.contiguous()?;
    let mut tensors: Vec<&Tensor> = vec![&model.src_embedding, &positions];
    tensors.extend(model.encoder_norm.parameters());
    for layer in &model.encoder {
        tensors.extend(layer.tensors()?);
    }
    for layer in &model.decoder {
        let kv = layer.memory_projection();
        tensors.push(kv.weight());
        tensors.push(kv.bias().ok_or(ModelError::MissingParameter { name: "a decoder layer's bias".into() })?);
    }
    if packed.encoder.len() != model.encoder.len() || packed.memory.len() != model.decoder.len() {
        return Err(ModelError::Shape {
            what: "packed encoder layers",
            expected: model.encoder.len().to_string(),
            got: packed.encoder.len().to_string(),
        });
    }
    let order = model.encoder.first().map_or(model.family.norm, |l| l.norm());
    with_f32_all(&tensors, |v| {
        let (embedding, table) = (v[0], v[1]);
        let scale = (d as f64).sqrt() as f32;
        let mut x = Vec::with_capacity(rows * d);
        for source in sources {
            for (t, &id) in source.iter().enumerate() {
                let id = id as usize;
                let e = embedding.get(id * d..(id + 1) * d).ok_or(ModelError::Shape {
                    what: "source id",
                    expected: format!("below {}", embedding.len() / d.max(1)),
                    got: id.to_string(),
                })?;
                let p = table.get(t * d..(t + 1) * d).ok_or(ModelError::TooLong {
                    len: t + 1,
                    max: table.len() / d.max(1),
                    what: "source position table",
                })?;
                x.extend(e.iter().zip(p).map(|(&e, &p)| e * scale + p));
            }
        }
        let encoder_tensors = &v[4..4 + PER_LAYER * model.encoder.len()];
        for (t, p) in encoder_tensors.chunks_exact(PER_LAYER).zip(&packed.encoder) {
            let dense = |i: usize| Dense { w: t[2 * i], b: t[2 * i + 1], panels: &p[i] };
            residual(order, &mut x, d, (t[8], t[9]), |h| {
                let qkv = linear(helper, h, rows, dense(0));
                linear(helper, &self_attention(&qkv, &lengths, d, heads), rows, dense(1))
            });
            residual(order, &mut x, d, (t[10], t[11]), |h| {
                let mut a = linear(helper, h, rows, dense(2));
                for v in &mut a {
                    *v = v.max(0.0);
                }
                linear(helper, &a, rows, dense(3))
            });
        }
        let x = layer_norm(&x, d, (v[2], v[3]));
        let memory_tensors = &v[4 + PER_LAYER * model.encoder.len()..];
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for (t, p) in memory_tensors.chunks_exact(2).zip(&packed.memory) {
            let kv = linear(helper, &x, rows, Dense { w: t[0], b: t[1], panels: p });
            let (mut k, mut val) = (vec![0f32; lengths.len() * d * width], vec![0f32; lengths.len() * d * width]);
            let mut row = 0;
            for (b, &len) in lengths.iter().enumerate() {
                for j in 0..len {
                    let from = &kv[(row + j) * 2 * d..(row + j + 1) * 2 * d];
                    for head in 0..heads {
                        let at = ((b * heads + head) * width + j) * dh;
                        k[at..at + dh].copy_from_slice(&from[head * dh..(head + 1) * dh]);
                        val[at..at + dh].copy_from_slice(&from[d + head * dh..d + (head + 1) * dh]);
                    }
                }
                row += len;
            }
            keys.push(k);
            values.push(val);
        }
        Ok(Memory { keys, values, lengths: lengths.clone(), width })
    })?
}
