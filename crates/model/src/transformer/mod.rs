//! The Transformer family (Vaswani et al. 2017): `torch.nn.Transformer`'s encoder and
//! decoder stacks with its state_dict names, our embeddings, positions and output layer
//! around them, and incremental decoding with per-layer key/value caches.
//!
//! Parameter names: `src_embedding.weight`, `tgt_embedding.weight` (the output layer's
//! too with `tie_embeddings = "decoder"`, and the source's with `"all"`),
//! `output.weight` (untied only; no bias), `src_positions.weight` /
//! `tgt_positions.weight` (learned positions only), `encoder.layers.N.*`,
//! `encoder.norm.*`, `decoder.layers.N.*`, `decoder.norm.*`. Embeddings are scaled by
//! sqrt(d_model) before the positions are added.

mod config;
mod decode;
mod export;
mod inference;
pub mod kernels;
mod layer_norm;
mod layers;
mod multi_head;
mod positions;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::Init;
use s2s_data::{Batch, Rng, SOS};

pub use layer_norm::LayerNorm;
pub use layers::{DecoderLayer, Dropouts, EncoderLayer, LayerMemory};
pub use multi_head::{KeyValues, MultiHeadAttention};
pub use positions::{sinusoids, PositionTable};

pub use config::{Norm, Positions, TransformerConfig};
pub use export::SINUSOID_ROWS;
use kernels::KeyMask;

use crate::decode::{BeamSearch, Hypothesis, LayerHeads, Padded};
use crate::error::{ModelError, Result};
use crate::family::{Family, ModelBase, TranslationModel};
use crate::packed_copy::PackedCopy;
use crate::params::Weights;
use crate::shared_config::{DecodingConfig, ModelDims, TieEmbeddings};
use crate::training::{real_target_rows, StepOptions};

/// The Transformer family's model.
#[derive(Debug)]
pub struct Transformer {
    base: ModelBase,
    /// The family's keys (also in `base`'s config), for the modules' sizes.
    family: TransformerConfig,
    src_embedding: Tensor,
    tgt_embedding: Tensor,
    /// `(V_tgt, d)`: the target embedding when tied.
    output: Tensor,
    /// Zeros `(V_tgt)`: the output layer has no bias; the fused loss wants one.
    no_bias: Tensor,
    src_positions: PositionTable,
    tgt_positions: PositionTable,
    encoder: Vec<EncoderLayer>,
    encoder_norm: LayerNorm,
    decoder: Vec<DecoderLayer>,
    decoder_norm: LayerNorm,
    /// The weights laid out for inference: kept once the model is frozen, or for the
    /// span of [`TranslationModel::begin_inference`] (`true` beside them).
    packed: PackedCopy<inference::Packed>,
}

/// The encoder's output and what every decoder layer reads of it.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    /// Per decoder layer: the memory's keys and values, and the source padding bias.
    pub layers: Vec<LayerMemory>,
    /// Each source's length.
    pub lengths: Vec<usize>,
}

impl Encoded {
    /// The same values without the graph that made them (inference).
    pub fn detached(self) -> Self {
        let layers = self
            .layers
            .into_iter()
            .map(|m| LayerMemory { kv: KeyValues { k: m.kv.k.detach(), v: m.kv.v.detach() }, mask: m.mask })
            .collect();
        Self { layers, lengths: self.lengths }
    }

    pub fn select(&self, idx: &Tensor, lengths: Vec<usize>) -> Result<Self> {
        Ok(Self { layers: self.layers.iter().map(|m| m.select(idx, &lengths)).collect::<Result<_>>()?, lengths })
    }
}

impl Transformer {
    /// A new model of `family` decoding as `decoding` says, its weights drawn from `seed`.
    pub fn seeded(
        family: &TransformerConfig,
        decoding: &DecodingConfig,
        dims: ModelDims,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        family.validate()?;
        decoding.validate()?;
        Self::new(family, decoding, dims, Weights::Seed(seed), device)
    }

