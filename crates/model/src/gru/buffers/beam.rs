//! Beam search over the buffer decoder: every alive hypothesis of every source is one
//! column of the decoder's buffers, and selecting hypotheses gathers the columns of the
//! state and of the encoder's outputs and keys. A step is the greedy decoder's parts run
//! one after the other (what needs only the state, what needs the last tokens, then the
//! output layer over the new state), since the rows kept are known only after it.

use super::{panels_for, BufferDecoder, Columns, EncodedColumns};
use crate::decode::{top_k_log_softmax, BatchState, BeamSearch, Hypothesis, RowStep};
use crate::error::{ModelError, Result};
use crate::kernels::matmul::{transpose, transpose_into};
use crate::parallel::product_all_shared;
use crate::parallel::Helper;

/// The rows of a beam search: the buffers, each column's source and its length, and the
/// last step's logits (a buffer kept between steps).
struct BufferBeams<'d, 'h, 'a> {
    decoder: &'d BufferDecoder<'a>,
    c: Columns,
    sources: Vec<u32>,
    lengths: Vec<usize>,
    helper: Option<&'h Helper<'h>>,
    logits: Vec<f32>,
}

impl BatchState for BufferBeams<'_, '_, '_> {
    fn step(&mut self, last: &[u32], k: usize) -> Result<Vec<RowStep>> {
        if last.len() != self.c.n {
            return Err(ModelError::Shape {
                what: "beam step",
                expected: format!("{} tokens", self.c.n),
                got: last.len().to_string(),
            });
        }
        let (d, c) = (self.decoder, &mut self.c);
        d.state_side(c, &self.lengths, false, true, self.helper);
        d.token_side(c, last, &self.lengths)?;
        d.logits(c, self.helper, &mut self.logits);
        let (n, vocab) = (c.n, d.out.rows);
        let weights = &c.used_weights;
        Ok(self
            .logits
            .chunks_exact(vocab.max(1))
            .take(n)
            .enumerate()
            .map(|(i, z)| RowStep {
                best: top_k_log_softmax(z, k),
                attention: (0..self.lengths[i]).map(|j| weights[j * n + i]).collect(),
            })
            .collect())
    }

    fn select(&mut self, rows: &[u32]) -> Result<()> {
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= self.c.n) {
            return Err(ModelError::Shape {
                what: "selected row",
                expected: format!("below {}", self.c.n),
                got: bad.to_string(),
            });
        }
        let sources: Vec<u32> = rows.iter().map(|&r| self.sources[r as usize]).collect();
        self.lengths = rows.iter().map(|&r| self.lengths[r as usize]).collect();
        self.c.select(rows, sources == self.sources);
        self.sources = sources;
        Ok(())
    }
}

/// Searches from the encoded sources `enc` (their initial states included); returns up
/// to `search.n_best` hypotheses per source, best first. With a `helper`, each step's
/// products are shared with it.
pub(crate) fn beam_search(
    search: &BeamSearch,
    decoder: &BufferDecoder,
    enc: &EncodedColumns,
    helper: Option<&Helper<'_>>,
) -> Result<Vec<Vec<Hypothesis>>> {
    let lengths = enc.lengths.as_slice();
    // The helper's share runs where the panels serve (a helper's view has no weight in
    // place), as greedy decoding's does: up to a beam of every source's hypotheses.
    let helper = helper.filter(|_| panels_for(search.beam_size.max(1) * lengths.len()));
    let c = decoder.columns(enc, helper)?;
    let sources = (0..lengths.len() as u32).collect();
    let mut state = BufferBeams { decoder, c, sources, lengths: lengths.to_vec(), helper, logits: Vec::new() };
    search.search_batch(&mut state, lengths.len())
}

impl BufferDecoder<'_> {
    /// The output layer's logits over the state, row-major `(N, V)` into `logits` (a beam
    /// search reads whole rows): from the panels (a helper takes half of them,
    /// [`product_all_shared`]) or, for many columns, through gemm with the weight in place.
    fn logits(&self, c: &mut Columns, helper: Option<&Helper<'_>>, logits: &mut Vec<f32>) {
        let (n, vocab, hidden) = (c.n, self.out.rows, self.out.cols);
        logits.resize(n * vocab, 0.0);
        if helper.is_none() && !panels_for(n) {
            // `W X` with the weight as gemm's left operand (as the greedy steps multiply;
            // gemm would pack the whole weight as a right operand), then transposed.
            let mut columns = std::mem::take(&mut c.logit_columns);
            columns.resize(vocab * n, 0.0);
            self.out.apply(&c.state, n, &mut columns);
            transpose_into(logits, &columns, vocab, n);
            c.logit_columns = columns;
            return;
        }
        let x = transpose(&c.state, hidden, n);
        product_all_shared(&self.out.packed.panels, helper, logits, &x, n);
        if let Some(b) = &self.out.packed.bias {
            for row in logits.chunks_exact_mut(vocab) {
                row.iter_mut().zip(b).for_each(|(v, &c)| *v += c);
            }
        }
    }
}
