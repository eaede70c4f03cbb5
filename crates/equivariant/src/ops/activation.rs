//! Scalar activation functions ([`Function`]) applied elementwise to burn tensors, with burn
//! tensor ops: the composed radial layer and the `nn` modules (`Activation`, `Gate`,
//! `FullyConnectedNet`, `NormActivation`) all apply them through here.

use burn::tensor::{Tensor, activation};
use equivariant_core::math::Activation as Function;

/// The raw activation `f(x)` with burn tensor ops (torch's definitions, as
/// [`Function::apply`]).
pub(crate) fn apply<const D: usize>(f: Function, x: Tensor<D>) -> Tensor<D> {
    match f {
        Function::Relu => activation::relu(x),
        Function::Silu => activation::silu(x),
        Function::Tanh => x.tanh(),
        Function::Sigmoid => activation::sigmoid(x),
        Function::Gelu => activation::gelu(x),
        Function::Abs => x.abs(),
    }
}

/// `c f(x)`, the activation with e3nn's `normalize2mom` constant.
pub(crate) fn normalized<const D: usize>(f: Function, x: Tensor<D>) -> Tensor<D> {
    apply(f, x).mul_scalar(f.normalize2mom_constant())
}
