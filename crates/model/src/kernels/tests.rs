//! The fused kernels against candle's composed ops: values and gradients.

use candle_core::{Device, Tensor, Var, D};
use s2s_data::Rng;

use super::*;
use crate::gru::kernels::{additive_score, dot_scores, gru_cell, gru_sequence, weighted_sum, Products};
use crate::transformer::kernels::{attention, attention_composed, layer_norm, layer_norm_composed, softmax, KeyMask};

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
        assert_eq!(x.is_some(), y.is_some(), "gradient {i} is missing on one side");
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
fn memory_products_match_matmul() {
    let mut rng = Rng::new(4);
    let vars = [random(&[3, 5], &mut rng, 1.0), random(&[3, 5, 11], &mut rng, 1.5)];
    check(
        &vars,
        |t| weighted_sum(&t[0], &t[1]).expect("fused"),
        |t| t[0].unsqueeze(1).expect("u").matmul(&t[1]).expect("mm").squeeze(1).expect("s"),
    );
    let vars = [random(&[3, 5, 11], &mut rng, 1.5), random(&[3, 11], &mut rng, 1.0)];
    check(
        &vars,
        |t| dot_scores(&t[0], &t[1]).expect("fused"),
        |t| t[0].matmul(&t[1].unsqueeze(D::Minus1).expect("u")).expect("mm").squeeze(D::Minus1).expect("s"),
    );
}

#[test]
fn output_layer_and_cross_entropy_match_log_softmax_gather() {
    let mut rng = Rng::new(3);
    let vars = [random(&[5, 4], &mut rng, 2.0), random(&[7, 4], &mut rng, 1.0), random(&[7], &mut rng, 1.0)];
    let targets = Tensor::new(&[0u32, 6, 3, 3, 1], &Device::Cpu).expect("t");
    let weights = Tensor::new(&[1f32, 1., 0., 1., 1.], &Device::Cpu).expect("w");
    check(
        &vars,
        |t| output_nll(&t[0], &t[1], &t[2], &targets, &weights, 0.0).expect("fused"),
        |t| {
            let z = t[0].matmul(&t[1].t().expect("t")).expect("mm").broadcast_add(&t[2]).expect("bias");
            let logp = candle_nn::ops::log_softmax(&z, D::Minus1).expect("ls");
            let picked = logp.gather(&targets.unsqueeze(1).expect("u"), 1).expect("g").squeeze(1).expect("s");
            (picked.neg().expect("n") * &weights).expect("m")
        },
    );
    let bad = Tensor::new(&[0u32, 6, 3, 3, 7], &Device::Cpu).expect("t");
    assert!(output_nll(vars[0].as_tensor(), vars[1].as_tensor(), vars[2].as_tensor(), &bad, &weights, 0.0).is_err());
}

#[test]
fn label_smoothing_fused_matches_composed() {
    let mut rng = Rng::new(4);
    let vars = [random(&[5, 4], &mut rng, 2.0), random(&[7, 4], &mut rng, 1.0), random(&[7], &mut rng, 1.0)];
    let targets = Tensor::new(&[0u32, 6, 3, 3, 1], &Device::Cpu).expect("t");
    let weights = Tensor::new(&[1f32, 1., 0., 1., 1.], &Device::Cpu).expect("w");
    check(
        &vars,
        |t| output_nll(&t[0], &t[1], &t[2], &targets, &weights, 0.1).expect("fused"),
        |t| {
            let z = t[0].matmul(&t[1].t().expect("t")).expect("mm");
            nll_from_logits(&z, &t[2], &targets, &weights, 0.1).expect("composed")
        },
    );
    assert!(output_nll(vars[0].as_tensor(), vars[1].as_tensor(), vars[2].as_tensor(), &targets, &weights, 1.0).is_err());
}

