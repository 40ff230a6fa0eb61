//! Beam search with the GRU decoder's candle ops over many sources at once (devices other
//! than the CPU, input feeding, and the reference `buffers::beam_search` is tested
//! against): every alive hypothesis of every source is one row of the decoder's state,
//! and each row reads its own source's memory row.

use candle_core::Tensor;

use super::decoder::{Decoder, Memory};
use crate::decode::{top_k_log_softmax, BatchState, BeamSearch, Hypothesis, RowStep};
use crate::error::{expect_dims, Result};

/// The GRU decoder's state: one hidden state per row, each row a hypothesis of one of the
/// encoded sources.
struct GruBeams<'a> {
    decoder: Decoder,
    mem: &'a Memory,
    lengths: &'a [usize],
    h: Tensor,
    /// Source of each row.
    sources: Vec<u32>,
    /// The last step's new states and sources, before selection.
    stepped: Option<(Tensor, Vec<u32>)>,
}

impl BatchState for GruBeams<'_> {
    fn step(&mut self, last: &[u32], k: usize) -> Result<Vec<RowStep>> {
        let device = self.h.device().clone();
        let rows_mem = self.mem.rows(&self.sources)?;
        let prev = Tensor::new(last, &device)?;
        let (h_new, w) = self.decoder.step(&prev, &self.h, &rows_mem, None)?;
        let h_new = h_new.detach();
        let logits: Vec<Vec<f32>> = self.decoder.logits(&h_new)?.to_vec2()?;
        let w: Vec<Vec<f32>> = w.to_vec2()?;
        let steps = logits
            .iter()
            .zip(w)
            .zip(&self.sources)
            .map(|((z, mut attention), &s)| {
                attention.truncate(self.lengths[s as usize]);
                RowStep { best: top_k_log_softmax(z, k), attention }
            })
            .collect();
        self.stepped = Some((h_new, self.sources.clone()));
        Ok(steps)
    }

    fn select(&mut self, rows: &[u32]) -> Result<()> {
        if let Some((h, sources)) = &self.stepped {
            self.h = h.index_select(&Tensor::new(rows, h.device())?, 0)?;
            self.sources = rows.iter().map(|&r| sources[r as usize]).collect();
        }
        Ok(())
    }
}

/// Searches from the encoded sources `mem` (one row each, `lengths` long) and initial
/// states `h0`; returns up to `search.n_best` hypotheses per source, best first.
///
/// # Shapes
/// `mem.outputs: (B, S, H)`, `h0: (B, state_size)` (see [`Decoder::initial_state`])
pub(crate) fn beam_search(
    search: &BeamSearch,
    decoder: &Decoder,
    mem: &Memory,
    lengths: &[usize],
    h0: Tensor,
) -> Result<Vec<Vec<Hypothesis>>> {
    let (b, s, hidden) = mem.outputs.dims3()?;
    expect_dims("encoder outputs", &mem.outputs, &[lengths.len(), s, hidden])?;
    expect_dims("initial decoder state", &h0, &[b, decoder.state_size()])?;
    let mut state =
        GruBeams { decoder: decoder.detached(), mem, lengths, h: h0, sources: (0..b as u32).collect(), stepped: None };
    search.search_batch(&mut state, b)
}
