//! Embedding + (stacked, optionally bidirectional) GRU encoder.

use candle_core::{Tensor, D};
use candle_nn::{Module, VarBuilder};
use s2s_data::Rng;

use super::kernels::Products;
use super::layer::GruLayer;
use super::GruConfig;
use crate::dropout::dropout;
use crate::error::{expect_dims, Result};
use crate::params::embedding;

/// Module path `encoder`: `encoder.embedding.weight`, `encoder.gru.weight_ih_l0`, ...
#[derive(Debug, Clone)]
pub struct Encoder {
    embedding: candle_nn::Embedding,
    layers: Vec<(GruLayer, Option<GruLayer>)>,
    hidden: usize,
    dropout: f64,
}

/// The encoder's parameters, for inference over plain buffers.
pub(crate) struct EncoderParts<'a> {
    /// `(V, E)`
    pub embedding: &'a Tensor,
    /// Every layer's directions, forward first (`layer · D + direction`): `weight_ih`,
    /// `bias_ih`, `weight_hh`, `bias_hh`.
    pub layers: Vec<[&'a Tensor; 4]>,
    /// 1 or 2 (bidirectional)
    pub directions: usize,
    pub hidden: usize,
}

/// Encoder results for one batch.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// `(B, S, H)`, zero at PAD positions; directions summed when bidirectional.
    pub outputs: Tensor,
    /// `(B, H)`: the last layer's state after each sentence's last real token (both
    /// directions summed when bidirectional).
    pub final_hidden: Tensor,
    /// `(B, D·H)`: the last layer's final states of its D directions side by side (forward
    /// first), what the bridge reads.
    pub final_states: Tensor,
}

impl Encoder {
    pub fn new(cfg: &GruConfig, src_vocab: usize, vb: VarBuilder) -> Result<Self> {
        let (emb, h) = (cfg.embedding_dim(), cfg.hidden_size);
        let gvb = vb.pp("gru");
        let mut layers = Vec::new();
        for k in 0..cfg.encoder_layers {
            let input = if k == 0 { emb } else { h };
            let fwd = GruLayer::new(input, h, k, false, gvb.clone())?;
            let bwd = if cfg.bidirectional { Some(GruLayer::new(input, h, k, true, gvb.clone())?) } else { None };
            layers.push((fwd, bwd));
        }
        Ok(Self { embedding: embedding(src_vocab, emb, vb.pp("embedding"))?, layers, hidden: h, dropout: cfg.dropout })
    }

    pub(crate) fn parts(&self) -> EncoderParts<'_> {
        let layers = self.layers.iter().flat_map(|(fwd, bwd)| std::iter::once(fwd).chain(bwd)).map(GruLayer::params);
        let directions = if self.layers.iter().any(|(_, bwd)| bwd.is_some()) { 2 } else { 1 };
        EncoderParts {
            embedding: self.embedding.embeddings(),
            layers: layers.collect(),
            directions,
            hidden: self.hidden,
        }
    }

    /// Detached `products` (inference) compute the products without gradients.
    ///
    /// # Shapes
    /// `src: (B, S)` u32 ids; `mask: (B, S)` 1.0 at real tokens, or `None` when nothing is padded.
    pub fn forward(
        &self,
        src: &Tensor,
        mask: Option<&Tensor>,
        mut rng: Option<&mut Rng>,
        products: Products,
    ) -> Result<Encoded> {
        let (b, s) = src.dims2()?;
        if let Some(m) = mask {
            expect_dims("encoder mask", m, &[b, s])?;
        }
        let mut x = dropout(&self.embedding.forward(src)?, self.dropout, rng.as_deref_mut())?;
        let mut finals = None;
        for (k, (fwd, bwd)) in self.layers.iter().enumerate() {
            if k > 0 {
                x = dropout(&x, self.dropout, rng.as_deref_mut())?;
            }
            let (mut out, h) = self.run(fwd, &x, mask, false, products)?;
            let mut h_b = None;
            if let Some(bwd) = bwd {
                let (out_b, h_bwd) = self.run(bwd, &x, mask, true, products)?;
                out = (out + out_b)?;
                h_b = Some(h_bwd);
            }
            x = out;
            finals = Some((h, h_b));
        }
        let (final_hidden, final_states) = match finals {
            Some((h, None)) => (h.clone(), h),
            Some((h, Some(h_b))) => ((&h + &h_b)?, Tensor::cat(&[&h, &h_b], D::Minus1)?),
            None => {
                let z = Tensor::zeros((b, self.hidden), x.dtype(), x.device())?;
                (z.clone(), z)
            }
        };
        Ok(Encoded { outputs: x, final_hidden, final_states })
    }

    /// One direction over the sequence. Masked positions leave the state unchanged and
    /// output zeros, which is what packed sequences give in PyTorch.
    fn run(
        &self,
        gru: &GruLayer,
        x: &Tensor,
        mask: Option<&Tensor>,
        reverse: bool,
        products: Products,
    ) -> Result<(Tensor, Tensor)> {
        let (b, s, _) = x.dims3()?;
        let gi = gru.input_projection(x, products)?;
        if let Some(all) = gru.fused_sequence(&gi, mask, reverse, products)? {
            return Ok((all.narrow(1, 0, s)?, all.narrow(1, s, 1)?.squeeze(1)?));
        }
        let mut h = Tensor::zeros((b, self.hidden), x.dtype(), x.device())?;
        let mut outs = vec![None; s];
        let order: Vec<usize> = if reverse { (0..s).rev().collect() } else { (0..s).collect() };
        for t in order {
            let h_new = gru.step(&gi.narrow(1, t, 1)?.squeeze(1)?.contiguous()?, &h)?;
            match mask {
                Some(m) => {
                    let m_t = m.narrow(D::Minus1, t, 1)?.contiguous()?;
                    h = (&h + m_t.broadcast_mul(&(h_new - &h)?)?)?;
                    outs[t] = Some(h.broadcast_mul(&m_t)?);
                }
                None => {
                    h = h_new;
                    outs[t] = Some(h.clone());
                }
            }
        }
        let outs: Vec<Tensor> = outs.into_iter().flatten().collect();
        // Stacked time-major, then made batch-major by a transpose copy (not a dim-1 stack).
        Ok((Tensor::stack(&outs, 0)?.transpose(0, 1)?.contiguous()?, h))
    }
}
