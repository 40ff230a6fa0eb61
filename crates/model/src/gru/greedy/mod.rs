//! Greedy decoding on the CPU over plain f32 buffers.
//!
//! The decoder's parameters are read in place (no copies), and every step runs over
//! buffers made once per call, one column per sentence (see [`columns`]): each product
//! is `W X` with the weight as gemm's left operand in its own `(out, in)` layout, so
//! nothing is packed or transposed, and the output layer's `(rows, N)` logits come in
//! the layout the greedy pick reads ([`ColumnPick`]). No tensor is made per step. With
//! one thread per part of the batch there is nothing to share; with a helper thread (a
//! few sentences, a spare core), each step's products are split with it by weight rows.

mod columns;
mod rows;

use std::ops::Range;

use candle_core::Tensor;
use rayon::ThreadPool;
use s2s_data::SOS;

use super::attention::Attention;
use super::decoder::{Decoder, Memory};
use crate::decode::{record_greedy_step, Hypothesis};
use crate::error::{expect_dims, ModelError, Result};
use crate::kernels::matmul::{matmul, transpose, View};
use crate::kernels::ColumnPick;
use crate::params::Linear;
pub(crate) use rows::greedy_rows;

/// Output rows multiplied at a time before the greedy pick reads them (at 32 sentences,
/// 64 KiB of logits: still in cache; the whole vocabulary's were not).
const OUTPUT_CHUNK: usize = 512;

/// What a product's destination holds before `W X` is added.
#[derive(Clone, Copy, PartialEq)]
enum Start {
    /// The bias, one value per row.
    Bias,
    /// Nothing: the product overwrites it.
    Zero,
    /// A partial product over other input columns.
    Add,
}

/// `W x + b` with PyTorch's `(out, in)` weight, read in place.
#[derive(Clone, Copy)]
struct Affine<'a> {
    w: &'a [f32],
    b: Option<&'a [f32]>,
    rows: usize,
    cols: usize,
}

impl<'a> Affine<'a> {
    /// `dst = start + W[rows, cols] X` (the bias only if this layer has one).
    ///
    /// # Shapes
    /// `x: (cols.len(), N)` → `dst: (rows.len(), N)`
    fn apply_part(&self, rows: Range<usize>, cols: Range<usize>, x: &[f32], n: usize, dst: &mut [f32], start: Start) {
        let accumulate = match (start, self.b) {
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
            data: &self.w[rows.start * self.cols + cols.start..],
            rows: rows.len(),
            cols: cols.len(),
            rs: self.cols,
            cs: 1,
        };
        matmul(dst, w, View::rows(x, cols.len(), n), accumulate);
    }

    /// `dst = W X + b`
    fn apply(&self, x: &[f32], n: usize, dst: &mut [f32]) {
        self.apply_part(0..self.rows, 0..self.cols, x, n, dst, Start::Bias);
    }
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

/// The decoder's parameters as host slices, for greedy decoding.
pub(crate) struct GreedyDecoder<'a> {
    /// `(V, E)`
    embedding: &'a [f32],
    e: usize,
    h: usize,
    scores: Scores<'a>,
    combine: Option<Affine<'a>>,
    w_ih: Affine<'a>,
    w_hh: Affine<'a>,
    out: Affine<'a>,
    /// Output rows computed by the helper thread: with `W_hh h` they balance the rest of
    /// the output layer plus the attention side (see [`GreedyDecoder::state_side`]).
    helper_rows: usize,
}

/// Runs `f` with `decoder`'s parameters read in place as a [`GreedyDecoder`] (CPU only).
pub(crate) fn with_greedy_decoder<'a, R>(
    decoder: &'a Decoder,
    f: impl FnOnce(&GreedyDecoder) -> Result<R>,
) -> Result<R> {
    let parts = decoder.parts();
    let mut tensors = vec![parts.embedding];
    tensors.extend(parts.gru);
    let mut layer = |l: &'a Linear| {
        tensors.push(l.weight());
        tensors.extend(l.bias());
    };
    for l in [Some(parts.out), parts.combine].into_iter().flatten() {
        layer(l);
    }
    match parts.attention {
        Attention::Location { attn, .. } => layer(attn),
        Attention::Bahdanau { wa, va, .. } => {
            layer(wa);
            layer(va);
        }
        Attention::LuongDot | Attention::LuongGeneral { .. } => {}
    }
    crate::kernels::with_f32_all(&tensors, |values| {
        // The same walk as above, over the values.
        let mut values = values.iter().copied();
        let mut next = || {
            values.next().ok_or(ModelError::Shape {
                what: "decoder parameters",
                expected: "one value slice per tensor".into(),
                got: "fewer".into(),
            })
        };
        let embedding = next()?;
        let [w_ih, b_ih, w_hh, b_hh] = [next()?, next()?, next()?, next()?];
        let mut affine = |l: &Linear| -> Result<Affine> {
            let (rows, cols) = l.weight().dims2()?;
            Ok(Affine { w: next()?, b: l.bias().map(|_| next()).transpose()?, rows, cols })
        };
        let out = affine(parts.out)?;
        let combine = parts.combine.map(&mut affine).transpose()?;
        let scores = match parts.attention {
            Attention::Location { attn, .. } => Scores::Location(affine(attn)?),
            Attention::Bahdanau { wa, va, .. } => {
                let (wa, va) = (affine(wa)?, affine(va)?);
                Scores::Additive { wa, va: va.w, va_bias: va.b.and_then(|b| b.first().copied()).unwrap_or(0.0) }
            }
            Attention::LuongDot => Scores::Dot { projected: false },
            Attention::LuongGeneral { .. } => Scores::Dot { projected: true },
        };
        let (gates, input) = parts.gru[0].dims2()?;
        let (e, h) = (parts.embedding.dim(1)?, gates / 3);
        let w_ih = Affine { w: w_ih, b: Some(b_ih), rows: gates, cols: input };
        let w_hh = Affine { w: w_hh, b: Some(b_hh), rows: gates, cols: h };
        // Weight elements read on each side besides the output rows (the attention's
        // element-wise work is small next to them).
        let caller_extra = match (&scores, combine) {
            (_, Some(_)) => 0,
            (Scores::Additive { wa, .. }, None) => wa.rows * wa.cols + gates * h,
            _ => gates * h,
        };
        let balanced = (out.rows * h + caller_extra).saturating_sub(gates * h) / (2 * h.max(1));
        let helper_rows = balanced.min(out.rows);
        f(&GreedyDecoder { embedding, e, h, scores, combine, w_ih, w_hh, out, helper_rows })
    })?
}

