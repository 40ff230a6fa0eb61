//! The encoder over plain buffers on the CPU (inference): the sources embedded as columns,
//! each layer's input projection one product over every position, then the recurrence
//! one `W_hh h` per position, with no tensor made. With a helper thread, a bidirectional
//! layer of a few columns runs its backward direction there whole; otherwise each product
//! that the panels serve shares its rows with it ([`Affine::apply_shared`]). Either way
//! the sums are those of a call without a helper.

use std::sync::Arc;

use super::affine::{panels_for, Affine};
use super::columns;
use super::helper_work::HelperWork;
use super::packed::{LayerKey, PackedModel, Start};
use crate::decode::Padded;
use crate::error::{ModelError, Result};
use crate::parallel::Helper;

/// Encoded sources in the columns the decoder reads.
pub(crate) struct EncodedColumns {
    /// `(H, S·N)`: the last layer's outputs (directions summed), the column of sentence `j`
    /// at position `t` being `t·N + j`; zero at padded positions.
    pub(super) outputs: Vec<f32>,
    /// `(H, N)` the initial decoder state.
    pub(super) state: Vec<f32>,
    /// Each source's length; the longest is `s`.
    pub(super) lengths: Vec<usize>,
    pub(super) s: usize,
}

/// The encoder's parameters for encoding over buffers (see [`super::with_model`]).
pub(crate) struct BufferEncoder<'a> {
    /// `(V, E)`
    pub(super) embedding: &'a [f32],
    pub(super) e: usize,
    pub(super) h: usize,
    /// 1 or 2
    pub(super) directions: usize,
    /// `(W_ih, W_hh)` of every layer's directions, `layer · D + direction`.
    pub(super) layers: Vec<(Affine<'a>, Affine<'a>)>,
    /// `tanh(bridge(final states))` is the decoder's initial state, else the final
    /// states summed.
    pub(super) bridge: Option<Affine<'a>>,
    pub(super) packed: &'a Arc<PackedModel>,
}

impl BufferEncoder<'_> {
    /// Encodes `sources` (padded to the longest); with a `helper` thread (a few sentences)
    /// each layer's work is shared with it.
    pub(crate) fn encode(&self, sources: &[Vec<u32>], helper: Option<&Helper<'_>>) -> Result<EncodedColumns> {
        let Padded { grid, lengths, width: s } = Padded::new(sources);
        let (n, e, h) = (lengths.len(), self.e, self.h);
        let cols = s * n;
        let helper = helper.filter(|_| panels_for(n));
        let ids: Vec<u32> = (0..cols).map(|c| grid[(c % n) * s + c / n]).collect();
        let mut x = vec![0.0; e * cols];
        columns::embed(self.embedding, e, &ids, &mut x).ok_or(ModelError::Shape {
            what: "source ids",
            expected: "ids inside the source vocabulary".into(),
            got: format!("{sources:?}"),
        })?;
        let mut work = helper.map(|_| HelperWork::default());
        let mut finals = Vec::new();
        for (layer, directions) in self.layers.chunks(self.directions).enumerate() {
            let sequence = Sequence { x: &x, lengths: &lengths, s };
            // The backward direction goes to the helper whole only where the panels serve
            // its products on both threads (a helper's job reads no weight in place), so
            // that a helper changes no sum.
            let whole = helper.filter(|_| panels_for(cols));
            // Each direction's outputs and final state, forward first.
            let runs = match (directions, whole) {
                ([forward, _], Some(helper)) => {
                    let backward = layer * 2 + 1;
                    let (theirs, model) = ((x.clone(), lengths.clone()), Arc::clone(self.packed));
                    let here = || sequence.run(*forward, false, None);
                    let (fwd, bwd) = helper.join(here, move || {
                        let gru = (
                            Affine::packed(&model, LayerKey::EncoderIh(backward))?,
                            Affine::packed(&model, LayerKey::EncoderHh(backward))?,
                        );
                        Sequence { x: &theirs.0, lengths: &theirs.1, s }.run(gru, true, None)
                    });
                    vec![fwd?, bwd?]
                }
                _ => {
                    let mut runs = Vec::with_capacity(directions.len());
                    for (d, gru) in directions.iter().enumerate() {
                        let sharing = (self.packed, &mut work);
                        runs.push(sequence.run(*gru, d == 1, helper.map(|helper| (helper, sharing)))?);
                    }
                    runs
                }
            };
            // Directions summed from zero: the forward's values exactly, then the backward's.
            let (mut out, mut states) = (vec![0.0; h * cols], Vec::with_capacity(runs.len()));
            for (o, state) in runs {
                out.iter_mut().zip(&o).for_each(|(a, &b)| *a += b);
                states.push(state);
            }
            x = out;
            finals = states;
        }
        let state = match (&self.bridge, finals.as_slice()) {
            (Some(bridge), _) => {
                // `[forward; backward]`: (D·H, N) is the blocks one after the other.
                let joined = finals.concat();
                let mut h0 = vec![0.0; h * n];
                bridge.apply(&joined, n, &mut h0);
                h0.iter_mut().for_each(|v| *v = v.tanh());
                h0
            }
            (None, [first, rest @ ..]) => {
                let mut sum = first.clone();
                for other in rest {
                    sum.iter_mut().zip(other).for_each(|(a, &b)| *a += b);
                }
                sum
            }
            (None, []) => vec![0.0; h * n],
        };
        Ok(EncodedColumns { outputs: x, state, lengths, s })
    }
}

