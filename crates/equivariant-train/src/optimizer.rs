//! AdamW with the gradient clipped to a global norm, as `torch.optim.AdamW` after
//! `torch.nn.utils.clip_grad_norm_` (NequIP's and MACE's trainers), with its state saved and
//! restored in the parameters' own dtype: a resumed run continues bit for bit, in f32 and
//! f64. (burn's optimizer record reloads moments in the device's default float type, f32.)
//! One step count serves every parameter (torch keeps one per parameter): the same as
//! torch's whenever every trained parameter gets a gradient at every step, as in training a
//! potential, where each parameter reaches the loss.
//!
//! For each parameter `p` with gradient `g` at step `t`:
//! `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
//! `p = p (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{DType, Tensor};
use equivariant::Real;
use safetensors::tensor::{Dtype, TensorView};

use crate::files::{read_safetensors, write_atomically};
use crate::gradients::ParamGradients;
use crate::model::relifted;
use crate::values::Values;
use crate::{Error, Result};

/// AdamW's hyperparameters and state.
///
/// ```
/// use burn::module::{Module, Param};
/// use burn::tensor::{Device, Tensor};
/// #[derive(Module, Debug)]
/// struct Scale { w: Param<Tensor<1>> }
/// let device = Device::flex().autodiff();
/// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
/// use equivariant_train::{gradients::ParamGradients, optimizer::AdamW};
/// let grads = model.w.val().mul_scalar(3.0).sum().backward(); // dL/dw = 3
/// let grads = ParamGradients::new(&model, &grads);
/// let mut optim = AdamW::new(0.0, None);
/// let model = optim.step(0.1, model, grads);
/// // The first step moves each weight by lr against its gradient's sign.
/// assert!((model.w.val().into_scalar::<f32>() - 0.9).abs() < 1e-6);
/// ```
#[derive(Debug, Clone)]
pub struct AdamW {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    weight_decay: f64,
    max_grad_norm: Option<f64>,
    step: usize,
    /// `(m, v)` of each parameter, flattened, in the parameter's dtype.
    moments: HashMap<ParamId, (Values, Values)>,
}

impl AdamW {
    /// AdamW with torch's defaults (`betas (0.9, 0.999)`, `eps 1e-8`), decoupled weight
    /// decay `weight_decay` (0: Adam) and, if given, the gradient clipped to the global L2
    /// norm `max_grad_norm`.
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// #[derive(Module, Debug)]
    /// struct Scale { w: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
    /// use equivariant_train::{gradients::ParamGradients, optimizer::AdamW};
    /// let grads = model.w.val().mul_scalar(3.0).sum().backward(); // dL/dw = 3
    /// let grads = ParamGradients::new(&model, &grads);
    /// let mut optim = AdamW::new(0.5, None);
    /// let model = optim.step(0.1, model, grads);
    /// // Decoupled decay: w (1 - lr wd) - lr = 0.95 - 0.1.
    /// assert!((model.w.val().into_scalar::<f32>() - 0.85).abs() < 1e-6);
    /// ```
    pub fn new(weight_decay: f64, max_grad_norm: Option<f64>) -> Self {
        AdamW {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay,
            max_grad_norm,
            step: 0,
            moments: HashMap::new(),
        }
    }

    /// The number of steps taken.
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// #[derive(Module, Debug)]
    /// struct Scale { w: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
    /// use equivariant_train::{gradients::ParamGradients, optimizer::AdamW};
    /// let grads = model.w.val().mul_scalar(3.0).sum().backward(); // dL/dw = 3
    /// let grads = ParamGradients::new(&model, &grads);
    /// let mut optim = AdamW::new(0.0, None);
    /// let _ = optim.step(0.1, model, grads);
    /// assert_eq!(optim.steps(), 1);
    /// ```
    pub fn steps(&self) -> usize {
        self.step
    }

    /// One step at learning rate `lr` of every parameter of `model` that has a gradient in
    /// `grads` (matched by the parameters' ids).
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// #[derive(Module, Debug)]
    /// struct Scale { w: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
    /// use equivariant_train::{gradients::ParamGradients, optimizer::AdamW};
    /// let grads = model.w.val().mul_scalar(3.0).sum().backward(); // dL/dw = 3
    /// let grads = ParamGradients::new(&model, &grads);
    /// let mut optim = AdamW::new(0.0, Some(1.0)); // clipping keeps the direction
    /// let model = optim.step(0.1, model, grads);
    /// assert!((model.w.val().into_scalar::<f32>() - 0.9).abs() < 1e-6);
    /// ```
    pub fn step<M: Module>(&mut self, lr: f64, model: M, grads: ParamGradients) -> M {
        let mut found: HashMap<ParamId, Values> = grads
            .into_map()
            .into_iter()
            .map(|(id, g)| (id, Values::of(g)))
            .collect();
        if let Some(max) = self.max_grad_norm {
            // Summed in the parameters' order: the same norm in every run.
            let total: f64 = param_ids(&model)
                .iter()
                .filter_map(|id| found.get(id))
                .map(Values::sum_squares)
                .sum::<f64>()
                .sqrt();
            // torch: clip_coef = max_norm / (total_norm + 1e-6), applied when below 1.
            let coef = max / (total + 1e-6);
            if coef < 1.0 {
                for g in found.values_mut() {
                    g.scale(coef);
                }
            }
        }
        self.step += 1;
        let t = self.step as i32;
        model.map(&mut Update {
            lr,
            bias_1: 1.0 - self.beta_1.powi(t),
            bias_2: 1.0 - self.beta_2.powi(t),
            optimizer: self,
            grads: found,
        })
    }