    /// The model of `family` decoding as `decoding` says, its weights from `weights`.
    pub fn new(
        family: &TransformerConfig,
        decoding: &DecodingConfig,
        dims: ModelDims,
        weights: Weights,
        device: &Device,
    ) -> Result<Self> {
        let cfg = family;
        if cfg.tie_embeddings == TieEmbeddings::All && dims.src_vocab != dims.tgt_vocab {
            return Err(ModelError::InvalidConfig {
                key: "tie_embeddings",
                message: format!(
                    "\"all\" needs one vocabulary for both sides (data.joint_vocab = true); got {} source and {} target entries",
                    dims.src_vocab, dims.tgt_vocab
                ),
            });
        }
        let (params, vb, check) = crate::params::builder(weights, device)?;
        let d = cfg.hidden_size;
        let embed = |name: &str, vocab: usize| {
            let stdev = (d as f64).powf(-0.5);
            vb.pp(name).get_with_hints((vocab, d), "weight", Init::Randn { mean: 0.0, stdev })
        };
        let tgt_embedding = embed("tgt_embedding", dims.tgt_vocab)?;
        let src_embedding = if cfg.tie_embeddings == TieEmbeddings::All {
            tgt_embedding.clone()
        } else {
            embed("src_embedding", dims.src_vocab)?
        };
        let output = if cfg.tie_embeddings.decoder() {
            tgt_embedding.clone()
        } else {
            let b = (6.0 / (d + dims.tgt_vocab) as f64).sqrt();
            vb.pp("output").get_with_hints((dims.tgt_vocab, d), "weight", Init::Uniform { lo: -b, up: b })?
        };
        let slots = TransformerConfig::position_slots(decoding, &dims);
        let src_positions = PositionTable::new(cfg.positions, slots, d, vb.pp("src_positions"))?;
        let tgt_positions = PositionTable::new(cfg.positions, slots, d, vb.pp("tgt_positions"))?;
        let drop =
            Dropouts { residual: cfg.dropout, attention: cfg.attention_dropout, activation: cfg.activation_dropout };
        let (heads, ff) = (cfg.heads, cfg.ff_dim());
        let encoder = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::new(d, heads, ff, cfg.norm, drop, vb.pp("encoder.layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let encoder_norm = LayerNorm::new(d, vb.pp("encoder").pp("norm"))?;
        let decoder = (0..cfg.decoder_layer_count())
            .map(|i| DecoderLayer::new(d, heads, ff, cfg.norm, drop, vb.pp("decoder.layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let decoder_norm = LayerNorm::new(d, vb.pp("decoder").pp("norm"))?;
        check.finish(&params)?;
        Ok(Self {
            base: ModelBase::new(decoding, dims, params, device),
            family: cfg.clone(),
            src_embedding,
            tgt_embedding,
            no_bias: Tensor::zeros(dims.tgt_vocab, DType::F32, device)?,
            output,
            src_positions,
            tgt_positions,
            encoder,
            encoder_norm,
            decoder,
            decoder_norm,
            packed: PackedCopy::default(),
        })
    }

    /// `embedding[ids] · sqrt(d) + positions[start..]`, then dropout.
    ///
    /// # Shapes
    /// `ids: (B, T)` → `(B, T, d)`
    fn embed(
        &self,
        table: &Tensor,
        positions: &PositionTable,
        ids: &Tensor,
        start: usize,
        rng: Option<&mut Rng>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let d = self.family.hidden_size;
        let x = table.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, d))?;
        let x = (x * (d as f64).sqrt())?.broadcast_add(&positions.rows(start, t)?)?;
        crate::dropout::dropout(&x, self.family.dropout, rng)
    }

    /// Encodes padded sources `(B, S)` (row-major ids) and prepares every decoder layer's
    /// memory.
    pub(crate) fn encode(
        &self,
        src: &[u32],
        lengths: &[usize],
        s: usize,
        mut rng: Option<&mut Rng>,
    ) -> Result<Encoded> {
        let b = lengths.len();
        let ids = Tensor::from_slice(src, (b, s), self.base.device())?;
        let mask = KeyMask::padding(lengths, s);
        let mut x = self.embed(&self.src_embedding, &self.src_positions, &ids, 0, rng.as_deref_mut())?;
        for layer in &self.encoder {
            x = layer.forward(&x, &mask, rng.as_deref_mut())?;
        }
        let x = self.encoder_norm.forward(&x)?;
        let layers = self.decoder.iter().map(|l| l.memory(&x, &mask)).collect::<Result<Vec<_>>>()?;
        Ok(Encoded { layers, lengths: lengths.to_vec() })
    }

    /// The decoder over whole target inputs `(B, T)` (teacher forcing): the final states
    /// `(B, T, d)` and, with `need_weights`, each layer's cross-attention weights
    /// `(B, heads, T, S)` (else none).
    pub(crate) fn decode_forced(
        &self,
        inputs: &Tensor,
        memory: &Encoded,
        mut rng: Option<&mut Rng>,
        need_weights: bool,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let mut x = self.embed(&self.tgt_embedding, &self.tgt_positions, inputs, 0, rng.as_deref_mut())?;
        let mut weights = Vec::with_capacity(self.decoder.len());
        for (layer, mem) in self.decoder.iter().zip(&memory.layers) {
            let (y, w) = layer.forward(&x, mem, rng.as_deref_mut(), need_weights)?;
            x = y;
            weights.extend(w);
        }
        Ok((self.decoder_norm.forward(&x)?, weights))
    }

    /// Logits `(N, V)` of final decoder states `(N, d)`.
    pub(crate) fn logits(&self, states: &Tensor) -> Result<Tensor> {
        Ok(states.matmul(&self.output.t()?)?)
    }

    /// Whether a helper thread takes half of each product's columns: when the sentences
    /// run as one group (`parts`) and the model has a second thread for it.
    fn helped(&self, parts: usize) -> bool {
        parts == 1 && self.base.cpu_threads() > 1
    }

    /// The product weights packed for inference: the copy kept (frozen, or in an inference
    /// span), else packed now for one call.
    fn packed_weights(&self) -> Result<Arc<inference::Packed>> {
        self.packed.get(|| inference::Packed::of(self))
    }

    /// Pads sources into one batch and encodes them for inference.
    pub(crate) fn encode_sources(&self, sources: &[Vec<u32>]) -> Result<Encoded> {
        let Padded { grid, lengths, width: s } = Padded::new(sources);
        self.encode(&grid, &lengths, s, None)
    }
}

impl TranslationModel for Transformer {
    fn base(&self) -> &ModelBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut ModelBase {
        &mut self.base
    }

    fn part_loss(
        &self,
        batch: &Batch,
        mut rng: Option<&mut Rng>,
        step: StepOptions,
        denominator: usize,
    ) -> Result<Tensor> {
        let smoothing = step.label_smoothing;
        let (b, t) = (batch.size, batch.tgt_len);
        let memory = self.encode(&batch.src, &batch.src_lengths, batch.src_len, rng.as_deref_mut())?;
        // SOS, then the reference shifted by one.
        let inputs: Vec<u32> = (0..b * t).map(|i| if i % t == 0 { SOS } else { batch.tgt[i - 1] }).collect();
        let inputs = Tensor::from_vec(inputs, (b, t), self.base.device())?;
        let (states, _) = self.decode_forced(&inputs, &memory, rng, false)?;
        let states = states.reshape((b * t, self.family.hidden_size))?;
        let (states, targets, weights) = real_target_rows(states, batch, |i| i)?;
        let nll = crate::kernels::output_nll(&states, &self.output, &self.no_bias, &targets, &weights, smoothing)?;
        Ok((nll.sum_all()? / denominator.max(1) as f64)?)
    }

    /// Greedy decoding for `steps` steps (all of them unless `stop_at_eos`). On the CPU
    /// the graph-free decoder (`inference.rs`) steps the sentences together, sorted by
    /// length and shared out between the model's threads from 2 × 8 sentences on;
    /// elsewhere the candle decoder does.
    fn greedy_steps(&self, sources: &[Vec<u32>], steps: usize, stop_at_eos: bool) -> Result<Vec<Hypothesis>> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        if !self.device().is_cpu() {
            return self.greedy_with(sources, steps, stop_at_eos, true);
        }
        let parts = self.base.cpu_threads().min(sources.len() / decode::ROWS_PER_THREAD).max(1);
        let (packed, helped) = (self.packed_weights()?, self.helped(parts));
        crate::parallel::by_length(sources, parts, |group| {
            inference::decode_sources(self, group, steps, helped, &packed, |decoder| {
                crate::decode::greedy(decoder, group.len(), steps, stop_at_eos)
            })
        })
    }

    /// On the CPU, the graph-free encoder and decoder under teacher forcing
    /// (`inference::forced_nll`), the sentences shared out between the model's threads;
    /// elsewhere the training graph's forward pass.
    fn eval_loss(&self, batch: &Batch) -> Result<f64> {
        if !self.device().is_cpu() {
            return crate::family::eval_loss_by_parts(self, batch);
        }
        let (s, t) = (batch.src_len, batch.tgt_len);
        let rows: Vec<usize> = (0..batch.size).collect();
        let parts = self.base.cpu_threads().min(batch.size).max(1);
        let (packed, helped) = (self.packed_weights()?, self.helped(parts));
        let sums = crate::parallel::in_chunks(&rows, parts, |chunk| {
            let cut = |ids: &[u32], width: usize, lengths: &[usize]| -> Vec<Vec<u32>> {
                chunk.iter().map(|&i| ids[i * width..i * width + lengths[i]].to_vec()).collect()
            };
            let sources = cut(&batch.src, s, &batch.src_lengths);
            let targets = cut(&batch.tgt, t, &batch.tgt_lengths);
            inference::decode_sources(self, &sources, t.max(1), helped, &packed, |decoder| {
                inference::forced_nll(decoder, &targets)
            })
        })?;
        Ok(sums.iter().sum::<f64>() / batch.target_tokens().max(1) as f64)
    }

    /// Keeps the product weights packed in column panels for inference (30 MB for
    /// `multi30k-transformer`), instead of packing them for each decoding call.
    fn freeze(&mut self) -> Result<()> {
        if self.device().is_cpu() {
            self.packed.freeze(|| inference::Packed::of(self))?;
        }
        Ok(())
    }

    /// Packs the product weights once for the span (validation would pack them for each
    /// batch's loss and decoding, about 20 ms each for `multi30k-transformer`).
    fn begin_inference(&self) -> Result<()> {
        if self.device().is_cpu() {
            self.packed.begin_span(|| inference::Packed::of(self))?;
        }
        Ok(())
    }

    fn end_inference(&self) {
        self.packed.end_span();
    }

    fn beam(&self, source: &[u32], beam_size: usize, n_best: usize) -> Result<Vec<Hypothesis>> {
        Ok(self.beam_batch(&[source.to_vec()], beam_size, n_best)?.into_iter().next().unwrap_or_default())
    }

    /// Beam search of many sentences at once: on the CPU every alive hypothesis of every
    /// sentence is a row of the graph-free decoder, the sentences sorted by length and
    /// shared out between the model's threads; elsewhere one sentence at a time.
    fn beam_batch(&self, sources: &[Vec<u32>], beam_size: usize, n_best: usize) -> Result<Vec<Vec<Hypothesis>>> {
        if !self.device().is_cpu() {
            return sources.iter().map(|s| self.beam_with(s, beam_size, n_best, true)).collect();
        }
        let search = BeamSearch {
            beam_size,
            n_best,
            max_steps: self.base().max_steps(),
            length_penalty: self.decoding().length_penalty,
        };
        let parts = self.base.cpu_threads().min(sources.len()).max(1);
        let (packed, helped) = (self.packed_weights()?, self.helped(parts));
        crate::parallel::by_length(sources, parts, |group| {
            inference::decode_sources(self, group, search.max_steps, helped, &packed, |decoder| {
                search.search_batch(decoder, group.len())
            })
        })
    }

    /// Cross-attention `[layer][head][step][source position]` while the decoder reads
    /// `target` (without EOS; one step more than its length, the one that emits EOS).
    fn attention_heads(&self, source: &[u32], target: &[u32]) -> Result<Option<LayerHeads>> {
        let memory = self.encode(source, &[source.len()], source.len(), None)?;
        let inputs: Vec<u32> = std::iter::once(SOS).chain(target.iter().copied()).collect();
        let n = inputs.len();
        let (_, weights) =
            self.decode_forced(&Tensor::from_vec(inputs, (1, n), self.base.device())?, &memory, None, true)?;
        Ok(Some(weights.iter().map(|w| Ok(w.squeeze(0)?.to_vec3::<f32>()?)).collect::<Result<_>>()?))
    }
}
