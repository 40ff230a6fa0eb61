//! Dropout with masks drawn from the run's own seeded generator.
//!
//! On the CPU, dropout is one op that keeps its mask as one byte per element: multiplying
//! by a mask tensor instead keeps the mask and the product for the backward pass, and
//! candle's backward then also computes a gradient for the mask (a constant) and holds it
//! to the end. [`residual_dropout`] folds the residual sum in as well, so a Transformer
//! sublayer's dropout keeps nothing but its output. Other devices multiply by a mask
//! tensor; both give the same values.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use s2s_data::Rng;

use crate::error::Result;
use crate::kernels::f32_slice;

/// Zeroes each element with probability `p` and scales the rest by `1/(1-p)`, as
/// `torch.nn.Dropout` does in training mode. `rng = None` (evaluation) is the identity.
pub fn dropout(x: &Tensor, p: f64, rng: Option<&mut Rng>) -> Result<Tensor> {
    let Some(mask) = Mask::draw(x, p, rng) else { return Ok(x.clone()) };
    if !x.device().is_cpu() {
        return Ok((x * mask.tensor(x)?)?);
    }
    Ok(x.contiguous()?.apply_op1(DropoutOp(mask))?)
}

/// `x + dropout(y, p)`: a residual connection around a sublayer's output `y`, with the
/// same mask draws as [`dropout`].
pub fn residual_dropout(x: &Tensor, y: &Tensor, p: f64, rng: Option<&mut Rng>) -> Result<Tensor> {
    let Some(mask) = Mask::draw(y, p, rng) else { return Ok((x + y)?) };
    if x.shape() != y.shape() {
        return Err(crate::ModelError::Shape {
            what: "residual dropout",
            expected: format!("{:?}", x.dims()),
            got: format!("{:?}", y.dims()),
        });
    }
    if !x.device().is_cpu() {
        return Ok((x + (y * mask.tensor(y)?)?)?);
    }
    Ok(x.contiguous()?.apply_op2(&y.contiguous()?, ResidualDropoutOp(mask))?)
}

/// Which elements survive, and their scale.
struct Mask {
    keep: Vec<bool>,
    scale: f32,
}

impl Mask {
    /// One draw per element of `x`, in order; `None` when nothing is dropped.
    fn draw(x: &Tensor, p: f64, rng: Option<&mut Rng>) -> Option<Self> {
        let rng = rng?;
        if p <= 0.0 {
            return None;
        }
        let scale = (1.0 / (1.0 - p)) as f32;
        let p = p as f32;
        Some(Self { keep: (0..x.elem_count()).map(|_| rng.next_f32() >= p).collect(), scale })
    }

    /// Each element's factor: the scale, or 0 where dropped.
    fn factor(&self, i: usize) -> f32 {
        if self.keep[i] {
            self.scale
        } else {
            0.0
        }
    }

    fn tensor(&self, like: &Tensor) -> Result<Tensor> {
        let v: Vec<f32> = (0..self.keep.len()).map(|i| self.factor(i)).collect();
        Ok(Tensor::from_vec(v, like.shape(), like.device())?)
    }

    /// `values ⊙ mask`.
    fn apply(&self, values: &[f32]) -> Vec<f32> {
        values.iter().enumerate().map(|(i, &v)| v * self.factor(i)).collect()
    }

    fn check(&self, n: usize) -> candle_core::Result<()> {
        if n != self.keep.len() {
            candle_core::bail!("dropout: a mask of {} elements for {n}", self.keep.len());
        }
        Ok(())
    }
}

struct DropoutOp(Mask);

impl CustomOp1 for DropoutOp {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "dropout input")?;
        self.0.check(x.len())?;
        Ok((CpuStorage::F32(self.0.apply(x)), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let g = masked_grad(&self.0, grad)?;
        Ok(Some(g))
    }
}

struct ResidualDropoutOp(Mask);

impl CustomOp2 for ResidualDropoutOp {
    fn name(&self) -> &'static str {
        "residual-dropout"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, y) = (f32_slice(s1, l1, "residual")?, f32_slice(s2, l2, "sublayer output")?);
        self.0.check(x.len())?;
        self.0.check(y.len())?;
        let out = x.iter().zip(self.0.apply(y)).map(|(&a, b)| a + b).collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _y: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.clone()), Some(masked_grad(&self.0, grad)?)))
    }
}

/// `grad ⊙ mask`.
fn masked_grad(mask: &Mask, grad: &Tensor) -> candle_core::Result<Tensor> {
    let g = crate::kernels::with_f32(grad, |g| mask.apply(g))?;
    Tensor::from_vec(g, grad.shape(), grad.device())
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    fn var(n: usize, c: f32) -> Var {
        let v: Vec<f32> = (0..n).map(|i| (0.7 * i as f32 + c).sin()).collect();
        Var::from_tensor(&Tensor::from_vec(v, (3, n / 3), &Device::Cpu).expect("t")).expect("var")
    }

    /// The ops give the values and gradients of multiplying by the mask tensor, bit for
    /// bit, from the same draws.
    #[test]
    fn fused_dropout_equals_multiplying_by_the_mask() {
        let (x, y) = (var(60, 0.3), var(60, 1.1));
        let w = Tensor::arange(0f32, 60.0, &Device::Cpu).expect("w").reshape((3, 20)).expect("r");
        let mut rng = Rng::new(4);
        let fused = residual_dropout(x.as_tensor(), y.as_tensor(), 0.3, Some(&mut rng)).expect("fused");
        let single = dropout(y.as_tensor(), 0.3, Some(&mut rng)).expect("single");
        let mut rng = Rng::new(4);
        let m1 = Mask::draw(y.as_tensor(), 0.3, Some(&mut rng)).expect("mask").tensor(y.as_tensor()).expect("t");
        let m2 = Mask::draw(y.as_tensor(), 0.3, Some(&mut rng)).expect("mask").tensor(y.as_tensor()).expect("t");
        let composed = (x.as_tensor() + (y.as_tensor() * &m1).expect("m")).expect("add");
        let composed_single = (y.as_tensor() * &m2).expect("m");
        let bits = |t: &Tensor| -> Vec<u32> {
            t.flatten_all().expect("f").to_vec1::<f32>().expect("v").iter().map(|v| v.to_bits()).collect()
        };
        assert_eq!(bits(&fused), bits(&composed));
        assert_eq!(bits(&single), bits(&composed_single));
        let dropped = bits(&single).iter().filter(|&&b| b == 0 || b == 0x8000_0000).count();
        assert!(dropped > 5 && dropped < 35, "{dropped} of 60 dropped at p = 0.3");
        for (a, b) in [(&fused, &composed), (&single, &composed_single)] {
            let ga = (a * &w).expect("m").sum_all().expect("s").backward().expect("b");
            let gb = (b * &w).expect("m").sum_all().expect("s").backward().expect("b");
            for v in [&x, &y] {
                if let (Some(p), Some(q)) = (ga.get(v.as_tensor()), gb.get(v.as_tensor())) {
                    assert_eq!(bits(p), bits(q));
                }
            }
        }
        // Evaluation and p = 0 change nothing.
        assert_eq!(bits(&dropout(y.as_tensor(), 0.3, None).expect("eval")), bits(y.as_tensor()));
        let sum = residual_dropout(x.as_tensor(), y.as_tensor(), 0.0, Some(&mut rng)).expect("p0");
        assert_eq!(bits(&sum), bits(&(x.as_tensor() + y.as_tensor()).expect("add")));
    }
}
