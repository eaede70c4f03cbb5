//! Scalar activation functions applied elementwise to burn tensors: the built-in
//! [`ActivationFunction`]s (by the native [`normalized_activation`] op, or its composed burn
//! ops) and any function of a tensor ([`ScalarFunction`], e3nn's "any callable"). The `nn`
//! modules (`Activation`, `Gate`, `FullyConnectedNet`, `NormActivation`) all apply them
//! through here.

use std::fmt;
use std::sync::Arc;

use burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant_core::math::{ActivationFunction, torch_randn};
use equivariant_core::o3::Parity;
use equivariant_core::{Error, Result};

use crate::ops::normalized_activation::composed::{apply, derivative, scaled};
use crate::ops::{normalized_activation, normalized_activation_tangent};

/// A function of a tensor, applied elementwise (`[n, m] -> [n, m]`).
type TensorFn = Arc<dyn Fn(Tensor<2>) -> Tensor<2> + Send + Sync>;

/// An elementwise function for e3nn's activations: a built-in [`ActivationFunction`] or
/// any function of a tensor (e3nn takes any callable), with e3nn's `normalize2mom`
/// constant and parity worked out for it as e3nn does.
///
/// For a function given as a closure, [`new`](ScalarFunction::new) computes
///
/// - the constant `c = E[f(z)^2]^(-1/2)` by e3nn's Monte Carlo: `f` on the same 10^6
///   float64 normal samples (`torch.randn` seeded 0, [`torch_randn()`]), and `c = 1` when
///   `|c - 1| < 1e-4`, so a given function gets e3nn's number;
/// - the parity as e3nn's `Activation` does: `f(x)` against `f(-x)` on 256 float32 points
///   of `[0, 10]`, even (or odd) when they agree (or cancel) to `1e-5`.
///
/// A tangent pass (training on forces) needs the derivative: give it with
/// [`with_derivative`](ScalarFunction::with_derivative) (the built-ins have theirs).
///
/// ```
/// use equivariant::math::ActivationFunction;
/// use equivariant::nn::ScalarFunction;
/// // softsign, x / (1 + |x|): odd.
/// let softsign = ScalarFunction::new("softsign", |x| x.clone().div(x.abs().add_scalar(1.0)))?;
/// assert_eq!(softsign.parity(), Some(equivariant::o3::Parity::Odd));
/// assert!(softsign.normalize2mom_constant() > 1.0);
/// // A closure computing silu gets e3nn's constant for silu.
/// let silu = ScalarFunction::new("my silu", burn::tensor::activation::silu)?;
/// let builtin = ActivationFunction::Silu.normalize2mom_constant();
/// assert!((silu.normalize2mom_constant() - builtin).abs() < 1e-12);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Clone)]
pub struct ScalarFunction {
    kind: Kind,
    constant: f64,
    parity: Option<Parity>,
}

#[derive(Clone)]
enum Kind {
    Builtin(ActivationFunction),
    Custom {
        name: String,
        f: TensorFn,
        derivative: Option<TensorFn>,
    },
}

