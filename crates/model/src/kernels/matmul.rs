//! A bounds-checked front to the `gemm` crate (the matrix library candle itself uses), for
//! fused kernels that multiply inside one op without allocating a tensor per product.

/// A row- or column-strided view of a matrix: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `(rows, cols)` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Self { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    /// Whether the last element lies inside the data; an offset that overflows `usize`
    /// does not fit (the products' SAFETY notes rely on this check).
    fn fits(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1)
            .checked_mul(self.rs)
            .zip((self.cols - 1).checked_mul(self.cs))
            .and_then(|(r, c)| r.checked_add(c));
        last.is_some_and(|last| last < self.data.len())
    }
}

/// The transpose of a row-major `(rows, cols)` matrix, row-major `(cols, rows)`, copied in
/// 32 × 32 tiles (element by element across the whole matrix is cache-hostile).
pub fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut dst = Vec::new();
    transpose_into(&mut dst, src, rows, cols);
    dst
}

/// [`transpose`] into `dst` (resized), reusing its allocation.
pub fn transpose_into(dst: &mut Vec<f32>, src: &[f32], rows: usize, cols: usize) {
    const TILE: usize = 32;
    assert_eq!(src.len(), rows * cols, "transpose: shape disagrees with the data");
    dst.resize(rows * cols, 0.0);
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                let row = &src[r * cols..(r + 1) * cols];
                for c in c0..(c0 + TILE).min(cols) {
                    dst[c * rows + r] = row[c];
                }
            }
        }
    }
}

/// Rows from which [`linear_product`] multiplies `x Wᵀ` directly: packing the weight once
/// then costs less than transposing a weight-major result back (768 × 256 weight: 1.2×
/// faster at 320 rows, 3× slower at 32).
const DIRECT_FROM_ROWS: usize = 128;

/// `x Wᵀ`, row-major `(b, n)`, as `nn.Linear` computes it. Below [`DIRECT_FROM_ROWS`] rows
/// it is computed weight-major, `(W xᵀ)ᵀ`: gemm then packs nothing of the (large) weight,
/// and a single row needs no transpose back.
///
/// `x` is row-major `(b, k)`, `w` row-major `(n, k)`.
pub fn linear_product(x: &[f32], b: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
    if b >= DIRECT_FROM_ROWS {
        let mut y = vec![0f32; b * n];
        matmul(&mut y, View::rows(x, b, k), View::rows(w, n, k).t(), false);
        return y;
    }
    let mut yt = vec![0f32; n * b];
    matmul(&mut yt, View::rows(w, n, k), View::rows(x, b, k).t(), false);
    if b == 1 {
        yt
    } else {
        transpose(&yt, n, b)
    }
}

/// Adds `bias` to every row of the row-major `y`.
pub fn add_to_rows(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len()) {
        for (v, &c) in row.iter_mut().zip(bias) {
            *v += c;
        }
    }
}

/// The column sums of a row-major matrix with `cols` columns (a bias gradient).
pub fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; cols];
    for row in m.chunks_exact(cols) {
        for (acc, &x) in out.iter_mut().zip(row) {
            *acc += x;
        }
    }
    out
}

/// One of the project's two `unsafe` calls (the other runs AVX-512 code after a CPU check,
/// `fused/simd.rs`): `gemm` takes raw pointers and strides.
///
/// `dst (+)= a · b` with `dst` row-major `(a.rows, b.cols)`; `accumulate` adds to what is there.
///
/// # Panics
/// When the shapes disagree or a view reaches past its slice (a bug in the caller, never
/// user input: the kernels size every buffer from the tensors they were given).
#[allow(unsafe_code)]
pub fn matmul(dst: &mut [f32], a: View, b: View, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && dst.len() == m * n && a.fits() && b.fits(), "fused matmul: shapes disagree");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    // SAFETY: every index the views can form was checked to lie inside its slice above, and
    // `dst` holds exactly m * n row-major elements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strides whose last offset overflows `usize` do not fit (they wrapped before).
    #[test]
    fn an_overflowing_view_does_not_fit() {
        let data = [0f32; 4];
        assert!(View::rows(&data, 2, 2).fits());
        assert!(!View::rows(&data, 3, 2).fits());
        let huge = View { data: &data, rows: 2, cols: 2, rs: usize::MAX, cs: 1 };
        assert!(!huge.fits());
        let wraps = View { data: &data, rows: 2, cols: 3, rs: usize::MAX - 1, cs: 1 };
        assert!(!wraps.fits());
    }

    #[test]
    fn transpose_swaps_rows_and_columns_across_tiles() {
        let (rows, cols) = (37, 70);
        let src: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let t = transpose(&src, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(t[c * rows + r], src[r * cols + c]);
            }
        }
    }

    #[test]
    fn matches_a_naive_product_with_transposes() {
        let a: Vec<f32> = (0..6).map(|x| x as f32 * 0.5 - 1.0).collect(); // (2, 3)
        let b: Vec<f32> = (0..12).map(|x| (x as f32).sin()).collect(); // (4, 3), used as bᵀ (3, 4)
        let mut dst = vec![1.0f32; 8];
        matmul(&mut dst, View::rows(&a, 2, 3), View::rows(&b, 4, 3).t(), true);
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|k| a[i * 3 + k] * b[j * 3 + k]).sum::<f32>();
                assert!((dst[i * 4 + j] - want).abs() < 1e-6);
            }
        }
    }
}
