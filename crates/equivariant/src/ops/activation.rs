//! Scalar activation functions ([`Function`]) applied elementwise to burn tensors, with burn
//! tensor ops: the composed radial layer and the `nn` modules (`Activation`, `Gate`,
//! `FullyConnectedNet`, `NormActivation`) all apply them through here.

use burn::tensor::{Tensor, activation};
use equivariant_core::math::ActivationFunction;

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

/// `c f(x)`, the activation with e3nn's `normalize2mom` constant.
pub(crate) fn normalized<const D: usize>(f: ActivationFunction, x: Tensor<D>) -> Tensor<D> {
    apply(f, x).mul_scalar(f.normalize2mom_constant())
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
