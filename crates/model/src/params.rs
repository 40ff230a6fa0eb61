//! Parameter storage, filled through a `VarBuilder` from one of two sources
//! ([`builder`]): seeded, PyTorch-style initialisation for a new model, or a checkpoint's
//! safetensors file for a trained one (nothing is drawn at random first).
//!
//! candle's CPU generator cannot be seeded, so `SeededInit` plugs into a
//! `VarBuilder` and draws every initial value from the project's own [`Rng`]. The
//! modules ask for PyTorch's defaults through `Init` hints:
//! `Uniform` (Linear, GRU: ±1/√fan_in, ±1/√hidden) and `Randn` (Embedding: N(0, 1)).
//! `FileWeights` answers the same requests from the file, checking each shape.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use s2s_data::Rng;

use crate::error::{ModelError, Result};
use crate::kernels::SharedProduct;

/// The trainable variables of a model, by stable dotted name.
#[derive(Debug, Clone, Default)]
pub struct ParamStore {
    vars: Arc<Mutex<BTreeMap<String, Var>>>,
}

impl ParamStore {
    /// All variables, sorted by name.
    pub fn vars(&self) -> Vec<(String, Var)> {
        self.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Var>> {
        self.vars.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Parameter counts grouped by module: the first two name segments (`decoder.gru`),
    /// or the first for a top-level module's tensors (`bridge.weight` → `bridge`).
    pub fn counts_by_module(&self) -> Vec<(String, usize)> {
        let mut out: BTreeMap<String, usize> = BTreeMap::new();
        for (name, var) in self.lock().iter() {
            let segments: Vec<&str> = name.split('.').collect();
            let depth = segments.len().saturating_sub(1).clamp(1, 2);
            *out.entry(segments[..depth.min(segments.len())].join(".")).or_default() += var.elem_count();
        }
        out.into_iter().collect()
    }

    pub fn total(&self) -> usize {
        self.lock().values().map(|v| v.elem_count()).sum()
    }

    /// Writes every variable to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: BTreeMap<String, Tensor> =
            self.lock().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        candle_core::safetensors::save(&tensors.into_iter().collect(), path)
            .map_err(|e| ModelError::Checkpoint { path: path.to_path_buf(), message: e.to_string() })
    }
}

/// Where a new model's weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights<'a> {
    /// Drawn from the run's seed (PyTorch's default initialisations): a new run.
    Seed(u64),
    /// Read from a checkpoint's safetensors file; names and shapes must match.
    File(&'a Path),
}

/// A `VarBuilder` backend that creates variables from a seeded [`Rng`].
struct SeededInit {
    store: ParamStore,
    rng: Mutex<Rng>,
}

impl SimpleBackend for SeededInit {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        if let Some(v) = self.store.lock().get(name) {
            return Ok(v.as_tensor().clone());
        }
        let n = s.elem_count();
        let mut rng = self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let values: Vec<f32> = match h {
            Init::Const(c) => vec![c as f32; n],
            Init::Uniform { lo, up } => (0..n).map(|_| rng.uniform(lo as f32, up as f32)).collect(),
            Init::Randn { mean, stdev } => (0..n).map(|_| mean as f32 + stdev as f32 * rng.normal()).collect(),
            Init::Kaiming { .. } => {
                candle_core::bail!("{name}: Kaiming init is not used by this project")
            }
        };
        let t = Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&t)?;
        self.store.lock().insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> candle_core::Result<Tensor> {
        match self.store.lock().get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => candle_core::bail!("no variable named {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.store.lock().contains_key(name)
    }
}

/// A fresh store and a builder that fills it from `Rng::derive(seed, "init")`.
pub fn seeded_builder(seed: u64, device: &Device) -> (ParamStore, VarBuilder<'static>) {
    let store = ParamStore::default();
    let backend = SeededInit { store: store.clone(), rng: Mutex::new(Rng::derive(seed, "init")) };
    let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
    (store, vb)
}

/// A `VarBuilder` backend that creates each variable from a safetensors file's tensor of
/// the same name, refusing a missing tensor or another shape. Each tensor is dropped as its
/// variable is made.
struct FileWeights {
    store: ParamStore,
    tensors: Mutex<std::collections::HashMap<String, Tensor>>,
    path: std::path::PathBuf,
}

impl SimpleBackend for FileWeights {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, _: &Device) -> candle_core::Result<Tensor> {
        if let Some(v) = self.store.lock().get(name) {
            return Ok(v.as_tensor().clone());
        }
        let path = self.path.display();
        let tensor = self.tensors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name);
        let Some(t) = tensor else { candle_core::bail!("checkpoint {path}: tensor `{name}` is missing") };
        if t.dims() != s.dims() {
            candle_core::bail!(
                "checkpoint {path}: tensor `{name}` has shape {:?}, the model needs {:?}",
                t.dims(),
                s.dims()
            )
        }
        let var = Var::from_tensor(&t.to_dtype(dtype)?)?;
        self.store.lock().insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> candle_core::Result<Tensor> {
        match self.store.lock().get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => candle_core::bail!("no variable named {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.store.lock().contains_key(name)
            || self.tensors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(name)
    }
}

/// What [`builder`] read, to check once the model is built that the file held nothing
/// else ([`WeightCheck::finish`]).
#[derive(Debug)]
pub struct WeightCheck {
    file: Option<(std::path::PathBuf, Vec<String>)>,
}

impl WeightCheck {
    /// Every tensor of the file must have become one of the model's parameters.
    pub fn finish(self, store: &ParamStore) -> Result<()> {
        let Some((path, names)) = self.file else { return Ok(()) };
        let vars = store.lock();
        match names.iter().find(|k| !vars.contains_key(*k)) {
            Some(extra) => {
                Err(ModelError::Checkpoint { path, message: format!("tensor `{extra}` does not belong to this model") })
            }
            None => Ok(()),
        }
    }
}

/// A fresh store and a builder that fills it from `weights`: drawn from the seed, or read
/// from the file. Call [`WeightCheck::finish`] once every module is built.
pub fn builder(weights: Weights, device: &Device) -> Result<(ParamStore, VarBuilder<'static>, WeightCheck)> {
    match weights {
        Weights::Seed(seed) => {
            let (store, vb) = seeded_builder(seed, device);
            Ok((store, vb, WeightCheck { file: None }))
        }
        Weights::File(path) => {
            let tensors = candle_core::safetensors::load(path, device)
                .map_err(|e| ModelError::Checkpoint { path: path.to_path_buf(), message: e.to_string() })?;
            let names = tensors.keys().cloned().collect();
            let store = ParamStore::default();
            let backend = FileWeights { store: store.clone(), tensors: Mutex::new(tensors), path: path.to_path_buf() };
            let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
            Ok((store, vb, WeightCheck { file: Some((path.to_path_buf(), names)) }))
        }
    }
}

/// PyTorch's `nn.Linear` default: weight and bias uniform in ±1/√in.
pub fn linear(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    let b = 1.0 / (in_dim as f64).sqrt();
    let init = Init::Uniform { lo: -b, up: b };
    let w = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
    let bias = if bias { Some(vb.get_with_hints(out_dim, "bias", init)?) } else { None };
    Linear::new(w, bias)
}

/// `y = x Wᵀ + b` with PyTorch's `(out, in)` weight layout.
///
/// The transposed view `Wᵀ` is made once and shared by every call: it aliases the
/// variable's storage (in-place optimizer updates show through), and in backward the
/// per-step gradients accumulate into one contiguous `(in, out)` gradient that is
/// transposed once. A fresh `W.t()` per decoder step made candle add each step's
/// gradient into a transposed accumulator element by element (45 % of the notebook
/// config's time).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    weight_t: Tensor,
    bias: Option<Tensor>,
    /// Set while training a recurrence on the CPU: the per-step products whose weight
    /// gradient is formed once per batch.
    shared: Option<SharedProduct>,
    /// Inference only: 2-D products go through [`crate::kernels::detached_product`].
    detached: bool,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let weight_t = weight.t()?;
        Ok(Self { weight, weight_t, bias, shared: None, detached: false })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `Wᵀ`, `(in, out)`, a view of the weight.
    pub fn weight_t(&self) -> &Tensor {
        &self.weight_t
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// A copy whose 2-D products go through one [`SharedProduct`] (returned too, for its
    /// anchor); `None` without a bias.
    pub fn shared(&self) -> Result<Option<(Self, SharedProduct)>> {
        let Some(bias) = &self.bias else { return Ok(None) };
        let product = SharedProduct::new(&self.weight, bias)?;
        Ok(Some((Self { shared: Some(product.clone()), ..self.clone() }, product)))
    }

    /// [`Self::shared`], its product pushed to `products`; a plain copy without a bias.
    pub fn shared_into(&self, products: &mut Vec<SharedProduct>) -> Result<Self> {
        Ok(match self.shared()? {
            Some((l, p)) => {
                products.push(p);
                l
            }
            None => self.clone(),
        })
    }

    /// A copy for inference whose 2-D products carry no gradient and pack nothing of the
    /// weight (see [`crate::kernels::detached_product`]).
    pub fn detached(&self) -> Self {
        Self { detached: true, shared: None, ..self.clone() }
    }

    /// [`Self::forward`] for inference, without gradients (see
    /// [`crate::kernels::detached_product`]).
    ///
    /// # Shapes
    /// `x: (N, in)` → `(N, out)`
    pub fn forward_detached(&self, x: &Tensor) -> Result<Tensor> {
        Ok(crate::kernels::detached_product(x, &self.weight, self.bias.as_ref())?)
    }

    /// [`Self::forward`] as one op with its own backward on the CPU
    /// ([`crate::kernels::linear`]), for inputs of any rank: the Transformer's products.
    ///
    /// # Shapes
    /// `x: (.., in)` → `(.., out)`
    pub fn forward_fused(&self, x: &Tensor) -> Result<Tensor> {
        self.fused_with(x, crate::kernels::linear, false)
    }

    /// `relu(`[`Self::forward_fused`]`)` as one op (the feed-forward's first product).
    ///
    /// # Shapes
    /// `x: (.., in)` → `(.., out)`
    pub fn forward_fused_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.fused_with(x, crate::kernels::linear_relu, true)
    }

