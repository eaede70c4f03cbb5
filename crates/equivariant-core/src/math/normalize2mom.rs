//! The activations of e3nn's networks and the second-moment constants of
//! `e3nn.math.normalize2mom` (`e3nn/math/_normalize_activation.py`).
//!
//! e3nn rescales an activation `f` to `cst * f` with `cst = E[f(z)^2]^(-1/2)`, `z ~ N(0, 1)`,
//! so that a unit-variance input gives a unit second moment output. It *estimates* the
//! expectation by Monte Carlo (10^6 float64 samples of `torch.randn` with seed 0), so its
//! constants differ from the exact ones in the third or fourth digit.
//! [`ActivationFunction::normalize2mom_constant`] returns e3nn's numbers (use it to match e3nn);
//! [`ActivationFunction::normalize2mom_exact`] computes the exact ones by quadrature.

use std::f64::consts::{FRAC_1_SQRT_2, PI};
use std::fmt;
use std::str::FromStr;

use super::erf::erfc;
use crate::o3::Parity;
use crate::{Error, Real, Result};

/// An elementwise activation of e3nn's networks (torch's definitions).
///
/// | name | `f(x)` | `f'(x)` |
/// |---|---|---|
/// | `relu` | `max(x, 0)` | `[x > 0]` |
/// | `silu` | `x / (1 + exp(-x))` | `s (1 + x (1 - s))`, `s = sigmoid(x)` |
/// | `tanh` | `tanh x` | `1 - tanh^2 x` |
/// | `sigmoid` | `1 / (1 + exp(-x))` | `s (1 - s)` |
/// | `gelu` | `x/2 (1 + erf(x / sqrt 2))` (exact, torch's default) | `Phi(x) + x phi(x)` |
/// | `abs` | `abs(x)` | `sign(x)`, `0` at `0` |
///
/// The derivatives at the kinks of `relu` and `abs` are torch's (`0`). Parsing accepts the
/// lowercase names above; [`Display`](fmt::Display) writes them back.
///
/// ```
/// use equivariant_core::math::ActivationFunction;
/// let act: ActivationFunction = "silu".parse()?;
/// assert_eq!(act, ActivationFunction::Silu);
/// assert_eq!(act.to_string(), "silu");
/// assert_eq!(ActivationFunction::Relu.apply(-2.0f32), 0.0);
/// assert!("swish".parse::<ActivationFunction>().is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivationFunction {
    /// `max(x, 0)`.
    Relu,
    /// `x sigmoid(x)` (a.k.a. swish).
    Silu,
    /// `tanh x`.
    Tanh,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `x Phi(x)` with the exact normal CDF `Phi` (torch's `approximate="none"`).
    Gelu,
    /// `abs(x)`.
    Abs,
}

impl ActivationFunction {
    /// Every activation.
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// assert_eq!(ActivationFunction::ALL.len(), 6);
    /// ```
    pub const ALL: [ActivationFunction; 6] = [
        ActivationFunction::Relu,
        ActivationFunction::Silu,
        ActivationFunction::Tanh,
        ActivationFunction::Sigmoid,
        ActivationFunction::Gelu,
        ActivationFunction::Abs,
    ];