    /// Saves the step count and the moments of `model`'s parameters (named by their order in
    /// the module) to `path`, atomically.
    ///
    /// Errors: [`Error::Checkpoint`] if they cannot be serialized; [`Error::Io`].
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// #[derive(Module, Debug)]
    /// struct Scale { w: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
    /// use equivariant_train::{gradients::ParamGradients, optimizer::AdamW};
    /// let grads = model.w.val().mul_scalar(3.0).sum().backward(); // dL/dw = 3
    /// let grads = ParamGradients::new(&model, &grads);
    /// let mut optim = AdamW::new(0.0, None);
    /// let model = optim.step(0.1, model, grads);
    /// let path = std::env::temp_dir().join("equivariant_doc_adamw.safetensors");
    /// optim.save(&model, &path)?;
    /// assert!(path.exists());
    /// # Ok::<(), equivariant_train::Error>(())
    /// ```
    pub fn save<M: Module>(&self, model: &M, path: &Path) -> Result<()> {
        let file = path.display().to_string();
        let ids = param_ids(model);
        let mut buffers = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            if let Some((m, v)) = self.moments.get(id) {
                for (name, values) in [("m", m), ("v", v)] {
                    let dtype = match values.dtype() {
                        DType::F64 => Dtype::F64,
                        _ => Dtype::F32,
                    };
                    let bytes = values.to_le_bytes();
                    buffers.push((format!("{k}.{name}"), dtype, values.len(), bytes));
                }
            }
        }
        let views = buffers
            .iter()
            .map(|(name, dtype, len, bytes)| {
                TensorView::new(*dtype, vec![*len], bytes).map(|v| (name.clone(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Checkpoint {
                file: file.clone(),
                reason: e.to_string(),
            })?;
        let mut metadata = HashMap::new();
        metadata.insert("step".to_string(), self.step.to_string());
        let bytes =
            safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Checkpoint {
                file,
                reason: e.to_string(),
            })?;
        write_atomically(path, &bytes)
    }

    /// Restores the state [`save`](AdamW::save) wrote for `model`, in the dtype of `model`'s
    /// parameters.
    ///
    /// Errors: [`Error::Io`]; [`Error::Checkpoint`] naming the file for one that is not
    /// such a state or does not fit `model`.
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// #[derive(Module, Debug)]
    /// struct Scale { w: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
    /// use equivariant_train::{gradients::ParamGradients, optimizer::AdamW};
    /// let grads = model.w.val().mul_scalar(3.0).sum().backward(); // dL/dw = 3
    /// let grads = ParamGradients::new(&model, &grads);
    /// let mut optim = AdamW::new(0.0, None);
    /// let model = optim.step(0.1, model, grads);
    /// let path = std::env::temp_dir().join("equivariant_doc_adamw_load.safetensors");
    /// optim.save(&model, &path)?;
    /// let mut restored = AdamW::new(0.0, None);
    /// restored.load(&model, &path)?;
    /// assert_eq!(restored.steps(), 1);
    /// # Ok::<(), equivariant_train::Error>(())
    /// ```
    pub fn load<M: Module>(&mut self, model: &M, path: &Path) -> Result<()> {
        let file = path.display().to_string();
        let fail = |reason: String| Error::Checkpoint {
            file: file.clone(),
            reason,
        };
        let (bytes, step) = read_safetensors(path, "step", "an optimizer state")?;
        let step: usize = step
            .parse()
            .map_err(|_| fail(format!("step {step:?} is not a count")))?;
        let tensors = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| fail(format!("not an optimizer state ({e})")))?;
        let params = ParamShapes::of(model);
        let mut moments = HashMap::new();
        for (k, (id, numel, dtype, trained)) in params.0.iter().enumerate() {
            let read = |name: &str| -> Result<Option<Values>> {
                let view = match tensors.tensor(&format!("{k}.{name}")) {
                    Ok(view) => view,
                    Err(_) => return Ok(None),
                };
                if view.shape() != [*numel] {
                    return Err(fail(format!(
                        "moment {k}.{name} has shape {:?}, the parameter {numel} values",
                        view.shape()
                    )));
                }
                let values: Vec<f64> = match view.dtype() {
                    Dtype::F64 => view
                        .data()
                        .chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .collect(),
                    Dtype::F32 => view
                        .data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64)
                        .collect(),
                    other => return Err(fail(format!("moment {k}.{name} is {other:?}"))),
                };
                Ok(Some(Values::from_f64s(values, *dtype)))
            };
            match (read("m")?, read("v")?) {
                (Some(m), Some(v)) => {
                    moments.insert(*id, (m, v));
                }
                // After a step, every trained parameter has its moments: a state without
                // them belongs to another model.
                _ if *trained && step > 0 => {
                    return Err(fail(format!(
                        "no moments for parameter {k}: the state is of another model"
                    )));
                }
                _ => {}
            }
        }
        self.step = step;
        self.moments = moments;
        Ok(())
    }
}

