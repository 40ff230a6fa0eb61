//! Beam search over one encoded source, for any family's decoder state ([`BeamState`]);
//! the search itself is [`BeamSearch::search_batch`]'s, over one source.

use super::batched::{top_k, BatchState, BeamSearch, RowStep};
use super::Hypothesis;
use crate::error::Result;

/// Per alive row: log-probabilities over the vocabulary, and attention over the source.
pub(crate) type StepRows = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// A model's decoder state over the hypotheses alive in a beam search.
pub(crate) trait BeamState {
    /// Feeds each alive row its last token; returns each row's log-probabilities over
    /// the vocabulary and its attention over the source.
    fn step(&mut self, last: &[u32]) -> Result<StepRows>;
    /// Keeps the rows `rows` of the last step's state, in this order (a row may repeat).
    fn select(&mut self, rows: &[u32]) -> Result<()>;
}

/// A [`BeamState`] seen as a one-source [`BatchState`]: each row's `k` best tokens from its
/// whole row of log-probabilities.
struct Rows<'a, S>(&'a mut S);

impl<S: BeamState> BatchState for Rows<'_, S> {
    fn step(&mut self, last: &[u32], k: usize) -> Result<Vec<RowStep>> {
        let (logp, w) = self.0.step(last)?;
        Ok(logp.iter().zip(w).map(|(row, attention)| RowStep { best: top_k(row, k), attention }).collect())
    }

    fn select(&mut self, rows: &[u32]) -> Result<()> {
        self.0.select(rows)
    }
}

impl BeamSearch {
    /// The search itself over any model's [`BeamState`] (one source, one row to start).
    pub(crate) fn search(&self, state: &mut impl BeamState) -> Result<Vec<Hypothesis>> {
        Ok(self.search_batch(&mut Rows(state), 1)?.into_iter().next().unwrap_or_default())
    }
}
