//! The radial bases of `e3nn.math.soft_one_hot_linspace` as a burn backend extension:
//! [`SoftOneHotLinspaceBackend`] runs the core [`SoftOneHotLinspace`] on Flex (`flex.rs`), and on
//! [`Autodiff`](burn::backend::Autodiff) its backward multiplies the derivatives (computed with the
//! values, in one pass) by the upstream gradient (`autodiff.rs`). [`soft_one_hot_linspace`] is the
//! `Tensor`-level entry point; on other devices it runs the bases written out in burn ops
//! ([`composed::soft_one_hot_linspace`]).
//!
//! `out[i, k] = f_k(x[i])`, `f_k` the `k`-th basis function centered on the linspace:
//! shapes `x` `[n]`, output `[n, number]`.

mod autodiff;
pub(super) mod composed;
mod flex;

use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use equivariant_core::math::SoftOneHotLinspace;

use super::composed::is_native;

/// Backends that evaluate a [`SoftOneHotLinspace`] basis natively: `out[i, k] = f_k(x[i])`.
///
/// Implemented for [`Flex`](burn::backend::Flex) (f32 and f64) and for
/// [`Autodiff`](burn::backend::Autodiff) over any implementing backend.
///
/// ```
/// use std::sync::Arc;
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, SoftOneHotLinspace};
/// use equivariant::ops::soft_one_hot_linspace::SoftOneHotLinspaceBackend;
///
/// let basis = Arc::new(SoftOneHotLinspace::new(0.0, 3.0, 2, Basis::Cosine, true)?);
/// let x = Tensor::<1>::from_floats([1.0], &Device::flex());
/// let y = <Dispatch as SoftOneHotLinspaceBackend>::soft_one_hot_linspace(basis, x.into_dispatch());
/// let y = Tensor::<2>::from_dispatch(y).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(y[0], 1.0); // cos(0) at the first center
/// # Ok::<(), equivariant::Error>(())
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait SoftOneHotLinspaceBackend: Backend {
    /// The basis at every `x[i]`.
    ///
    /// # Shapes
    ///
    /// - `x`: `[n]`
    /// - output: `[n, basis.number()]`
    ///
    /// # Panics
    ///
    /// On a rank other than 1, a dtype other than f32/f64, or a NaN or infinite input.
    fn soft_one_hot_linspace(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The basis and its derivative at every `x[i]`, computed together. Not tracked by
    /// autodiff.
    ///
    /// # Shapes
    ///
    /// - `x`: `[n]`
    /// - output: `([n, number], [n, number])`, values and `d f_k / dx` at `x[i]`
    ///
    /// # Panics
    ///
    /// As [`soft_one_hot_linspace`](SoftOneHotLinspaceBackend::soft_one_hot_linspace).
    fn soft_one_hot_linspace_with_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The basis' derivative `f_k'(x[i])`; on [`Autodiff`](burn::backend::Autodiff),
    /// differentiable (its derivative is `f_k''`).
    ///
    /// # Shapes
    ///
    /// - `x`: `[n]`
    /// - output: `[n, basis.number()]`
    ///
    /// # Panics
    ///
    /// As [`soft_one_hot_linspace`](SoftOneHotLinspaceBackend::soft_one_hot_linspace).
    fn soft_one_hot_linspace_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The basis' first and second derivatives, computed together. Not tracked by
    /// autodiff.
    ///
    /// # Shapes
    ///
    /// - `x`: `[n]`
    /// - output: `([n, basis.number()], [n, basis.number()])`
    ///
    /// # Panics
    ///
    /// As [`soft_one_hot_linspace`](SoftOneHotLinspaceBackend::soft_one_hot_linspace).
    fn soft_one_hot_linspace_second_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// e3nn's `soft_one_hot_linspace(x, start, end, number, basis, cutoff)` on a tensor,
/// differentiable with respect to `x` on an autodiff device.
///
/// # Shapes
///
/// - `x`: `[n]`
/// - output: `[n, basis.number()]`
///
/// # Panics
///
/// On a dtype other than f32/f64, a NaN or infinite input, or a device whose backend does
/// not implement [`SoftOneHotLinspaceBackend`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, SoftOneHotLinspace};
/// use equivariant::ops::soft_one_hot_linspace;
///
/// let basis = Arc::new(SoftOneHotLinspace::new(0.0, 1.0, 3, Basis::Gaussian, false)?);
/// let x = Tensor::<1>::from_floats([0.25, 0.5], &Device::flex().autodiff()).require_grad();
/// let y = soft_one_hot_linspace(&basis, x.clone());
/// assert_eq!(y.dims(), [2, 3]);
/// let grads = y.sum().backward();
/// assert_eq!(x.grad(&grads).unwrap().dims(), [2]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn soft_one_hot_linspace(basis: &Arc<SoftOneHotLinspace>, x: Tensor<1>) -> Tensor<2> {
    if !is_native(&x.device()) {
        return composed::soft_one_hot_linspace(basis, x);
    }
    Tensor::from_dispatch(
        <Dispatch as SoftOneHotLinspaceBackend>::soft_one_hot_linspace(
            Arc::clone(basis),
            x.into_dispatch(),
        ),
    )
}

/// The derivative of [`soft_one_hot_linspace`], `out[i, k] = f_k'(x[i])`, differentiable on
/// an autodiff device (through `f_k''`): with the edge lengths' tangent, the radial
/// embedding's tangent of a potential's tangent pass.
///
/// # Shapes
///
/// - `x`: `[n]`
/// - output: `[n, basis.number()]`
///
/// # Panics
///
/// As [`soft_one_hot_linspace`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, SoftOneHotLinspace};
/// use equivariant::ops::soft_one_hot_linspace_derivative;
///
/// // Fourier without cutoff: cos(k pi x) / coef, whose derivative at x = 0 is 0.
/// let basis = Arc::new(SoftOneHotLinspace::new(0.0, 1.0, 3, Basis::Fourier, false)?);
/// let x = Tensor::<1>::from_floats([0.0], &Device::flex());
/// let d = soft_one_hot_linspace_derivative(&basis, x).into_data().try_into_vec::<f32>().unwrap();
/// assert!(d.iter().all(|d| d.abs() < 1e-6));
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn soft_one_hot_linspace_derivative(
    basis: &Arc<SoftOneHotLinspace>,
    x: Tensor<1>,
) -> Tensor<2> {
    if !is_native(&x.device()) {
        return composed::soft_one_hot_linspace_derivative(basis, x);
    }
    Tensor::from_dispatch(
        <Dispatch as SoftOneHotLinspaceBackend>::soft_one_hot_linspace_derivative(
            Arc::clone(basis),
            x.into_dispatch(),
        ),
    )
}
