//! An example family, compiled only with the `example-family` feature (the workspace's
//! tests turn it on): the smallest model that is a whole family, to show that a family
//! needs no change outside this crate. Its config, model, loss and decoders are this
//! file; [`crate::registry`] lists it. Not a model to train for real: the source is a bag
//! of words (the mean of its embeddings), read alike at every step.
//!
//! Parameter names: `src_embedding.weight`, `tgt_embedding.weight`, `out.weight`,
//! `out.bias`. Step `t` computes `h = tanh(mean(src) + tgt_embedding[y_{t-1}])` and
//! `log_softmax(out(h))`; its attention is uniform over the source.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::Module;
use s2s_data::{Batch, Rng, SOS};
use serde::{Deserialize, Serialize};

use crate::decode::{record_greedy_step, BeamSearch, BeamState, Hypothesis, Padded, StepRows};
use crate::error::{expect_dims, Result};
use crate::family::{Family, ModelBase, TranslationModel};
use crate::params::{embedding, linear, Linear, Weights};
use crate::shared_config::{check_at_least_one, DecodingConfig, ModelDims, ParameterCount};
use crate::training::StepOptions;

/// The example family's `[model]` keys (`architecture = "bag-of-words"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BagOfWordsConfig {
    /// Width of the embeddings and the state.
    pub hidden_size: usize,
}

impl Default for BagOfWordsConfig {
    fn default() -> Self {
        Self { hidden_size: 32 }
    }
}

impl Family for BagOfWordsConfig {
    fn validate(&self) -> Result<()> {
        check_at_least_one(&[("hidden_size", self.hidden_size)])
    }

    fn describe(&self) -> String {
        format!("bag of words (the example family), hidden {}", self.hidden_size)
    }

    fn logged_keys(&self) -> &'static [&'static str] {
        &["hidden_size"]
    }

    fn parameter_count(&self, _: &DecodingConfig, dims: &ModelDims) -> ParameterCount {
        let (h, src, tgt) = (self.hidden_size as u128, dims.src_vocab as u128, dims.tgt_vocab as u128);
        let total = src * h + tgt * h + h * tgt + tgt;
        ParameterCount { total, vocabulary: total }
    }

    fn width_key(&self) -> (&'static str, usize) {
        ("hidden_size", self.hidden_size)
    }

    fn shared_embedding_setting(&self) -> Option<&'static str> {
        None
    }

    fn can_run_free(&self) -> bool {
        false
    }

    fn build(
        &self,
        decoding: &DecodingConfig,
        dims: ModelDims,
        weights: Weights,
        device: &Device,
    ) -> Result<Box<dyn TranslationModel>> {
        Ok(Box::new(BagOfWords::new(self, decoding, dims, weights, device)?))
    }
}

/// The example family's model.
#[derive(Debug)]
pub struct BagOfWords {
    base: ModelBase,
    src_embedding: candle_nn::Embedding,
    tgt_embedding: candle_nn::Embedding,
    out: Linear,
}

impl BagOfWords {
    /// The model of `cfg` decoding as `decoding` says, its weights from `weights`.
    pub fn new(
        cfg: &BagOfWordsConfig,
        decoding: &DecodingConfig,
        dims: ModelDims,
        weights: Weights,
        device: &Device,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let (params, vb, check) = crate::params::builder(weights, device)?;
        let src_embedding = embedding(dims.src_vocab, h, vb.pp("src_embedding"))?;
        let tgt_embedding = embedding(dims.tgt_vocab, h, vb.pp("tgt_embedding"))?;
        let out = linear(h, dims.tgt_vocab, true, vb.pp("out"))?;
        check.finish(&params)?;
        Ok(Self { base: ModelBase::new(decoding, dims, params, device), src_embedding, tgt_embedding, out })
    }

    /// The mean of each source's embeddings over its real tokens.
    ///
    /// # Shapes
    /// `src: (B·S)` row-major ids → `(B, H)`
    fn encode(&self, src: &[u32], lengths: &[usize], s: usize) -> Result<Tensor> {
        let device = self.base.device();
        let b = lengths.len();
        let ids = Tensor::from_slice(src, (b, s), device)?;
        let emb = self.src_embedding.forward(&ids)?;
        let mask: Vec<f32> =
            lengths.iter().flat_map(|&l| (0..s).map(move |j| if j < l { 1.0 / l as f32 } else { 0.0 })).collect();
        let mask = Tensor::from_vec(mask, (b, s, 1), device)?;
        Ok(emb.broadcast_mul(&mask)?.sum(1)?)
    }

