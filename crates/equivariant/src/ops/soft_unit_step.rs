//! e3nn's `soft_unit_step` on tensors, composed of burn ops (an elementwise map needs no
//! kernel of its own).

use burn::tensor::Tensor;

/// Below this the step is exactly `0` in f32 and f64 (`exp(-1000)` underflows both), so its
/// derivative is taken as `0` there too, where `exp(-1/x) / x^2` could be `0 * inf` (`x^-2`
/// overflows f32 below about 1e-19).
const NEGLIGIBLE: f64 = 1e-3;

/// The smooth unit step of every entry, `u(x) = exp(-1/x)` for `x > 0` and `0` otherwise
/// (e3nn's `soft_unit_step`, as [`equivariant_core::math::soft_unit_step()`]), any shape,
/// differentiable: `u'(x) = u(x) / x^2`, finite everywhere.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::ops::soft_unit_step;
/// let x = Tensor::<1>::from_floats([-1.0, 0.0, 1.0], &Device::flex());
/// let u = soft_unit_step(x).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(u[..2], [0.0, 0.0]);
/// assert!((u[2] - (-1.0f32).exp()).abs() < 1e-7);
/// ```
pub fn soft_unit_step<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let positive = x.clone().greater_elem(NEGLIGIBLE);
    let inside = positive.clone().float().cast(x.dtype());
    x.mask_fill(positive.bool_not(), 1.0)
        .recip()
        .neg()
        .exp()
        .mul(inside)
}
