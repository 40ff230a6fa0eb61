//! The Transformer's fused CPU kernels: scaled dot-product attention over all heads (its
//! weights recomputed in backward), layer norm and softmax, each with its own backward
//! pass (candle's fast versions have none); the tests check them against the composed
//! candle ops that other devices run.

mod layer_norm;
mod scaled_dot_product;
mod softmax;

pub(crate) use layer_norm::moments;
pub use layer_norm::{layer_norm, layer_norm_composed, LAYER_NORM_EPS};
pub use scaled_dot_product::{attention, attention_composed, split_heads, KeyMask, MASKED};
pub use softmax::softmax;
