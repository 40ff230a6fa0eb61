//! Shared CPU kernels with hand-written backward passes and the inference pieces both
//! families use: matrix products (`matmul`, biased `linear` products, products shared over
//! a recurrence's steps), the output layer's cross-entropy over the vocabulary, the greedy
//! pick over it, and the AVX-512 builds and fast approximations of element-wise math
//! (`simd`, `fast_math`). Each replaces a dozen small candle ops (and their allocations)
//! with one pass forward and one backward; on other devices the composed candle ops are
//! used, and the tests check that both paths agree. A family's own kernels live in its
//! folder (`gru/kernels`, `transformer/kernels`).

mod best_token;
mod cross_entropy;
#[allow(clippy::excessive_precision)]
pub mod fast_math;
mod linear;
pub(crate) mod matmul;
pub(crate) mod panels;
mod shared_product;
pub(crate) mod simd;

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};

pub use best_token::{best_tokens, ColumnPick};
pub use cross_entropy::{nll_from_logits, output_nll};
pub use linear::{linear, linear_relu};
pub use shared_product::SharedProduct;

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

/// `x Wᵀ + bias` for inference, without gradients: on the CPU computed weight-major,
/// `(W xᵀ)ᵀ`, so that gemm packs nothing of the weight (packing the encoder's weights
/// took a quarter of encoding one sentence).
///
/// # Shapes
/// `x: (B, K)`, `w: (N, K)`, `bias: (N)` → `(B, N)`
pub fn detached_product(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
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
    let mut y = with_f32(x, |x| with_f32(w, |w| matmul::linear_product(x, b, k, w, n)))??;
    if let Some(bias) = bias {
        with_f32(bias, |bias| matmul::add_to_rows(&mut y, bias))?;
    }
    Tensor::from_vec(y, (b, n), x.device())
}

#[cfg(test)]
mod tests;