impl ScalarFunction {
    /// The function `f` (elementwise: `f(x)` has the shape of `x`), named for messages and
    /// printing, with e3nn's constant and parity computed from it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `f` changes the shape of its input or its second moment
    /// on the normal samples is not positive and finite (no normalization exists).
    ///
    /// ```
    /// use equivariant::nn::ScalarFunction;
    /// assert!(ScalarFunction::new("zero", |x| x.zeros_like()).is_err());
    /// assert!(ScalarFunction::new("sum", |x| x.sum_dim(0)).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(
        name: impl Into<String>,
        f: impl Fn(Tensor<2>) -> Tensor<2> + Send + Sync + 'static,
    ) -> Result<Self> {
        let name = name.into();
        let f: TensorFn = Arc::new(f);
        let device = Device::flex();
        let samples = torch_randn(0, 1_000_000)?;
        let z = Tensor::<2>::from_data(
            TensorData::new(samples, [1_000_000, 1]),
            (&device, DType::F64),
        );
        let fz = elementwise(&name, &f, z)?;
        let moment = fz.powi_scalar(2).mean().into_scalar::<f64>();
        if !(moment.is_finite() && moment > 0.0) {
            return Err(Error::InvalidArgument {
                name: "f",
                reason: format!(
                    "{name}: E[f(z)^2] = {moment} on normal samples, no normalization exists"
                ),
            });
        }
        let c = moment.powf(-0.5);
        let constant = if (c - 1.0).abs() < 1e-4 { 1.0 } else { c };
        let x = Tensor::<1>::from_data(
            TensorData::new((0..256).map(|i| i as f32 * 10.0 / 255.0).collect(), [256]),
            (&device, DType::F32),
        )
        .reshape([256, 1]);
        let (plus, minus) = (
            elementwise(&name, &f, x.clone())?,
            elementwise(&name, &f, x.neg())?,
        );
        let max_abs = |t: Tensor<2>| t.abs().max().into_scalar::<f64>();
        let parity = if max_abs(plus.clone().sub(minus.clone())) < 1e-5 {
            Some(Parity::Even)
        } else if max_abs(plus.add(minus)) < 1e-5 {
            Some(Parity::Odd)
        } else {
            None
        };
        Ok(ScalarFunction {
            kind: Kind::Custom {
                name,
                f,
                derivative: None,
            },
            constant,
            parity,
        })
    }

    /// The same function with its derivative `f'` (elementwise, differentiable where
    /// training on forces differentiates it), for tangent passes. A built-in keeps its own.
    ///
    /// ```
    /// use equivariant::nn::ScalarFunction;
    /// let cube = ScalarFunction::new("cube", |x| x.powi_scalar(3))?
    ///     .with_derivative(|x| x.powi_scalar(2).mul_scalar(3.0));
    /// assert!(cube.has_derivative());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_derivative(
        mut self,
        df: impl Fn(Tensor<2>) -> Tensor<2> + Send + Sync + 'static,
    ) -> Self {
        if let Kind::Custom { derivative, .. } = &mut self.kind {
            *derivative = Some(Arc::new(df));
        }
        self
    }

    /// The name: a built-in's (`"silu"`) or the one given.
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::ScalarFunction;
    /// assert_eq!(ScalarFunction::from(ActivationFunction::Tanh).name(), "tanh");
    /// ```
    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::Builtin(f) => f.name(),
            Kind::Custom { name, .. } => name,
        }
    }

    /// e3nn's `normalize2mom` constant `c` (the activation applied is `c f(x)`).
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::ScalarFunction;
    /// let relu = ScalarFunction::from(ActivationFunction::Relu);
    /// assert_eq!(relu.normalize2mom_constant(), ActivationFunction::Relu.normalize2mom_constant());
    /// ```
    pub fn normalize2mom_constant(&self) -> f64 {
        self.constant
    }

    /// `Some(Even)` if `f(-x) = f(x)`, `Some(Odd)` if `f(-x) = -f(x)`, else `None`.
    ///
    /// ```
    /// use equivariant::nn::ScalarFunction;
    /// let square = ScalarFunction::new("square", |x| x.powi_scalar(2))?;
    /// assert_eq!(square.parity(), Some(equivariant::o3::Parity::Even));
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn parity(&self) -> Option<Parity> {
        self.parity
    }

    /// The built-in function, if this is one (the fused kernels run only those).
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::ScalarFunction;
    /// assert_eq!(ScalarFunction::from(ActivationFunction::Abs).builtin(), Some(ActivationFunction::Abs));
    /// assert_eq!(ScalarFunction::new("sin", |x| x.sin())?.builtin(), None);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn builtin(&self) -> Option<ActivationFunction> {
        match self.kind {
            Kind::Builtin(f) => Some(f),
            Kind::Custom { .. } => None,
        }
    }

    /// Whether the derivative is known (always for a built-in).
    ///
    /// ```
    /// use equivariant::nn::ScalarFunction;
    /// assert!(!ScalarFunction::new("sin", |x| x.sin())?.has_derivative());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn has_derivative(&self) -> bool {
        match &self.kind {
            Kind::Builtin(_) => true,
            Kind::Custom { derivative, .. } => derivative.is_some(),
        }
    }
}

