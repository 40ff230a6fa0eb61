//! A weight packed once into column panels, for products of a few rows at inference.
//!
//! `nn.Linear`'s `x Wᵀ` with `W` `(n, k)`: the packed copy holds `Wᵀ`'s columns in panels
//! of [`PANEL`] (64) columns, each panel `k × 64` values stored contiguously, so that a
//! product streams through the weight once, in order, whatever the number of rows. Each
//! panel is read into four 16-lane registers per step of `k` and multiplied into up to
//! [`GROUP`] rows at once (20 accumulators). A panel (64 KB at `k` = 256) stays in the
//! core's cache while every group of rows passes over it.
//!
//! Why not gemm: at inference the decoder's weights (19 MB for `multi30k-transformer`)
//! come from L3 or memory every step, and gemm packs the weight on each call. Measured on
//! the 2-core AMD EPYC (AVX-512) over the decoder's 19 products of one step, one thread,
//! 2026-12-07: 1 row 0.41 ms (gemm 0.63–0.75), 5 rows 0.63–0.72 ms (gemm 3.0–4.4),
//! 32 rows 3.7–3.9 ms (gemm 4.9–8.5). Without AVX-512 (16 registers) the 20 accumulators
//! do not fit, and from [`NARROW_ROWS`] rows on gemm is faster there ([`Panels::fits`]).

use std::ops::Range;

use super::simd::{has_avx512, widest};

/// Columns per panel: four AVX-512 registers.
pub const PANEL: usize = 64;
/// Rows multiplied into one pass over a panel (4 × 5 accumulators, 4 panel values and a
/// broadcast row value fill 29 of the 32 registers).
const GROUP: usize = 5;
/// Without AVX-512, products of this many rows or more are left to gemm.
const NARROW_ROWS: usize = 8;

/// `Wᵀ` in column panels of [`PANEL`], the last one padded with zeros.
#[derive(Debug, Clone)]
pub struct Panels {
    data: Vec<f32>,
    /// The input width `k` and output width `n` of the product.
    k: usize,
    n: usize,
}

impl Panels {
    /// Packs `w`, row-major `(n, k)` as `nn.Linear` stores it.
    ///
    /// # Panics
    /// When `w` does not hold `n × k` values (the caller sizes it from a tensor's shape).
    pub fn of_linear(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "panels: weight size");
        let count = n.div_ceil(PANEL);
        let mut data = vec![0f32; count * k * PANEL];
        for (p, panel) in data.chunks_exact_mut(k * PANEL).enumerate() {
            let columns = p * PANEL..(p * PANEL + PANEL).min(n);
            for (c, col) in columns.enumerate() {
                for (kk, &v) in w[col * k..(col + 1) * k].iter().enumerate() {
                    panel[kk * PANEL + c] = v;
                }
            }
        }
        Self { data, k, n }
    }

    /// The product's input width `k`.
    pub fn inputs(&self) -> usize {
        self.k
    }

    /// The product's output width `n`.
    pub fn outputs(&self) -> usize {
        self.n
    }

    /// How many panels there are.
    pub fn count(&self) -> usize {
        self.n.div_ceil(PANEL)
    }

    /// Whether a product of `rows` rows should run here rather than through gemm.
    pub fn fits(rows: usize) -> bool {
        rows < NARROW_ROWS || has_avx512()
    }

    /// The output columns panels `panels` cover.
    pub fn columns(&self, panels: &Range<usize>) -> Range<usize> {
        (panels.start * PANEL).min(self.n)..(panels.end * PANEL).min(self.n)
    }

    /// `x Wᵀ` over the columns of `panels` only: `x` row-major `(rows, k)`, `y` row-major
    /// `(rows, columns)` with `columns` = [`Panels::columns`]'s width, overwritten.
    ///
    /// # Panics
    /// When the slices' sizes disagree with `k`, the columns or the panel count (sized by
    /// the caller from the same weights, never from user input).
    pub fn product_into(&self, y: &mut [f32], x: &[f32], rows: usize, panels: Range<usize>) {
        let k = self.k;
        let columns = self.columns(&panels);
        let width = columns.len();
        assert!(
            x.len() == rows * k && y.len() == rows * width && panels.end <= self.count(),
            "panels: shapes disagree"
        );
        if rows == 0 || width == 0 {
            return;
        }
        // Each group's rows transposed: per step of k, the group's `GROUP` values.
        let groups = rows.div_ceil(GROUP);
        let mut xt = vec![[0f32; GROUP]; groups * k];
        for (r, row) in x.chunks_exact(k).enumerate() {
            let (g, i) = (r / GROUP, r % GROUP);
            for (slot, &v) in xt[g * k..(g + 1) * k].iter_mut().zip(row) {
                slot[i] = v;
            }
        }
        widest(
            #[inline(always)]
            || {
                for p in panels.clone() {
                    let panel = &self.data[p * k * PANEL..(p + 1) * k * PANEL];
                    let c0 = p * PANEL - columns.start;
                    let c1 = (c0 + PANEL).min(width);
                    for g in 0..groups {
                        let xs = &xt[g * k..(g + 1) * k];
                        let first = g * GROUP;
                        let count = (rows - first).min(GROUP);
                        let out = &mut y[first * width..(first + count) * width];
                        match count {
                            1 => group::<1>(out, width, c0..c1, panel, xs),
                            2 => group::<2>(out, width, c0..c1, panel, xs),
                            3 => group::<3>(out, width, c0..c1, panel, xs),
                            4 => group::<4>(out, width, c0..c1, panel, xs),
                            _ => group::<GROUP>(out, width, c0..c1, panel, xs),
                        }
                    }
                }
            },
        );
    }

    /// `x Wᵀ` for `rows` rows, all columns, into `y` (`rows × n`, overwritten).
    pub fn product_all_into(&self, y: &mut [f32], x: &[f32], rows: usize) {
        self.product_into(y, x, rows, 0..self.count());
    }
}

