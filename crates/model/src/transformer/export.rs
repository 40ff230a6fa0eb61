//! The Transformer in CTranslate2's layout (`TransformerSpec`): which of our parameters
//! become which of its variables.
//!
//! - The layers are `torch.nn.Transformer`'s, so `norm1`/`norm2`/`norm3` are the layer
//!   norms of the self-attention, the cross-attention and the feed-forward sublayer; the
//!   cross-attention's packed `in_proj` splits into a query part (rows `0..d`) and a fused
//!   key-value part (rows `d..3d`), CTranslate2's `linear[0]` and `linear[1]`.
//! - Both stacks keep their final LayerNorm, pre- or post-norm (CTranslate2 applies a
//!   stack's `layer_norm` whenever the model has one).
//! - Embeddings are scaled by sqrt(d) (the spec's `scale_embeddings`), and the position
//!   table is written out: our sinusoids interleave sin and cos (CTranslate2's own table
//!   puts all sines first), a learned table is what it is.
//! - The output projection is the target embedding when tied, with a zero bias.

use candle_core::{DType, Tensor};

use super::{sinusoids, Positions, TransformerConfig};
use crate::error::{ModelError, Result};
use crate::export::{Ct2Model, Ct2Options};
use crate::params::ParamStore;
use crate::shared_config::{DecodingConfig, ModelDims, TieEmbeddings};

/// Rows of a written sinusoid table at the least: CTranslate2's default longest input
/// (`max_input_length = 1024`), so that a sentence longer than the run's data still gets
/// positions (ours are computed on demand).
pub const SINUSOID_ROWS: usize = 1024;

/// `torch.nn.LayerNorm`'s default epsilon, which [`super::LayerNorm`] uses.
const LAYER_NORM_EPSILON: f64 = 1e-5;

impl TransformerConfig {
    /// The model whose parameters are `params` (named as in the checkpoint) in
    /// CTranslate2's Transformer layout.
    pub fn ctranslate2_model(
        &self,
        params: &ParamStore,
        decoding: &DecodingConfig,
        dims: &ModelDims,
    ) -> Result<Ct2Model> {
        let vars = params.vars();
        let get = |name: &str| -> Result<Tensor> {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_tensor().detach())
                .ok_or_else(|| ModelError::MissingParameter { name: name.to_string() })
        };
        let d = self.hidden_size;
        let mut out: Vec<(String, Tensor)> = Vec::new();
        let mut put = |path: String, t: Tensor| out.push((path, t));

        let src_embedding = if self.tie_embeddings == TieEmbeddings::All { "tgt_embedding" } else { "src_embedding" };
        put("encoder.embeddings.0.weight".into(), get(&format!("{src_embedding}.weight"))?);
        let tgt = get("tgt_embedding.weight")?;
        put("decoder.embeddings.weight".into(), tgt.clone());
        let projection = if self.tie_embeddings.decoder() { tgt } else { get("output.weight")? };
        put("decoder.projection.bias".into(), Tensor::zeros(projection.dim(0)?, DType::F32, projection.device())?);
        put("decoder.projection.weight".into(), projection);
        for (stack, ours) in [("encoder", "src_positions"), ("decoder", "tgt_positions")] {
            let table = match self.positions {
                Positions::Sinusoidal => {
                    let rows = TransformerConfig::position_slots(decoding, dims).max(SINUSOID_ROWS);
                    sinusoids(rows, d, &candle_core::Device::Cpu)?
                }
                Positions::Learned => get(&format!("{ours}.weight"))?,
            };
            put(format!("{stack}.position_encodings.encodings"), table);
        }

        let norm = |put: &mut dyn FnMut(String, Tensor), ours: &str, theirs: &str| -> Result<()> {
            put(format!("{theirs}.gamma"), get(&format!("{ours}.weight"))?);
            put(format!("{theirs}.beta"), get(&format!("{ours}.bias"))?);
            Ok(())
        };
        let linear = |put: &mut dyn FnMut(String, Tensor), ours: &str, theirs: &str| -> Result<()> {
            put(format!("{theirs}.weight"), get(&format!("{ours}.weight"))?);
            put(format!("{theirs}.bias"), get(&format!("{ours}.bias"))?);
            Ok(())
        };
        let packed = |put: &mut dyn FnMut(String, Tensor), ours: &str, theirs: &str| -> Result<()> {
            put(format!("{theirs}.weight"), get(&format!("{ours}.in_proj_weight"))?);
            put(format!("{theirs}.bias"), get(&format!("{ours}.in_proj_bias"))?);
            Ok(())
        };
        for i in 0..self.encoder_layers {
            let (o, t) = (format!("encoder.layers.{i}"), format!("encoder.layer.{i}"));
            packed(&mut put, &format!("{o}.self_attn"), &format!("{t}.self_attention.linear.0"))?;
            linear(&mut put, &format!("{o}.self_attn.out_proj"), &format!("{t}.self_attention.linear.1"))?;
            norm(&mut put, &format!("{o}.norm1"), &format!("{t}.self_attention.layer_norm"))?;
            linear(&mut put, &format!("{o}.linear1"), &format!("{t}.ffn.linear_0"))?;
            linear(&mut put, &format!("{o}.linear2"), &format!("{t}.ffn.linear_1"))?;
            norm(&mut put, &format!("{o}.norm2"), &format!("{t}.ffn.layer_norm"))?;
        }
        norm(&mut put, "encoder.norm", "encoder.layer_norm")?;
        for i in 0..self.decoder_layer_count() {
            let (o, t) = (format!("decoder.layers.{i}"), format!("decoder.layer.{i}"));
            packed(&mut put, &format!("{o}.self_attn"), &format!("{t}.self_attention.linear.0"))?;
            linear(&mut put, &format!("{o}.self_attn.out_proj"), &format!("{t}.self_attention.linear.1"))?;
            norm(&mut put, &format!("{o}.norm1"), &format!("{t}.self_attention.layer_norm"))?;
            // The packed projection of the cross-attention: the query from the decoder,
            // key and value (fused) from the encoder's output.
            let w = get(&format!("{o}.multihead_attn.in_proj_weight"))?;
            let b = get(&format!("{o}.multihead_attn.in_proj_bias"))?;
            put(format!("{t}.attention.linear.0.weight"), w.narrow(0, 0, d)?.contiguous()?);
            put(format!("{t}.attention.linear.0.bias"), b.narrow(0, 0, d)?.contiguous()?);
            put(format!("{t}.attention.linear.1.weight"), w.narrow(0, d, 2 * d)?.contiguous()?);
            put(format!("{t}.attention.linear.1.bias"), b.narrow(0, d, 2 * d)?.contiguous()?);
            linear(&mut put, &format!("{o}.multihead_attn.out_proj"), &format!("{t}.attention.linear.2"))?;
            norm(&mut put, &format!("{o}.norm2"), &format!("{t}.attention.layer_norm"))?;
            linear(&mut put, &format!("{o}.linear1"), &format!("{t}.ffn.linear_0"))?;
            linear(&mut put, &format!("{o}.linear2"), &format!("{t}.ffn.linear_1"))?;
            norm(&mut put, &format!("{o}.norm3"), &format!("{t}.ffn.layer_norm"))?;
        }
        norm(&mut put, "decoder.norm", "decoder.layer_norm")?;

