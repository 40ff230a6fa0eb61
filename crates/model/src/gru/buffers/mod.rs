//! Inference on the CPU over plain f32 buffers: encoding ([`encoder`]), greedy decoding
//! and beam search ([`beam`]).
//!
//! Every step runs over buffers made once per call, one column per sentence (or per
//! hypothesis; see [`columns`]), and each product `W X` reads the weight packed once in
//! column panels ([`PackedModel`]) for a few columns ([`panels_for`]), else in place
//! through gemm. The token side of the decoder's input gates is read from a table made
//! with the panels, one row per target word ([`token_gates`]). The output layer's
//! `(rows, N)` logits come in the layout the greedy pick reads ([`ColumnPick`]); a beam
//! search reads them as rows. No tensor is made per step.
//! With one thread per part of the batch there is nothing to share; with a helper thread
//! (a few sentences, a spare core), each step's work is split with it: the helper spins
//! between steps ([`crate::parallel::with_helper`]) and its jobs own what they read (a
//! copy of the state, a shared handle on the packed weights).

mod affine;
mod beam;
mod columns;
mod encoder;
mod helper_work;
mod model;
mod packed;
mod rows;
mod step_buffers;
mod token_gates;

use std::sync::Arc;

use s2s_data::SOS;

use crate::decode::{record_greedy_step, Hypothesis};
use crate::error::{ModelError, Result};
use crate::kernels::ColumnPick;
use crate::parallel::Helper;
use affine::{output_rows, panels_for, Affine, OUTPUT_CHUNK};
pub(crate) use beam::beam_search;
pub(crate) use encoder::EncodedColumns;
use helper_work::HelperWork;
pub(crate) use model::with_model;
pub(crate) use packed::PackedModel;
use packed::{LayerKey, Start};
pub(crate) use rows::greedy_rows;
use step_buffers::Columns;

/// The helper's share of a step's state side: with `output`, the output rows `0..split`
/// picked from; with `next`, the next step's `W_hh h + b_hh` into `gh`.
#[allow(clippy::too_many_arguments)] // one step's inputs and outputs, named
fn helper_share(
    (out, w_hh): (Affine, Affine),
    state: &[f32],
    n: usize,
    split: usize,
    (output, next): (bool, bool),
    chunk: &mut [f32],
    gh: &mut [f32],
) -> ColumnPick {
    let pick = if output { output_rows(&out, 0..split, state, n, chunk) } else { ColumnPick::new(n) };
    if next {
        w_hh.apply(state, n, gh);
    }
    pick
}

/// How the attention scores its source positions.
enum Scores<'a> {
    /// The notebook's location attention: a layer over `[embedded; hidden]`.
    Location(Affine<'a>),
    /// Bahdanau: `va · tanh(keys + wa h) + va_bias`.
    Additive { wa: Affine<'a>, va: &'a [f32], va_bias: f32 },
    /// Luong: `keys · h`, the keys being the encoder outputs (dot) or their projection (general).
    Dot { projected: bool },
}

/// The decoder's parameters for decoding over buffers: the packed layers, the weights read in
/// place (the embedding, Bahdanau's `va`, and the layers' weights for gemm).
pub(crate) struct BufferDecoder<'a> {
    /// `(V, E)`
    embedding: &'a [f32],
    e: usize,
    h: usize,
    scores: Scores<'a>,
    /// The keys' projection of the encoder outputs (Bahdanau's `ua`, Luong general's `w`).
    keys: Option<Affine<'a>>,
    combine: Option<Affine<'a>>,
    w_ih: Affine<'a>,
    w_hh: Affine<'a>,
    out: Affine<'a>,
    /// Output rows computed by the helper thread: with `W_hh h` they balance the rest of
    /// the output layer plus the attention side (see [`BufferDecoder::state_side`]).
    helper_rows: usize,
    packed: &'a Arc<PackedModel>,
}

