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

mod decode;
mod layer_norm;
mod layers;
mod multi_head;
mod positions;
#[cfg(test)]
mod tests;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor};
use candle_nn::Init;
use s2s_data::{Batch, Rng, PAD, SOS};

pub use layer_norm::LayerNorm;
pub use layers::{DecoderLayer, Dropouts, EncoderLayer, LayerMemory};
pub use multi_head::{KeyValues, MultiHeadAttention};
pub use positions::{sinusoids, PositionTable};

use crate::config::{ModelConfig, ModelDims, ParameterCount, Positions, TieEmbeddings};
use crate::error::{ModelError, Result};
use crate::fused::KeyMask;
use crate::params::{seeded_builder, ParamStore};
use crate::seq2seq::Mode;

#[derive(Debug)]
pub struct Transformer {
    cfg: ModelConfig,
    dims: ModelDims,
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
    params: ParamStore,
    device: Device,
    threads: usize,
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
    /// A freshly initialised model; the initial weights depend only on `seed`.
    pub fn new(cfg: &ModelConfig, dims: ModelDims, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate()?;
        if cfg.tie_embeddings == TieEmbeddings::All && dims.src_vocab != dims.tgt_vocab {
            return Err(ModelError::InvalidConfig {
                key: "tie_embeddings",
                message: format!(
                    "\"all\" needs one vocabulary for both sides (data.joint_vocab = true); got {} source and {} target entries",
                    dims.src_vocab, dims.tgt_vocab
                ),
            });
        }
        let (params, vb) = seeded_builder(seed, device);
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
        let slots = Self::position_slots(cfg, &dims);
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
        Ok(Self {
            cfg: cfg.clone(),
            dims,
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
            params,
            device: device.clone(),
            threads: 1,
        })
    }

    /// Rows of the position tables: the longest source or translation.
    fn position_slots(cfg: &ModelConfig, dims: &ModelDims) -> usize {
        dims.max_length.max(cfg.max_decode_length).max(1)
    }

