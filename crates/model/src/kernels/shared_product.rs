//! A linear map applied once per step of a recurrence, whose weight gradient is formed
//! once per batch.
//!
//! Through candle's own ops, every step's `x Wᵀ + b` makes a weight-sized gradient in
//! backward (a zero-filled product, then an add into the running sum): for the decoder,
//! one per target position for each of its per-step weights. Here each step's product
//! takes the weight detached, and its backward only records `(x, dy)`. The gradient
//! `Σ_t dy_tᵀ x_t` (and `Σ_t dy_t` for the bias) is one matrix product over all recorded
//! rows, handed to the variables by an *anchor* op placed on the recurrence's initial
//! state: every step depends on that state, so candle runs the anchor's backward after
//! every step's.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::matmul::{add_to_rows, column_sums, linear_product, matmul, View};
use super::{f32_slice, with_f32};

/// What the steps' backward passes leave for the anchor.
#[derive(Default)]
struct Log {
    /// Products made in forward and backward passes seen so far.
    made: usize,
    done: usize,
    /// Each step's input `x` `(B, K)` and incoming gradient `dy` `(B, N)`.
    steps: Vec<(Tensor, Tensor)>,
}

/// `x Wᵀ + b` for every step of one recurrence; see the module documentation.
#[derive(Clone)]
pub struct SharedProduct {
    weight: Tensor,
    bias: Tensor,
    /// `Wᵀ` `(K, N)` copied contiguous: at batch 64 a product with it runs about twice as
    /// fast as with a transposed view (nothing to pack); backward uses `W` as it is.
    detached_weight_t: Tensor,
    detached_bias: Tensor,
    log: Arc<Mutex<Log>>,
}

impl std::fmt::Debug for SharedProduct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedProduct").field("weight", &self.weight.shape()).finish_non_exhaustive()
    }
}

impl SharedProduct {
    /// # Shapes
    /// `weight: (N, K)`, `bias: (N)`
    pub fn new(weight: &Tensor, bias: &Tensor) -> Result<Self> {
        let (n, _) = weight.dims2()?;
        if bias.dims1()? != n {
            candle_core::bail!("shared-product: weight (N, K) and bias (N) disagree");
        }
        Ok(Self {
            weight: weight.clone(),
            bias: bias.clone(),
            detached_weight_t: super::transposed(weight)?,
            detached_bias: bias.detach().contiguous()?,
            log: Arc::new(Mutex::new(Log::default())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Returns `state` unchanged, made to carry this weight's gradient in backward. Every
    /// [`Self::forward`] input must depend on the returned tensor.
    ///
    /// # Shapes
    /// `state: (B, H)` → `(B, H)`
    pub fn anchor(&self, state: &Tensor) -> Result<Tensor> {
        state.contiguous()?.apply_op3(&self.weight, &self.bias, Anchor { log: self.log.clone() })
    }

    /// `x Wᵀ + b`.
    ///
    /// # Shapes
    /// `x: (B, K)` → `(B, N)`
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, k) = x.dims2()?;
        if self.weight.dim(1)? != k {
            candle_core::bail!("shared-product: input has {k} columns, the weight {}", self.weight.dim(1)?);
        }
        self.lock().made += 1;
        let step = Step { log: self.log.clone(), weight_t: self.detached_weight_t.clone() };
        x.contiguous()?.apply_op3(&self.weight.detach(), &self.detached_bias, step)
    }
}

/// One step's product `x Wᵀ + b`; backward records `(x, dy)` and returns `dx = dy W`
/// only. Both products run weight-major, `(W xᵀ)ᵀ` and `(Wᵀ dyᵀ)ᵀ` (see
/// [`super::matmul::linear_product`]).
struct Step {
    log: Arc<Mutex<Log>>,
    /// `Wᵀ` `(K, N)`, contiguous, for `dx`.
    weight_t: Tensor,
}

impl CustomOp3 for Step {
    fn name(&self) -> &'static str {
        "shared-product-step"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, k) = l1.shape().dims2()?;
        let (n, _) = l2.shape().dims2()?;
        let (x, w, bias) = (f32_slice(s1, l1, "x")?, f32_slice(s2, l2, "weight")?, f32_slice(s3, l3, "bias")?);
        let mut y = linear_product(x, b, k, w, n);
        add_to_rows(&mut y, bias);
        Ok((CpuStorage::F32(y), Shape::from((b, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, k) = x.dims2()?;
        let (n, _) = w.dims2()?;
        let grad = grad.contiguous()?;
        // dx = dy W, weight-major over Wᵀ: (Wᵀ dyᵀ)ᵀ.
        let dx = with_f32(&grad, |g| with_f32(&self.weight_t, |wt| linear_product(g, b, n, wt, k)))??;
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.done += 1;
        log.steps.push((x.clone(), grad));
        Ok((Some(Tensor::from_vec(dx, (b, k), x.device())?), None, None))
    }
}

/// Identity on the recurrence's initial state; backward hands the weight and bias their
/// gradients summed over every recorded step.
struct Anchor {
    log: Arc<Mutex<Log>>,
}

impl CustomOp3 for Anchor {
    fn name(&self) -> &'static str {
        "shared-product-anchor"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        _s2: &CpuStorage,
        _l2: &Layout,
        _s3: &CpuStorage,
        _l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(f32_slice(s1, l1, "state")?.to_vec()), l1.shape().clone()))
    }

    fn bwd(
        &self,
        state: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, k) = w.dims2()?;
        let log = std::mem::take(&mut *self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if log.done != log.made {
            candle_core::bail!(
                "shared-product: {} of {} step products reached backward before the anchor",
                log.done,
                log.made
            );
        }
        let rows: usize = log.steps.iter().map(|(x, _)| x.dim(0).unwrap_or(0)).sum();
        let mut xs = Vec::with_capacity(rows * k);
        let mut dys = Vec::with_capacity(rows * n);
        for (x, dy) in &log.steps {
            with_f32(x, |v| xs.extend_from_slice(v))?;
            with_f32(dy, |v| dys.extend_from_slice(v))?;
        }
        if xs.len() != rows * k || dys.len() != rows * n {
            candle_core::bail!("shared-product: recorded steps disagree with the weight's shape");
        }
        let mut dw = vec![0f32; n * k];
        matmul(&mut dw, View::rows(&dys, rows, n).t(), View::rows(&xs, rows, k), false);
        let db = column_sums(&dys, n);
        let dev = state.device();
        Ok((Some(grad.clone()), Some(Tensor::from_vec(dw, (n, k), dev)?), Some(Tensor::from_vec(db, n, dev)?)))
    }
}
