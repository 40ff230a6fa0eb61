//! Beam search with the GRU decoder: its state over the hypotheses alive.

use candle_core::{Tensor, D};

use super::decoder::{Decoder, Memory};
use crate::decode::{BeamSearch, BeamState, Hypothesis, StepRows};
use crate::error::{expect_dims, Result};

/// The GRU decoder's state: one hidden state per row over a one-row memory.
struct GruBeam<'a> {
    decoder: Decoder,
    mem: &'a Memory,
    h: Tensor,
    /// The last step's new states, before selection.
    stepped: Option<Tensor>,
}

impl BeamState for GruBeam<'_> {
    fn step(&mut self, last: &[u32]) -> Result<StepRows> {
        let rows_mem = self.mem.repeat_row(0, last.len())?;
        let prev = Tensor::new(last, self.h.device())?;
        let (h_new, w) = self.decoder.step(&prev, &self.h, &rows_mem, None)?;
        let h_new = h_new.detach();
        let logp = candle_nn::ops::log_softmax(&self.decoder.logits(&h_new)?, D::Minus1)?.to_vec2()?;
        self.stepped = Some(h_new);
        Ok((logp, w.to_vec2()?))
    }

    fn select(&mut self, rows: &[u32]) -> Result<()> {
        if let Some(h) = &self.stepped {
            self.h = h.index_select(&Tensor::new(rows, h.device())?, 0)?;
        }
        Ok(())
    }
}

/// Searches from the encoded source `mem` (one row) and initial state `h0`; returns up
/// to `search.n_best` hypotheses, best first.
///
/// # Shapes
/// `mem.outputs: (1, S, H)`, `h0: (1, state_size)` (see [`Decoder::initial_state`])
pub(crate) fn beam_search(search: &BeamSearch, decoder: &Decoder, mem: &Memory, h0: Tensor) -> Result<Vec<Hypothesis>> {
    let (_, s, hidden) = mem.outputs.dims3()?;
    expect_dims("encoder outputs", &mem.outputs, &[1, s, hidden])?;
    expect_dims("initial decoder state", &h0, &[1, decoder.state_size()])?;
    search.search(&mut GruBeam { decoder: decoder.detached(), mem, h: h0, stepped: None })
}
