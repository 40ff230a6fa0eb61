//! Adam, AdamW and SGD with momentum, with state the project owns (and checkpoints).
//!
//! Updates follow `torch.optim` step for step; the arithmetic runs on `f32` host
//! vectors, which on the CPU is one pass per parameter instead of a dozen tensor ops.

use std::cell::RefCell;
use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp1, Layout, Storage, Tensor, Var};

use crate::config::{OptimizerKind, TrainConfig};
use crate::error::{Result, TrainError};

#[derive(Debug)]
struct Slot {
    name: String,
    var: Var,
    /// Adam first moment, or SGD momentum buffer.
    m: Vec<f32>,
    /// Adam second moment.
    v: Vec<f32>,
}

#[derive(Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    momentum: f64,
    weight_decay: f64,
    slots: Vec<Slot>,
    /// Threads the update is split over (whole parameters each).
    threads: usize,
    /// Optimizer steps taken so far.
    pub steps: u64,
}

impl Optimizer {
    /// Buffers of a parameter's size the optimizer keeps per parameter (the moments,
    /// allocated whatever the optimizer kind).
    pub const BUFFERS_PER_PARAMETER: usize = 2;

    pub fn new(cfg: &TrainConfig, params: Vec<(String, Var)>) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, var)| {
                let n = var.elem_count();
                Slot { name, var, m: vec![0.0; n], v: vec![0.0; n] }
            })
            .collect();
        Self {
            kind: cfg.optimizer,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            epsilon: cfg.epsilon,
            momentum: cfg.momentum,
            weight_decay: cfg.weight_decay,
            slots,
            threads: 1,
            steps: 0,
        }
    }

    /// Splits each update over `threads` threads, by parameter (the result does not
    /// depend on the count).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// The slots cut into `threads` runs of consecutive parameters of about equal size
    /// (fewer when there are fewer parameters): the index where each run ends.
    fn cuts(&self) -> Vec<usize> {
        let parts = self.threads.min(self.slots.len()).max(1);
        let total: usize = self.slots.iter().map(|s| s.m.len()).sum();
        let mut ends = Vec::with_capacity(parts);
        let mut seen = 0;
        for (i, s) in self.slots.iter().enumerate() {
            let k = ends.len() + 1;
            if k < parts && parts * (seen + s.m.len()) > k * total {
                ends.push((i).max(ends.last().map_or(1, |&e| e + 1)));
            }
            seen += s.m.len();
        }
        ends.push(self.slots.len());
        ends.dedup();
        ends
    }

    /// Applies one update with learning rate `lr`, after clipping the global gradient
    /// norm to `clip` when `clip > 0` (as `torch.nn.utils.clip_grad_norm_`).
    /// Returns the gradient norm before clipping.
    pub fn step(&mut self, grads: &GradStore, lr: f64, clip: f64) -> Result<f64> {
        let gs: Vec<Option<Tensor>> = self
            .slots
            .iter()
            .map(|s| grads.get(s.var.as_tensor()).map(Tensor::contiguous).transpose())
            .collect::<candle_core::Result<_>>()?;
        let ends = self.cuts();
        // Per-parameter sums of squares, added in parameter order whatever the split.
        let squares = |gs: &[Option<Tensor>]| -> candle_core::Result<Vec<f64>> {
            gs.iter().map(|g| g.as_ref().map_or(Ok(0.0), |g| with_values(g, sum_of_squares))).collect()
        };
        let gparts = split_at_ends(&gs, &ends);
        let sq: Vec<f64> = on_threads(gparts.iter().map(|g| move || Ok(squares(g)?)).collect())?.concat();
        let norm = sq.iter().sum::<f64>().sqrt();
        let scale = if clip > 0.0 { (clip / (norm + 1e-6)).min(1.0) as f32 } else { 1.0 };
        self.steps += 1;
        let t = self.steps as i32;
        let rule = Rule {
            kind: self.kind,
            b1: self.beta1 as f32,
            b2: self.beta2 as f32,
            wd: self.weight_decay as f32,
            bc2_sqrt: (1.0 - self.beta2.powi(t)).sqrt() as f32,
            step_size: (lr / (1.0 - self.beta1.powi(t))) as f32,
            lr: lr as f32,
            eps: self.epsilon as f32,
            momentum: self.momentum as f32,
            first: self.steps == 1,
            scale,
        };
        let mut slots: Vec<&mut [Slot]> = Vec::with_capacity(ends.len());
        let mut rest = self.slots.as_mut_slice();
        let mut start = 0;
        for &end in &ends {
            let (part, tail) = rest.split_at_mut(end - start);
            slots.push(part);
            rest = tail;
            start = end;
        }
        let rule = &rule;
        on_threads(slots.into_iter().zip(gparts).map(|(s, g)| move || update(s, g, rule)).collect())?;
        Ok(norm)
    }

    /// The moments as named tensors (`m.<param>`, `v.<param>`), for checkpoints.
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for s in &self.slots {
            let dev = s.var.device();
            out.insert(format!("m.{}", s.name), Tensor::from_slice(&s.m, s.var.shape(), dev)?);
            out.insert(format!("v.{}", s.name), Tensor::from_slice(&s.v, s.var.shape(), dev)?);
        }
        Ok(out)
    }

    /// Restores what [`Optimizer::state_tensors`] saved, plus the step count.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        for s in &mut self.slots {
            for (prefix, buf) in [("m", &mut s.m), ("v", &mut s.v)] {
                let key = format!("{prefix}.{}", s.name);
                let t = tensors.get(&key).ok_or_else(|| TrainError::State(format!("{key} is missing")))?;
                let v = t.flatten_all()?.to_vec1::<f32>()?;
                if v.len() != buf.len() {
                    return Err(TrainError::State(format!("{key} has {} values, expected {}", v.len(), buf.len())));
                }
                *buf = v;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// One step's hyper-parameters, applied element by element as `torch.optim` does.
#[derive(Debug)]
struct Rule {
    kind: OptimizerKind,
    b1: f32,
    b2: f32,
    wd: f32,
    bc2_sqrt: f32,
    step_size: f32,
    lr: f32,
    eps: f32,
    momentum: f32,
    first: bool,
    /// Gradient clipping factor.
    scale: f32,
}

impl Rule {
    fn apply(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        match self.kind {
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                // Zipped slices (no bounds checks) and the weight-decay choice made once, so
                // that the loop vectorises; same operations in the same order as before.
                let decay = if self.kind == OptimizerKind::Adamw { 1.0 - self.lr * self.wd } else { 1.0 };
                let l2 = if self.kind == OptimizerKind::Adamw { 0.0 } else { self.wd };
                let (b1, b2, scale, bc2, eps, step) =
                    (self.b1, self.b2, self.scale, self.bc2_sqrt, self.eps, self.step_size);
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    if decay != 1.0 {
                        *p *= decay;
                    }
                    let gi = if l2 != 0.0 { g * scale + l2 * *p } else { g * scale };
                    *m = *m * b1 + (1.0 - b1) * gi;
                    *v = *v * b2 + (1.0 - b2) * gi * gi;
                    let denom = v.sqrt() / bc2 + eps;
                    *p -= step * (*m / denom);
                }
            }
            OptimizerKind::Sgd => {
                for i in 0..p.len() {
                    let mut gi = g[i] * self.scale;
                    if self.wd != 0.0 {
                        gi += self.wd * p[i];
                    }
                    if self.momentum != 0.0 {
                        m[i] = if self.first { gi } else { self.momentum * m[i] + gi };
                        gi = m[i];
                    }
                    p[i] -= self.lr * gi;
                }
            }
        }
    }
}

