//! Each parameter's gradient by id, flattened and without autodiff: read from a backward
//! pass's `Gradients` for the model that ran it, and summed over the parts of a step
//! ([`crate::parallel`]) before the optimizer takes it.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Gradients, Tensor};

/// The gradient of each parameter that has one, flattened, by the parameter's id.
///
/// ```
/// use burn::module::{Module, Param};
/// use burn::tensor::{Device, Tensor};
/// use equivariant_train::gradients::ParamGradients;
/// #[derive(Module, Debug)]
/// struct Scale { w: Param<Tensor<1>> }
/// let device = Device::flex().autodiff();
/// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0, 2.0], &device)) };
/// let grads = model.w.val().mul_scalar(3.0).sum().backward(); // dL/dw = 3
/// let once = ParamGradients::new(&model, &grads);
/// let twice = once.clone() + once;
/// let g = twice.get(model.w.id).expect("w has a gradient");
/// assert_eq!(g.to_data().to_vec::<f32>().unwrap(), [6.0, 6.0]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ParamGradients(HashMap<ParamId, Tensor<1>>);

impl ParamGradients {
    /// The gradients in `grads` of `model`'s parameters (those it reached).
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant_train::gradients::ParamGradients;
    /// #[derive(Module, Debug)]
    /// struct Two { a: Param<Tensor<1>>, b: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let p = || Param::from_tensor(Tensor::from_floats([1.0], &device));
    /// let model = Two { a: p(), b: p() };
    /// let grads = model.a.val().sum().backward(); // b does not reach the loss
    /// let found = ParamGradients::new(&model, &grads);
    /// assert!(found.get(model.a.id).is_some() && found.get(model.b.id).is_none());
    /// ```
    pub fn new<M: Module>(model: &M, grads: &Gradients) -> Self {
        let mut collect = Collect {
            grads,
            found: ParamGradients::default(),
        };
        model.visit(&mut collect);
        collect.found
    }

    /// The gradient of the parameter `id`, flattened.
    ///
    /// ```
    /// use burn::module::ParamId;
    /// use equivariant_train::gradients::ParamGradients;
    /// assert!(ParamGradients::default().get(ParamId::new()).is_none());
    /// ```
    pub fn get(&self, id: ParamId) -> Option<&Tensor<1>> {
        self.0.get(&id)
    }

    /// The gradients by id.
    pub(crate) fn into_map(self) -> HashMap<ParamId, Tensor<1>> {
        self.0
    }
}

impl std::ops::Add for ParamGradients {
    type Output = ParamGradients;

    /// The sum of `self` and `other`, parameter by parameter (`self + other`, in that order;
    /// a parameter with a gradient in one of them keeps it).
    ///
    /// ```
    /// use burn::module::{Module, Param};
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant_train::gradients::ParamGradients;
    /// #[derive(Module, Debug)]
    /// struct Scale { w: Param<Tensor<1>> }
    /// let device = Device::flex().autodiff();
    /// let model = Scale { w: Param::from_tensor(Tensor::from_floats([1.0], &device)) };
    /// let grads = model.w.val().mul_scalar(2.0).sum().backward();
    /// let sum = ParamGradients::default() + ParamGradients::new(&model, &grads);
    /// assert_eq!(sum.get(model.w.id).unwrap().clone().into_scalar::<f32>(), 2.0);
    /// ```
    fn add(mut self, other: ParamGradients) -> ParamGradients {
        for (id, g) in other.0 {
            let sum = match self.0.remove(&id) {
                Some(mine) => mine.add(g),
                None => g,
            };
            self.0.insert(id, sum);
        }
        self
    }
}

/// Visits the float parameters, keeping each one's gradient.
struct Collect<'a> {
    grads: &'a Gradients,
    found: ParamGradients,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            let numel = g.shape().num_elements();
            self.found.0.insert(param.id, g.reshape([numel]));
        }
    }
}