/// Expected values from PyTorch 2.15: `F.cross_entropy(z, t, label_smoothing=0.1,
/// reduction='none')` and the gradient of its sum, for these logits.
#[test]
fn label_smoothing_matches_pytorch() {
    let z = [[1.0f32, -0.5, 2.0, 0.25], [0.0, 3.0, -1.0, 0.5], [-2.0, 0.5, 0.5, 1.5]];
    let expected = [0.615_981_2f32, 3.077_425_2, 0.706_192_3];
    let grad = [
        [0.201_563_2f32, 0.025_553_09, -0.309_137_25, 0.082_020_89],
        [-0.881_713_9, 0.844_423_2, -0.009_075_956, 0.046_366_6],
        [-0.007_900_265, 0.183_317_4, 0.183_317_4, -0.358_734_5],
    ];
    // h = I (3 × 3) and W = zᵀ (4 × 3) make h Wᵀ = z.
    let h = Var::from_tensor(&Tensor::eye(3, candle_core::DType::F32, &Device::Cpu).expect("eye")).expect("var");
    let w = Var::from_tensor(&Tensor::new(&z, &Device::Cpu).expect("z").t().expect("t").contiguous().expect("c"))
        .expect("var");
    let bias = Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).expect("b");
    let targets = Tensor::new(&[2u32, 0, 3], &Device::Cpu).expect("t");
    let weights = Tensor::ones(3, candle_core::DType::F32, &Device::Cpu).expect("w");
    let loss = output_nll(h.as_tensor(), w.as_tensor(), &bias, &targets, &weights, 0.1).expect("fused");
    let got: Vec<f32> = loss.to_vec1().expect("v");
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-5, "{got:?}");
    }
    // dL/dz = dL/dW-transposed, since z = h Wᵀ with h the identity rows.
    let grads = loss.sum_all().expect("s").backward().expect("bw");
    let dw: Vec<Vec<f32>> = grads.get(w.as_tensor()).expect("dw").t().expect("t").to_vec2().expect("v");
    for (row, want) in dw.iter().zip(grad) {
        for (g, e) in row.iter().zip(want) {
            assert!((g - e).abs() < 1e-5, "{dw:?}");
        }
    }
}

/// The per-step loop the encoder used before the fused recurrence (and still uses off the CPU).
fn gru_sequence_composed(gi: &Tensor, w: &Tensor, b: &Tensor, mask: &Tensor, reverse: bool) -> Tensor {
    let (n, s, h3) = gi.dims3().expect("dims");
    let h = h3 / 3;
    let mut state = Tensor::zeros((n, h), candle_core::DType::F32, &Device::Cpu).expect("z");
    let mut outs = vec![None; s];
    let order: Vec<usize> = if reverse { (0..s).rev().collect() } else { (0..s).collect() };
    for t in order {
        let gh = state.matmul(&w.t().expect("t")).expect("mm").broadcast_add(b).expect("b");
        let g = gi.narrow(1, t, 1).expect("n").squeeze(1).expect("s").contiguous().expect("c");
        let new = gru_cell::composed(&g, &gh, &state, h).expect("cell");
        let m = mask.narrow(1, t, 1).expect("n").contiguous().expect("c");
        state = (&state + m.broadcast_mul(&(new - &state).expect("d")).expect("m")).expect("a");
        outs[t] = Some(state.broadcast_mul(&m).expect("o"));
    }
    let mut all: Vec<Tensor> = outs.into_iter().flatten().collect();
    all.push(state);
    Tensor::stack(&all, 1).expect("stack")
}

#[test]
fn gru_sequence_matches_the_step_loop_with_padding_both_directions() {
    let mut rng = Rng::new(4);
    let (n, s, h) = (3, 4, 5);
    // Rows of length 4, 2 and 1: PAD positions keep the state and output zeros.
    let mask = Tensor::new(&[[1f32, 1., 1., 1.], [1., 1., 0., 0.], [1., 0., 0., 0.]], &Device::Cpu).expect("m");
    for reverse in [false, true] {
        let vars = [
            random(&[n, s, 3 * h], &mut rng, 2.0),
            random(&[3 * h, h], &mut rng, 0.8),
            random(&[3 * h], &mut rng, 0.5),
        ];
        check(
            &vars,
            |t| gru_sequence(&t[0], &t[1], &t[2], Some(&mask), reverse, Products::Tracked).expect("fused"),
            |t| gru_sequence_composed(&t[0], &t[1], &t[2], &mask, reverse),
        );
    }
}

