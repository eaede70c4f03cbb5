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
