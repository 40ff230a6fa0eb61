//! A product from packed panels shared with the helper thread: each thread multiplies
//! half of the panels (what one sentence's products need on two threads).

use std::sync::Arc;

use super::Helper;
use crate::kernels::panels::Panels;

/// `x Wᵀ` for `n` rows of `x` (row-major `(n, k)`) into `y`, resized to `n` × the output
/// width: all of `panels`, the second half of them on the `helper` thread when there is
/// one (its job owns a copy of the rows and a handle on the panels).
pub(crate) fn product_all_shared(
    panels: &Arc<Panels>,
    helper: Option<&Helper<'_>>,
    y: &mut Vec<f32>,
    x: &[f32],
    n: usize,
) {
    let out = panels.outputs();
    y.resize(n * out, 0.0);
    let Some(helper) = helper.filter(|_| panels.count() >= 2 && n > 0) else {
        return panels.product_all_into(y, x, n);
    };
    let half = panels.count() / 2;
    let (theirs, rows) = (Arc::clone(panels), x.to_vec());
    let (first, second) = helper.join(
        || {
            let mut part = vec![0f32; n * panels.columns(&(0..half)).len()];
            panels.product_into(&mut part, x, n, 0..half);
            part
        },
        move || {
            let all = half..theirs.count();
            let mut part = vec![0f32; n * theirs.columns(&all).len()];
            theirs.product_into(&mut part, &rows, n, all);
            part
        },
    );
    let split = first.len() / n;
    for ((row, a), b) in y.chunks_exact_mut(out).zip(first.chunks_exact(split)).zip(second.chunks(out - split)) {
        row[..split].copy_from_slice(a);
        row[split..].copy_from_slice(b);
    }
}
