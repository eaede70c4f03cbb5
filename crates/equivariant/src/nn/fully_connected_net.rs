//! e3nn's `nn.FullyConnectedNet`: a multilayer perceptron without biases whose layers
//! keep the second moment of the signal at one.

use burn::module::{Initializer, Module, Param};
use burn::tensor::{Device, Tensor};
use equivariant_core::math::{ActivationFunction, RadialLayer, SoftOneHotLinspace};
use equivariant_core::{Error, Result};

use crate::ops::activation::{ScalarFunction, scaled_function, scaled_function_tangent};
use crate::ops::dense;
use crate::shape::{check_dtype, check_shape, check_width, flatten_rows, unflatten_rows};

/// e3nn's `nn.FullyConnectedNet(hs, act, variance_in, variance_out, out_act)`.
///
/// Layer `i` maps `hs[i] -> hs[i + 1]` with a weight `W_i` (`[hs[i], hs[i + 1]]`, drawn
/// from `N(0, 1)`) and no bias. With an activation `phi` (normalized by e3nn's
/// `normalize2mom` constant `c`, [`ActivationFunction::normalize2mom_constant`]) a layer computes
///
/// `x -> sqrt(var_out) c phi(x W / sqrt(h_in var_in))`,
///
/// and without one (the last layer unless `out_act`) `x -> x W / sqrt(h_in var_in / var_out)`.
/// `var_in` is `variance_in` for the first layer and 1 after; `var_out` is `variance_out`
/// for the last layer and 1 before. Unit-variance inputs thus give unit-variance outputs.
///
/// # Shapes
///
/// `[..., hs[0]] -> [..., hs[last]]`, any leading axes `...`, as e3nn.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::ActivationFunction;
/// use equivariant::nn::FullyConnectedNet;
///
/// let device = Device::flex();
/// let fc = FullyConnectedNet::new(&[10, 16, 400], Some(ActivationFunction::Relu), &device)?;
/// let y = fc.forward(Tensor::<2>::ones([7, 10], &device))?;
/// assert_eq!(y.dims(), [7, 400]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct FullyConnectedNet {
    /// The layer weights, `weights[i]: [hs[i], hs[i + 1]]` (e3nn's `layer{i}.weight`).
    pub weights: Vec<Param<Tensor<2>>>,
    #[module(skip)]
    hs: Vec<usize>,
    #[module(skip)]
    act: Option<ScalarFunction>,
    #[module(skip)]
    variance_in: f64,
    #[module(skip)]
    variance_out: f64,
    #[module(skip)]
    out_act: bool,
}