/// Applies `rule` to each slot with its gradient (slots without one are left alone).
fn update(slots: &mut [Slot], grads: &[Option<Tensor>], rule: &Rule) -> Result<()> {
    for (s, g) in slots.iter_mut().zip(grads) {
        let Some(g) = g else { continue };
        if s.var.device().is_cpu() {
            with_values(g, |g| {
                let op = InPlace { rule, g, m: RefCell::new(&mut s.m), v: RefCell::new(&mut s.v) };
                s.var.as_tensor().inplace_op1(&op)
            })??;
        } else {
            let g = g.flatten_all()?.to_vec1::<f32>()?;
            let mut p = s.var.flatten_all()?.to_vec1::<f32>()?;
            rule.apply(&mut p, &g, &mut s.m, &mut s.v);
            s.var.set(&Tensor::from_vec(p, s.var.shape(), s.var.device())?)?;
        }
    }
    Ok(())
}

/// Updates a CPU parameter where it lives, without copying it out and back.
struct InPlace<'a> {
    rule: &'a Rule,
    g: &'a [f32],
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
}

impl InplaceOp1 for InPlace<'_> {
    fn name(&self) -> &'static str {
        "optimizer-step"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(p) = storage else { candle_core::bail!("optimizer: parameters must be f32") };
        let Some((a, b)) = layout.contiguous_offsets() else {
            candle_core::bail!("optimizer: non-contiguous parameter")
        };
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        if b - a != self.g.len() || m.len() != self.g.len() {
            candle_core::bail!("optimizer: gradient and parameter sizes differ");
        }
        self.rule.apply(&mut p[a..b], self.g, &mut m, &mut v);
        Ok(())
    }
}