        let options = Ct2Options {
            encoder_layers: self.encoder_layers,
            decoder_layers: self.decoder_layer_count(),
            heads: self.heads,
            pre_norm: self.norm == super::Norm::Pre,
            layer_norm_epsilon: LAYER_NORM_EPSILON,
        };
        Ok(Ct2Model { options, variables: out })
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::family::{Family, TranslationModel};
    use crate::transformer::{Norm, Transformer};

    const DIMS: ModelDims = ModelDims { src_vocab: 11, tgt_vocab: 13, max_length: 7 };

    fn exported(cfg: &TransformerConfig) -> (Transformer, Ct2Model) {
        let decoding = DecodingConfig::default();
        let model = Transformer::seeded(cfg, &decoding, DIMS, 5, &Device::Cpu).expect("model");
        let ct2 = cfg.ctranslate2(model.params(), &decoding, &DIMS).expect("export");
        (model, ct2)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().and_then(|t| t.to_vec1()).expect("values")
    }

    /// Every parameter goes somewhere, once (the cross-attention's in two parts): the
    /// exported elements are the parameters' plus the zero bias, and nothing else when
    /// the positions are learned and the output layer untied.
    #[test]
    fn every_parameter_is_exported_once() {
        let cfg = TransformerConfig {
            hidden_size: 8,
            heads: 2,
            ff_size: 16,
            encoder_layers: 2,
            decoder_layers: 1,
            norm: Norm::Post,
            positions: Positions::Learned,
            tie_embeddings: TieEmbeddings::None,
            ..TransformerConfig::default()
        };
        let (model, ct2) = exported(&cfg);
        let params: usize = model.params().vars().iter().map(|(_, v)| v.as_tensor().elem_count()).sum();
        let out: usize = ct2.variables.iter().map(|(_, t)| t.elem_count()).sum();
        assert_eq!(out, params + DIMS.tgt_vocab);
        let mut paths: Vec<&str> = ct2.variables.iter().map(|(p, _)| p.as_str()).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ct2.variables.len(), "a variable written twice");
        assert!(!ct2.options.pre_norm);
        assert_eq!((ct2.options.encoder_layers, ct2.options.decoder_layers, ct2.options.heads), (2, 1, 2));
    }

    /// The cross-attention's packed projection is its query part then its key-value part;
    /// a tied output layer is the target embedding; the sinusoids are ours, interleaved.
    #[test]
    fn cross_attention_splits_and_tied_weights_and_sinusoids() {
        let cfg = TransformerConfig {
            hidden_size: 8,
            heads: 2,
            tie_embeddings: TieEmbeddings::Decoder,
            ..TransformerConfig::default()
        };
        let (model, ct2) = exported(&cfg);
        let vars = model.params().vars();
        let param = |n: &str| values(vars.iter().find(|(k, _)| k == n).expect(n).1.as_tensor());
        let var = |p: &str| values(ct2.get(p).expect(p));
        let mut joined = var("decoder.layer.0.attention.linear.0.weight");
        joined.extend(var("decoder.layer.0.attention.linear.1.weight"));
        assert_eq!(joined, param("decoder.layers.0.multihead_attn.in_proj_weight"));
        assert_eq!(var("decoder.projection.weight"), param("tgt_embedding.weight"));
        assert!(var("decoder.projection.bias").iter().all(|&b| b == 0.0));
        let table = ct2.get("encoder.position_encodings.encodings").expect("table");
        assert_eq!(table.dims(), &[SINUSOID_ROWS, 8]);
        let row1 = values(&table.narrow(0, 1, 1).expect("row"));
        assert!((row1[0] - 1f32.sin()).abs() < 1e-6 && (row1[1] - 1f32.cos()).abs() < 1e-6, "{row1:?}");
    }

    #[test]
    fn a_gru_says_what_works_instead() {
        let gru = crate::gru::GruConfig::default();
        let err = gru.ctranslate2(&crate::params::ParamStore::default(), &DecodingConfig::default(), &DIMS);
        let msg = err.expect_err("refused").to_string();
        assert!(msg.contains("no RNN decoder") && msg.contains("PyTorch"), "{msg}");
    }
}
