//! e3nn's `nn.NormActivation`: a nonlinearity on the norm of each irrep instance.

use burn::module::{Initializer, Module, Param};
use burn::tensor::{Device, Tensor};
use equivariant_core::o3::Irreps;
use equivariant_core::{Error, Result};

use crate::ops::activation::{ScalarFunction, apply_function};
use crate::ops::irreps::{norms_squared, scale_instances};
use crate::shape::{check_dtype, check_width, flatten_rows, unflatten_rows};

/// e3nn's `nn.NormActivation(irreps_in, scalar_nonlinearity, normalize, epsilon, bias)`:
/// every irrep instance `x_u` is scaled by a function of its norm,
///
/// `y_u = f(|x_u| + b_u) x_u / |x_u|` (`normalize`), or `y_u = f(|x_u| + b_u) x_u`,
///
/// with `f` the raw function (no `normalize2mom` constant, as in e3nn) and `b_u` a trainable
/// bias per instance (zero-initialized) when `bias`. With `epsilon`, the squared norm is
/// clamped from below at `epsilon^2` first, so `|x_u| >= epsilon`; `normalize` without an
/// `epsilon` uses e3nn's default `1e-8`.
///
/// # Shapes
///
/// `[..., irreps_in.dim] -> [..., irreps_in.dim]`, any leading axes `...`, as e3nn.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::ActivationFunction;
/// use equivariant::nn::NormActivation;
///
/// let device = Device::flex();
/// let act = NormActivation::new(&"1x1o".parse()?, ActivationFunction::Sigmoid, true, None, false, &device)?;
/// let y = act.forward(Tensor::<2>::from_floats([[0.0, 3.0, 4.0]], &device))?;
/// let s = 1.0 / (1.0 + (-5.0f32).exp()); // sigmoid(|x|), then x / |x|
/// let y = y.into_data().try_into_vec::<f32>().unwrap();
/// assert!((y[1] - s * 0.6).abs() < 1e-6 && (y[2] - s * 0.8).abs() < 1e-6);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct NormActivation {
    /// The bias added to each instance's norm, `[irreps_in.num_irreps]`, when `bias`.
    pub biases: Option<Param<Tensor<1>>>,
    #[module(skip)]
    irreps_in: Irreps,
    #[module(skip)]
    function: ScalarFunction,
    #[module(skip)]
    normalize: bool,
    #[module(skip)]
    epsilon: Option<f64>,
}

impl NormActivation {
    /// The layer; biases (if any) start at zero on `device`. `scalar_nonlinearity` is a
    /// built-in [`ActivationFunction`](crate::math::ActivationFunction) or any
    /// [`ScalarFunction`] (a closure).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an `epsilon` without `normalize` (e3nn refuses it
    /// too) or one that is not finite and positive.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::NormActivation;
    /// let irreps = "2x1o".parse()?;
    /// assert!(NormActivation::new(&irreps, ActivationFunction::Silu, false, Some(1e-8), false, &Device::flex()).is_err());
    /// let act = NormActivation::new(&irreps, ActivationFunction::Silu, true, None, true, &Device::flex())?;
    /// assert_eq!(act.biases.unwrap().dims(), [2]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(
        irreps_in: &Irreps,
        scalar_nonlinearity: impl Into<ScalarFunction>,
        normalize: bool,
        epsilon: Option<f64>,
        bias: bool,
        device: &Device,
    ) -> Result<Self> {
        let epsilon = match (epsilon, normalize) {
            (None, true) => Some(1e-8),
            (Some(_), false) => {
                return Err(Error::InvalidArgument {
                    name: "epsilon",
                    reason: "an epsilon without normalize makes no sense (as in e3nn)".into(),
                });
            }
            (Some(e), true) if !(e.is_finite() && e > 0.0) => {
                return Err(Error::InvalidArgument {
                    name: "epsilon",
                    reason: format!("{e} is not finite and strictly positive"),
                });
            }
            (epsilon, _) => epsilon,
        };
        let biases = bias.then(|| Initializer::Zeros.init([irreps_in.num_irreps()], device));
        Ok(NormActivation {
            biases,
            irreps_in: irreps_in.clone(),
            function: scalar_nonlinearity.into(),
            normalize,
            epsilon,
        })
    }

    /// The input (and output) irreps.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::math::ActivationFunction;
    /// let act = equivariant::nn::NormActivation::new(&"1x2e".parse()?, ActivationFunction::Tanh, true, None, false, &Device::flex())?;
    /// assert_eq!(act.irreps_in().to_string(), "1x2e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_in(&self) -> &Irreps {
        &self.irreps_in
    }

    /// The scaled features.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` is not `[batch, irreps_in.dim]`;
    /// [`Error::InvalidArgument`] if its dtype is not the biases'.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::NormActivation;
    /// let device = Device::flex();
    /// // Without normalize: y = f(|x|) x.
    /// let act = NormActivation::new(&"1x0e".parse()?, ActivationFunction::Relu, false, None, false, &device)?;
    /// let y = act.forward(Tensor::<2>::from_floats([[-2.0]], &device))?;
    /// assert_eq!(y.into_data().try_into_vec::<f32>().unwrap(), [-4.0]);
    /// assert!(act.forward(Tensor::<2>::ones([1, 3], &device)).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let (x, dims) = flatten_rows("NormActivation x [..., irreps_in.dim]", x)?;
        Ok(unflatten_rows(self.forward_rows(x)?, dims))
    }

    /// [`forward`](NormActivation::forward) on rows, `[batch, irreps_in.dim]`.
    fn forward_rows(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        check_width(
            "NormActivation x [batch, irreps_in.dim]",
            &x,
            self.irreps_in.dim(),
        )?;
        if let Some(b) = &self.biases {
            check_dtype("NormActivation x", &x, &b.val())?;
        }
        let [batch, _] = x.dims();
        let squared = norms_squared(&x, &self.irreps_in);
        let norms = match self.epsilon {
            Some(e) => squared.clamp_min(e * e).sqrt(),
            None => squared.sqrt(),
        };
        let argument = match &self.biases {
            Some(b) => norms
                .clone()
                .add(b.val().reshape([1, self.irreps_in.num_irreps()])),
            None => norms.clone(),
        };
        let mut scalings = apply_function(&self.function, argument);
        if self.normalize {
            scalings = scalings.div(norms);
        }
        debug_assert_eq!(scalings.dims(), [batch, self.irreps_in.num_irreps()]);
        Ok(scale_instances(x, &self.irreps_in, scalings))
    }
}
