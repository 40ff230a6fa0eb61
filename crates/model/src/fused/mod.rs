//! Fused CPU kernels with hand-written backward passes for the hot spots of training:
//! the GRU cell's gates, Bahdanau's additive scores, the attention context and dot scores,
//! the cross-entropy over the vocabulary, and the Transformer's attention, layer norm, softmax and biased products. Each replaces a dozen small candle ops (and their allocations) with one
//! pass forward and one backward. On other devices the composed candle ops are used;
//! the tests check that both paths agree. Inference's pieces live here too: the greedy
//! pick over the vocabulary, detached weight-major products, and the AVX-512 builds of
//! element-wise kernels (`simd`).

mod additive_score;
mod attention;
mod best_token;
mod cross_entropy;
#[allow(clippy::excessive_precision)]
pub mod fast_math;
pub(crate) mod gru_cell;
mod gru_sequence;
mod layer_norm;
mod linear;
pub(crate) mod matmul;
mod memory_products;
mod shared_product;
pub(crate) mod simd;
mod softmax;

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};

pub use additive_score::additive_score;
pub use attention::{attention, attention_composed, split_heads, KeyMask, MASKED};
pub use best_token::{best_tokens, ColumnPick};
pub use cross_entropy::{nll_from_logits, output_nll};
pub use gru_cell::gru_cell;
pub use gru_sequence::gru_sequence;
pub use layer_norm::{layer_norm, layer_norm_composed, LAYER_NORM_EPS};
pub use linear::{linear, linear_relu};
pub use memory_products::{dot_scores, weighted_sum};
pub use shared_product::SharedProduct;
pub use softmax::softmax;

/// The contiguous f32 values a CPU storage holds under `layout`.
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("{what}: expected f32 values") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{what}: expected a contiguous tensor"),
    }
}

/// Runs `f` over a CPU tensor's f32 values (made contiguous first).
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => Ok(f(f32_slice(s, layout, "fused op")?)),
        _ => candle_core::bail!("fused ops run on the CPU only"),
    }
}

/// Runs `f` over the f32 values of several contiguous CPU tensors at once, read in place
/// (no copies: greedy decoding reads every decoder weight this way at each call).
pub(crate) fn with_f32_all<R>(tensors: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> R) -> Result<R> {
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut values = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        match &**storage {
            Storage::Cpu(s) => values.push(f32_slice(s, layout, "host values")?),
            _ => candle_core::bail!("host values: expected CPU tensors"),
        }
    }
    Ok(f(&values))
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

/// How the encoder's products are computed: tracked for gradients (training), or
/// detached for inference, weight-major (see [`detached_product`]) and, with a helper
/// thread, split with it by weight rows.
#[derive(Debug, Clone, Copy)]
pub enum Products {
    Tracked,
    Detached(Option<&'static rayon::ThreadPool>),
}

impl Products {
    pub fn is_detached(self) -> bool {
        matches!(self, Self::Detached(_))
    }

    pub fn helper(self) -> Option<&'static rayon::ThreadPool> {
        match self {
            Self::Detached(h) => h,
            Self::Tracked => None,
        }
    }
}

/// `x Wᵀ + bias` for inference, without gradients: on the CPU computed weight-major,
/// `(W xᵀ)ᵀ`, so that gemm packs nothing of the weight (packing the encoder's weights
/// took a quarter of encoding one sentence); with a `helper` thread, split with it.
///
/// # Shapes
/// `x: (B, K)`, `w: (N, K)`, `bias: (N)` → `(B, N)`
pub fn detached_product(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    helper: Option<&rayon::ThreadPool>,
) -> Result<Tensor> {
    let (b, k) = x.dims2()?;
    let (n, wk) = w.dims2()?;
    if wk != k || bias.is_some_and(|t| t.dims1().ok() != Some(n)) {
        candle_core::bail!("detached product: x (B, K), weight (N, K) and bias (N) disagree");
    }
    if !x.device().is_cpu() {
        let y = x.matmul(&w.t()?)?;
        return Ok(match bias {
            Some(bias) => y.broadcast_add(bias)?,
            None => y,
        }
        .detach());
    }
    let mut y = with_f32(x, |x| with_f32(w, |w| matmul::linear_product_with(x, b, k, w, n, helper)))??;
    if let Some(bias) = bias {
        with_f32(bias, |bias| matmul::add_to_rows(&mut y, bias))?;
    }
    Tensor::from_vec(y, (b, n), x.device())
}

/// One helper thread for greedy decoding of a few sentences (see [`crate::greedy`]),
/// started on first use; `None` if the system would not
/// start it, and the work then stays on the calling thread.
pub fn helper_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().num_threads(1).build().ok()).as_ref()
}

use fast_math::sigmoid;

#[cfg(test)]
mod tests;
