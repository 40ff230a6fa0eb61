//! The seam between a run and a model family: everything the run needs of a model (loss,
//! gradients, decoding with attention, parameters, sizes) behind one trait, and one
//! constructor that picks the family from `model.architecture`. A new family adds a
//! variant to [`Architecture`], an implementation of [`TranslationModel`], and an arm
//! in [`build`] and [`parameter_count`]; nothing outside this crate changes.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use s2s_data::Batch;

use crate::config::{Architecture, ModelConfig, ModelDims, ParameterCount};
use crate::decode::{Hypothesis, LayerHeads};
use crate::error::Result;
use crate::params::ParamStore;
use crate::seq2seq::{Mode, Seq2Seq};
use crate::transformer::Transformer;

/// A trainable translation model of any family.
pub trait TranslationModel: std::fmt::Debug + Send + Sync {
    fn config(&self) -> &ModelConfig;
    fn dims(&self) -> &ModelDims;
    fn device(&self) -> &Device;
    /// The parameters, named as in the checkpoint (`vb.pp(..)` paths).
    fn params(&self) -> &ParamStore;
    /// Threads the rows of training batches and batched decoding are split over.
    fn set_threads(&mut self, threads: usize);
    fn threads(&self) -> usize;
    /// Mean negative log-likelihood per real target token.
    ///
    /// # Shapes
    /// returns a scalar
    fn loss(&self, batch: &Batch, mode: Mode) -> Result<Tensor>;
    /// The loss's value and the gradient of every parameter.
    fn loss_and_grads(&self, batch: &Batch, mode: Mode) -> Result<(f64, GradStore)>;
    /// Greedy decoding for `steps` steps, stopping when every sentence has ended if
    /// `stop_at_eos`. Each source ends with EOS.
    fn greedy_steps(&self, sources: &[Vec<u32>], steps: usize, stop_at_eos: bool) -> Result<Vec<Hypothesis>>;
    /// Greedy decoding up to the configured length.
    fn greedy(&self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>>;
    /// Beam search for one source: up to `n_best` hypotheses, best first.
    fn beam(&self, source: &[u32], beam_size: usize, n_best: usize) -> Result<Vec<Hypothesis>>;
    /// Every layer's and head's cross-attention, `[layer][head][step][source position]`,
    /// while the decoder reads `target` (ids without EOS) after `source`: one step per
    /// target id and one for EOS. `None` for a family with one attention per step (its
    /// [`Hypothesis::attention`] is all there is).
    fn attention_heads(&self, source: &[u32], target: &[u32]) -> Result<Option<LayerHeads>> {
        let _ = (source, target);
        Ok(None)
    }
    /// Decodes with the configured beam size (greedy when 1), one best hypothesis each.
    /// On the CPU the sentences of a beam search are shared out between
    /// [`Self::threads`] threads (each searches its own sentences; the results do not
    /// depend on the split).
    fn translate(&self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>> {
        let beam = self.config().beam_size;
        if beam <= 1 {
            return self.greedy(sources);
        }
        let search = |part: &[Vec<u32>]| -> Result<Vec<Hypothesis>> {
            let mut out = Vec::with_capacity(part.len());
            for s in part {
                out.extend(self.beam(s, beam, 1)?.into_iter().take(1));
            }
            Ok(out)
        };
        let threads = if self.device().is_cpu() { self.threads().clamp(1, sources.len().max(1)) } else { 1 };
        crate::parallel::in_chunks(sources, threads, search)
    }
}

/// A freshly initialised model of the configured family; its weights depend only on `seed`.
pub fn build(cfg: &ModelConfig, dims: ModelDims, seed: u64, device: &Device) -> Result<Box<dyn TranslationModel>> {
    match cfg.architecture {
        Architecture::Gru => Ok(Box::new(Seq2Seq::new(cfg, dims, seed, device)?)),
        Architecture::Transformer => Ok(Box::new(Transformer::new(cfg, dims, seed, device)?)),
    }
}

/// The number of parameters [`build`] would create, computed from the sizes alone (no
/// allocation), so that a run can refuse a model too big for the machine. Also the
/// share of them whose size grows with the vocabularies (embeddings, output layer).
pub fn parameter_count(cfg: &ModelConfig, dims: &ModelDims) -> ParameterCount {
    match cfg.architecture {
        Architecture::Gru => Seq2Seq::parameter_count(cfg, dims),
        Architecture::Transformer => Transformer::parameter_count(cfg, dims),
    }
}

impl TranslationModel for Seq2Seq {
    fn config(&self) -> &ModelConfig {
        Seq2Seq::config(self)
    }
    fn dims(&self) -> &ModelDims {
        Seq2Seq::dims(self)
    }
    fn device(&self) -> &Device {
        Seq2Seq::device(self)
    }
    fn params(&self) -> &ParamStore {
        Seq2Seq::params(self)
    }
    fn set_threads(&mut self, threads: usize) {
        Seq2Seq::set_threads(self, threads);
    }
    fn threads(&self) -> usize {
        Seq2Seq::threads(self)
    }
    fn loss(&self, batch: &Batch, mode: Mode) -> Result<Tensor> {
        Seq2Seq::loss(self, batch, mode)
    }
    fn loss_and_grads(&self, batch: &Batch, mode: Mode) -> Result<(f64, GradStore)> {
        Seq2Seq::loss_and_grads(self, batch, mode)
    }
    fn greedy_steps(&self, sources: &[Vec<u32>], steps: usize, stop_at_eos: bool) -> Result<Vec<Hypothesis>> {
        Seq2Seq::greedy_steps(self, sources, steps, stop_at_eos)
    }
    fn greedy(&self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>> {
        Seq2Seq::greedy(self, sources)
    }
    fn beam(&self, source: &[u32], beam_size: usize, n_best: usize) -> Result<Vec<Hypothesis>> {
        Seq2Seq::beam(self, source, beam_size, n_best)
    }
}

impl TranslationModel for Transformer {
    fn config(&self) -> &ModelConfig {
        Transformer::config(self)
    }
    fn dims(&self) -> &ModelDims {
        Transformer::dims(self)
    }
    fn device(&self) -> &Device {
        Transformer::device(self)
    }
    fn params(&self) -> &ParamStore {
        Transformer::params(self)
    }
    fn set_threads(&mut self, threads: usize) {
        Transformer::set_threads(self, threads);
    }
    fn threads(&self) -> usize {
        Transformer::threads(self)
    }
    fn loss(&self, batch: &Batch, mode: Mode) -> Result<Tensor> {
        Transformer::loss(self, batch, mode)
    }
    fn loss_and_grads(&self, batch: &Batch, mode: Mode) -> Result<(f64, GradStore)> {
        Transformer::loss_and_grads(self, batch, mode)
    }
    fn greedy_steps(&self, sources: &[Vec<u32>], steps: usize, stop_at_eos: bool) -> Result<Vec<Hypothesis>> {
        Transformer::greedy_steps(self, sources, steps, stop_at_eos)
    }
    fn greedy(&self, sources: &[Vec<u32>]) -> Result<Vec<Hypothesis>> {
        Transformer::greedy(self, sources)
    }
    fn beam(&self, source: &[u32], beam_size: usize, n_best: usize) -> Result<Vec<Hypothesis>> {
        Transformer::beam(self, source, beam_size, n_best)
    }
    fn attention_heads(&self, source: &[u32], target: &[u32]) -> Result<Option<LayerHeads>> {
        Ok(Some(Transformer::attention_heads(self, source, target)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AttentionKind, TieEmbeddings};

    /// The size-only count equals what the constructor really allocates, for every
    /// attention and encoder shape, and with the recipe's options.
    #[test]
    fn parameter_count_matches_the_built_model() {
        let dims = ModelDims { src_vocab: 13, tgt_vocab: 17, max_length: 7 };
        for attention in
            [AttentionKind::Location, AttentionKind::Bahdanau, AttentionKind::LuongDot, AttentionKind::LuongGeneral]
        {
            for (layers, bidirectional, embedding_size) in [(1, false, 0), (2, true, 5), (3, false, 9)] {
                let cfg = ModelConfig {
                    attention,
                    hidden_size: 6,
                    embedding_size,
                    encoder_layers: layers,
                    bidirectional,
                    ..Default::default()
                };
                let model = build(&cfg, dims, 0, &Device::Cpu).expect("model");
                let counted = parameter_count(&cfg, &dims);
                assert_eq!(counted.total, model.params().total() as u128, "{cfg:?}");
                let e = cfg.embedding_dim() as u128;
                assert_eq!(counted.vocabulary, 13 * e + 17 * e + 17 * 6 + 17);
                let recipe = ModelConfig {
                    bridge: true,
                    input_feeding: attention != AttentionKind::Location,
                    tie_embeddings: if embedding_size == 0 { TieEmbeddings::Decoder } else { TieEmbeddings::None },
                    ..cfg
                };
                let model = build(&recipe, dims, 0, &Device::Cpu).expect("model");
                assert_eq!(parameter_count(&recipe, &dims).total, model.params().total() as u128, "{recipe:?}");
            }
        }
    }
}
