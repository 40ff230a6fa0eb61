//! A trained model in another inference engine's layout: what a family hands over to be
//! written (the engine's own variable names, the tensors, and the options that shape the
//! engine's model). The files themselves are written by the run crate.

use candle_core::Tensor;
use serde::Serialize;

/// The options of CTranslate2's `TransformerSpec.from_config` that an exported model sets,
/// plus what the spec cannot be told at construction (final norms of a post-norm stack).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ct2Options {
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub heads: usize,
    /// LayerNorm before each sublayer (else after the residual sum).
    pub pre_norm: bool,
    /// `torch.nn.LayerNorm`'s epsilon, which every norm of the model uses.
    pub layer_norm_epsilon: f64,
}

/// A model in CTranslate2's Transformer layout.
#[derive(Debug, Clone)]
pub struct Ct2Model {
    pub options: Ct2Options,
    /// `(path, tensor)`: each path names a spec attribute, dot-separated, list items by
    /// index (`decoder.layer.0.attention.linear.1.weight`); every tensor is f32.
    pub variables: Vec<(String, Tensor)>,
}

impl Ct2Model {
    /// The tensor at `path`, if the model has one.
    pub fn get(&self, path: &str) -> Option<&Tensor> {
        self.variables.iter().find(|(p, _)| p == path).map(|(_, t)| t)
    }
}
