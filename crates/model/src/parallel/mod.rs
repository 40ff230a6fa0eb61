//! Data parallelism on the CPU, the same way for every model family: a batch's parts run
//! on their own threads and their gradients are summed; sentences to decode are shared
//! out in consecutive chunks.

mod spinning_helper;
mod split_product;

pub(crate) use spinning_helper::{with_helper, Helper};
pub(crate) use split_product::product_all_shared;

use candle_core::backprop::GradStore;
use candle_core::Tensor;

use crate::error::{ModelError, Result};
use crate::params::ParamStore;

/// Runs `run(i)` for each of `parts` parts on its own thread (part 0 on this one) and
/// returns the summed loss values and gradients. Each parameter's sum is taken in part
/// order, the parameters shared out between two threads, so the result does not depend
/// on which thread finishes first.
pub(crate) fn summed_grads(
    params: &ParamStore,
    parts: usize,
    run: impl Fn(usize) -> Result<(f64, GradStore)> + Sync,
) -> Result<(f64, GradStore)> {
    let run = &run;
    let results: Vec<Result<(f64, GradStore)>> = std::thread::scope(|scope| {
        let others: Vec<_> = (1..parts).map(|i| scope.spawn(move || run(i))).collect();
        let mut all = vec![run(0)];
        for h in others {
            all.push(h.join().unwrap_or_else(|_| Err(ModelError::Worker)));
        }
        all
    });
    let mut value = 0.0;
    let mut stores = Vec::with_capacity(results.len());
    for r in results {
        let (v, g) = r?;
        value += v;
        stores.push(g);
    }
    let vars: Vec<Tensor> = params.vars().into_iter().map(|(_, v)| v.as_tensor().clone()).collect();
    let sum_of = |vars: &[Tensor]| -> Result<Vec<(usize, Tensor)>> {
        let mut out = Vec::new();
        for (i, t) in vars.iter().enumerate() {
            let mut parts = stores.iter().filter_map(|g| g.get(t));
            if let Some(first) = parts.next() {
                let mut sum = first.clone();
                for g in parts {
                    sum = (sum + g)?;
                }
                out.push((i, sum));
            }
        }
        Ok(out)
    };
    let (first, second) = vars.split_at(vars.len() / 2);
    let (a, b) = std::thread::scope(|scope| {
        let h = scope.spawn(|| sum_of(second));
        (sum_of(first), h.join().unwrap_or_else(|_| Err(ModelError::Worker)))
    });
    let mut grads = stores.swap_remove(0);
    for (i, sum) in a?.into_iter().chain(b?.into_iter().map(|(i, s)| (i + first.len(), s))) {
        grads.insert(&vars[i], sum);
    }
    Ok((value, grads))
}

/// `f` over `items` in consecutive chunks of `ceil(len / parts)`, the first chunk on this
/// thread and each other on its own; the results joined in order.
pub(crate) fn in_chunks<T: Sync, R: Send>(
    items: &[T],
    parts: usize,
    f: impl Fn(&[T]) -> Result<Vec<R>> + Sync,
) -> Result<Vec<R>> {
    if parts <= 1 || items.len() <= 1 {
        return f(items);
    }
    let f = &f;
    let size = items.len().div_ceil(parts);
    let results: Vec<Result<Vec<R>>> = std::thread::scope(|scope| {
        let mut chunks = items.chunks(size);
        let first = chunks.next().unwrap_or(&[]);
        let others: Vec<_> = chunks.map(|c| scope.spawn(move || f(c))).collect();
        let mut all = vec![f(first)];
        for h in others {
            all.push(h.join().unwrap_or_else(|_| Err(ModelError::Worker)));
        }
        all
    });
    let mut out = Vec::with_capacity(items.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// `f` over `sources` sorted by length and dealt round-robin into `parts` groups (so each
/// group holds sentences of like lengths and every group a like share of the work), the
/// first group on this thread and each other on its own; `f` returns one result per
/// source of its group, in the group's order, and the results come back in `sources`'
/// order.
pub(crate) fn by_length<R: Send>(
    sources: &[Vec<u32>],
    parts: usize,
    f: impl Fn(&[Vec<u32>]) -> Result<Vec<R>> + Sync,
) -> Result<Vec<R>> {
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| sources[i].len());
    let parts = parts.clamp(1, sources.len().max(1));
    let groups: Vec<Vec<usize>> = (0..parts).map(|p| order.iter().copied().skip(p).step_by(parts).collect()).collect();
    let texts: Vec<Vec<Vec<u32>>> = groups.iter().map(|g| g.iter().map(|&i| sources[i].clone()).collect()).collect();
    let f = &f;
    let results: Vec<Result<Vec<R>>> = std::thread::scope(|scope| {
        let others: Vec<_> = texts[1..].iter().map(|t| scope.spawn(move || f(t))).collect();
        let mut all = vec![f(&texts[0])];
        for h in others {
            all.push(h.join().unwrap_or_else(|_| Err(ModelError::Worker)));
        }
        all
    });
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(sources.len()).collect();
    for (group, result) in groups.iter().zip(results) {
        let result = result?;
        if result.len() != group.len() {
            return Err(ModelError::Worker);
        }
        for (&i, r) in group.iter().zip(result) {
            slots[i] = Some(r);
        }
    }
    slots.into_iter().map(|r| r.ok_or(ModelError::Worker)).collect()
}