/// One call's buffers, one column per sentence.
struct Columns {
    n: usize,
    /// `(S, H, N)` encoder outputs and, for the attentions that have them, keys.
    outputs: Vec<f32>,
    keys: Option<Vec<f32>>,
    /// `(H, N)` decoder state.
    state: Vec<f32>,
    /// `(H, N)` Bahdanau's query `wa h`.
    query: Vec<f32>,
    /// `(S, N)`: scores and weights of the attention being prepared, and the weights of
    /// the step whose state was last computed (what the hypotheses record).
    scores: Vec<f32>,
    weights: Vec<f32>,
    used_weights: Vec<f32>,
    /// `(E + H, N)`: embedded previous tokens, then the attention context.
    joined: Vec<f32>,
    /// `(H, N)` the location attention's GRU input `relu(attn_combine(joined))`.
    combined: Vec<f32>,
    /// `(3H, N)` gate pre-activations: input side (two parts) and hidden side.
    gi: Vec<f32>,
    gi_context: Vec<f32>,
    gh: Vec<f32>,
    /// Two `(OUTPUT_CHUNK, N)` buffers of output rows, one per side of a step.
    chunks: Vec<f32>,
}

impl GreedyDecoder<'_> {
    /// Greedy decoding of encoded sentences for up to `steps` steps (all of them unless
    /// `stop_at_eos`); with a `helper` thread each step's work is shared with it.
    ///
    /// # Shapes
    /// `mem.outputs: (N, S, H)`, `mem.keys: (N, S, H)`, `h0: (N, H)`, `lengths: (N)`
    pub fn decode(
        &self,
        mem: &Memory,
        h0: &Tensor,
        lengths: &[usize],
        steps: usize,
        stop_at_eos: bool,
        helper: Option<&ThreadPool>,
    ) -> Result<Vec<Hypothesis>> {
        let (n, h) = (lengths.len(), self.h);
        let (_, s, _) = mem.outputs.dims3()?;
        expect_dims("encoder outputs", &mem.outputs, &[n, s, h])?;
        expect_dims("initial decoder state", h0, &[n, h])?;
        let columns = |t: &Tensor| -> Result<Vec<f32>> {
            let (rows, cols) = (t.dim(0)?, t.elem_count() / n.max(1));
            Ok(crate::kernels::with_f32(t, |x| transpose(x, rows, cols))?)
        };
        let keys = match (&self.scores, &mem.keys) {
            (Scores::Additive { .. } | Scores::Dot { projected: true }, Some(k)) => {
                expect_dims("attention keys", k, &[n, s, h])?;
                Some(columns(k)?)
            }
            (Scores::Additive { .. } | Scores::Dot { projected: true }, None) => {
                return Err(ModelError::Shape {
                    what: "attention keys",
                    expected: "precomputed".into(),
                    got: "none".into(),
                })
            }
            _ => None,
        };
        let mut c = Columns {
            n,
            outputs: columns(&mem.outputs)?,
            keys,
            state: columns(h0)?,
            query: vec![0.0; h * n],
            scores: vec![0.0; s * n],
            weights: vec![0.0; s * n],
            used_weights: vec![0.0; s * n],
            joined: vec![0.0; (self.e + h) * n],
            combined: vec![0.0; h * n],
            gi: vec![0.0; 3 * h * n],
            gi_context: vec![0.0; 3 * h * n],
            gh: vec![0.0; 3 * h * n],
            chunks: vec![0.0; 2 * OUTPUT_CHUNK * n],
        };
        let mut hyps = vec![Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() }; n];
        let mut done = vec![false; n];
        // Each step: the token side (the previous token's embedding, the GRU update), then
        // the state side (the output layer over the new state and, for the next step,
        // what needs only that state); the first step's state side runs before the loop.
        self.state_side(&mut c, lengths, false, steps > 0, helper);
        let mut prev = vec![SOS; n];
        for step in 0..steps {
            self.token_side(&mut c, &prev, lengths, helper)?;
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
    /// `W_hh h` and the first [`GreedyDecoder::helper_rows`] rows of the output; without a
    /// helper both sides run here. The output rows are multiplied a chunk at a time, each
    /// chunk picked from while it is still in cache.
    fn state_side(
        &self,
        c: &mut Columns,
        lengths: &[usize],
        output: bool,
        next: bool,
        helper: Option<&ThreadPool>,
    ) -> (Vec<u32>, Vec<f32>) {
        let (n, vocab) = (c.n, self.out.rows);
        let split = if output && helper.is_some() { self.helper_rows } else { 0 };
        let Columns { outputs, keys, state, query, scores, weights, joined, gi_context, gh, chunks, .. } = c;
        let (state, outputs, keys) = (&*state, &*outputs, keys.as_deref());
        let (first_chunk, rest_chunk) = chunks.split_at_mut(OUTPUT_CHUNK * n);
        let context = &mut joined[self.e * n..];
        // The output rows `rows`, chunk by chunk, into a running pick.
        let output_rows = |rows: Range<usize>, chunk: &mut [f32]| -> ColumnPick {
            let mut pick = ColumnPick::new(n);
            if output {
                let all = 0..self.out.cols;
                for from in rows.clone().step_by(OUTPUT_CHUNK) {
                    let to = (from + OUTPUT_CHUNK).min(rows.end);
                    let z = &mut chunk[..(to - from) * n];
                    self.out.apply_part(from..to, all.clone(), state, n, z, Start::Bias);
                    pick.update(z, from);
                }
            }
            pick
        };
        let helper_side = |chunk: &mut [f32], gh: &mut [f32]| -> ColumnPick {
            let pick = output_rows(0..split, chunk);
            if next {
                self.w_hh.apply(state, n, gh);
            }
            pick
        };
        let mut caller_side = |chunk: &mut [f32]| -> ColumnPick {
            let pick = output_rows(split..vocab, chunk);
            if next && self.combine.is_none() {
                let a = Attend { state, outputs, keys, lengths };
                self.attend(&a, &[], query, scores, weights, context);
                let gates = 0..self.w_ih.rows;
                self.w_ih.apply_part(gates, self.e..self.e + self.h, context, n, gi_context, Start::Zero);
            }
            pick
        };
        let (mut pick, later) = match helper {
            Some(pool) => {
                let (mut first, mut later) = (None, None);
                pool.in_place_scope(|scope| {
                    scope.spawn(|_| first = Some(helper_side(first_chunk, gh)));
                    later = Some(caller_side(rest_chunk));
                });
                (first.unwrap_or_else(|| ColumnPick::new(n)), later.unwrap_or_else(|| ColumnPick::new(n)))
            }
            None => (helper_side(first_chunk, gh), caller_side(rest_chunk)),
        };
        if !output {
            return (Vec::new(), Vec::new());
        }
        pick.merge(&later);
        pick.finish()
    }

    /// What needs the previous tokens: their embedding, the rest of the GRU input (for
    /// the location attention, its attention and `relu(attn_combine(..))` first), and the
    /// GRU update of `c.state`.
    fn token_side(&self, c: &mut Columns, prev: &[u32], lengths: &[usize], helper: Option<&ThreadPool>) -> Result<()> {
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
        columns::embed(self.embedding, e, prev, embedded).ok_or(ModelError::Shape {
            what: "previous tokens",
            expected: "ids inside the target vocabulary".into(),
            got: format!("{prev:?}"),
        })?;
        match &self.combine {
            Some(combine) => {
                let a = Attend { state, outputs, keys: keys.as_deref(), lengths };
                self.attend(&a, embedded, query, scores, weights, context);
                let all = 0..combine.rows;
                combine.apply_part(all.clone(), 0..e, embedded, n, combined, Start::Bias);
                combine.apply_part(all, e..e + self.h, context, n, combined, Start::Add);
                combined.iter_mut().for_each(|x| *x = x.max(0.0));
                self.w_ih.apply(combined, n, gi);
            }
            None => {
                // Split by gate rows with the helper: the same products either way.
                let (rows, half) = (self.w_ih.rows, self.w_ih.rows / 2);
                let (first, second) = gi.split_at_mut(half * n);
                let embedded = &*embedded;
                let upper =
                    |second: &mut [f32]| self.w_ih.apply_part(half..rows, 0..e, embedded, n, second, Start::Bias);
                match helper {
                    Some(pool) => pool.in_place_scope(|scope| {
                        scope.spawn(|_| upper(second));
                        self.w_ih.apply_part(0..half, 0..e, embedded, n, first, Start::Bias);
                    }),
                    None => self.w_ih.apply_part(0..rows, 0..e, embedded, n, gi, Start::Bias),
                }
                gi.iter_mut().zip(gi_context.iter()).for_each(|(a, &b)| *a += b);
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
