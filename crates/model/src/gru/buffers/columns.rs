//! The element-wise and attention parts of a decoder step over column-per-sentence
//! buffers: a `(F, N)` buffer holds feature `f` of sentence `i` at `f * N + i`, so every
//! inner loop runs across the sentences and vectorises; with one sentence (`N = 1`) the
//! loops that would be one element long run across the features instead. The kernels
//! other than the tanh-bound scores run with AVX-512's 16 lanes where the CPU has them
//! (see [`widest`]; the division in tanh gains nothing from the wider vectors).

use crate::gru::kernels::gru_cell::{gates, unit_forward};
use crate::kernels::fast_math::{lane_sum3, tanh};
use crate::kernels::simd::widest;

/// Embedded tokens as columns: `dst[k * n + i] = table[ids[i] * e + k]`.
///
/// # Shapes
/// `table: (V, E)`, `ids: (N)` → `dst: (E, N)`; `None` for an id outside the table.
pub fn embed(table: &[f32], e: usize, ids: &[u32], dst: &mut [f32]) -> Option<()> {
    let n = ids.len();
    for (i, &id) in ids.iter().enumerate() {
        let row = table.get(id as usize * e..(id as usize + 1) * e)?;
        for (k, &x) in row.iter().enumerate() {
            dst[k * n + i] = x;
        }
    }
    Some(())
}

/// The encoder's columns, one per sentence and position (`t·N + j`), regrouped by
/// position as the attention reads them.
///
/// # Shapes
/// `x: (H, S·N)` → `(S, H, N)`
pub fn by_position(x: &[f32], h: usize, s: usize, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(h * s * n);
    for t in 0..s {
        for row in x.chunks_exact(s * n).take(h) {
            out.extend_from_slice(&row[t * n..(t + 1) * n]);
        }
    }
    out
}

/// Bahdanau's additive scores `va · tanh(keys[s] + q) + va_bias` for every source position.
///
/// # Shapes
/// `keys: (S, H, N)`, `q: (H, N)`, `va: (H)` → `scores: (S, N)`
pub fn additive_scores(keys: &[f32], q: &[f32], va: &[f32], va_bias: f32, n: usize, scores: &mut [f32]) {
    let h = va.len();
    if n == 1 {
        for (sc, key) in scores.iter_mut().zip(keys.chunks_exact(h)) {
            *sc = lane_sum3(va, key, q, |v, k, q| v * tanh(k + q)) + va_bias;
        }
        return;
    }
    // Per source position: tanh over the whole (H, N) block in one flat loop, then
    // the weighted sum over H (1.3× faster than tanh inside the sum's loop).
    let mut e = vec![0f32; h * n];
    for (sc, key) in scores.chunks_exact_mut(n).zip(keys.chunks_exact(h * n)) {
        for ((e, &k), &q) in e.iter_mut().zip(key).zip(q) {
            *e = tanh(k + q);
        }
        sc.fill(va_bias);
        for (&v, e) in va.iter().zip(e.chunks_exact(n)) {
            for (s, &e) in sc.iter_mut().zip(e) {
                *s += v * e;
            }
        }
    }
}

/// Dot-product scores `keys[s] · q` (Luong's dot and general attentions).
///
/// # Shapes
/// `keys: (S, H, N)`, `q: (H, N)` → `scores: (S, N)`
pub fn dot_scores(keys: &[f32], q: &[f32], n: usize, scores: &mut [f32]) {
    widest(
        #[inline(always)]
        || {
            let h = q.len() / n;
            if n == 1 {
                for (sc, key) in scores.iter_mut().zip(keys.chunks_exact(h)) {
                    *sc = lane_sum3(key, q, q, |k, q, _| k * q);
                }
                return;
            }
            for (sc, key) in scores.chunks_exact_mut(n).zip(keys.chunks_exact(h * n)) {
                sc.fill(0.0);
                for (key, q) in key.chunks_exact(n).zip(q.chunks_exact(n)) {
                    for ((s, &k), &q) in sc.iter_mut().zip(key).zip(q) {
                        *s += k * q;
                    }
                }
            }
        },
    )
}

/// Softmax over each column's source positions, positions at or past the sentence's
/// length masked as the model's additive PAD mask does (−1e9: their weight is exactly 0).
///
/// # Shapes
/// `scores: (S, N)`, `lengths: (N)` → `weights: (S, N)`
pub fn masked_softmax(scores: &[f32], lengths: &[usize], weights: &mut [f32]) {
    widest(
        #[inline(always)]
        || {
            let n = lengths.len();
            for (s, (w, sc)) in weights.chunks_exact_mut(n).zip(scores.chunks_exact(n)).enumerate() {
                for ((w, &x), &len) in w.iter_mut().zip(sc).zip(lengths) {
                    *w = if s < len { x } else { x - 1e9 };
                }
            }
            let mut max = vec![f32::NEG_INFINITY; n];
            for w in weights.chunks_exact(n) {
                for (m, &x) in max.iter_mut().zip(w) {
                    *m = m.max(x);
                }
            }
            let mut sum = vec![0f32; n];
            for w in weights.chunks_exact_mut(n) {
                for ((x, &m), s) in w.iter_mut().zip(&max).zip(sum.iter_mut()) {
                    *x = (*x - m).exp();
                    *s += *x;
                }
            }
            for w in weights.chunks_exact_mut(n) {
                for (x, &s) in w.iter_mut().zip(&sum) {
                    *x /= s;
                }
            }
        },
    )
}

