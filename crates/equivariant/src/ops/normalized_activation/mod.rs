//! e3nn's normalized activation `y = c f(x)` of a built-in [`ActivationFunction`] as a burn
//! backend extension: [`Flex`](burn::backend::Flex) runs the core kernel
//! ([`ActivationFunction::forward_slice`], vectorized; `flex.rs`), and on
//! [`Autodiff`](burn::backend::Autodiff) a tracked forward computes the slope `c f'(x)` with
//! the values ([`ActivationFunction::forward_with_derivative_slice`]) and keeps it, so the
//! backward is `slope grad` (`autodiff.rs`). [`normalized_activation`] is the
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

    /// `c f(x)` and the slope `c f'(x)` elementwise, in one pass (what a tracked forward
    /// keeps for its backward, `slope grad_out`). Not tracked by autodiff.
    ///
    /// # Shapes
    ///
    /// - `x`: any; outputs: the same
    ///
    /// # Panics
    ///
    /// On a dtype other than f32/f64.
    fn normalized_activation_with_derivative(
        f: ActivationFunction,
        constant: f64,
        x: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The tangent of `c f(x)` along `dx`, `c f'(x) dx`; on
    /// [`Autodiff`](burn::backend::Autodiff) differentiable in both (through `f''`).
    ///
    /// # Shapes
    ///
    /// - `x`, `dx`: any, the same; output: the same
    ///
    /// # Panics
    ///
    /// On a dtype other than f32/f64, or `dx` of another shape than `x`.
    fn normalized_activation_tangent(
        f: ActivationFunction,
        constant: f64,
        x: FloatTensor<Self>,
        dx: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The gradients for `x` and `dx` given `grad_out`: `c f''(x) dx grad_out` and `c f'(x)
    /// grad_out`. Not tracked by autodiff.
    ///
    /// # Panics
    ///
    /// As [`normalized_activation_tangent`](NormalizedActivationBackend::normalized_activation_tangent),
    /// or `grad_out` of another shape than `x`.
    fn normalized_activation_tangent_backward(
        f: ActivationFunction,
        constant: f64,
        x: FloatTensor<Self>,
        dx: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
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

/// `c f(x)` and its tangent `c f'(x) dx` for a built-in activation `f` (the tangent pass
/// of a layer `c f(x W)`): the value by [`normalized_activation`], the tangent by one native
/// op differentiable in `x` and `dx` on an autodiff device (the parameter gradient of a loss
/// of forces reaches `f''`).
///
/// # Shapes
///
/// - `x`, `dx`: any, the same; outputs: the same
///
/// # Panics
///
/// As [`NormalizedActivationBackend::normalized_activation_tangent`].
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::ActivationFunction;
/// use equivariant::ops::normalized_activation_tangent;
///
/// let silu = ActivationFunction::Silu;
/// let device = Device::flex().autodiff();
/// let x = Tensor::<2>::from_floats([[-1.0, 0.5]], &device).require_grad();
/// let dx = Tensor::<2>::from_floats([[2.0, 1.0]], &device).require_grad();
/// let (y, dy) = normalized_activation_tangent(silu, 1.5, x.clone(), dx.clone());
/// let dy0 = dy.clone().into_data().to_vec::<f32>().unwrap()[0] as f64;
/// assert!((dy0 - 1.5 * silu.derivative(-1.0) * 2.0).abs() < 1e-6);
/// let grads = y.sum().add(dy.sum()).backward();
/// let gx = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap()[0] as f64;
/// let want = 1.5 * (silu.derivative(-1.0) + silu.second_derivative(-1.0) * 2.0);
/// assert!((gx - want).abs() < 1e-5);
/// ```
pub fn normalized_activation_tangent<const D: usize>(
    f: ActivationFunction,
    constant: f64,
    x: Tensor<D>,
    dx: Tensor<D>,
) -> (Tensor<D>, Tensor<D>) {
    if !is_native(&x.device()) {
        return composed::normalized_activation_tangent(f, constant, x, dx);
    }
    let tangent = Tensor::from_dispatch(
        <Dispatch as NormalizedActivationBackend>::normalized_activation_tangent(
            f,
            constant,
            x.clone().into_dispatch(),
            dx.into_dispatch(),
        ),
    );
    (normalized_activation(f, constant, x), tangent)
}