/// One layer's input: `x: (I, S·N)` over sentences `lengths` long, padded to `s`.
struct Sequence<'x> {
    x: &'x [f32],
    lengths: &'x [usize],
    s: usize,
}

/// A helper thread, the packed model its jobs read, and the buffers they own.
type Sharing<'a, 'h> = (&'a Helper<'h>, (&'a Arc<PackedModel>, &'a mut Option<HelperWork>));

impl Sequence<'_> {
    /// One direction of a GRU layer over every position from a zero state; padded
    /// positions leave the state unchanged and output zeros (what packed sequences give
    /// in PyTorch). Returns the outputs `(H, S·N)` and the final state `(H, N)`.
    fn run(
        &self,
        (w_ih, w_hh): (Affine, Affine),
        reverse: bool,
        mut sharing: Option<Sharing>,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let (n, s) = (self.lengths.len(), self.s);
        let (cols, h, gates) = (s * n, w_hh.cols, w_hh.rows);
        if self.x.len() != w_ih.cols * cols || gates != 3 * h || w_ih.rows != gates {
            return Err(ModelError::Shape {
                what: "encoder GRU layer",
                expected: format!("input ({}, {cols}), weights (3H, I) and (3H, H)", w_ih.cols),
                got: format!("{} input values, W_hh ({gates}, {h})", self.x.len()),
            });
        }
        let mut gi = vec![0.0; gates * cols];
        let mut apply = |a: &Affine, x: &[f32], m: usize, dst: &mut [f32]| match &mut sharing {
            Some((helper, (model, work))) => {
                a.apply_shared(0..a.cols, x, m, dst, Start::Bias, Some(helper), (model, work))
            }
            None => {
                a.apply(x, m, dst);
                Ok(())
            }
        };
        apply(&w_ih, self.x, cols, &mut gi)?;
        let mut out = vec![0.0; h * cols];
        let mut state = vec![0.0; h * n];
        let (mut gi_t, mut gh, mut kept) = (vec![0.0; gates * n], vec![0.0; gates * n], vec![0.0; h * n]);
        for step in 0..s {
            let t = if reverse { s - 1 - step } else { step };
            for (row, from) in gi_t.chunks_exact_mut(n).zip(gi.chunks_exact(cols)) {
                row.copy_from_slice(&from[t * n..(t + 1) * n]);
            }
            apply(&w_hh, &state, n, &mut gh)?;
            let padded = self.lengths.iter().any(|&len| t >= len);
            if padded {
                kept.copy_from_slice(&state);
            }
            columns::gru_update(&gi_t, &gh, &mut state);
            for (r, (row, kept)) in state.chunks_exact_mut(n).zip(kept.chunks_exact(n)).enumerate() {
                let to = &mut out[r * cols + t * n..r * cols + (t + 1) * n];
                if padded {
                    for (j, &len) in self.lengths.iter().enumerate() {
                        if t >= len {
                            row[j] = kept[j];
                            to[j] = 0.0;
                        } else {
                            to[j] = row[j];
                        }
                    }
                } else {
                    to.copy_from_slice(row);
                }
            }
        }
        Ok((out, state))
    }
}
