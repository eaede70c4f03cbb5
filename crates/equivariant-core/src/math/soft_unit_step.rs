//! The smooth (C^inf) unit step of e3nn (`e3nn/math/_soft_unit_step.py`) and its derivative.

use crate::Real;

/// The smooth unit step `u(x) = exp(-1/x)` for `x > 0`, `0` otherwise (e3nn's `soft_unit_step`).
///
/// `u` is C^inf: every derivative vanishes at `x = 0`. It tends to `1` as `x -> +inf`
/// (`u(+inf) = 1`). Anything that is not `> 0` (including `-0.0` and NaN) maps to `0`,
/// as in e3nn's mask `x > 0`.
///
/// ```
/// use equivariant_core::math::soft_unit_step;
/// assert_eq!(soft_unit_step(-1.0f64), 0.0);
/// assert_eq!(soft_unit_step(0.0f64), 0.0);
/// assert!((soft_unit_step(1.0f64) - (-1.0f64).exp()).abs() < 1e-16);
/// assert_eq!(soft_unit_step(1e-300f64), 0.0); // exp(-1e300) underflows to exactly zero
/// ```
#[inline]
pub fn soft_unit_step<T: Real>(x: T) -> T {
    if x > T::zero() {
        (-x.recip()).exp()
    } else {
        T::zero()
    }
}

/// The derivative of [`soft_unit_step`]: `u'(x) = exp(-1/x) / x^2` for `x > 0`, `0` otherwise
/// (the gradient e3nn's custom autograd function returns).
///
/// Finite everywhere: where `exp(-1/x)` underflows to zero (tiny positive `x`, where e3nn's
/// `exp(-1/x) / x^2` would be `0 / 0 = NaN` once `x^2` underflows too) the result is exactly
/// `0`, the true limit. `u'(+inf) = 0`.
///
/// ```
/// use equivariant_core::math::soft_unit_step_derivative;
/// assert_eq!(soft_unit_step_derivative(-2.0f64), 0.0);
/// assert!((soft_unit_step_derivative(0.5f64) - 4.0 * (-2.0f64).exp()).abs() < 1e-15);
/// assert_eq!(soft_unit_step_derivative(1e-200f64), 0.0); // not NaN
/// assert_eq!(soft_unit_step_derivative(1e-30f32), 0.0);
/// ```
#[inline]
pub fn soft_unit_step_derivative<T: Real>(x: T) -> T {
    if x > T::zero() {
        let e = (-x.recip()).exp();
        if e == T::zero() {
            // exp(-1/x) underflowed: x is tiny, x^2 may be zero as well.
            T::zero()
        } else {
            e / (x * x)
        }
    } else {
        T::zero()
    }
}