    /// Log-probabilities `(N, V)` of the next token after `prev`, for rows whose source
    /// means are `context: (N, H)`.
    fn step(&self, context: &Tensor, prev: &[u32]) -> Result<Tensor> {
        let n = prev.len();
        expect_dims("source means", context, &[n, context.dim(1)?])?;
        let prev = Tensor::from_slice(prev, n, self.base.device())?;
        let h = (context + self.tgt_embedding.forward(&prev)?)?.tanh()?;
        Ok(candle_nn::ops::log_softmax(&self.out.forward(&h)?, D::Minus1)?)
    }

    fn encode_sources(&self, sources: &[Vec<u32>]) -> Result<(Tensor, Vec<usize>)> {
        let Padded { grid, lengths, width: s } = Padded::new(sources);
        Ok((self.encode(&grid, &lengths, s)?.detach(), lengths))
    }
}

/// The rows alive in a beam search, all reading one source.
struct Rows<'a> {
    model: &'a BagOfWords,
    context: Tensor,
    length: usize,
}

impl BeamState for Rows<'_> {
    fn step(&mut self, last: &[u32]) -> Result<StepRows> {
        let context = self.context.broadcast_as((last.len(), self.context.dim(1)?))?.contiguous()?;
        let logp = self.model.step(&context, last)?.to_vec2()?;
        Ok((logp, vec![vec![1.0 / self.length as f32; self.length]; last.len()]))
    }

    fn select(&mut self, _: &[u32]) -> Result<()> {
        Ok(())
    }
}

impl TranslationModel for BagOfWords {
    fn base(&self) -> &ModelBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut ModelBase {
        &mut self.base
    }

    fn part_loss(&self, batch: &Batch, _: Option<&mut Rng>, step: StepOptions, denominator: usize) -> Result<Tensor> {
        let device = self.base.device();
        let (b, t) = (batch.size, batch.tgt_len);
        let context = self.encode(&batch.src, &batch.src_lengths, batch.src_len)?;
        let inputs: Vec<u32> = (0..b * t).map(|i| if i % t == 0 { SOS } else { batch.tgt[i - 1] }).collect();
        let inputs = Tensor::from_vec(inputs, (b, t), device)?;
        let h = self.tgt_embedding.forward(&inputs)?.broadcast_add(&context.unsqueeze(1)?)?.tanh()?;
        let logp = candle_nn::ops::log_softmax(&self.out.forward(&h)?, D::Minus1)?.reshape((b * t, ()))?;
        let targets = Tensor::from_slice(&batch.tgt, (b * t, 1), device)?;
        let nll = logp.gather(&targets, 1)?.squeeze(1)?.neg()?;
        let eps = step.label_smoothing;
        let per_token = if eps > 0.0 { ((nll * (1.0 - eps))? + (logp.mean(1)?.neg()? * eps)?)? } else { nll };
        let mask = Tensor::from_vec(batch.tgt_mask(), b * t, device)?.to_dtype(DType::F32)?;
        Ok((per_token.mul(&mask)?.sum_all()? / denominator.max(1) as f64)?)
    }

    fn greedy_steps(&self, sources: &[Vec<u32>], steps: usize, stop_at_eos: bool) -> Result<Vec<Hypothesis>> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        let (context, lengths) = self.encode_sources(sources)?;
        let mut hyps = vec![Hypothesis { ids: Vec::new(), log_prob: 0.0, attention: Vec::new() }; sources.len()];
        let mut done = vec![false; sources.len()];
        let mut prev = vec![SOS; sources.len()];
        for _ in 0..steps {
            let logp = self.step(&context, &prev)?;
            let ids: Vec<u32> = logp.argmax(D::Minus1)?.to_vec1()?;
            let rows = logp.to_vec2::<f32>()?;
            let best: Vec<f32> = rows.iter().zip(&ids).map(|(r, &i)| r[i as usize]).collect();
            let uniform = |i: usize| vec![1.0 / lengths[i] as f32; lengths[i]];
            if record_greedy_step(&mut hyps, &mut done, &ids, &best, uniform) && stop_at_eos {
                break;
            }
            prev = ids;
        }
        Ok(hyps)
    }

    fn beam(&self, source: &[u32], beam_size: usize, n_best: usize) -> Result<Vec<Hypothesis>> {
        let (context, _) = self.encode_sources(std::slice::from_ref(&source.to_vec()))?;
        let search = BeamSearch {
            beam_size,
            n_best,
            max_steps: self.base.max_steps(),
            length_penalty: self.base.decoding().length_penalty,
        };
        search.search(&mut Rows { model: self, context, length: source.len().max(1) })
    }
}
