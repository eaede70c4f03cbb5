//! e3nn's normalized activation `y = c f(x)` of a built-in [`ActivationFunction`] as a burn
//! backend extension: [`Flex`](burn::backend::Flex) runs the core kernel
//! ([`ActivationFunction::forward_slice`], vectorized; `flex.rs`), and on
//! [`Autodiff`](burn::backend::Autodiff) its backward is `c f'(x) grad`
//! ([`ActivationFunction::backward_slice`]; `autodiff.rs`). [`normalized_activation`] is the
//! `Tensor`-level entry point; on other devices it is composed of burn ops
//! ([`composed::normalized_activation`]).
//!
//! Shapes: any; the output has the shape of `x`.

mod autodiff;
pub(super) mod composed;
mod flex;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use equivariant_core::math::ActivationFunction;

use super::composed::is_native;

/// Backends that run `y = c f(x)` natively for the built-in activations.
///
/// Implemented for [`Flex`](burn::backend::Flex) (f32 and f64) and for
/// [`Autodiff`](burn::backend::Autodiff) over any implementing backend.
///
/// ```
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::ActivationFunction;
/// use equivariant::ops::normalized_activation::NormalizedActivationBackend;
///
/// let x = Tensor::<1>::from_floats([0.0, 1.0], &Device::flex());
/// let y = <Dispatch as NormalizedActivationBackend>::normalized_activation(
///     ActivationFunction::Relu,
///     2.0,
///     x.into_dispatch(),
/// );
/// let y = Tensor::<1>::from_dispatch(y).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(y, [0.0, 2.0]);
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait NormalizedActivationBackend: Backend {
    /// `c f(x)` elementwise.
    ///
    /// # Shapes
    ///
    /// - `x`: any; output: the same
    ///
    /// # Panics
    ///
    /// On a dtype other than f32/f64.
    fn normalized_activation(
        f: ActivationFunction,
        constant: f64,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The gradient for `x` given `grad_out`: `c f'(x) grad_out` elementwise. Not tracked
    /// by autodiff.
    ///
    /// # Panics
    ///
    /// On a dtype other than f32/f64, or `grad_out` of another shape than `x`.
    fn normalized_activation_backward(
        f: ActivationFunction,
        constant: f64,
        x: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// `c f(x)` elementwise for a built-in activation `f` (e3nn's `normalize2mom(f)` with its
/// constant `c`), differentiable on an autodiff device: `d/dx = c f'(x)`.
///
/// # Shapes
///
/// - `x`: any; output: the same
///
/// # Panics
///
/// As [`NormalizedActivationBackend::normalized_activation`].
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::ActivationFunction;
/// use equivariant::ops::normalized_activation;
///
/// let silu = ActivationFunction::Silu;
/// let c = silu.normalize2mom_constant();
/// let x = Tensor::<2>::from_floats([[-1.0, 0.5]], &Device::flex().autodiff()).require_grad();
/// let y = normalized_activation(silu, c, x.clone());
/// let got = y.clone().into_data().try_into_vec::<f32>().unwrap();
/// assert!((got[1] as f64 - c * silu.apply(0.5)).abs() < 1e-6);
/// let grads = y.sum().backward();
/// let dx = x.grad(&grads).unwrap().into_data().try_into_vec::<f32>().unwrap();
/// assert!((dx[0] as f64 - c * silu.derivative(-1.0)).abs() < 1e-6);
/// ```
pub fn normalized_activation<const D: usize>(
    f: ActivationFunction,
    constant: f64,
    x: Tensor<D>,
) -> Tensor<D> {
    if !is_native(&x.device()) {
        return composed::normalized_activation(f, constant, x);
    }
    Tensor::from_dispatch(
        <Dispatch as NormalizedActivationBackend>::normalized_activation(
            f,
            constant,
            x.into_dispatch(),
        ),
    )
}