/// `f(x)`, checked to keep the shape of `x`.
fn elementwise(name: &str, f: &TensorFn, x: Tensor<2>) -> Result<Tensor<2>> {
    let dims = x.dims();
    let y = f(x);
    if y.dims() != dims {
        return Err(Error::InvalidArgument {
            name: "f",
            reason: format!("{name} is not elementwise: {dims:?} in, {:?} out", y.dims()),
        });
    }
    Ok(y)
}

impl From<ActivationFunction> for ScalarFunction {
    fn from(f: ActivationFunction) -> Self {
        ScalarFunction {
            kind: Kind::Builtin(f),
            constant: f.normalize2mom_constant(),
            parity: f.parity(),
        }
    }
}

/// The name and the constant.
///
/// ```
/// use equivariant::math::ActivationFunction;
/// use equivariant::nn::ScalarFunction;
/// let relu = ScalarFunction::from(ActivationFunction::Relu);
/// assert_eq!(format!("{relu:?}"), "ScalarFunction(relu, c = 1.4163393446331365)");
/// ```
impl fmt::Debug for ScalarFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScalarFunction({}, c = {})", self.name(), self.constant)
    }
}

/// The name.
///
/// ```
/// use equivariant::math::ActivationFunction;
/// use equivariant::nn::ScalarFunction;
/// assert_eq!(ScalarFunction::from(ActivationFunction::Gelu).to_string(), "gelu");
/// ```
impl fmt::Display for ScalarFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `f(x)` for any function: a built-in through [`apply`], a closure on the rows of `x`.
pub(crate) fn apply_function(f: &ScalarFunction, x: Tensor<2>) -> Tensor<2> {
    match &f.kind {
        Kind::Builtin(b) => apply(*b, x),
        Kind::Custom { f, .. } => f(x),
    }
}

/// `c f(x)`, any function with its constant.
pub(crate) fn normalized_function(f: &ScalarFunction, x: Tensor<2>) -> Tensor<2> {
    scaled_function(f, f.constant, x)
}

/// `c f(x)` for any function and a given `c` (a built-in runs the native
/// [`normalized_activation`], a closure its tensor ops and a multiplication).
pub(crate) fn scaled_function(f: &ScalarFunction, c: f64, x: Tensor<2>) -> Tensor<2> {
    if let Kind::Builtin(b) = f.kind {
        return normalized_activation(b, c, x);
    }
    scaled(apply_function(f, x), c)
}

/// `c f(x)` and its tangent along `dx`, `c f'(x) dx`, for any function: a built-in runs
/// the native [`normalized_activation_tangent`] (one pass, and one op in the backward, for
/// both), a closure its tensor ops.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a closure given without its derivative.
pub(crate) fn scaled_function_tangent(
    f: &ScalarFunction,
    c: f64,
    x: Tensor<2>,
    dx: Tensor<2>,
) -> Result<(Tensor<2>, Tensor<2>)> {
    if let Kind::Builtin(b) = f.kind {
        return Ok(normalized_activation_tangent(b, c, x, dx));
    }
    let slope = derivative_function(f, x.clone())?.mul(dx).mul_scalar(c);
    Ok((scaled_function(f, c, x), slope))
}

/// `f'(x)` for any function.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a closure given without its derivative.
pub(crate) fn derivative_function(f: &ScalarFunction, x: Tensor<2>) -> Result<Tensor<2>> {
    match &f.kind {
        Kind::Builtin(b) => Ok(derivative(*b, x)),
        Kind::Custom {
            derivative: Some(df),
            ..
        } => Ok(df(x)),
        Kind::Custom { name, .. } => Err(Error::InvalidArgument {
            name: "f",
            reason: format!(
                "{name} has no derivative: a tangent pass (training on forces) needs \
                 ScalarFunction::with_derivative"
            ),
        }),
    }
}
