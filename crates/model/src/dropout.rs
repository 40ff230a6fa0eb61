//! Dropout with masks drawn from the run's own seeded generator.

use candle_core::Tensor;
use s2s_data::Rng;

use crate::error::Result;

/// Zeroes each element with probability `p` and scales the rest by `1/(1-p)`, as
/// `torch.nn.Dropout` does in training mode. `rng = None` (evaluation) is the identity.
pub fn dropout(x: &Tensor, p: f64, rng: Option<&mut Rng>) -> Result<Tensor> {
    let Some(rng) = rng else { return Ok(x.clone()) };
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let scale = (1.0 / (1.0 - p)) as f32;
    let p = p as f32;
    let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.next_f32() < p { 0.0 } else { scale }).collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
    Ok((x * mask)?)
}