/// `R` rows (`xs[kk][..R]`) times one panel, into columns `cols` of `out` (`R` rows of
/// `width`).
#[inline(always)]
fn group<const R: usize>(out: &mut [f32], width: usize, cols: Range<usize>, panel: &[f32], xs: &[[f32; GROUP]]) {
    let acc = accumulate::<R>(panel, xs);
    for (row, acc) in out.chunks_exact_mut(width).zip(&acc) {
        row[cols.clone()].copy_from_slice(&acc[..cols.len()]);
    }
}

/// `R` rows (`xs[kk][..R]`) times the panel rows `panel` (`xs.len()` of them, [`PANEL`]
/// values each), summed in order of `kk`.
#[inline(always)]
fn accumulate<const R: usize>(panel: &[f32], xs: &[[f32; GROUP]]) -> [[f32; PANEL]; R] {
    let mut acc = [[0f32; PANEL]; R];
    for (w, x) in panel.chunks_exact(PANEL).zip(xs) {
        let w: &[f32; PANEL] = w.try_into().unwrap_or(&[0.0; PANEL]);
        for (acc, &xv) in acc.iter_mut().zip(x) {
            for (a, &wv) in acc.iter_mut().zip(w) {
                *a = xv.mul_add(wv, *a);
            }
        }
    }
    acc
}

/// `R` columns' sums `acc` (`acc[r][c]`: column `first + r`, output `c0 + c`) into the
/// outputs `outs` of `y` (`(outs.len(), m)`, one column per input column), only those
/// in `lo..hi`; added to what is there with `add`.
#[allow(clippy::too_many_arguments)] // the coordinates of one block, named
#[inline(always)]
fn store_columns<const R: usize>(
    y: &mut [f32],
    m: usize,
    outs: &Range<usize>,
    (lo, hi, c0): (usize, usize, usize),
    first: usize,
    acc: &[[f32; PANEL]; R],
    add: bool,
) {
    if m == 1 {
        // One column: the outputs are contiguous.
        let (dst, src) = (&mut y[lo - outs.start..hi - outs.start], &acc[0][lo - c0..hi - c0]);
        if add {
            dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
        } else {
            dst.copy_from_slice(src);
        }
        return;
    }
    for c in lo..hi {
        let dst = &mut y[(c - outs.start) * m + first..][..R];
        for (d, acc) in dst.iter_mut().zip(acc) {
            let v = acc[c - c0];
            *d = if add { *d + v } else { v };
        }
    }
}

