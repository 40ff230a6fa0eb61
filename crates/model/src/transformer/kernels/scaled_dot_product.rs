//! Scaled dot-product attention over heads as one op, `softmax(q kᵀ / sqrt(d_head)) v`
//! with key padding and a causal mask, whose backward pass recomputes the weights
//! instead of keeping them. Training keeps only the joined context per attention: the
//! composed candle ops keep each head split of q, k and v, the scores, the weights
//! and the context's transposes (a quarter of a Transformer step's graph).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor, D};

use crate::kernels::matmul::{matmul, View};

/// Which keys each query sees: the first `lengths[b]` of batch row `b` (every key when
/// `None`), and with `causal` only those at or before the query's own position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyMask {
    pub lengths: Option<Vec<usize>>,
    pub causal: bool,
}

impl KeyMask {
    /// Key padding of sources `lengths` long, padded to `s`: `None` when none is padded.
    pub fn padding(lengths: &[usize], s: usize) -> Self {
        let padded = lengths.iter().any(|&l| l != s);
        Self { lengths: padded.then(|| lengths.to_vec()), causal: false }
    }

    /// Position `i` sees positions `..=i`.
    pub fn causal() -> Self {
        Self { lengths: None, causal: true }
    }

    /// How many keys (a prefix) query `i` of batch row `b` sees out of `s`.
    fn visible(&self, b: usize, i: usize, s: usize) -> usize {
        let len = self.lengths.as_ref().map_or(s, |l| l[b].min(s));
        if self.causal {
            len.min(i + 1)
        } else {
            len
        }
    }

    /// The same as an additive bias `(B or 1, 1, T or 1, S)` of 0 and [`MASKED`] for the
    /// composed ops; `None` when nothing is masked.
    pub fn bias(&self, t: usize, s: usize, device: &candle_core::Device) -> Result<Option<Tensor>> {
        let pad = match &self.lengths {
            Some(lengths) => {
                let v: Vec<f32> =
                    lengths.iter().flat_map(|&l| (0..s).map(move |j| if j < l { 0.0 } else { MASKED })).collect();
                Some(Tensor::from_vec(v, (lengths.len(), 1, 1, s), device)?)
            }
            None => None,
        };
        let causal = if self.causal {
            let v: Vec<f32> = (0..t * s).map(|k| if k % s > k / s { MASKED } else { 0.0 }).collect();
            Some(Tensor::from_vec(v, (1, 1, t, s), device)?)
        } else {
            None
        };
        Ok(match (pad, causal) {
            (Some(p), Some(c)) => Some(p.broadcast_add(&c)?),
            (p, c) => p.or(c),
        })
    }
}

/// The additive bias of masked scores in the composed ops: `exp` of it underflows to
/// exactly 0, as `-inf` does in PyTorch, without the NaN of a row that is masked
/// entirely. The fused op gives masked keys a weight of exactly 0.
pub const MASKED: f32 = -1e9;

/// The heads' contexts joined, `(B, T, heads · d_head)`.
///
/// `q`, `k` and `v` come either with the heads side by side in the last dimension,
/// `(B, T, heads · d_head)` (views such as a packed projection's `narrow` are read in
/// place), or split, `(B, heads, T, d_head)`; keys and values have `S` positions.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, mask: &KeyMask) -> Result<Tensor> {
    if !q.device().is_cpu() {
        return attention_composed(q, k, v, heads, mask);
    }
    q.apply_op3(k, v, AttentionOp { heads, mask: mask.clone() })
}

/// `(B, T, heads · d_head)` → `(B, heads, T, d_head)`, contiguous.
pub fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    x.reshape((b, t, heads, d / heads))?.transpose(1, 2)?.contiguous()
}

/// The same from candle's differentiable ops (other devices; the tests' reference).
pub fn attention_composed(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, mask: &KeyMask) -> Result<Tensor> {
    let split = |x: &Tensor| if x.rank() == 3 { split_heads(x, heads) } else { x.contiguous() };
    let (q, k, v) = (split(q)?, split(k)?, split(v)?);
    let (b, h, t, dh) = q.dims4()?;
    let s = k.dim(2)?;
    let scores = (q.matmul(&k.t()?)? * (1.0 / (dh as f64).sqrt()))?;
    let scores = match mask.bias(t, s, q.device())? {
        Some(bias) => scores.broadcast_add(&bias)?,
        None => scores,
    };
    let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
    weights.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h * dh))
}

