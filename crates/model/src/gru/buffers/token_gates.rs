//! The token side of the decoder GRU's input gates, one row per target word, made the first
//! time a step reads the word (without `attn_combine`, where the GRU reads the embedded
//! token directly).

use std::sync::OnceLock;

use super::packed::{PackedLinear, Start};
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
}

impl TokenGates {
    pub(super) fn new(words: usize) -> Self {
        Self { rows: (0..words).map(|_| OnceLock::new()).collect() }
    }

    /// Makes the rows of `ids` that are missing, from `w_ih`'s panels and the embedding
    /// `(V, E)`; `None` if an id is outside the vocabulary.
    pub(super) fn fill(&self, ids: &[u32], w_ih: &PackedLinear, embedding: &[f32], e: usize) -> Option<()> {
        let mut missing: Vec<usize> = Vec::new();
        for &id in ids {
            let id = id as usize;
            if self.rows.get(id)?.get().is_none() && !missing.contains(&id) {
                missing.push(id);
            }
        }
        let gates = w_ih.dims().0;
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
            w_ih.apply_part(0..gates, 0..e, &x, m, &mut columns, Start::Bias);
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

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// Rows made many words at a time hold exactly what one step's product of one column
    /// gives (bit for bit), and ids outside the vocabulary are refused.
    #[test]
    fn rows_equal_a_steps_product_bit_for_bit() {
        let (words, e, gates) = (150, 7, 130);
        let value = |i: usize, c: f32| ((i as f32) * 0.61 + c).sin();
        let w: Vec<f32> = (0..gates * (e + 5)).map(|i| value(i, 0.3)).collect();
        let b: Vec<f32> = (0..gates).map(|i| value(i, 1.1)).collect();
        let embedding: Vec<f32> = (0..words * e).map(|i| value(i, 2.7)).collect();
        let w = Tensor::from_vec(w, (gates, e + 5), &Device::Cpu).expect("weight");
        let b = Tensor::from_vec(b, gates, &Device::Cpu).expect("bias");
        let w_ih = PackedLinear::new(&w, Some(&b)).expect("packed");
        let table = TokenGates::new(words);
        let ids: Vec<u32> = (0..words as u32).rev().chain([3, 3, 140]).collect();
        table.fill(&ids, &w_ih, &embedding, e).expect("ids inside the vocabulary");
        for id in 0..words {
            let mut one = vec![0.0; gates];
            w_ih.apply_part(0..gates, 0..e, &embedding[id * e..(id + 1) * e], 1, &mut one, Start::Bias);
            let row = table.row(id as u32).expect("made");
            assert_eq!(
                row.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "word {id}"
            );
        }
        assert!(table.fill(&[words as u32], &w_ih, &embedding, e).is_none());
        assert!(table.row(words as u32).is_none());
    }
}