impl BufferDecoder<'_> {
    /// The buffers of one call over `enc`'s sentences, one column each (and the helper's,
    /// with `helper`, which shares the keys' projection).
    fn columns(&self, enc: &EncodedColumns, helper: Option<&Helper<'_>>) -> Result<Columns> {
        let (n, h, s) = (enc.lengths.len(), self.h, enc.s);
        if enc.outputs.len() != h * s * n || enc.state.len() != h * n {
            return Err(ModelError::Shape {
                what: "encoded sources",
                expected: format!("outputs ({h}, {s}·{n}) and state ({h}, {n})"),
                got: format!("{} and {} values", enc.outputs.len(), enc.state.len()),
            });
        }
        let mut work = helper.is_some().then(|| HelperWork {
            input: Vec::with_capacity(self.e.max(h * s) * n),
            chunk: vec![0.0; OUTPUT_CHUNK * n],
            gates: vec![0.0; 3 * h * n],
            pick: None,
        });
        let keys = match (&self.scores, &self.keys) {
            (Scores::Additive { .. } | Scores::Dot { projected: true }, Some(k)) => {
                let mut keys = vec![0.0; h * s * n];
                k.apply_shared(0..h, &enc.outputs, s * n, &mut keys, Start::Bias, helper, (self.packed, &mut work))?;
                Some(columns::by_position(&keys, h, s, n))
            }
            (Scores::Additive { .. } | Scores::Dot { projected: true }, None) => {
                return Err(ModelError::Shape {
                    what: "attention keys",
                    expected: "a projection".into(),
                    got: "none".into(),
                })
            }
            _ => None,
        };
        Ok(Columns {
            n,
            s,
            h,
            e: self.e,
            outputs: columns::by_position(&enc.outputs, h, s, n),
            keys,
            state: enc.state.clone(),
            query: vec![0.0; h * n],
            scores: vec![0.0; s * n],
            weights: vec![0.0; s * n],
            used_weights: vec![0.0; s * n],
            joined: vec![0.0; (self.e + h) * n],
            combined: vec![0.0; h * n],
            gi: vec![0.0; 3 * h * n],
            gi_context: vec![0.0; 3 * h * n],
            gh: vec![0.0; 3 * h * n],
            chunks: vec![0.0; OUTPUT_CHUNK * n],
            logit_columns: Vec::new(),
            work,
        })
    }

    /// Greedy decoding of encoded sentences for up to `steps` steps (all of them unless
    /// `stop_at_eos`); with a `helper` thread each step's work is shared with it.
    pub fn decode(
        &self,
        enc: &EncodedColumns,
        steps: usize,
        stop_at_eos: bool,
        helper: Option<&Helper<'_>>,
    ) -> Result<Vec<Hypothesis>> {
        let (n, lengths) = (enc.lengths.len(), enc.lengths.as_slice());
        // The helper's share runs where the panels serve (a helper's view has no weight in
        // place, so it would read the panels whatever the number of columns).
        let helper = helper.filter(|_| panels_for(n));
        let mut c = self.columns(enc, helper)?;
        let mut hyps = vec![Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() }; n];
        let mut done = vec![false; n];
        // Each step: the token side (the previous token's embedding, the GRU update), then
        // the state side (the output layer over the new state and, for the next step,
        // what needs only that state); the first step's state side runs before the loop.
        self.state_side(&mut c, lengths, false, steps > 0, helper);
        let mut prev = vec![SOS; n];
        for step in 0..steps {
            self.token_side(&mut c, &prev, lengths)?;
            let (ids, best) = self.state_side(&mut c, lengths, true, step + 1 < steps, helper);
            let weights = &c.used_weights;
            let all_done = record_greedy_step(&mut hyps, &mut done, &ids, &best, |i| {
                (0..lengths[i]).map(|j| weights[j * n + i]).collect()
            });
            if stop_at_eos && all_done {
                break;
            }
            prev = ids;
        }
        Ok(hyps)
    }

    /// What needs only the state `h`: with `output`, the output layer over it and the
    /// greedy pick (ids and log-probabilities; empty without `output`), and with `next`,
    /// the next step's `W_hh h` and (attentions that do not read the embedded token) its
    /// attention weights, context and the context half of `W_ih x`. The helper takes
    /// `W_hh h` and the first [`BufferDecoder::helper_rows`] rows of the output
    /// ([`helper_share`]); without a helper both sides run here.
    fn state_side(
        &self,
        c: &mut Columns,
        lengths: &[usize],
        output: bool,
        next: bool,
        helper: Option<&Helper<'_>>,
    ) -> (Vec<u32>, Vec<f32>) {
        let (n, vocab) = (c.n, self.out.rows);
        // The output rows are picked from in two parts, with a helper or without, so that
        // the log-sum-exp is summed in the same order either way.
        let split = if output { self.helper_rows } else { 0 };
        let Columns { outputs, keys, state, query, scores, weights, joined, gi_context, gh, chunks, work, .. } = c;
        let (state, outputs, keys) = (&*state, &*outputs, keys.as_deref());
        let context = &mut joined[self.e * n..];
        let mut caller_side = || -> ColumnPick {
            let pick = if output { output_rows(&self.out, split..vocab, state, n, chunks) } else { ColumnPick::new(n) };
            if next && self.combine.is_none() {
                let a = Attend { state, outputs, keys, lengths };
                self.attend(&a, &[], query, scores, weights, context);
                let gates = 0..self.w_ih.rows;
                self.w_ih.apply_part(gates, self.e..self.e + self.h, context, n, gi_context, Start::Zero);
            }
            pick
        };
        let (mut pick, later) = match (helper, work.take()) {
            (Some(helper), Some(mut theirs)) => {
                theirs.input.clear();
                theirs.input.extend_from_slice(state);
                let (packed, hidden) = (Arc::clone(self.packed), self.h);
                let (later, mut theirs) = helper.join(caller_side, move || {
                    let d = &packed.decoder;
                    let layers = (Affine::of(&d.out, LayerKey::Out), Affine::of(&d.w_hh, LayerKey::DecoderHh));
                    // The gates are `W_hh h`'s whole (a shared product may have left fewer).
                    theirs.gates.resize(3 * hidden * n, 0.0);
                    let (flags, chunk, gates) = ((output, next), &mut theirs.chunk, &mut theirs.gates);
                    let pick = helper_share(layers, &theirs.input, n, split, flags, chunk, gates);
                    theirs.pick = Some(pick);
                    theirs
                });
                if next {
                    std::mem::swap(gh, &mut theirs.gates);
                }
                let first = theirs.pick.take().unwrap_or_else(|| ColumnPick::new(n));
                *work = Some(theirs);
                (first, later)
            }
            _ => {
                let later = caller_side();
                let layers = (self.out, self.w_hh);
                (helper_share(layers, state, n, split, (output, next), chunks, gh), later)
            }
        };
        if !output {
            return (Vec::new(), Vec::new());
        }
        pick.merge(&later);
        pick.finish()
    }

    /// What needs the previous tokens: the GRU's input gates (their token side read from
    /// `token_gates`, one row per column; for the location attention, the embedded tokens'
    /// attention, `relu(attn_combine(..))` and `W_ih` over it), and the GRU update of
    /// `c.state`.
    fn token_side(&self, c: &mut Columns, prev: &[u32], lengths: &[usize]) -> Result<()> {
        let (n, e) = (c.n, self.e);
        let Columns {
            outputs,
            keys,
            state,
            query,
            scores,
            weights,
            used_weights,
            joined,
            combined,
            gi,
            gi_context,
            gh,
            ..
        } = c;
        let (embedded, context) = joined.split_at_mut(e * n);
        let unknown = || ModelError::Shape {
            what: "previous tokens",
            expected: "ids inside the target vocabulary".into(),
            got: format!("{prev:?}"),
        };
        match &self.combine {
            None => {
                // `gi = token_gates[prev] + gi_context`, column by column.
                let table = self.packed.decoder.token_gates.as_ref().ok_or(ModelError::Shape {
                    what: "token side of the input gates",
                    expected: "a table".into(),
                    got: "none".into(),
                })?;
                let w_ih = &self.packed.decoder.w_ih;
                let gates = 0..w_ih.dims().0;
                let product = |x: &[f32], m, y: &mut [f32]| w_ih.apply_part(gates.clone(), 0..e, x, m, y, Start::Bias);
                table.fill(prev, self.embedding, e, product).ok_or_else(unknown)?;
                for (j, &id) in prev.iter().enumerate() {
                    let row = table.row(id).ok_or_else(unknown)?;
                    for (r, &v) in row.iter().enumerate() {
                        gi[r * n + j] = v + gi_context[r * n + j];
                    }
                }
            }
            Some(combine) => {
                columns::embed(self.embedding, e, prev, embedded).ok_or_else(unknown)?;
                let a = Attend { state, outputs, keys: keys.as_deref(), lengths };
                self.attend(&a, embedded, query, scores, weights, context);
                let all = 0..combine.rows;
                combine.apply_part(all.clone(), 0..e, embedded, n, combined, Start::Bias);
                combine.apply_part(all, e..e + self.h, context, n, combined, Start::Add);
                combined.iter_mut().for_each(|x| *x = x.max(0.0));
                self.w_ih.apply(combined, n, gi);
            }
        }
        used_weights.copy_from_slice(weights);
        columns::gru_update(gi, gh, state);
        Ok(())
    }

    /// Attention weights over the source positions from `a.state` (and, for the location
    /// attention, the embedded tokens), and the context they give.
    ///
    /// # Shapes
    /// `embedded: (E, N)` → `weights: (S, N)`, `context: (H, N)`
    fn attend(
        &self,
        a: &Attend,
        embedded: &[f32],
        query: &mut [f32],
        scores: &mut [f32],
        weights: &mut [f32],
        context: &mut [f32],
    ) {
        let n = a.lengths.len();
        let s = scores.len() / n.max(1);
        let (e, h) = (self.e, self.h);
        match &self.scores {
            Scores::Location(attn) => {
                attn.apply_part(0..s, 0..e, embedded, n, scores, Start::Bias);
                attn.apply_part(0..s, e..e + h, a.state, n, scores, Start::Add);
            }
            Scores::Additive { wa, va, va_bias } => {
                wa.apply(a.state, n, query);
                columns::additive_scores(a.keys.unwrap_or(&[]), query, va, *va_bias, n, scores);
            }
            Scores::Dot { projected } => {
                let keys = if *projected { a.keys.unwrap_or(&[]) } else { a.outputs };
                columns::dot_scores(keys, a.state, n, scores);
            }
        }
        columns::masked_softmax(scores, a.lengths, weights);
        columns::context(weights, a.outputs, n, context);
    }
}

/// What the attention reads: the state it queries with and the encoder's columns.
struct Attend<'c> {
    state: &'c [f32],
    outputs: &'c [f32],
    keys: Option<&'c [f32]>,
    lengths: &'c [usize],
}