struct AttentionOp {
    heads: usize,
    mask: KeyMask,
}

/// Where one argument's heads lie in its storage: element `(b, h, i, j)` is
/// `data[offset + b·sb + h·sh + i·si + j·sj]`.
struct Heads<'a> {
    data: &'a [f32],
    offset: usize,
    strides: [usize; 4],
    /// `(B, heads, positions, d_head)`
    dims: [usize; 4],
    /// The argument's rank (3: heads side by side; 4: split).
    rank: usize,
}

impl<'a> Heads<'a> {
    fn of(s: &'a CpuStorage, l: &Layout, heads: usize, what: &str) -> Result<Self> {
        let CpuStorage::F32(data) = s else { candle_core::bail!("attention {what}: expected f32 values") };
        let (dims, st) = (l.shape().dims(), l.stride());
        let offset = l.start_offset();
        match *dims {
            [b, t, d] if heads > 0 && d % heads == 0 => {
                let dh = d / heads;
                Ok(Self { data, offset, strides: [st[0], dh * st[2], st[1], st[2]], dims: [b, heads, t, dh], rank: 3 })
            }
            [b, h, t, dh] if h == heads => {
                Ok(Self { data, offset, strides: [st[0], st[1], st[2], st[3]], dims: [b, h, t, dh], rank: 4 })
            }
            _ => candle_core::bail!(
                "attention {what}: expected (B, T, heads · d_head) or (B, heads, T, d_head), got {dims:?}"
            ),
        }
    }

    /// Head `h` of row `b` as a `(positions, d_head)` matrix.
    fn view(&self, b: usize, h: usize) -> View<'a> {
        let start = self.offset + b * self.strides[0] + h * self.strides[1];
        View {
            data: &self.data[start..],
            rows: self.dims[2],
            cols: self.dims[3],
            rs: self.strides[2],
            cs: self.strides[3],
        }
    }

    /// A zeroed contiguous buffer of this argument's shape, and its shape.
    fn zeros(&self) -> (Vec<f32>, Shape) {
        let [b, h, t, dh] = self.dims;
        let shape = if self.rank == 3 { Shape::from((b, t, h * dh)) } else { Shape::from((b, h, t, dh)) };
        (vec![0f32; b * h * t * dh], shape)
    }

    /// Writes `m` (row-major `(positions, d_head)`) as head `h` of row `b` into a
    /// contiguous buffer of this argument's shape.
    fn scatter(&self, dst: &mut [f32], b: usize, h: usize, m: &[f32]) {
        let [_, heads, t, dh] = self.dims;
        for (i, row) in m.chunks_exact(dh).enumerate() {
            let at = if self.rank == 3 { (b * t + i) * heads * dh + h * dh } else { ((b * heads + h) * t + i) * dh };
            dst[at..at + dh].copy_from_slice(row);
        }
    }
}

impl AttentionOp {
    /// The weights `(T, S)` of head `h` of row `b`, masked keys exactly 0, into `p`.
    fn weights(&self, q: &Heads, k: &Heads, b: usize, h: usize, p: &mut [f32]) {
        let (t, s, dh) = (q.dims[2], k.dims[2], q.dims[3]);
        let scale = 1.0 / (dh as f32).sqrt();
        matmul(p, q.view(b, h), k.view(b, h).t(), false);
        for (i, row) in p.chunks_exact_mut(s).enumerate().take(t) {
            let n = self.mask.visible(b, i, s);
            let (seen, hidden) = row.split_at_mut(n);
            let mut max = f32::NEG_INFINITY;
            for x in seen.iter_mut() {
                *x *= scale;
                max = max.max(*x);
            }
            let mut sum = 0f32;
            for x in seen.iter_mut() {
                *x = (*x - max).exp();
                sum += *x;
            }
            let inv = if sum > 0.0 { 1.0 / sum } else { 0.0 };
            for x in seen.iter_mut() {
                *x *= inv;
            }
            hidden.fill(0.0);
        }
    }