impl Panels {
    /// `Y = W[outs, ks] X` with one column per input (a sentence, when a decoder keeps its
    /// state as columns): `x` `(ks.len(), m)` (input `kk` of every column together), `y`
    /// `(outs.len(), m)`, overwritten, or added to with `add`. `outs` are rows of `W`
    /// (columns of the packed `Wᵀ`), any range; `ks` a range of its inputs, the
    /// product's sum running over them in order.
    ///
    /// # Panics
    /// When the slices' sizes disagree with the ranges, or the ranges with the weight
    /// (sized by the caller from the same weights, never from user input).
    pub fn columns_product_into(
        &self,
        y: &mut [f32],
        x: &[f32],
        m: usize,
        outs: Range<usize>,
        ks: Range<usize>,
        add: bool,
    ) {
        let (k, kl) = (self.k, ks.len());
        assert!(
            ks.end <= k && outs.end <= self.n && x.len() == kl * m && y.len() == outs.len() * m,
            "panels: column shapes disagree"
        );
        if m == 0 || outs.is_empty() {
            return;
        }
        // Each group of `GROUP` columns' inputs, per step of k.
        let groups = m.div_ceil(GROUP);
        let mut xt = vec![[0f32; GROUP]; groups * kl];
        for (kk, values) in x.chunks_exact(m).enumerate() {
            for (i, &v) in values.iter().enumerate() {
                xt[(i / GROUP) * kl + kk][i % GROUP] = v;
            }
        }
        widest(
            #[inline(always)]
            || {
                for p in outs.start / PANEL..outs.end.div_ceil(PANEL) {
                    let panel = &self.data[(p * k + ks.start) * PANEL..(p * k + ks.end) * PANEL];
                    let c0 = p * PANEL;
                    let block = (c0.max(outs.start), (c0 + PANEL).min(outs.end), c0);
                    for g in 0..groups {
                        let xs = &xt[g * kl..(g + 1) * kl];
                        let first = g * GROUP;
                        match (m - first).min(GROUP) {
                            1 => store_columns(y, m, &outs, block, first, &accumulate::<1>(panel, xs), add),
                            2 => store_columns(y, m, &outs, block, first, &accumulate::<2>(panel, xs), add),
                            3 => store_columns(y, m, &outs, block, first, &accumulate::<3>(panel, xs), add),
                            4 => store_columns(y, m, &outs, block, first, &accumulate::<4>(panel, xs), add),
                            _ => store_columns(y, m, &outs, block, first, &accumulate::<GROUP>(panel, xs), add),
                        }
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], rows: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
        let mut y = vec![0f32; rows * n];
        for r in 0..rows {
            for c in 0..n {
                y[r * n + c] = (0..k).map(|i| x[r * k + i] as f64 * w[c * k + i] as f64).sum::<f64>() as f32;
            }
        }
        y
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0).collect()
    }

    /// Every row count around the group size, widths that leave a partial panel, and a
    /// product over a range of panels agree with a naive f64 product.
    #[test]
    fn panel_products_equal_a_naive_product() {
        for &(k, n) in &[(3usize, 5usize), (17, 64), (33, 130), (64, 200)] {
            let w = values(n * k, 1);
            let panels = Panels::of_linear(&w, n, k);
            for rows in [1usize, 2, 3, 4, 5, 6, 9, 11, 12] {
                let x = values(rows * k, rows);
                let want = naive(&x, rows, k, &w, n);
                let mut y = vec![f32::NAN; rows * n];
                panels.product_all_into(&mut y, &x, rows);
                for (a, b) in y.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "k {k} n {n} rows {rows}: {a} vs {b}");
                }
                let part = 1..panels.count();
                let cols = panels.columns(&part);
                let mut y = vec![f32::NAN; rows * cols.len()];
                panels.product_into(&mut y, &x, rows, part);
                for r in 0..rows {
                    for (j, c) in cols.clone().enumerate() {
                        let (a, b) = (y[r * cols.len() + j], want[r * n + c]);
                        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "part: {a} vs {b}");
                    }
                }
            }
        }
    }

    /// The column layout: any range of outputs and of inputs, overwritten or added to,
    /// agrees with a naive f64 product over the same inputs.
    #[test]
    fn column_products_equal_a_naive_product() {
        for &(k, n) in &[(3usize, 5usize), (17, 64), (33, 130), (64, 200)] {
            let w = values(n * k, 1);
            let panels = Panels::of_linear(&w, n, k);
            for m in [1usize, 2, 3, 4, 5, 6, 9, 11, 12] {
                for (outs, ks) in [(0..n, 0..k), (1..n - 1, 1..k), (n / 2..n, 0..k / 2 + 1)] {
                    let x = values(ks.len() * m, m);
                    let start = values(outs.len() * m, 7);
                    for add in [false, true] {
                        let mut y = start.clone();
                        panels.columns_product_into(&mut y, &x, m, outs.clone(), ks.clone(), add);
                        for (o, c) in outs.clone().enumerate() {
                            for i in 0..m {
                                let dot: f64 = ks
                                    .clone()
                                    .enumerate()
                                    .map(|(j, kk)| x[j * m + i] as f64 * w[c * k + kk] as f64)
                                    .sum();
                                let want = dot + if add { start[o * m + i] as f64 } else { 0.0 };
                                let got = y[o * m + i];
                                assert!(
                                    (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                    "k {k} n {n} m {m} outs {outs:?} ks {ks:?} add {add}: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