    fn fused_with(
        &self,
        x: &Tensor,
        op: fn(&Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        let unfused = |x: &Tensor| -> Result<Tensor> {
            let y = self.forward(x)?;
            Ok(if relu { y.relu()? } else { y })
        };
        let Some(bias) = &self.bias else { return unfused(x) };
        let dims = x.dims().to_vec();
        let Some((&k, lead)) = dims.split_last() else { return unfused(x) };
        let n: usize = lead.iter().product();
        let y = op(&x.reshape((n, k))?, &self.weight, bias)?;
        let mut out = lead.to_vec();
        out.push(self.weight.dim(0)?);
        Ok(y.reshape(out)?)
    }

    /// # Shapes
    /// `x: (N, in)` → `(N, out)`, or `(B, T, in)` → `(B, T, out)`
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let (Some(shared), [_, _]) = (&self.shared, x.dims()) {
            return Ok(shared.forward(x)?);
        }
        if let (true, [_, _]) = (self.detached, x.dims()) {
            return self.forward_detached(x);
        }
        let y = match x.dims() {
            [b, t, i] => x.reshape((b * t, *i))?.matmul(&self.weight_t)?.reshape((*b, *t, ()))?,
            _ => x.matmul(&self.weight_t)?,
        };
        Ok(match &self.bias {
            Some(bias) => y.broadcast_add(bias)?,
            None => y,
        })
    }
}

/// PyTorch's `nn.Embedding` default: N(0, 1).
pub fn embedding(vocab: usize, dim: usize, vb: VarBuilder) -> Result<candle_nn::Embedding> {
    let w = vb.get_with_hints((vocab, dim), "weight", Init::Randn { mean: 0.0, stdev: 1.0 })?;
    Ok(candle_nn::Embedding::new(w, dim))
}
