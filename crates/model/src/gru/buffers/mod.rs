//! Greedy decoding and beam search ([`beam`]) on the CPU over plain f32 buffers.
//!
//! Every step runs over buffers made once per call, one column per sentence (or per
//! hypothesis; see [`columns`]), and each product `W X` reads the weight packed once in
//! column panels ([`PackedDecoder`]) for a few columns ([`panels_for`]), else in place
//! through gemm. The output layer's `(rows, N)` logits come in the layout the greedy pick
//! reads ([`ColumnPick`]); a beam search reads them as rows. No tensor is made per step.
//! With one thread per part of the batch there is nothing to share; with a helper thread
//! (a few sentences, a spare core), each step's work is split with it: the helper spins
//! between steps ([`crate::parallel::with_helper`]) and its jobs own what they read (a
//! copy of the state, a shared handle on the packed weights).

mod beam;
mod columns;
mod packed;
mod rows;

use std::ops::Range;
use std::sync::Arc;

use candle_core::Tensor;
use s2s_data::SOS;

use super::attention::Attention;
use super::decoder::{Decoder, Memory};
use crate::decode::{record_greedy_step, Hypothesis};
use crate::error::{expect_dims, ModelError, Result};
use crate::kernels::matmul::{matmul, transpose, View};
use crate::kernels::panels::Panels;
use crate::kernels::ColumnPick;
use crate::parallel::Helper;
use crate::params::Linear;
pub(crate) use beam::beam_search;
pub(crate) use packed::PackedDecoder;
use packed::{PackedLinear, Start};
pub(crate) use rows::greedy_rows;

/// Output rows multiplied at a time before the greedy pick reads them (at 32 sentences,
/// 64 KiB of logits: still in cache; the whole vocabulary's were not).
const OUTPUT_CHUNK: usize = 512;

/// Sentences (columns) from which a product reads its weight in place through gemm rather
/// than from the panels. Measured with `s2s bench --decode-batches 2,4,8,12,16,32` (hidden
/// 256, 5,000 target words, 2 threads, 2026-12-07): the panels decode 1.4–2.5× more
/// sentences/s up to 8 columns a thread, and 0.7–0.8× gemm's at 16.
const GEMM_COLUMNS: usize = 16;

/// Whether a product over `n` columns reads the packed panels.
fn panels_for(n: usize) -> bool {
    n < GEMM_COLUMNS && Panels::fits(n)
}

/// `W x + b` with PyTorch's `(out, in)` weight: from its packed panels for a few columns,
/// else read in place through gemm ([`panels_for`]; a helper's view has no weight in place:
/// it runs only where the panels serve).
#[derive(Clone, Copy)]
struct Affine<'a> {
    w: Option<&'a [f32]>,
    packed: &'a PackedLinear,
    rows: usize,
    cols: usize,
}

impl<'a> Affine<'a> {
    /// The packed layer alone (a helper's jobs).
    fn packed(packed: &'a PackedLinear) -> Self {
        let (rows, cols) = packed.dims();
        Self { w: None, packed, rows, cols }
    }

    /// The packed layer and its weight `w` in place.
    fn in_place(packed: &'a PackedLinear, w: &'a [f32]) -> Self {
        Self { w: Some(w), ..Self::packed(packed) }
    }