    /// The lowercase name (`"relu"`, `"silu"`, `"tanh"`, `"sigmoid"`, `"gelu"`, `"abs"`).
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// assert_eq!(ActivationFunction::Gelu.name(), "gelu");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ActivationFunction::Relu => "relu",
            ActivationFunction::Silu => "silu",
            ActivationFunction::Tanh => "tanh",
            ActivationFunction::Sigmoid => "sigmoid",
            ActivationFunction::Gelu => "gelu",
            ActivationFunction::Abs => "abs",
        }
    }

    /// The raw (unnormalized) activation `f(x)`; see the table on [`ActivationFunction`].
    ///
    /// `gelu` is evaluated in f64 (with an erf accurate to a few ulp) and rounded to `T`.
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// assert_eq!(ActivationFunction::Abs.apply(-1.5f64), 1.5);
    /// assert!((ActivationFunction::Sigmoid.apply(0.0f64) - 0.5).abs() < 1e-16);
    /// // gelu(1) = Phi(1) = (1 + erf(1 / sqrt 2)) / 2
    /// assert!((ActivationFunction::Gelu.apply(1.0f64) - 0.8413447460685429).abs() < 1e-15);
    /// ```
    #[inline]
    pub fn apply<T: Real>(self, x: T) -> T {
        let one = T::one();
        match self {
            ActivationFunction::Relu => {
                if x < T::zero() {
                    T::zero()
                } else {
                    x
                }
            }
            ActivationFunction::Silu => x / (one + (-x).exp()),
            ActivationFunction::Tanh => x.tanh(),
            ActivationFunction::Sigmoid => one / (one + (-x).exp()),
            ActivationFunction::Gelu => T::from_f64(gelu_f64(x.to_f64())),
            ActivationFunction::Abs => x.abs(),
        }
    }

    /// The derivative `f'(x)` of [`ActivationFunction::apply`], as torch's autograd computes it
    /// (`0` at the kinks of `relu` and `abs`).
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// assert_eq!(ActivationFunction::Relu.derivative(0.0f64), 0.0);
    /// assert_eq!(ActivationFunction::Abs.derivative(-3.0f32), -1.0);
    /// assert!((ActivationFunction::Tanh.derivative(0.0f64) - 1.0).abs() < 1e-16);
    /// assert!((ActivationFunction::Gelu.derivative(0.0f64) - 0.5).abs() < 1e-16);
    /// ```
    #[inline]
    pub fn derivative<T: Real>(self, x: T) -> T {
        let zero = T::zero();
        let one = T::one();
        match self {
            ActivationFunction::Relu => {
                if x > zero {
                    one
                } else {
                    zero
                }
            }
            ActivationFunction::Silu => {
                let s = one / (one + (-x).exp());
                s * (one + x * (one - s))
            }
            ActivationFunction::Tanh => {
                let t = x.tanh();
                one - t * t
            }
            ActivationFunction::Sigmoid => {
                let s = one / (one + (-x).exp());
                s * (one - s)
            }
            ActivationFunction::Gelu => T::from_f64(gelu_derivative_f64(x.to_f64())),
            ActivationFunction::Abs => {
                if x > zero {
                    one
                } else if x < zero {
                    -one
                } else {
                    // 0 at 0 (torch's sgn), NaN stays NaN.
                    x
                }
            }
        }
    }

    /// The second derivative `f''(x)` (`0` for `relu` and `abs`, as torch's autograd of their
    /// derivative), for the parameter gradient of a tangent pass.
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// // silu'' = s (1 - s) (2 + x (1 - 2 s)): 1/2 at 0.
    /// assert!((ActivationFunction::Silu.second_derivative(0.0f64) - 0.5).abs() < 1e-16);
    /// assert_eq!(ActivationFunction::Relu.second_derivative(1.0f64), 0.0);
    /// for f in ActivationFunction::ALL {
    ///     let (x, h) = (0.3f64, 1e-5);
    ///     let fd = (f.derivative(x + h) - f.derivative(x - h)) / (2.0 * h);
    ///     assert!((fd - f.second_derivative(x)).abs() < 1e-8, "{f:?}");
    /// }
    /// ```
    #[inline]
    pub fn second_derivative<T: Real>(self, x: T) -> T {
        let zero = T::zero();
        let one = T::one();
        let two = T::from_f64(2.0);
        match self {
            ActivationFunction::Relu | ActivationFunction::Abs => zero,
            ActivationFunction::Silu => {
                let s = one / (one + (-x).exp());
                s * (one - s) * (two + x * (one - two * s))
            }
            ActivationFunction::Tanh => {
                let t = x.tanh();
                -two * t * (one - t * t)
            }
            ActivationFunction::Sigmoid => {
                let s = one / (one + (-x).exp());
                s * (one - s) * (one - two * s)
            }
            ActivationFunction::Gelu => {
                // phi(x) (2 - x^2), phi the standard normal density.
                let phi =
                    (-x * x / two).exp() * T::from_f64(1.0 / (2.0 * std::f64::consts::PI).sqrt());
                phi * (two - x * x)
            }
        }
    }

    /// e3nn's `normalize2mom(f).cst`: its Monte-Carlo estimate of `E[f(z)^2]^(-1/2)`,
    /// `z ~ N(0, 1)` (10^6 float64 samples of `torch.randn`, seed 0). Use this constant to
    /// reproduce e3nn's networks bit for bit.
    ///
    /// | activation | constant |
    /// |---|---|
    /// | relu | 1.4163393446331365 |
    /// | silu | 1.6791767923989418 |
    /// | tanh | 1.5937334472592695 |
    /// | sigmoid | 1.8467055342154763 |
    /// | gelu | 1.5360642850770578 |
    /// | abs | 1.001110600838467 |
    ///
    /// (None is within e3nn's `1e-4` identity threshold, so e3nn always multiplies.)
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// assert_eq!(ActivationFunction::Relu.normalize2mom_constant(), 1.4163393446331365);
    /// // The exact value is sqrt(2); Monte Carlo is off by 1.5e-3.
    /// assert!((ActivationFunction::Relu.normalize2mom_constant() - 2f64.sqrt()).abs() < 3e-3);
    /// ```
    pub fn normalize2mom_constant(self) -> f64 {
        match self {
            ActivationFunction::Relu => 1.4163393446331365,
            ActivationFunction::Silu => 1.6791767923989418,
            ActivationFunction::Tanh => 1.5937334472592695,
            ActivationFunction::Sigmoid => 1.8467055342154763,
            ActivationFunction::Gelu => 1.5360642850770578,
            ActivationFunction::Abs => 1.001110600838467,
        }
    }

    /// The parity of the function: `Some(Even)` if `f(-x) = f(x)` (abs), `Some(Odd)` if
    /// `f(-x) = -f(x)` (tanh), `None` otherwise. e3nn's `nn.Activation` decides it the same
    /// way (numerically, on `[0, 10]`), and an odd scalar may only go through an activation
    /// with a parity: `f(odd scalar)` is then even (`Even`) or odd (`Odd`).
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// use equivariant_core::o3::Parity;
    /// assert_eq!(ActivationFunction::Tanh.parity(), Some(Parity::Odd));
    /// assert_eq!(ActivationFunction::Abs.parity(), Some(Parity::Even));
    /// assert_eq!(ActivationFunction::Relu.parity(), None);
    /// ```
    pub fn parity(self) -> Option<Parity> {
        match self {
            ActivationFunction::Tanh => Some(Parity::Odd),
            ActivationFunction::Abs => Some(Parity::Even),
            ActivationFunction::Relu
            | ActivationFunction::Silu
            | ActivationFunction::Sigmoid
            | ActivationFunction::Gelu => None,
        }
    }

    /// The exact constant `E[f(z)^2]^(-1/2)`, `z ~ N(0, 1)`, i.e.
    /// `(integral f(z)^2 exp(-z^2/2) / sqrt(2 pi) dz)^(-1/2)`, by deterministic quadrature:
    /// composite Simpson on `[-12, 12]` with 24000 intervals (`h = 10^-3`; the kinks of
    /// `relu` and `abs` at `0` fall on a panel boundary, the tails beyond `|z| = 12` weigh
    /// less than `10^-30`), summed with compensation. Accurate to about `1e-13`;
    /// `sqrt 2` for relu and `1` for abs. Computed on each call (about 24000 evaluations).
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// assert!((ActivationFunction::Relu.normalize2mom_exact() - 2f64.sqrt()).abs() < 1e-13);
    /// assert!((ActivationFunction::Abs.normalize2mom_exact() - 1.0).abs() < 1e-13);
    /// ```
    pub fn normalize2mom_exact(self) -> f64 {
        const HALF_WIDTH: f64 = 12.0;
        const INTERVALS: usize = 24_000; // even
        let h = 2.0 * HALF_WIDTH / INTERVALS as f64;
        let norm = 1.0 / (2.0 * PI).sqrt();
        let integrand = |z: f64| {
            let f = self.apply(z);
            f * f * (-0.5 * z * z).exp() * norm
        };
        let mut sum = 0.0f64;
        let mut comp = 0.0f64;
        for i in 0..=INTERVALS {
            // z = -12 + i h with i = 12000 exactly 0.
            let z = (i as f64 - (INTERVALS / 2) as f64) * h;
            let w = if i == 0 || i == INTERVALS {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            neumaier_add(&mut sum, &mut comp, w * integrand(z));
        }
        let second_moment = (sum + comp) * h / 3.0;
        second_moment.sqrt().recip()
    }
}

