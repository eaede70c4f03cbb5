//! [`normalized_activation`](super::normalized_activation) composed of burn ops, for devices
//! without the native kernel.

use burn::tensor::Tensor;
use equivariant_core::math::ActivationFunction;

use crate::ops::activation::apply;

/// `c f(x)` with burn's activations (see [`super::normalized_activation`]).
pub fn normalized_activation<const D: usize>(
    f: ActivationFunction,
    constant: f64,
    x: Tensor<D>,
) -> Tensor<D> {
    let y = apply(f, x);
    if constant == 1.0 {
        y
    } else {
        y.mul_scalar(constant)
    }
}