/// `Σ x²` in f64, over 8 independent lanes so that the loop vectorises.
fn sum_of_squares(v: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += f64::from(c[k]) * f64::from(c[k]);
        }
    }
    acc.iter().sum::<f64>() + tail.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>()
}

/// Runs `f` over a contiguous f32 tensor's values without copying them (CPU), or a copy.
fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    if let (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) = (&*storage, layout.contiguous_offsets()) {
        return Ok(f(&v[a..b]));
    }
    drop(storage);
    Ok(f(&t.flatten_all()?.to_vec1::<f32>()?))
}

/// `items` cut at `ends` (each part ends where the next begins).
fn split_at_ends<'a, T>(items: &'a [T], ends: &[usize]) -> Vec<&'a [T]> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let part = &items[start..end];
            start = end;
            part
        })
        .collect()
}

/// Runs each job on its own thread (the first on this one) and returns their results in
/// order.
fn on_threads<R: Send, F: FnOnce() -> Result<R> + Send>(jobs: Vec<F>) -> Result<Vec<R>> {
    let mut jobs = jobs.into_iter();
    let Some(first) = jobs.next() else { return Ok(Vec::new()) };
    let results = std::thread::scope(|scope| {
        let others: Vec<_> = jobs.map(|job| scope.spawn(job)).collect();
        let mut all = vec![Ok(first())];
        all.extend(others.into_iter().map(|h| h.join().map_err(|_| TrainError::Worker)));
        all
    });
    results.into_iter().map(|r| r?).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Two steps on f(p) = sum(p^2 * c), compared with PyTorch:
    /// ```python
    /// import torch
    /// for opt in ["adam", "adamw", "sgd"]:
    ///     p = torch.tensor([1.0, -2.0, 0.5], requires_grad=True); c = torch.tensor([1.0, 3.0, -2.0])
    ///     o = {"adam": lambda: torch.optim.Adam([p], lr=0.1, weight_decay=0.01),
    ///          "adamw": lambda: torch.optim.AdamW([p], lr=0.1, weight_decay=0.01),
    ///          "sgd": lambda: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)}[opt]()
    ///     for _ in range(2):
    ///         o.zero_grad(); (p * p * c).sum().backward(); o.step()
    ///     print(opt, p.tolist())
    /// ```
    #[test]
    fn two_steps_match_pytorch() {
        let cases = [
            (OptimizerKind::Adam, [0.800_412_2_f32, -1.800_166_5, 0.700_061_3]),
            (OptimizerKind::Adamw, [0.798_519_1, -1.796_272_6, 0.698_963_4]),
            (OptimizerKind::Sgd, [0.457_501_02, 0.763_398_05, 1.158_150_6]),
        ];
        for (kind, expected) in cases {
            let cfg = TrainConfig {
                optimizer: kind,
                learning_rate: 0.1,
                weight_decay: 0.01,
                momentum: 0.9,
                ..Default::default()
            };
            let var = Var::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).expect("var");
            let c = Tensor::new(&[1.0f32, 3.0, -2.0], &Device::Cpu).expect("c");
            let mut opt = Optimizer::new(&cfg, vec![("p".into(), var.clone())]);
            for _ in 0..2 {
                let loss = (var.as_tensor().sqr().expect("sqr") * &c).expect("mul").sum_all().expect("sum");
                let grads = loss.backward().expect("backward");
                opt.step(&grads, 0.1, 0.0).expect("step");
            }
            let got: Vec<f32> = var.as_tensor().to_vec1().expect("vec");
            for (g, e) in got.iter().zip(expected) {
                assert!((g - e).abs() < 1e-5, "{kind:?}: {got:?} vs {expected:?}");
            }
        }
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let cfg = TrainConfig { optimizer: OptimizerKind::Sgd, ..Default::default() };
        let var = Var::new(&[0.0f32, 0.0], &Device::Cpu).expect("var");
        let c = Tensor::new(&[3.0f32, 4.0], &Device::Cpu).expect("c");
        let mut opt = Optimizer::new(&cfg, vec![("p".into(), var.clone())]);
        let grads = (var.as_tensor() * &c).expect("mul").sum_all().expect("sum").backward().expect("bw");
        let norm = opt.step(&grads, 1.0, 1.0).expect("step");
        assert!((norm - 5.0).abs() < 1e-9);
        let got: Vec<f32> = var.as_tensor().to_vec1().expect("vec");
        assert!((got[0] + 0.6).abs() < 1e-5 && (got[1] + 0.8).abs() < 1e-5, "{got:?}");
    }

    #[test]
    fn any_thread_count_updates_exactly_as_one() {
        let cfg = TrainConfig { learning_rate: 0.1, ..Default::default() };
        let run = |threads: usize| -> (Vec<Vec<f32>>, f64) {
            let vars: Vec<Var> = [5usize, 1, 7, 3]
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let v: Vec<f32> = (0..n).map(|j| ((i * 7 + j) as f32 * 0.37).sin()).collect();
                    Var::new(v.as_slice(), &Device::Cpu).expect("var")
                })
                .collect();
            let mut opt =
                Optimizer::new(&cfg, vars.iter().enumerate().map(|(i, v)| (format!("p{i}"), v.clone())).collect());
            opt.set_threads(threads);
            let mut norm = 0.0;
            for _ in 0..3 {
                let loss = vars
                    .iter()
                    .map(|v| v.as_tensor().sqr().expect("sqr").sum_all().expect("sum"))
                    .reduce(|a, b| (a + b).expect("add"))
                    .expect("loss");
                norm = opt.step(&loss.backward().expect("backward"), 0.1, 0.5).expect("step");
            }
            (vars.iter().map(|v| v.as_tensor().to_vec1().expect("vec")).collect(), norm)
        };
        for threads in [2, 3, 4, 9] {
            assert_eq!(run(1), run(threads), "{threads} threads");
        }
    }

    /// The parts are runs of consecutive parameters of about equal size, one per thread
    /// (never more parts than parameters), and two threads cut where one half ends.
    #[test]
    fn cuts_share_the_parameters_out_evenly() {
        let opt = |sizes: &[usize], threads: usize| {
            let vars = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| (format!("p{i}"), Var::zeros(n, candle_core::DType::F32, &Device::Cpu).expect("var")))
                .collect();
            let mut o = Optimizer::new(&TrainConfig::default(), vars);
            o.set_threads(threads);
            o.cuts()
        };
        assert_eq!(opt(&[5, 1, 7, 3], 1), [4]);
        assert_eq!(opt(&[5, 1, 7, 3], 2), [2, 4]);
        assert_eq!(opt(&[4, 4, 4, 4], 4), [1, 2, 3, 4]);
        assert_eq!(opt(&[100, 1, 1], 3), [1, 2, 3]);
        assert_eq!(opt(&[3, 3], 8), [1, 2]);
    }
}