impl fmt::Display for ActivationFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ActivationFunction {
    type Err = Error;

    /// Parses the lowercase name; anything else is [`Error::InvalidArgument`].
    fn from_str(s: &str) -> Result<Self> {
        ActivationFunction::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::InvalidArgument {
                name: "activation",
                reason: format!(
                    "unknown activation {s:?}, expected one of relu, silu, tanh, sigmoid, gelu, abs"
                ),
            })
    }
}

/// Compensated (Neumaier) summation step.
#[inline]
fn neumaier_add(sum: &mut f64, comp: &mut f64, v: f64) {
    let t = *sum + v;
    if sum.abs() >= v.abs() {
        *comp += (*sum - t) + v;
    } else {
        *comp += (v - t) + *sum;
    }
    *sum = t;
}

/// `gelu(x) = x Phi(x) = x/2 erfc(-x / sqrt 2)`.
fn gelu_f64(x: f64) -> f64 {
    0.5 * x * erfc(-x * FRAC_1_SQRT_2)
}

/// `gelu'(x) = Phi(x) + x phi(x)`.
fn gelu_derivative_f64(x: f64) -> f64 {
    let cdf = 0.5 * erfc(-x * FRAC_1_SQRT_2);
    let pdf = (-0.5 * x * x).exp() / (2.0 * PI).sqrt();
    cdf + x * pdf
}