#[test]
fn shared_products_give_the_gradients_of_per_step_products() {
    // A small tanh recurrence h' = tanh(x_t Aᵀ + a + h Bᵀ + b) over 4 steps, with the
    // step input concatenated with h (as the decoder's inputs are): once with candle's
    // ops, once with both products shared and anchored on h0.
    let mut rng = Rng::new(7);
    let (bsz, k, h) = (3, 4, 5);
    let vars = [
        random(&[h, k + h], &mut rng, 0.5),
        random(&[h], &mut rng, 0.5),
        random(&[h, h], &mut rng, 0.5),
        random(&[h], &mut rng, 0.5),
        random(&[bsz, h], &mut rng, 1.0),
        random(&[4, bsz, k], &mut rng, 1.0),
    ];
    let run = |t: &[Tensor], shared: bool| -> Tensor {
        let (a, b) = (SharedProduct::new(&t[0], &t[1]).expect("a"), SharedProduct::new(&t[2], &t[3]).expect("b"));
        let mut state = t[4].clone();
        if shared {
            state = b.anchor(&a.anchor(&state).expect("anchor")).expect("anchor");
        }
        let mut outs = Vec::new();
        for step in 0..4 {
            let x = Tensor::cat(&[&t[5].get(step).expect("x"), &state], 1).expect("cat");
            let (ya, yb) = if shared {
                (a.forward(&x).expect("fa"), b.forward(&state).expect("fb"))
            } else {
                (
                    x.matmul(&t[0].t().expect("t")).expect("m").broadcast_add(&t[1]).expect("a"),
                    state.matmul(&t[2].t().expect("t")).expect("m").broadcast_add(&t[3]).expect("a"),
                )
            };
            state = (ya + yb).expect("add").tanh().expect("tanh");
            outs.push(state.clone());
        }
        Tensor::stack(&outs, 0).expect("stack")
    };
    check(&vars, |t| run(t, true), |t| run(t, false));
}

/// A [`ColumnPick`] over all of `z: (V, N)` at once.
fn pick_all(z: &[f32], n: usize) -> (Vec<u32>, Vec<f32>) {
    let mut pick = ColumnPick::new(n);
    pick.update(z, 0);
    pick.finish()
}

#[test]
fn greedy_pick_over_columns_matches_the_pick_over_rows() {
    let mut rng = Rng::new(11);
    let v = 1500;
    // 33 columns: two blocks of 16 and one single column; 13: a block of 8 and five singles.
    for n in [1, 5, 13, 33] {
        let logits = random(&[n, v], &mut rng, 3.0);
        let (want_ids, want_lp) = best_tokens(logits.as_tensor()).expect("rows");
        let rows: Vec<f32> = logits.as_tensor().flatten_all().expect("flat").to_vec1().expect("values");
        let z = super::matmul::transpose(&rows, n, v);
        // Whole, and as two running picks over chunks of 97 rows merged at row 700.
        let chunked = {
            let (mut first, mut later) = (ColumnPick::new(n), ColumnPick::new(n));
            for (pick, rows) in [(&mut first, 0..700), (&mut later, 700..v)] {
                for from in rows.clone().step_by(97) {
                    let to = (from + 97).min(rows.end);
                    pick.update(&z[from * n..to * n], from);
                }
            }
            first.merge(&later);
            first.finish()
        };
        for (ids, lp) in [pick_all(&z, n), chunked] {
            assert_eq!(ids, want_ids, "{n} columns");
            for (a, e) in lp.iter().zip(&want_lp) {
                assert!((a - e).abs() < 1e-4 * (1.0 + e.abs()), "{n} columns: log-prob {a} vs {e}");
            }
        }
    }
    // Ties go to the first index, as argmax's.
    let tied = [0.5f32, 2.0, 2.0, 1.0, 2.0, 0.0]; // (V 3, N 2): columns [0.5 2 2] and [2 1 0]
    let (ids, _) = pick_all(&tied, 2);
    assert_eq!(ids, vec![1, 0]);
}

#[test]
fn weight_major_product_matches_matmul() {
    let mut rng = Rng::new(13);
    let w = random(&[7, 5], &mut rng, 1.0);
    let wv: Vec<f32> = w.as_tensor().flatten_all().expect("flat").to_vec1().expect("values");
    for b in [1, 5] {
        let x = random(&[b, 5], &mut rng, 1.0);
        let want = x.as_tensor().matmul(&w.as_tensor().t().expect("t")).expect("mm");
        let xv: Vec<f32> = x.as_tensor().flatten_all().expect("flat").to_vec1().expect("values");
        let got = Tensor::from_vec(super::matmul::linear_product(&xv, b, 5, &wv, 7), (b, 7), &Device::Cpu).expect("t");
        assert!(max_diff(&got, &want) < 1e-6);
    }
}