/// The attention context: each column's weighted sum of its encoder outputs.
///
/// # Shapes
/// `weights: (S, N)`, `outputs: (S, H, N)` → `context: (H, N)`
pub fn context(weights: &[f32], outputs: &[f32], n: usize, context: &mut [f32]) {
    widest(
        #[inline(always)]
        || {
            let hn = context.len();
            context.fill(0.0);
            for (w, out) in weights.chunks_exact(n).zip(outputs.chunks_exact(hn)) {
                if n == 1 {
                    for (c, &o) in context.iter_mut().zip(out) {
                        *c += w[0] * o;
                    }
                    continue;
                }
                for (c, o) in context.chunks_exact_mut(n).zip(out.chunks_exact(n)) {
                    for ((c, &o), &w) in c.iter_mut().zip(o).zip(w) {
                        *c += w * o;
                    }
                }
            }
        },
    )
}

/// The GRU update in place, from gate pre-activations that already hold their biases:
/// the same unit as the model's fused cell.
///
/// # Shapes
/// `gi: (3H, N)`, `gh: (3H, N)` → `h: (H, N)` updated
pub fn gru_update(gi: &[f32], gh: &[f32], h: &mut [f32]) {
    widest(
        #[inline(always)]
        || {
            let m = h.len();
            let ((ir, iz, i_n), (hr, hz, h_n)) = (gates(gi, m), gates(gh, m));
            for j in 0..m {
                h[j] = unit_forward([ir[j], iz[j], i_n[j]], [hr[j], hz[j], h_n[j]], h[j]).3;
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The column kernels at N = 3 agree with the same kernels run one column at a time
    /// (the N = 1 loops), which in turn follow the formulas written out here.
    #[test]
    fn columns_agree_with_one_sentence_at_a_time() {
        let (s, h, n) = (4, 5, 3);
        let val = |i: usize, c: f32| ((i as f32) * 0.37 + c).sin();
        let keys: Vec<f32> = (0..s * h * n).map(|i| val(i, 0.1)).collect();
        let q: Vec<f32> = (0..h * n).map(|i| val(i, 0.7)).collect();
        let va: Vec<f32> = (0..h).map(|i| val(i, 1.3)).collect();
        let lengths = [4, 2, 3];
        let column = |x: &[f32], rows: usize, i: usize| -> Vec<f32> { (0..rows).map(|r| x[r * n + i]).collect() };
        let mut scores = vec![0f32; s * n];
        let mut weights = vec![0f32; s * n];
        let mut ctx = vec![0f32; h * n];
        for additive in [true, false] {
            if additive {
                additive_scores(&keys, &q, &va, 0.25, n, &mut scores);
            } else {
                dot_scores(&keys, &q, n, &mut scores);
            }
            masked_softmax(&scores, &lengths, &mut weights);
            context(&weights, &keys, n, &mut ctx);
            for (i, &len) in lengths.iter().enumerate() {
                let k1 = column(&keys, s * h, i);
                let q1 = column(&q, h, i);
                let mut s1 = vec![0f32; s];
                if additive {
                    additive_scores(&k1, &q1, &va, 0.25, 1, &mut s1);
                    let want: f32 = (0..h).map(|j| va[j] * (k1[j] + q1[j]).tanh()).sum::<f32>() + 0.25;
                    assert!((s1[0] - want).abs() < 1e-5, "{} vs {want}", s1[0]);
                } else {
                    dot_scores(&k1, &q1, 1, &mut s1);
                }
                let mut w1 = vec![0f32; s];
                masked_softmax(&s1, &[len], &mut w1);
                assert!(w1[len..].iter().all(|&w| w == 0.0), "{w1:?}");
                assert!((w1.iter().sum::<f32>() - 1.0).abs() < 1e-6);
                let mut c1 = vec![0f32; h];
                context(&w1, &k1, 1, &mut c1);
                for (a, e) in column(&scores, s, i).iter().zip(&s1) {
                    assert!((a - e).abs() < 1e-5, "score {a} vs {e}");
                }
                assert_eq!(column(&weights, s, i)[len..], w1[len..]);
                for (a, e) in column(&ctx, h, i).iter().zip(&c1) {
                    assert!((a - e).abs() < 1e-5, "context {a} vs {e}");
                }
            }
        }
    }
}
