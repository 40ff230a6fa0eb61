//! One decoding call's buffers, one column per sentence or hypothesis.

use super::affine::OUTPUT_CHUNK;
use super::helper_work::HelperWork;

/// One call's buffers, one column per sentence (or, in a beam search, per hypothesis).
pub(super) struct Columns {
    /// Columns, source positions, hidden and embedding sizes.
    pub(super) n: usize,
    pub(super) s: usize,
    pub(super) h: usize,
    pub(super) e: usize,
    /// `(S, H, N)` encoder outputs and, for the attentions that have them, keys.
    pub(super) outputs: Vec<f32>,
    pub(super) keys: Option<Vec<f32>>,
    /// `(H, N)` decoder state.
    pub(super) state: Vec<f32>,
    /// `(H, N)` Bahdanau's query `wa h`.
    pub(super) query: Vec<f32>,
    /// `(S, N)`: scores and weights of the attention being prepared, and the weights of
    /// the step whose state was last computed (what the hypotheses record).
    pub(super) scores: Vec<f32>,
    pub(super) weights: Vec<f32>,
    pub(super) used_weights: Vec<f32>,
    /// `(E + H, N)`: embedded previous tokens, then the attention context.
    pub(super) joined: Vec<f32>,
    /// `(H, N)` the location attention's GRU input `relu(attn_combine(joined))`.
    pub(super) combined: Vec<f32>,
    /// `(3H, N)` gate pre-activations: input side (two parts) and hidden side.
    pub(super) gi: Vec<f32>,
    pub(super) gi_context: Vec<f32>,
    pub(super) gh: Vec<f32>,
    /// `(OUTPUT_CHUNK, N)` output rows (this thread's side of a step).
    pub(super) chunks: Vec<f32>,
    /// `(V, N)` the whole output layer's logits (a beam search's step through gemm).
    pub(super) logit_columns: Vec<f32>,
    /// The helper's buffers while this thread holds them.
    pub(super) work: Option<HelperWork>,
}

impl Columns {
    /// Keeps the columns `rows` (in this order; a column may repeat) of what carries over
    /// from one step to the next (the state, and unless `same_sources` says that every
    /// kept column reads the same source as the column now in its place, the encoder's
    /// outputs and keys), and sizes the step's other buffers for as many columns.
    ///
    /// # Panics
    /// When a row is not below the number of columns (the caller checks).
    pub(super) fn select(&mut self, rows: &[u32], same_sources: bool) {
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