    /// What [`Self::new`] would allocate, from the sizes alone.
    pub fn parameter_count(cfg: &ModelConfig, dims: &ModelDims) -> ParameterCount {
        let (d, f) = (cfg.hidden_size as u128, cfg.ff_dim() as u128);
        let (src, tgt) = (dims.src_vocab as u128, dims.tgt_vocab as u128);
        let attention = 4 * d * d + 4 * d;
        let ff = 2 * d * f + f + d;
        let encoder = cfg.encoder_layers as u128 * (attention + ff + 4 * d) + 2 * d;
        let decoder = cfg.decoder_layer_count() as u128 * (2 * attention + ff + 6 * d) + 2 * d;
        let positions =
            if cfg.positions == Positions::Learned { 2 * Self::position_slots(cfg, dims) as u128 * d } else { 0 };
        let vocabulary = tgt * d
            + if cfg.tie_embeddings == TieEmbeddings::All { 0 } else { src * d }
            + if cfg.tie_embeddings.decoder() { 0 } else { tgt * d };
        ParameterCount { total: vocabulary + positions + encoder + decoder, vocabulary }
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn dims(&self) -> &ModelDims {
        &self.dims
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    fn cpu_threads(&self) -> usize {
        if self.device.is_cpu() {
            self.threads
        } else {
            1
        }
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
        let d = self.cfg.hidden_size;
        let x = table.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, d))?;
        let x = (x * (d as f64).sqrt())?.broadcast_add(&positions.rows(start, t)?)?;
        crate::dropout::dropout(&x, self.cfg.dropout, rng)
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
        let ids = Tensor::from_slice(src, (b, s), &self.device)?;
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

    /// Mean (smoothed, while training) cross-entropy per real target token.
    ///
    /// # Shapes
    /// returns a scalar
    pub fn loss(&self, batch: &Batch, mode: Mode) -> Result<Tensor> {
        let (rng, smoothing) = match mode {
            Mode::Train { rngs, label_smoothing, .. } => (Some(&mut rngs.dropout), label_smoothing),
            Mode::Eval => (None, 0.0),
        };
        self.loss_over(batch, rng, batch.target_tokens(), smoothing)
    }

    /// The summed loss of `batch`'s real target tokens divided by `denominator`.
    fn loss_over(
        &self,
        batch: &Batch,
        mut rng: Option<&mut Rng>,
        denominator: usize,
        smoothing: f64,
    ) -> Result<Tensor> {
        let (b, t) = (batch.size, batch.tgt_len);
        let memory = self.encode(&batch.src, &batch.src_lengths, batch.src_len, rng.as_deref_mut())?;
        // SOS, then the reference shifted by one.
        let inputs: Vec<u32> = (0..b * t).map(|i| if i % t == 0 { SOS } else { batch.tgt[i - 1] }).collect();
        let inputs = Tensor::from_vec(inputs, (b, t), &self.device)?;
        let (states, _) = self.decode_forced(&inputs, &memory, rng, false)?;
        let states = states.reshape((b * t, self.cfg.hidden_size))?;
        let mask = batch.tgt_mask();
        // PAD positions have weight 0: only real tokens go through the output layer.
        let real: Vec<u32> = (0..b * t).filter(|&i| mask[i] > 0.0).map(|i| i as u32).collect();
        let states = if real.len() == b * t {
            states
        } else {
            states.index_select(&Tensor::new(real.as_slice(), &self.device)?, 0)?
        };
        let targets: Vec<u32> = real.iter().map(|&i| batch.tgt[i as usize]).collect();
        let n = targets.len();
        let targets = Tensor::from_vec(targets, n, &self.device)?;
        let weights = Tensor::ones(n, DType::F32, &self.device)?;
        let nll = crate::fused::output_nll(&states, &self.output, &self.no_bias, &targets, &weights, smoothing)?;
        Ok((nll.sum_all()? / denominator.max(1) as f64)?)
    }

    /// The loss's value and every parameter's gradient, the batch's rows split over
    /// [`Self::threads`] threads (see [`crate::parallel::summed_grads`]).
    pub fn loss_and_grads(&self, batch: &Batch, mode: Mode) -> Result<(f64, GradStore)> {
        let parts = batch.split_rows(self.cpu_threads());
        if parts.len() <= 1 {
            let loss = self.loss(batch, mode)?;
            return Ok((f64::from(loss.to_scalar::<f32>()?), loss.backward()?));
        }
        let (seeds, smoothing) = match mode {
            Mode::Train { rngs, label_smoothing, .. } => {
                (Some(parts.iter().map(|_| rngs.dropout.next_u64()).collect::<Vec<_>>()), label_smoothing)
            }
            Mode::Eval => (None, 0.0),
        };
        let total = batch.target_tokens();
        crate::parallel::summed_grads(&self.params, parts.len(), |i| {
            let mut rng = seeds.as_ref().map(|s| Rng::derive(s[i], "dropout-part"));
            let loss = self.loss_over(&parts[i], rng.as_mut(), total, smoothing)?;
            Ok((f64::from(loss.to_scalar::<f32>()?), loss.backward()?))
        })
    }

    fn max_steps(&self) -> usize {
        if self.cfg.max_decode_length > 0 {
            self.cfg.max_decode_length
        } else {
            self.dims.max_length
        }
    }

    /// Pads sources into one batch and encodes them for inference.
    pub(crate) fn encode_sources(&self, sources: &[Vec<u32>]) -> Result<Encoded> {
        let lengths: Vec<usize> = sources.iter().map(Vec::len).collect();
        let s = lengths.iter().copied().max().unwrap_or(0);
        let grid: Vec<u32> =
            sources.iter().flat_map(|x| x.iter().copied().chain(std::iter::repeat(PAD)).take(s)).collect();
        self.encode(&grid, &lengths, s, None)
    }

    /// Cross-attention `[layer][head][step][source position]` while the decoder reads
    /// `target` (without EOS; one step more than its length, the one that emits EOS).
    pub fn attention_heads(&self, source: &[u32], target: &[u32]) -> Result<crate::decode::LayerHeads> {
        let memory = self.encode(source, &[source.len()], source.len(), None)?;
        let inputs: Vec<u32> = std::iter::once(SOS).chain(target.iter().copied()).collect();
        let n = inputs.len();
        let (_, weights) = self.decode_forced(&Tensor::from_vec(inputs, (1, n), &self.device)?, &memory, None, true)?;
        weights.iter().map(|w| Ok(w.squeeze(0)?.to_vec3::<f32>()?)).collect()
    }
}
