//! The exponential moving average of a model's weights (NequIP's `use_ema`, torch_ema's
//! rule with its warm-up): after update `n`, `avg = d avg + (1 - d) theta` with
//! `d = min(decay, (1 + n) / (10 + n))`.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use equivariant::Real;

use crate::values::Values;

/// A model's moving average.
///
/// ```
/// use burn::module::{Module, Param};
/// use burn::tensor::{Device, Tensor};
/// #[derive(Module, Debug)]
/// struct Scale { w: Param<Tensor<1>> }
/// let device = Device::flex().autodiff();
/// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
/// use equivariant_train::ema::ExponentialMovingAverage;
/// let mut ema = ExponentialMovingAverage::new(&model, 0.99, 0);
/// let moved = Scale { w: model.w.clone().map(|w| w.add_scalar(1.0)) }; // same id, w = 2
/// ema.update(&moved); // d = min(0.99, 2 / 11)
/// let avg = ema.average().w.val().into_scalar::<f32>();
/// assert!((avg - (2.0 / 11.0 + 2.0 * 9.0 / 11.0)).abs() < 1e-6);
/// ```
#[derive(Debug, Clone)]
pub struct ExponentialMovingAverage<M> {
    average: M,
    decay: f64,
    updates: usize,
}

impl<M: Module + Clone> ExponentialMovingAverage<M> {
    /// The average of `model` alone, with `decay` and `updates` updates made so far.
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// #[derive(Module, Debug)]
    /// struct Scale { w: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
    /// use equivariant_train::ema::ExponentialMovingAverage;
    /// let ema = ExponentialMovingAverage::new(&model, 0.9, 0);
    /// assert_eq!(ema.updates(), 0);
    /// ```
    pub fn new(model: &M, decay: f64, updates: usize) -> Self {
        ExponentialMovingAverage {
            average: model.clone(),
            decay,
            updates,
        }
    }

    /// Folds `model` (the same module, parameters matched by id) into the average.
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// #[derive(Module, Debug)]
    /// struct Scale { w: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
    /// use equivariant_train::ema::ExponentialMovingAverage;
    /// let mut ema = ExponentialMovingAverage::new(&model, 0.9, 0);
    /// ema.update(&model);
    /// assert_eq!(ema.average().w.val().into_scalar::<f32>(), 1.0); // the same weights
    /// ```
    pub fn update(&mut self, model: &M) {
        self.updates += 1;
        let n = self.updates as f64;
        let d = self.decay.min((1.0 + n) / (10.0 + n));
        let mut current = Collect::default();
        model.visit(&mut current);
        self.average = self.average.clone().map(&mut Blend {
            values: current.values,
            d,
        });
    }

    /// The averaged model.
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// #[derive(Module, Debug)]
    /// struct Scale { w: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
    /// use equivariant_train::ema::ExponentialMovingAverage;
    /// let ema = ExponentialMovingAverage::new(&model, 0.9, 0);
    /// assert_eq!(ema.average().w.val().into_scalar::<f32>(), 1.0);
    /// ```
    pub fn average(&self) -> &M {
        &self.average
    }

    /// The number of updates made.
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// #[derive(Module, Debug)]
    /// struct Scale { w: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
    /// use equivariant_train::ema::ExponentialMovingAverage;
    /// let mut ema = ExponentialMovingAverage::new(&model, 0.9, 5);
    /// ema.update(&model);
    /// assert_eq!(ema.updates(), 6);
    /// ```
    pub fn updates(&self) -> usize {
        self.updates
    }
}

/// Every float parameter's values, by id.
#[derive(Default)]
struct Collect {
    values: HashMap<ParamId, Values>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.values
            .insert(param.id, Values::of(param.val().inner()));
    }
}

/// `d avg + (1 - d) theta` for each parameter of the average whose id has a value.
struct Blend {
    values: HashMap<ParamId, Values>,
    d: f64,
}

/// `avg = d avg + (1 - d) theta`, elementwise, in `T`.
fn blend<T: Real>(avg: &mut [T], theta: &[T], d: f64) {
    let (d, e) = (T::from_f64(d), T::from_f64(1.0 - d));
    for (a, &t) in avg.iter_mut().zip(theta) {
        *a = *a * d + t * e;
    }
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(theta) = self.values.remove(&param.id) else {
            return param;
        };
        let d = self.d;
        param.map(|avg| {
            let (dims, device) = (avg.dims(), avg.device());
            let averaged = match Values::of(avg.inner()) {
                Values::F32(mut a) => {
                    blend(&mut a, &theta.into_f32(), d);
                    Values::F32(a)
                }
                Values::F64(mut a) => {
                    blend(&mut a, &theta.into_f64(), d);
                    Values::F64(a)
                }
            };
            // A fresh leaf without autodiff history: nothing a backward through the average
            // could consume.
            averaged.into_tensor(dims, &device)
        })
    }
}
