//! Beam search over the buffer decoder: every alive hypothesis of every source is one
//! column of the decoder's buffers, and selecting hypotheses gathers the columns of the
//! state and of the encoder's outputs and keys. A step is the greedy decoder's parts run
//! one after the other (what needs only the state, what needs the last tokens, then the
//! output layer over the new state), since the rows kept are known only after it.

use candle_core::Tensor;

use super::{BufferDecoder, Columns, HelperWork};
use crate::decode::{top_k_log_softmax, BatchState, BeamSearch, Hypothesis, RowStep};
use crate::error::{ModelError, Result};
use crate::gru::decoder::Memory;
use crate::parallel::Helper;

/// The rows of a beam search: the buffers, each column's source and its length, and the
/// last step's logits (a buffer kept between steps).
struct BufferBeams<'d, 'h, 'a> {
    decoder: &'d BufferDecoder<'a>,
    c: Columns,
    sources: Vec<u32>,
    lengths: Vec<usize>,
    helper: Option<&'h Helper<'h, HelperWork>>,
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
        d.token_side(c, last, &self.lengths, self.helper)?;
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

/// Searches from the encoded sources `mem` (one row each, `lengths` long) and initial
/// states `h0`; returns up to `search.n_best` hypotheses per source, best first. With a
/// `helper`, each step's products are shared with it.
///
/// # Shapes
/// `mem.outputs: (B, S, H)`, `h0: (B, H)`, `lengths: (B)`
pub(crate) fn beam_search(
    search: &BeamSearch,
    decoder: &BufferDecoder,
    mem: &Memory,
    lengths: &[usize],
    h0: &Tensor,
    helper: Option<&Helper<'_, HelperWork>>,
) -> Result<Vec<Vec<Hypothesis>>> {
    let c = decoder.columns(mem, h0, lengths, helper.is_some())?;
    let sources = (0..lengths.len() as u32).collect();
    let mut state = BufferBeams { decoder, c, sources, lengths: lengths.to_vec(), helper, logits: Vec::new() };
    search.search_batch(&mut state, lengths.len())
}