    /// `dst = start + W[rows, cols] X` (the bias only if this layer has one).
    ///
    /// # Shapes
    /// `x: (cols.len(), N)` → `dst: (rows.len(), N)`
    fn apply_part(&self, rows: Range<usize>, cols: Range<usize>, x: &[f32], n: usize, dst: &mut [f32], start: Start) {
        let Some(weight) = self.w.filter(|_| !panels_for(n)) else {
            return self.packed.apply_part(rows, cols, x, n, dst, start);
        };
        let accumulate = match (start, &self.packed.bias) {
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
            data: &weight[rows.start * self.cols + cols.start..],
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

/// The output rows `rows` over the state `(H, N)`, chunk by chunk into `chunk`, each chunk
/// picked from while it is still in cache.
fn output_rows(out: &Affine, rows: Range<usize>, state: &[f32], n: usize, chunk: &mut [f32]) -> ColumnPick {
    let mut pick = ColumnPick::new(n);
    for from in rows.clone().step_by(OUTPUT_CHUNK) {
        let to = (from + OUTPUT_CHUNK).min(rows.end);
        let z = &mut chunk[..(to - from) * n];
        out.apply_part(from..to, 0..out.cols, state, n, z, Start::Bias);
        pick.update(z, from);
    }
    pick
}

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

/// What a helper thread's job owns, handed over and back at each step so that no step
/// allocates: its input (a copy of the state or of the embedded tokens), a chunk of
/// output rows, the gate rows it computes, and its pick.
pub(crate) struct HelperWork {
    input: Vec<f32>,
    chunk: Vec<f32>,
    gates: Vec<f32>,
    pick: Option<ColumnPick>,
    /// Logits of the helper's output rows (a beam search's step).
    logits: Vec<f32>,
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

/// The decoder's parameters for greedy decoding: the packed layers, the weights read in
/// place (the embedding, Bahdanau's `va`, and the layers' weights for gemm).
pub(crate) struct BufferDecoder<'a> {
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
    /// the output layer plus the attention side (see [`BufferDecoder::state_side`]).
    helper_rows: usize,
    packed: &'a Arc<PackedDecoder>,
}

/// Runs `f` with `decoder`'s parameters as a [`BufferDecoder`] over `packed`, the same
/// decoder's packed layers (CPU only).
pub(crate) fn with_decoder<'a, R>(
    decoder: &'a Decoder,
    packed: &'a Arc<PackedDecoder>,
    f: impl FnOnce(&BufferDecoder) -> Result<R>,
) -> Result<R> {
    let parts = decoder.parts();
    let mut tensors = vec![parts.embedding, parts.gru[0], parts.gru[2], parts.out.weight()];
    tensors.extend(parts.combine.map(Linear::weight));
    match parts.attention {
        Attention::Location { attn, .. } => tensors.push(attn.weight()),
        Attention::Bahdanau { wa, va, .. } => tensors.extend([wa.weight(), va.weight()]),
        Attention::LuongDot | Attention::LuongGeneral { .. } => {}
    }
    let va_bias = match parts.attention {
        Attention::Bahdanau { va, .. } => va.bias().map(|b| b.flatten_all()?.to_vec1::<f32>()).transpose()?,
        _ => None,
    };
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
        let w_ih = Affine::in_place(&packed.w_ih, next()?);
        let w_hh = Affine::in_place(&packed.w_hh, next()?);
        let out = Affine::in_place(&packed.out, next()?);
        let combine = match &packed.combine {
            Some(c) => Some(Affine::in_place(c, next()?)),
            None => None,
        };
        let layer = || {
            packed.attention.as_ref().ok_or(ModelError::Shape {
                what: "packed attention layer",
                expected: "one".into(),
                got: "none".into(),
            })
        };
        let scores = match parts.attention {
            Attention::Location { .. } => Scores::Location(Affine::in_place(layer()?, next()?)),
            Attention::Bahdanau { .. } => {
                let wa = Affine::in_place(layer()?, next()?);
                let va_bias = va_bias.as_ref().and_then(|b| b.first().copied()).unwrap_or(0.0);
                Scores::Additive { wa, va: next()?, va_bias }
            }
            Attention::LuongDot => Scores::Dot { projected: false },
            Attention::LuongGeneral { .. } => Scores::Dot { projected: true },
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
        f(&BufferDecoder { embedding, e, h, scores, combine, w_ih, w_hh, out, helper_rows, packed })
    })?
}

/// One call's buffers, one column per sentence (or, in a beam search, per hypothesis).
struct Columns {
    /// Columns, source positions, hidden and embedding sizes.
    n: usize,
    s: usize,
    h: usize,
    e: usize,
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
    /// `(OUTPUT_CHUNK, N)` output rows (this thread's side of a step).
    chunks: Vec<f32>,
    /// `(V, N)` the whole output layer's logits (a beam search's step through gemm).
    logit_columns: Vec<f32>,
    /// The helper's buffers while this thread holds them.
    work: Option<HelperWork>,
}

impl Columns {
    /// Keeps the columns `rows` (in this order; a column may repeat) of what carries over
    /// from one step to the next (the state, and unless `same_sources` says that every
    /// kept column reads the same source as the column now in its place, the encoder's
    /// outputs and keys), and sizes the step's other buffers for as many columns.
    ///
    /// # Panics
    /// When a row is not below the number of columns (the caller checks).
    fn select(&mut self, rows: &[u32], same_sources: bool) {
        let n = self.n;
        let gather = |v: &mut Vec<f32>| {
            if let Some(per_row) = v.len().checked_div(n) {
                let mut kept = Vec::with_capacity(per_row * rows.len());
                for col in v.chunks_exact(n) {
                    kept.extend(rows.iter().map(|&r| col[r as usize]));
                }
                *v = kept;
            }
        };
        gather(&mut self.state);
        if !same_sources {
            gather(&mut self.outputs);
            if let Some(keys) = &mut self.keys {
                gather(keys);
            }
        }
        let (m, s, h, e) = (rows.len(), self.s, self.h, self.e);
        self.n = m;
        for (buffer, per_column) in [
            (&mut self.query, h),
            (&mut self.scores, s),
            (&mut self.weights, s),
            (&mut self.used_weights, s),
            (&mut self.joined, e + h),
            (&mut self.combined, h),
            (&mut self.gi, 3 * h),
            (&mut self.gi_context, 3 * h),
            (&mut self.gh, 3 * h),
            (&mut self.chunks, OUTPUT_CHUNK),
        ] {
            buffer.resize(per_column * m, 0.0);
        }
        if let Some(work) = &mut self.work {
            work.chunk.resize(OUTPUT_CHUNK * m, 0.0);
            work.gates.resize(3 * h * m, 0.0);
        }
    }
}

impl BufferDecoder<'_> {
    /// The buffers of one call over `mem`'s sentences, one column each (and the helper's,
    /// with `helped`).
    ///
    /// # Shapes
    /// `mem.outputs: (N, S, H)`, `mem.keys: (N, S, H)`, `h0: (N, H)`, `lengths: (N)`
    fn columns(&self, mem: &Memory, h0: &Tensor, lengths: &[usize], helped: bool) -> Result<Columns> {
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
        let work = helped.then(|| HelperWork {
            input: Vec::with_capacity(self.e.max(h) * n),
            chunk: vec![0.0; OUTPUT_CHUNK * n],
            gates: vec![0.0; 3 * h * n],
            pick: None,
            logits: Vec::new(),
        });
        Ok(Columns {
            n,
            s,
            h,
            e: self.e,
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
            chunks: vec![0.0; OUTPUT_CHUNK * n],
            logit_columns: Vec::new(),
            work,
        })
    }

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
        helper: Option<&Helper<'_, HelperWork>>,
    ) -> Result<Vec<Hypothesis>> {
        let n = lengths.len();
        // The helper's share runs where the panels serve (a helper's view has no weight in
        // place, so it would read the panels whatever the number of columns).
        let helper = helper.filter(|_| panels_for(n));
        let mut c = self.columns(mem, h0, lengths, helper.is_some())?;
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
    /// `W_hh h` and the first [`BufferDecoder::helper_rows`] rows of the output
    /// ([`helper_share`]); without a helper both sides run here.
    fn state_side(
        &self,
        c: &mut Columns,
        lengths: &[usize],
        output: bool,
        next: bool,
        helper: Option<&Helper<'_, HelperWork>>,
    ) -> (Vec<u32>, Vec<f32>) {
        let (n, vocab) = (c.n, self.out.rows);
        let split = if output && helper.is_some() { self.helper_rows } else { 0 };
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
                let packed = Arc::clone(self.packed);
                let (later, mut theirs) = helper.join(caller_side, move || {
                    let layers = (Affine::packed(&packed.out), Affine::packed(&packed.w_hh));
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

    /// The output layer's logits over the state, row-major `(N, V)` into `logits` (a beam
    /// search reads whole rows): from the panels (a helper takes the first half of them)
    /// or, for many columns, through gemm with the weight in place.
    fn logits(&self, c: &mut Columns, helper: Option<&Helper<'_, HelperWork>>, logits: &mut Vec<f32>) {
        let (n, vocab, hidden) = (c.n, self.out.rows, self.out.cols);
        logits.resize(n * vocab, 0.0);
        if helper.is_none() && !panels_for(n) {
            // `W X` with the weight as gemm's left operand (as the greedy steps multiply;
            // gemm would pack the whole weight as a right operand), then transposed.
            let mut columns = std::mem::take(&mut c.logit_columns);
            columns.resize(vocab * n, 0.0);
            self.out.apply(&c.state, n, &mut columns);
            crate::kernels::matmul::transpose_into(logits, &columns, vocab, n);
            c.logit_columns = columns;
            return;
        }
        let Columns { state, work, .. } = c;
        let x = transpose(state, hidden, n);
        let count = self.out.packed.panel_count();
        let (first, second) = match (helper, work.take()) {
            (Some(helper), Some(mut theirs)) => {
                let half = count / 2;
                theirs.input.clear();
                theirs.input.extend_from_slice(&x);
                let packed = Arc::clone(self.packed);
                let here = || self.out.packed.rows_part(&x, n, half..count);
                let (second, mut theirs) = helper.join(here, move || {
                    theirs.logits = packed.out.rows_part(&theirs.input, n, 0..half);
                    theirs
                });
                let first = std::mem::take(&mut theirs.logits);
                *work = Some(theirs);
                (first, second)
            }
            (_, theirs) => {
                *work = theirs;
                (Vec::new(), self.out.packed.rows_part(&x, n, 0..count))
            }
        };
        let split = first.len() / n.max(1);
        if split == 0 {
            logits.copy_from_slice(&second);
            return;
        }
        let parts = first.chunks_exact(split).zip(second.chunks_exact(vocab - split));
        for (row, (a, b)) in logits.chunks_exact_mut(vocab).zip(parts) {
            row[..split].copy_from_slice(a);
            row[split..].copy_from_slice(b);
        }
    }

    /// What needs the previous tokens: their embedding, the rest of the GRU input (for
    /// the location attention, its attention and `relu(attn_combine(..))` first), and the
    /// GRU update of `c.state`.
    fn token_side(
        &self,
        c: &mut Columns,
        prev: &[u32],
        lengths: &[usize],
        helper: Option<&Helper<'_, HelperWork>>,
    ) -> Result<()> {
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
            work,
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
                match (helper, work.take()) {
                    (Some(helper), Some(mut theirs)) => {
                        let (first, second) = gi.split_at_mut(half * n);
                        theirs.input.clear();
                        theirs.input.extend_from_slice(embedded);
                        let packed = Arc::clone(self.packed);
                        let here = || self.w_ih.apply_part(0..half, 0..e, embedded, n, first, Start::Bias);
                        let ((), theirs) = helper.join(here, move || {
                            let gates = &mut theirs.gates[..(rows - half) * n];
                            packed.w_ih.apply_part(half..rows, 0..e, &theirs.input, n, gates, Start::Bias);
                            theirs
                        });
                        second.copy_from_slice(&theirs.gates[..(rows - half) * n]);
                        *work = Some(theirs);
                    }
                    _ => self.w_ih.apply_part(0..rows, 0..e, embedded, n, gi, Start::Bias),
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