    fn check(&self, q: &Heads, k: &Heads, v: &Heads) -> Result<()> {
        let [b, h, _, dh] = q.dims;
        if k.dims != v.dims || k.dims[0] != b || k.dims[1] != h || k.dims[3] != dh || k.dims[2] == 0 {
            candle_core::bail!("attention: q {:?}, k {:?} and v {:?} disagree", q.dims, k.dims, v.dims);
        }
        if let Some(l) = &self.mask.lengths {
            if l.len() != b || l.contains(&0) {
                candle_core::bail!("attention: {} key lengths for {b} rows (each at least 1)", l.len());
            }
        }
        Ok(())
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (q, k, v) = (
            Heads::of(s1, l1, self.heads, "q")?,
            Heads::of(s2, l2, self.heads, "k")?,
            Heads::of(s3, l3, self.heads, "v")?,
        );
        self.check(&q, &k, &v)?;
        let [b, h, t, dh] = q.dims;
        let s = k.dims[2];
        let mut out = vec![0f32; b * t * h * dh];
        let mut p = vec![0f32; t * s];
        let mut ctx = vec![0f32; t * dh];
        for bi in 0..b {
            for hi in 0..h {
                self.weights(&q, &k, bi, hi, &mut p);
                matmul(&mut ctx, View::rows(&p, t, s), v.view(bi, hi), false);
                for (i, row) in ctx.chunks_exact(dh).enumerate() {
                    let at = (bi * t + i) * h * dh + hi * dh;
                    out[at..at + dh].copy_from_slice(row);
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, t, h * dh))))
    }

    /// With `P` the weights and `dO` the context's gradient (per row and head):
    /// `dP = dO vᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP)) / sqrt(d_head)`, `dq = dS k`,
    /// `dk = dSᵀ q`, `dv = Pᵀ dO`.
    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let guards =
            [q.storage_and_layout(), k.storage_and_layout(), v.storage_and_layout(), grad.storage_and_layout()];
        let cpu = |i: usize| -> Result<(&CpuStorage, &Layout)> {
            match &*guards[i].0 {
                Storage::Cpu(s) => Ok((s, guards[i].1)),
                _ => candle_core::bail!("attention: expected CPU tensors"),
            }
        };
        let heads = |i: usize, what: &str| -> Result<Heads> {
            let (s, l) = cpu(i)?;
            Heads::of(s, l, self.heads, what)
        };
        let (hq, hk, hv, g) = (heads(0, "q")?, heads(1, "k")?, heads(2, "v")?, heads(3, "grad")?);
        self.check(&hq, &hk, &hv)?;
        let [b, h, t, dh] = hq.dims;
        let s = hk.dims[2];
        let scale = 1.0 / (dh as f32).sqrt();
        let ((mut dq, q_shape), (mut dk, k_shape), (mut dv, v_shape)) = (hq.zeros(), hk.zeros(), hv.zeros());
        let (mut p, mut dp) = (vec![0f32; t * s], vec![0f32; t * s]);
        let (mut tq, mut tk) = (vec![0f32; t * dh], vec![0f32; s * dh]);
        for bi in 0..b {
            for hi in 0..h {
                self.weights(&hq, &hk, bi, hi, &mut p);
                let go = g.view(bi, hi);
                matmul(&mut dp, go, hv.view(bi, hi).t(), false);
                for (pr, dr) in p.chunks_exact(s).zip(dp.chunks_exact_mut(s)) {
                    let dot: f32 = pr.iter().zip(dr.iter()).map(|(a, b)| a * b).sum();
                    for (d, &pv) in dr.iter_mut().zip(pr) {
                        *d = pv * (*d - dot) * scale;
                    }
                }
                matmul(&mut tq, View::rows(&dp, t, s), hk.view(bi, hi), false);
                hq.scatter(&mut dq, bi, hi, &tq);
                matmul(&mut tk, View::rows(&dp, t, s).t(), hq.view(bi, hi), false);
                hk.scatter(&mut dk, bi, hi, &tk);
                matmul(&mut tk, View::rows(&p, t, s).t(), go, false);
                hv.scatter(&mut dv, bi, hi, &tk);
            }
        }
        let dev = q.device();
        Ok((
            Some(Tensor::from_vec(dq, q_shape, dev)?),
            Some(Tensor::from_vec(dk, k_shape, dev)?),
            Some(Tensor::from_vec(dv, v_shape, dev)?),
        ))
    }
}