impl FullyConnectedNet {
    /// e3nn's `FullyConnectedNet(hs, act)`: `variance_in = variance_out = 1`, no activation
    /// on the output. Weights are drawn from `N(0, 1)` on `device`.
    ///
    /// Errors: [`Error::InvalidArgument`] if `hs` has fewer than two sizes or a zero size.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::FullyConnectedNet;
    /// let fc = FullyConnectedNet::new(&[3, 4, 5], None, &Device::flex())?;
    /// assert_eq!(fc.weights[1].dims(), [4, 5]);
    /// assert!(FullyConnectedNet::new(&[3], None, &Device::flex()).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(hs: &[usize], act: Option<ActivationFunction>, device: &Device) -> Result<Self> {
        Self::with_options(hs, act, 1.0, 1.0, false, device)
    }

    /// e3nn's `FullyConnectedNet(hs, act, variance_in, variance_out, out_act)`.
    ///
    /// Errors: [`Error::InvalidArgument`] if `hs` has fewer than two sizes or a zero size,
    /// or a variance is not positive and finite.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::FullyConnectedNet;
    /// let fc = FullyConnectedNet::with_options(&[3, 4], Some(ActivationFunction::Tanh), 2.0, 1.0, true, &Device::flex())?;
    /// assert_eq!(fc.hs(), [3, 4]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_options(
        hs: &[usize],
        act: Option<ActivationFunction>,
        variance_in: f64,
        variance_out: f64,
        out_act: bool,
        device: &Device,
    ) -> Result<Self> {
        let act = act.map(ScalarFunction::from);
        Self::from_function(hs, act, variance_in, variance_out, out_act, device)
    }

    /// [`with_options`](FullyConnectedNet::with_options) with any function (a closure as a
    /// [`ScalarFunction`], normalized by its own e3nn constant).
    ///
    /// Errors: as [`with_options`](FullyConnectedNet::with_options).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::{FullyConnectedNet, ScalarFunction};
    /// let softplus = ScalarFunction::new("softplus", |x| x.exp().add_scalar(1.0).log())?;
    /// let fc = FullyConnectedNet::from_function(&[2, 4], Some(softplus), 1.0, 1.0, true, &Device::flex())?;
    /// assert_eq!(fc.act().map(|f| f.name()), Some("softplus"));
    /// assert_eq!(fc.forward(Tensor::<2>::ones([3, 2], &Device::flex()))?.dims(), [3, 4]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn from_function(
        hs: &[usize],
        act: Option<ScalarFunction>,
        variance_in: f64,
        variance_out: f64,
        out_act: bool,
        device: &Device,
    ) -> Result<Self> {
        if hs.len() < 2 || hs.contains(&0) {
            return Err(Error::InvalidArgument {
                name: "hs",
                reason: format!("needs at least two positive sizes, got {hs:?}"),
            });
        }
        for (name, v) in [("variance_in", variance_in), ("variance_out", variance_out)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::InvalidArgument {
                    name,
                    reason: format!("must be positive and finite, got {v}"),
                });
            }
        }
        let weights = hs
            .windows(2)
            .map(|h| {
                Initializer::Normal {
                    mean: 0.0,
                    std: 1.0,
                }
                .init([h[0], h[1]], device)
            })
            .collect();
        Ok(FullyConnectedNet {
            weights,
            hs: hs.to_vec(),
            act,
            variance_in,
            variance_out,
            out_act,
        })
    }

    /// The layer sizes `hs`.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::FullyConnectedNet;
    /// let fc = FullyConnectedNet::new(&[2, 3], None, &Device::flex())?;
    /// assert_eq!(fc.hs(), [2, 3]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn hs(&self) -> &[usize] {
        &self.hs
    }

    /// The activation (before normalization), if any.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::FullyConnectedNet;
    /// let fc = FullyConnectedNet::new(&[2, 3], Some(ActivationFunction::Silu), &Device::flex())?;
    /// assert_eq!(fc.act().and_then(|f| f.builtin()), Some(ActivationFunction::Silu));
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn act(&self) -> Option<&ScalarFunction> {
        self.act.as_ref()
    }

    /// The network applied to each row of `x` (`[batch, hs[0]] -> [batch, hs[last]]`).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` is not `[batch, hs[0]]`; [`Error::InvalidArgument`]
    /// if its dtype is not the weights'.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::FullyConnectedNet;
    /// let device = Device::flex();
    /// let fc = FullyConnectedNet::new(&[1, 1], None, &device)?;
    /// // One linear layer: x w / sqrt(1).
    /// let w = fc.weights[0].val().into_data().try_into_vec::<f32>().unwrap()[0];
    /// let y = fc.forward(Tensor::<2>::from_floats([[2.0]], &device))?;
    /// assert_eq!(y.into_data().try_into_vec::<f32>().unwrap(), [2.0 * w]);
    /// assert!(fc.forward(Tensor::<2>::ones([1, 2], &device)).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let (x, dims) = flatten_rows("FullyConnectedNet x [..., hs[0]]", x)?;
        Ok(unflatten_rows(self.forward_rows(x)?, dims))
    }

    /// [`forward`](FullyConnectedNet::forward) on rows, `[batch, hs[0]]`.
    fn forward_rows(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        self.check_input("FullyConnectedNet x [batch, hs[0]]", &x, 0)?;
        Ok((0..self.weights.len()).fold(x, |x, i| self.layer(i, x)))
    }

    /// `Ok` when `x` is `[_, hs[layer]]`, of the weights' dtype.
    fn check_input(&self, what: &'static str, x: &Tensor<2>, layer: usize) -> Result<()> {
        let w = match self.weights.get(layer) {
            Some(w) => w.val(),
            None => return Ok(()),
        };
        check_width(what, x, w.dims()[0])?;
        check_dtype(what, x, &w)
    }

    /// Every layer but the last: the hidden activations `[batch, hs[last - 1]]` the last
    /// layer reads (the input itself for a one-layer network). Errors as
    /// [`forward`](FullyConnectedNet::forward).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::FullyConnectedNet;
    /// let device = Device::flex();
    /// let fc = FullyConnectedNet::new(&[3, 8, 5], Some(ActivationFunction::Relu), &device)?;
    /// let x = Tensor::<2>::ones([2, 3], &device);
    /// let h = fc.forward_hidden(x.clone())?;
    /// assert_eq!(h.dims(), [2, 8]);
    /// // The last layer is linear: forward = hidden x last_linear.
    /// let y = h.matmul(fc.last_linear().unwrap());
    /// let diff = y.sub(fc.forward(x)?).abs().max().into_scalar::<f32>();
    /// assert!(diff < 1e-5);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_hidden(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        self.check_input("FullyConnectedNet x [batch, hs[0]]", &x, 0)?;
        Ok((0..self.weights.len() - 1).fold(x, |x, i| self.layer(i, x)))
    }

    /// [`forward_hidden`](FullyConnectedNet::forward_hidden) and its tangent: `(h, dh)` with
    /// `dh = J_h(x) dx`, the derivative of the hidden layers along the direction `dx` of the
    /// input (`[batch, hs[0]]` each). Built from burn ops, so `dh` is differentiable with
    /// respect to the weights: the forward-over-reverse route to the parameter gradient of
    /// a loss of forces.
    ///
    /// Errors: as [`forward_hidden`](FullyConnectedNet::forward_hidden), for `x` and `dx`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::FullyConnectedNet;
    /// let device = Device::flex();
    /// let fc = FullyConnectedNet::new(&[2, 6, 3], Some(ActivationFunction::Silu), &device)?;
    /// let (x, dx) = (Tensor::<2>::from_floats([[0.3, -0.4]], &device), Tensor::<2>::from_floats([[1.0, 2.0]], &device));
    /// let (h, dh) = fc.forward_hidden_tangent(x.clone(), dx.clone())?;
    /// // Against a central difference.
    /// let step = 1e-2;
    /// let plus = fc.forward_hidden(x.clone().add(dx.clone().mul_scalar(step)))?;
    /// let minus = fc.forward_hidden(x.sub(dx.mul_scalar(step)))?;
    /// let slope = plus.sub(minus).mul_scalar(0.5 / step);
    /// assert!(dh.sub(slope).abs().max().into_scalar::<f32>() < 1e-3);
    /// assert_eq!(h.dims(), [1, 6]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_hidden_tangent(
        &self,
        x: Tensor<2>,
        dx: Tensor<2>,
    ) -> Result<(Tensor<2>, Tensor<2>)> {
        self.check_input("FullyConnectedNet x [batch, hs[0]]", &x, 0)?;
        self.check_input("FullyConnectedNet dx [batch, hs[0]]", &dx, 0)?;
        check_shape("FullyConnectedNet dx (the shape of x)", &dx, x.dims())?;
        (0..self.weights.len() - 1).try_fold((x, dx), |(x, dx), i| self.layer_tangent(i, x, dx))
    }

    /// The first layer fused with a radial basis, `c act(s (basis_scale basis(|v|))
    /// weights[0])` ([`RadialLayer`], run by [`ops::radial_layer`](crate::ops::radial_layer())),
    /// when the net has hidden layers: then `forward_hidden(basis_scale basis(|v|)) =
    /// forward_hidden_after_first(radial_layer(v, weights[0]))`. `None` for a net of one
    /// layer, or with an activation that is not built in (the kernel runs only those).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::math::{ActivationFunction, Basis, SoftOneHotLinspace};
    /// use equivariant::nn::FullyConnectedNet;
    /// use equivariant::ops::{radial_layer, soft_one_hot_linspace};
    /// let device = Device::flex();
    /// let fc = FullyConnectedNet::new(&[4, 8, 3], Some(ActivationFunction::Silu), &device)?;
    /// let basis = SoftOneHotLinspace::new(0.0, 2.0, 4, Basis::Gaussian, false)?;
    /// let layer = Arc::new(fc.first_radial_layer(&basis, 2.0).unwrap());
    /// let v = Tensor::<2>::from_floats([[0.3, 0.4, 0.0], [1.0, 0.0, 0.0]], &device);
    /// let fused = fc.forward_hidden_after_first(radial_layer(&layer, v, fc.weights[0].val()))?;
    /// let lengths = Tensor::<1>::from_floats([0.5, 1.0], &device);
    /// let apart = fc.forward_hidden(soft_one_hot_linspace(&Arc::new(basis), lengths).mul_scalar(2.0))?;
    /// assert!(fused.sub(apart).abs().max().into_scalar::<f32>() < 1e-5);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn first_radial_layer(
        &self,
        basis: &SoftOneHotLinspace,
        basis_scale: f64,
    ) -> Option<RadialLayer> {
        if self.weights.len() < 2 {
            return None;
        }
        let (act, scale) = self.layer_settings(0);
        let act = match act {
            Some(f) => Some((f.builtin()?, f.normalize2mom_constant())),
            None => None,
        };
        Some(RadialLayer::new(basis.clone(), basis_scale, scale, act))
    }

    /// The hidden layers after the first, applied to the first one's output (`[n,
    /// hs[1]] -> [n, hs[last - 1]]`); see
    /// [`first_radial_layer`](FullyConnectedNet::first_radial_layer).
    ///
    /// Errors: [`Error::ShapeMismatch`] if `h` is not `[n, hs[1]]`;
    /// [`Error::InvalidArgument`] if its dtype is not the weights'.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::FullyConnectedNet;
    /// let fc = FullyConnectedNet::new(&[4, 8, 6, 3], None, &Device::flex())?;
    /// let h = fc.forward_hidden_after_first(Tensor::<2>::ones([2, 8], &Device::flex()))?;
    /// assert_eq!(h.dims(), [2, 6]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_hidden_after_first(&self, h: Tensor<2>) -> Result<Tensor<2>> {
        self.check_input("FullyConnectedNet h [n, hs[1]]", &h, 1)?;
        Ok((1..self.weights.len() - 1).fold(h, |x, i| self.layer(i, x)))
    }

    /// The last layer's matrix with its scaling, `[hs[last - 1], hs[last]]`, when that
    /// layer is linear (no activation on the output): then
    /// `forward(x) = forward_hidden(x) last_linear`. `None` with `out_act` and an
    /// activation.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::FullyConnectedNet;
    /// let device = Device::flex();
    /// let fc = FullyConnectedNet::new(&[3, 8, 5], Some(ActivationFunction::Relu), &device)?;
    /// assert_eq!(fc.last_linear().unwrap().dims(), [8, 5]);
    /// let fc = FullyConnectedNet::with_options(&[3, 5], Some(ActivationFunction::Relu), 1.0, 1.0, true, &device)?;
    /// assert!(fc.last_linear().is_none());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn last_linear(&self) -> Option<Tensor<2>> {
        let last = self.weights.len() - 1;
        let (act, scale) = self.layer_settings(last);
        act.is_none()
            .then(|| self.weights[last].val().mul_scalar(scale))
    }

    /// Layer `i`'s activation and the factor on its weight.
    pub(crate) fn layer_settings(&self, i: usize) -> (Option<&ScalarFunction>, f64) {
        let last = self.weights.len() - 1;
        let h_in = self.hs[i] as f64;
        let var_in = if i == 0 { self.variance_in } else { 1.0 };
        let var_out = if i == last { self.variance_out } else { 1.0 };
        let act = if i < last || self.out_act {
            self.act.as_ref()
        } else {
            None
        };
        match act {
            Some(_) => (act, 1.0 / (h_in * var_in).sqrt()),
            None => (None, 1.0 / (h_in * var_in / var_out).sqrt()),
        }
    }

    /// Layer `i` applied to `x`, and its tangent along `dx`: `y = c f(x W) v`,
    /// `dy = c v f'(x W) (dx W)`.
    fn layer_tangent(
        &self,
        i: usize,
        x: Tensor<2>,
        dx: Tensor<2>,
    ) -> Result<(Tensor<2>, Tensor<2>)> {
        let (act, scale) = self.layer_settings(i);
        let w = self.weights[i].val().mul_scalar(scale);
        let (y, dy) = (dense(x, w.clone()), dense(dx, w));
        Ok(match act {
            Some(act) => {
                let c = act.normalize2mom_constant() * self.output_variance(i).sqrt();
                scaled_function_tangent(act, c, y, dy)?
            }
            None => (y, dy),
        })
    }

    /// The output variance layer `i` is scaled to: `variance_out` for the last, else 1.
    pub(crate) fn output_variance(&self, i: usize) -> f64 {
        if i + 1 == self.weights.len() {
            self.variance_out
        } else {
            1.0
        }
    }

    /// Layer `i` applied to `x`.
    fn layer(&self, i: usize, x: Tensor<2>) -> Tensor<2> {
        // Scalings are multiplications by reciprocals: burn 0.22.1's autodiff rounds the
        // divisor of `div_scalar` to f32 in the backward, which would cost f64 gradients
        // eight digits.
        let (act, scale) = self.layer_settings(i);
        let y = dense(x, self.weights[i].val().mul_scalar(scale));
        match act {
            Some(act) => {
                let c = act.normalize2mom_constant() * self.output_variance(i).sqrt();
                scaled_function(act, c, y)
            }
            None => y,
        }
    }
}