/// The update of each parameter with a gradient.
struct Update<'a> {
    lr: f64,
    bias_1: f64,
    bias_2: f64,
    optimizer: &'a mut AdamW,
    grads: HashMap<ParamId, Values>,
}

/// AdamW's constants of one step, in a parameter's dtype.
struct Constants<T> {
    beta_1: T,
    one_minus_beta_1: T,
    beta_2: T,
    one_minus_beta_2: T,
    inv_bias_2: T,
    epsilon: T,
    lr_over_bias_1: T,
    decay: T,
}

impl<T: Real> Constants<T> {
    fn new(u: &Update<'_>) -> Self {
        let o = &*u.optimizer;
        let c = T::from_f64;
        Constants {
            beta_1: c(o.beta_1),
            one_minus_beta_1: c(1.0 - o.beta_1),
            beta_2: c(o.beta_2),
            one_minus_beta_2: c(1.0 - o.beta_2),
            inv_bias_2: c(1.0 / u.bias_2),
            epsilon: c(o.epsilon),
            lr_over_bias_1: c(u.lr / u.bias_1),
            decay: c(1.0 - u.lr * o.weight_decay),
        }
    }
}

/// One AdamW step of `p` with gradient `g` and moments `(m, v)`, elementwise, in `T`:
/// `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`, `p = p decay - (lr / bias_1) m /
/// (sqrt(v / bias_2) + eps)`.
fn adamw<T: Real>(p: &mut [T], g: &[T], (m, v): (&mut [T], &mut [T]), k: &Constants<T>) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = *m * k.beta_1 + g * k.one_minus_beta_1;
        *v = *v * k.beta_2 + g * g * k.one_minus_beta_2;
        let step = *m / ((*v * k.inv_bias_2).sqrt() + k.epsilon) * k.lr_over_bias_1;
        *p = *p * k.decay - step;
    }
}

impl ModuleMapper for Update<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(g) = self.grads.remove(&param.id) else {
            return param;
        };
        let id = param.id;
        relifted(param, |inner| {
            let (dims, device) = (inner.dims(), inner.device());
            let values = Values::of(inner);
            let (m, v) = match self.optimizer.moments.remove(&id) {
                Some(state) => state,
                None => (values.zeros_like(), values.zeros_like()),
            };
            let (values, m, v) = match values {
                Values::F32(mut p) => {
                    let (g, mut m, mut v) = (g.into_f32(), m.into_f32(), v.into_f32());
                    adamw(&mut p, &g, (&mut m, &mut v), &Constants::new(self));
                    (Values::F32(p), Values::F32(m), Values::F32(v))
                }
                Values::F64(mut p) => {
                    let (g, mut m, mut v) = (g.into_f64(), m.into_f64(), v.into_f64());
                    adamw(&mut p, &g, (&mut m, &mut v), &Constants::new(self));
                    (Values::F64(p), Values::F64(m), Values::F64(v))
                }
            };
            self.optimizer.moments.insert(id, (m, v));
            values.into_tensor(dims, &device)
        })
    }
}

/// Each float parameter's id, element count, dtype and whether it is trained, in visiting
/// order.
struct ParamShapes(Vec<(ParamId, usize, DType, bool)>);

impl ParamShapes {
    fn of<M: Module>(model: &M) -> Self {
        let mut shapes = ParamShapes(Vec::new());
        model.visit(&mut shapes);
        shapes
    }
}

impl ModuleVisitor for ParamShapes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let trained = t.is_require_grad();
        self.0
            .push((param.id, t.shape().num_elements(), t.dtype(), trained));
    }
}

/// The float parameters' ids in visiting order.
pub(crate) fn param_ids<M: Module>(model: &M) -> Vec<ParamId> {
    ParamShapes::of(model)
        .0
        .into_iter()
        .map(|(id, _, _, _)| id)
        .collect()
}
