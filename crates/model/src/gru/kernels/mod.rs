//! The GRU family's fused CPU kernels: the GRU cell's gates (one step, and a whole
//! sequence for the encoder), Bahdanau's additive scores, and the attention's dot scores
//! and context over the encoder memory. Each has its own backward pass; the tests check
//! them against the composed candle ops.

mod additive_score;
pub(crate) mod gru_cell;
mod gru_sequence;
mod memory_products;

pub use additive_score::additive_score;
pub use gru_cell::gru_cell;
pub use gru_sequence::gru_sequence;
pub use memory_products::{dot_scores, weighted_sum};

/// How the encoder's products are computed: tracked for gradients (training), or
/// detached for inference, weight-major (see `crate::kernels::detached_product`).
#[derive(Debug, Clone, Copy)]
pub enum Products {
    Tracked,
    Detached,
}

impl Products {
    pub fn is_detached(self) -> bool {
        matches!(self, Self::Detached)
    }
}
