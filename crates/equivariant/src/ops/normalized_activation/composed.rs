//! [`normalized_activation`](super::normalized_activation) composed of burn ops, for devices
//! without the native kernel, and the built-in activations and their derivatives as burn ops
//! (the composed radial layer and the modules' tangent passes use them too).

use burn::tensor::{Tensor, activation};
use equivariant_core::math::ActivationFunction;

/// `c f(x)` with burn's activations (see [`super::normalized_activation`]).
pub fn normalized_activation<const D: usize>(
    f: ActivationFunction,
    constant: f64,
    x: Tensor<D>,
) -> Tensor<D> {
    scaled(apply(f, x), constant)
}

/// `c f(x)` and `c f'(x) dx` with burn's ops (see [`super::normalized_activation_tangent`]).
pub fn normalized_activation_tangent<const D: usize>(
    f: ActivationFunction,
    constant: f64,
    x: Tensor<D>,
    dx: Tensor<D>,
) -> (Tensor<D>, Tensor<D>) {
    let slope = derivative(f, x.clone());
    (
        normalized_activation(f, constant, x),
        scaled(slope.mul(dx), constant),
    )
}

/// `c y` (`y` itself for `c = 1`).
pub(crate) fn scaled<const D: usize>(y: Tensor<D>, c: f64) -> Tensor<D> {
    if c == 1.0 { y } else { y.mul_scalar(c) }
}

/// The raw activation `f(x)` with burn tensor ops (torch's definitions, as
/// [`ActivationFunction::apply`]).
pub(crate) fn apply<const D: usize>(f: ActivationFunction, x: Tensor<D>) -> Tensor<D> {
    match f {
        ActivationFunction::Relu => activation::relu(x),
        ActivationFunction::Silu => activation::silu(x),
        ActivationFunction::Tanh => x.tanh(),
        ActivationFunction::Sigmoid => activation::sigmoid(x),
        ActivationFunction::Gelu => activation::gelu(x),
        ActivationFunction::Abs => x.abs(),
    }
}

/// The raw activation's derivative `f'(x)` with burn tensor ops (torch's: `relu'(0) = 0`,
/// `abs'(0) = 0`), differentiable where `f'` is: the tangent passes of the modules
/// (`FullyConnectedNet::forward_hidden_tangent`) multiply by it.
pub(crate) fn derivative<const D: usize>(f: ActivationFunction, x: Tensor<D>) -> Tensor<D> {
    match f {
        ActivationFunction::Relu => {
            // A mask as a float tensor is f32 by default: back to the dtype of `x`.
            let dtype = x.dtype();
            x.greater_elem(0.0).float().cast(dtype)
        }
        ActivationFunction::Silu => {
            // s (1 + x (1 - s)), s = sigmoid(x).
            let s = activation::sigmoid(x.clone());
            s.clone()
                .mul(x.mul(s.neg().add_scalar(1.0)).add_scalar(1.0))
        }
        ActivationFunction::Tanh => {
            let t = x.tanh();
            t.clone().mul(t).neg().add_scalar(1.0)
        }
        ActivationFunction::Sigmoid => {
            let s = activation::sigmoid(x);
            s.clone().mul(s.neg().add_scalar(1.0))
        }
        ActivationFunction::Gelu => {
            // Phi(x) + x phi(x).
            let cdf = x
                .clone()
                .mul_scalar(std::f64::consts::FRAC_1_SQRT_2)
                .erf()
                .add_scalar(1.0)
                .mul_scalar(0.5);
            let pdf = x
                .clone()
                .powi_scalar(2)
                .mul_scalar(-0.5)
                .exp()
                .mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt());
            cdf.add(x.mul(pdf))
        }
        ActivationFunction::Abs => x.sign(),
    }
}
