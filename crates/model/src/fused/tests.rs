//! The fused kernels against candle's composed ops: values and gradients.

use candle_core::{Device, Tensor, Var, D};
use s2s_data::Rng;

use super::*;

fn random(shape: &[usize], rng: &mut Rng, scale: f32) -> Var {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.uniform(-scale, scale)).collect();
    Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).expect("t")).expect("var")
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).expect("sub").abs().expect("abs").flatten_all().expect("f").max(0).expect("max").to_scalar().expect("s")
}

/// Compares forward values and the gradients of `sum(out * weights)` for every input.
fn check(inputs: &[Var], fused: impl Fn(&[Tensor]) -> Tensor, composed: impl Fn(&[Tensor]) -> Tensor) {
    let ts: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let (a, b) = (fused(&ts), composed(&ts));
    assert!(max_diff(&a, &b) < 1e-5, "forward differs by {}", max_diff(&a, &b));
    let w = Tensor::arange(0f32, a.elem_count() as f32, &Device::Cpu).expect("w").reshape(a.shape()).expect("r");
    let w = (w.sin().expect("sin") + 1.5).expect("add");
    let ga = (&a * &w).expect("m").sum_all().expect("s").backward().expect("bw");
    let gb = (&b * &w).expect("m").sum_all().expect("s").backward().expect("bw");
    for (i, v) in inputs.iter().enumerate() {
        let (x, y) = (ga.get(v.as_tensor()), gb.get(v.as_tensor()));
        if let (Some(x), Some(y)) = (x, y) {
            assert!(max_diff(x, y) < 1e-5, "gradient {i} differs by {}", max_diff(x, y));
        }
    }
}

#[test]
fn gru_cell_matches_composed() {
    let mut rng = Rng::new(1);
    let (b, h) = (3, 5);
    let vars = [random(&[b, 3 * h], &mut rng, 2.0), random(&[b, 3 * h], &mut rng, 2.0), random(&[b, h], &mut rng, 1.0)];
    check(
        &vars,
        |t| gru_cell(&t[0], &t[1], &t[2]).expect("fused"),
        |t| gru_cell::composed(&t[0], &t[1], &t[2], h).expect("composed"),
    );
}

#[test]
fn additive_score_matches_composed() {
    let mut rng = Rng::new(2);
    let vars = [random(&[2, 4, 6], &mut rng, 1.5), random(&[2, 6], &mut rng, 1.5), random(&[6], &mut rng, 1.0)];
    check(
        &vars,
        |t| additive_score(&t[0], &t[1], &t[2]).expect("fused"),
        |t| {
            let e = t[0].broadcast_add(&t[1].unsqueeze(1).expect("u")).expect("a").tanh().expect("t");
            e.broadcast_mul(&t[2]).expect("m").sum(D::Minus1).expect("s")
        },
    );
}

#[test]
fn cross_entropy_matches_log_softmax_gather() {
    let mut rng = Rng::new(3);
    let vars = [random(&[5, 7], &mut rng, 4.0), random(&[7], &mut rng, 1.0)];
    let targets = Tensor::new(&[0u32, 6, 3, 3, 1], &Device::Cpu).expect("t");
    let weights = Tensor::new(&[1f32, 1., 0., 1., 1.], &Device::Cpu).expect("w");
    check(
        &vars,
        |t| nll_from_logits(&t[0], &t[1], &targets, &weights).expect("fused"),
        |t| {
            let z = t[0].broadcast_add(&t[1]).expect("bias");
            let logp = candle_nn::ops::log_softmax(&z, D::Minus1).expect("ls");
            let picked = logp.gather(&targets.unsqueeze(1).expect("u"), 1).expect("g").squeeze(1).expect("s");
            (picked.neg().expect("n") * &weights).expect("m")
        },
    );
}
