//! The token side of the decoder GRU's input gates, one row per target word, made the first
//! time a step reads the word (without `attn_combine`, where the GRU reads the embedded
//! token directly).

use std::sync::OnceLock;

use crate::kernels::matmul::transpose_into;

/// Words whose rows are multiplied together, at most, when a step finds them missing.
const WORDS: usize = 64;

/// `(V, 3H)`: row `v` is `W_ih[:, ..E] emb(v) + b_ih`, computed from the panels as a step
/// would compute it (the same sums in the same order, so the same values), once per word
/// instead of at every step: a step reads a row instead of the `3H × E` weights. Rows are
/// made when first needed, so a model that decodes a few sentences makes a few rows.
#[derive(Debug)]
pub(crate) struct TokenGates {
    rows: Vec<OnceLock<Box<[f32]>>>,
    /// `3H`
    gates: usize,
}

impl TokenGates {
    pub(super) fn new(words: usize, gates: usize) -> Self {
        Self { rows: (0..words).map(|_| OnceLock::new()).collect(), gates }
    }

    /// Makes the rows of `ids` that are missing from the embedding `(V, E)` and `product`,
    /// which writes `W_ih[:, ..E] X + b_ih` `(3H, m)` for `m` embedded words `X: (E, m)`
    /// (the step's own product); `None` if an id is outside the vocabulary.
    pub(super) fn fill(
        &self,
        ids: &[u32],
        embedding: &[f32],
        e: usize,
        mut product: impl FnMut(&[f32], usize, &mut [f32]),
    ) -> Option<()> {
        let mut missing: Vec<usize> = Vec::new();
        for &id in ids {
            let id = id as usize;
            if self.rows.get(id)?.get().is_none() && !missing.contains(&id) {
                missing.push(id);
            }
        }
        let gates = self.gates;
        let (mut x, mut columns, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        for words in missing.chunks(WORDS) {
            let m = words.len();
            // `(E, m)`: the embedded words as columns.
            rows.clear();
            for &id in words {
                rows.extend_from_slice(embedding.get(id * e..(id + 1) * e)?);
            }
            transpose_into(&mut x, &rows, m, e);
            columns.resize(gates * m, 0.0);
            product(&x, m, &mut columns);
            transpose_into(&mut rows, &columns, gates, m);
            for (&id, row) in words.iter().zip(rows.chunks_exact(gates)) {
                // Another thread may have made it meanwhile: the same values.
                let _ = self.rows[id].set(row.into());
            }
        }
        Some(())
    }

    /// Row `id`, if made.
    pub(super) fn row(&self, id: u32) -> Option<&[f32]> {
        self.rows.get(id as usize)?.get().map(|r| &r[..])
    }
}