/// The Transformer's CPU ops against the composed candle ops other devices run: outputs
/// and every input's gradient.
#[test]
fn transformer_ops_match_composed() {
    let mut rng = Rng::new(21);
    let (x, w, b) = (random(&[2, 3, 6], &mut rng, 2.0), random(&[6], &mut rng, 1.0), random(&[6], &mut rng, 1.0));
    check(
        &[x, w, b],
        |t| layer_norm(&t[0], &t[1], &t[2]).expect("ln"),
        |t| layer_norm_composed(&t[0], &t[1], &t[2]).expect("composed ln"),
    );
    let s = random(&[2, 2, 3, 5], &mut rng, 3.0);
    check(
        &[s],
        |t| softmax(&t[0]).expect("softmax"),
        |t| candle_nn::ops::softmax(&t[0], D::Minus1).expect("composed softmax"),
    );
    let (x, w, b) = (random(&[4, 5], &mut rng, 1.0), random(&[3, 5], &mut rng, 1.0), random(&[3], &mut rng, 1.0));
    check(
        &[x, w, b],
        |t| linear(&t[0], &t[1], &t[2]).expect("linear"),
        |t| t[0].matmul(&t[1].t().expect("t")).expect("mm").broadcast_add(&t[2]).expect("bias"),
    );
    let (x, w, b) = (random(&[6, 5], &mut rng, 1.0), random(&[4, 5], &mut rng, 1.0), random(&[4], &mut rng, 1.0));
    check(
        &[x, w, b],
        |t| linear_relu(&t[0], &t[1], &t[2]).expect("linear relu"),
        |t| t[0].matmul(&t[1].t().expect("t")).expect("mm").broadcast_add(&t[2]).expect("bias").relu().expect("relu"),
    );
}

/// The fused attention against the composed ops, with the heads side by side (read from a
/// packed projection's `narrow` views) or split, under key padding, the causal mask and
/// both at once (rows of unequal key counts, a query that sees one key).
#[test]
fn attention_matches_composed() {
    let mut rng = Rng::new(33);
    let (b, t, s, heads, dh) = (3, 4, 5, 2, 3);
    let d = heads * dh;
    let masks = [
        KeyMask::default(),
        KeyMask::padding(&[5, 2, 1], s),
        KeyMask::causal(),
        KeyMask { lengths: Some(vec![3, 5, 1]), causal: true },
    ];
    for mask in &masks {
        let packed = random(&[b, t, 3 * d], &mut rng, 2.0);
        let parts = |t: &Tensor, i: usize| t.narrow(D::Minus1, i * d, d).expect("narrow");
        let causal_ok = if mask.causal { t } else { s };
        let (q, k, v) = (
            random(&[b, t, d], &mut rng, 2.0),
            random(&[b, causal_ok, d], &mut rng, 2.0),
            random(&[b, causal_ok, d], &mut rng, 2.0),
        );
        // Self-attention from one packed projection (T = S for the causal masks).
        if mask.lengths.as_ref().is_none_or(|l| l.iter().all(|&n| n <= t)) {
            check(
                std::slice::from_ref(&packed),
                |x| attention(&parts(&x[0], 0), &parts(&x[0], 1), &parts(&x[0], 2), heads, mask).expect("fused"),
                |x| {
                    attention_composed(&parts(&x[0], 0), &parts(&x[0], 1), &parts(&x[0], 2), heads, mask)
                        .expect("composed")
                },
            );
        }
        // Cross-attention: queries side by side, keys and values split into heads.
        let split = |x: &Tensor| {
            let (b, n, _) = x.dims3().expect("dims");
            x.reshape((b, n, heads, dh)).expect("r").transpose(1, 2).expect("t").contiguous().expect("c")
        };
        check(
            &[q, k, v],
            |x| attention(&x[0], &split(&x[1]), &split(&x[2]), heads, mask).expect("fused"),
            |x| attention_composed(&x[0], &x[1], &x[2], heads, mask).expect("composed"),
        );
    }
}
