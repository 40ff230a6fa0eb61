//! A GRU layer with PyTorch's parameter names, gate order (r, z, n) and equations.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use super::kernels::Products;
use crate::error::{expect_dims, Result};
use crate::kernels::SharedProduct;

/// One GRU layer in one direction.
///
/// Parameters (PyTorch names): `weight_ih_l{k}{suffix}` `(3H, I)`, `weight_hh_l{k}{suffix}`
/// `(3H, H)`, `bias_ih_l{k}{suffix}` and `bias_hh_l{k}{suffix}` `(3H)`, all initialised
/// uniform in ±1/√H as `torch.nn.GRU` does.
#[derive(Debug, Clone)]
pub struct GruLayer {
    b_ih: Tensor,
    b_hh: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    /// Transposed views made once (see [`crate::params::Linear`] for why).
    w_ih_t: Tensor,
    w_hh_t: Tensor,
    /// Per-step products with their weight gradients formed once (see
    /// [`crate::kernels::SharedProduct`]), while training on the CPU.
    shared: Option<(SharedProduct, SharedProduct)>,
    /// Inference only: per-step products without gradients ([`Self::detached`]).
    detached: bool,
    hidden: usize,
    input: usize,
}

impl GruLayer {
    /// `layer` is the `l{k}` index; `reverse` adds PyTorch's `_reverse` suffix.
    pub fn new(input: usize, hidden: usize, layer: usize, reverse: bool, vb: VarBuilder) -> Result<Self> {
        let b = 1.0 / (hidden as f64).sqrt();
        let init = Init::Uniform { lo: -b, up: b };
        let sfx = format!("l{layer}{}", if reverse { "_reverse" } else { "" });
        let w_ih = vb.get_with_hints((3 * hidden, input), &format!("weight_ih_{sfx}"), init)?;
        let w_hh = vb.get_with_hints((3 * hidden, hidden), &format!("weight_hh_{sfx}"), init)?;
        Ok(Self {
            w_ih_t: w_ih.t()?,
            w_ih,
            w_hh_t: w_hh.t()?,
            w_hh,
            b_ih: vb.get_with_hints(3 * hidden, &format!("bias_ih_{sfx}"), init)?,
            b_hh: vb.get_with_hints(3 * hidden, &format!("bias_hh_{sfx}"), init)?,
            shared: None,
            detached: false,
            hidden,
            input,
        })
    }

    /// A copy whose per-step products ([`Self::project_step`], [`Self::step`]) form their
    /// weight gradients once; the two products are returned for their anchors.
    pub fn shared(&self) -> Result<(Self, [SharedProduct; 2])> {
        let ih = SharedProduct::new(&self.w_ih, &self.b_ih)?;
        let hh = SharedProduct::new(&self.w_hh, &self.b_hh)?;
        Ok((Self { shared: Some((ih.clone(), hh.clone())), ..self.clone() }, [ih, hh]))
    }

    /// A copy for inference whose per-step products carry no gradient and pack nothing of
    /// the weights (see [`crate::kernels::detached_product`]).
    pub fn detached(&self) -> Self {
        Self { detached: true, shared: None, ..self.clone() }
    }

    /// `weight_ih`, `bias_ih`, `weight_hh`, `bias_hh`
    pub(crate) fn params(&self) -> [&Tensor; 4] {
        [&self.w_ih, &self.b_ih, &self.w_hh, &self.b_hh]
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Input-side gate pre-activations `W_ih x + b_ih` for every position in one matmul;
    /// detached `products` (inference) compute them without gradients (see
    /// [`crate::kernels::detached_product`]).
    ///
    /// # Shapes
    /// `x: (B, T, I)` → `(B, T, 3H)`
    pub fn input_projection(&self, x: &Tensor, products: Products) -> Result<Tensor> {
        let (b, t, i) = x.dims3()?;
        expect_dims("GRU input", x, &[b, t, self.input])?;
        let flat = x.reshape((b * t, i))?;
        let gi = if products.is_detached() {
            crate::kernels::detached_product(&flat, &self.w_ih, Some(&self.b_ih))?
        } else {
            flat.matmul(&self.w_ih_t)?.broadcast_add(&self.b_ih)?
        };
        Ok(gi.reshape((b, t, 3 * self.hidden))?)
    }

    /// The whole recurrence from a zero state, fused into one op on the CPU.
    ///
    /// # Shapes
    /// `gi: (B, S, 3H)` from [`Self::input_projection`], `mask: (B, S)` →
    /// `Some((B, S + 1, H))`: outputs, then the final state; `None` on other devices.
    pub fn fused_sequence(
        &self,
        gi: &Tensor,
        mask: Option<&Tensor>,
        reverse: bool,
        products: Products,
    ) -> Result<Option<Tensor>> {
        if !gi.device().is_cpu() {
            return Ok(None);
        }
        Ok(Some(super::kernels::gru_sequence(gi, &self.w_hh, &self.b_hh, mask, reverse, products)?))
    }

    /// Input-side pre-activations for one step.
    ///
    /// # Shapes
    /// `x: (B, I)` → `(B, 3H)`
    pub fn project_step(&self, x: &Tensor) -> Result<Tensor> {
        if let Some((ih, _)) = &self.shared {
            return Ok(ih.forward(x)?);
        }
        if self.detached {
            return Ok(crate::kernels::detached_product(x, &self.w_ih, Some(&self.b_ih))?);
        }
        Ok(x.matmul(&self.w_ih_t)?.broadcast_add(&self.b_ih)?)
    }

    /// One GRU update from precomputed input pre-activations `gi`:
    /// `r = σ(gi_r + gh_r)`, `z = σ(gi_z + gh_z)`, `n = tanh(gi_n + r ⊙ gh_n)`,
    /// `h' = (1 − z) ⊙ n + z ⊙ h` with `gh = W_hh h + b_hh`.
    ///
    /// # Shapes
    /// `gi: (B, 3H)`, `h: (B, H)` → `(B, H)`
    pub fn step(&self, gi: &Tensor, h: &Tensor) -> Result<Tensor> {
        self.step_with(gi, &self.hidden_projection(h)?, h)
    }

    /// The hidden-side pre-activations `W_hh h + b_hh` of one step.
    ///
    /// # Shapes
    /// `h: (B, H)` → `(B, 3H)`
    pub fn hidden_projection(&self, h: &Tensor) -> Result<Tensor> {
        expect_dims("GRU hidden", h, &[h.dim(0)?, self.hidden])?;
        Ok(match &self.shared {
            Some((_, hh)) => hh.forward(h)?,
            None if self.detached => crate::kernels::detached_product(h, &self.w_hh, Some(&self.b_hh))?,
            None => h.matmul(&self.w_hh_t)?.broadcast_add(&self.b_hh)?,
        })
    }

    /// [`Self::step`] with `gh` from [`Self::hidden_projection`] computed beforehand.
    ///
    /// # Shapes
    /// `gi: (B, 3H)`, `gh: (B, 3H)`, `h: (B, H)` → `(B, H)`
    pub fn step_with(&self, gi: &Tensor, gh: &Tensor, h: &Tensor) -> Result<Tensor> {
        let hs = self.hidden;
        let (b, _) = h.dims2()?;
        expect_dims("GRU gates", gi, &[b, 3 * hs])?;
        expect_dims("GRU hidden-side gates", gh, &[b, 3 * hs])?;
        expect_dims("GRU hidden", h, &[b, hs])?;
        Ok(super::kernels::gru_cell(gi, gh, h)?)
    }
}
