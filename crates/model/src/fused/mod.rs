//! Fused CPU kernels with hand-written backward passes for the hot spots of training:
//! the GRU cell's gates, Bahdanau's additive scores and the cross-entropy over the
//! vocabulary. Each replaces a dozen small candle ops (and their allocations) with one
//! pass forward and one backward. On other devices the composed candle ops are used;
//! the tests check that both paths agree.

mod additive_score;
mod best_token;
mod cross_entropy;
#[allow(clippy::excessive_precision)]
pub mod fast_math;
mod gru_cell;
mod gru_sequence;
pub(crate) mod matmul;
mod shared_product;

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};

pub use additive_score::additive_score;
pub use best_token::{best_tokens, best_tokens_of_output};
pub use cross_entropy::{nll_from_logits, output_nll};
pub use gru_cell::gru_cell;
pub use gru_sequence::gru_sequence;
pub use shared_product::SharedProduct;

/// The contiguous f32 values a CPU storage holds under `layout`.
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("{what}: expected f32 values") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{what}: expected a contiguous tensor"),
    }
}

/// Runs `f` over a CPU tensor's f32 values (made contiguous first).
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => Ok(f(f32_slice(s, layout, "fused op")?)),
        _ => candle_core::bail!("fused ops run on the CPU only"),
    }
}

/// A 2-D tensor transposed into a new contiguous, detached tensor; on the CPU copied in
/// tiles (candle's strided copy of a transposed view goes element by element).
///
/// # Shapes
/// `t: (R, C)` → `(C, R)`
pub fn transposed(t: &Tensor) -> Result<Tensor> {
    let (r, c) = t.dims2()?;
    if !t.device().is_cpu() {
        return t.t()?.contiguous().map(|t| t.detach());
    }
    let v = with_f32(t, |x| matmul::transpose(x, r, c))?;
    Tensor::from_vec(v, (c, r), t.device())
}

/// `x Wᵀ + bias` for inference, computed weight-major: `(W xᵀ)ᵀ`. For the GRU's shapes
/// at 32 rows this runs 1.1–1.7× faster than `x` times a contiguous `Wᵀ` (gemm then packs
/// nothing of the weight), transpose included; at one row it is the same product.
///
/// # Shapes
/// `x: (B, K)`, `w: (N, K)`, `bias: (N)` → `(B, N)`
pub fn product_weight_major(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (b, k) = x.dims2()?;
    let (n, wk) = w.dims2()?;
    if wk != k || bias.is_some_and(|t| t.dims1().ok() != Some(n)) {
        candle_core::bail!("weight-major product: x (B, K), weight (N, K) and bias (N) disagree");
    }
    if !x.device().is_cpu() {
        let y = x.matmul(&w.t()?)?;
        return match bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        };
    }
    let mut y = with_f32(x, |x| with_f32(w, |w| matmul::weight_major(x, b, k, w, n)))??;
    if let Some(bias) = bias {
        with_f32(bias, |bias| matmul::add_to_rows(&mut y, bias))?;
    }
    Tensor::from_vec(y, (b, n), x.device())
}

/// One helper thread for inference on a single sentence (the vocabulary product's other
/// half, the decoder's `W_hh h`), started on first use; `None` if the system would not
/// start it, and the work then stays on the calling thread.
pub fn helper_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().num_threads(1).build().ok()).as_ref()
}

use fast_math::sigmoid;

#[cfg(test)]
mod tests;
