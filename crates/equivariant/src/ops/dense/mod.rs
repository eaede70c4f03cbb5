//! A dense layer's product `y = x w` as a burn backend extension: on Flex the core's
//! [`dense`](equivariant_core::kernels::dense) into one new buffer (`flex.rs`); on
//! [`Autodiff`](burn::backend::Autodiff) its backward is `g w^T` (the same op) and `x^T g`
//! ([`dense_weight_gradient`](equivariant_core::kernels::dense_weight_gradient);
//! `autodiff.rs`). On other devices it is burn's `matmul` (`composed.rs`).
//!
//! Why not burn's `matmul` on Flex: burn 0.22.1 makes each product's output a zero-filled
//! byte buffer, then copies it into an aligned one; for the radial MLP of a small potential
//! that allocation, zeroing and copy were about 5% of an MD step's instructions (callgrind,
//! `equivariant md`, 108 atoms), more than the product.
//!
//! Shapes: `x` `[m, k]`, `w` `[k, n]`, output `[m, n]`.

mod autodiff;
pub(super) mod composed;
mod flex;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;

use super::composed::is_native;

/// Backends that run a dense layer's product natively.
///
/// Implemented for [`Flex`](burn::backend::Flex) (f32 and f64) and for
/// [`Autodiff`](burn::backend::Autodiff) over any implementing backend.
///
/// ```
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::ops::dense::DenseBackend;
///
/// let device = Device::flex();
/// let x = Tensor::<2>::from_floats([[1.0, 2.0]], &device);
/// let w = Tensor::<2>::from_floats([[3.0], [4.0]], &device);
/// let y = <Dispatch as DenseBackend>::dense(x.into_dispatch(), w.into_dispatch());
/// let y = Tensor::<2>::from_dispatch(y).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(y, [11.0]);
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait DenseBackend: Backend {
    /// `x w`.
    ///
    /// # Shapes
    ///
    /// - `x`: `[m, k]`, `w`: `[k, n]`; output: `[m, n]`
    ///
    /// # Panics
    ///
    /// On operands that are not matrices of agreeing `k`, or of different dtypes other than
    /// f32/f64.
    fn dense(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient for `w` given `grad_out`: `x^T grad_out`, summed over the rows in a fixed
    /// order (the same bits for any thread count). Not tracked by autodiff.
    ///
    /// # Shapes
    ///
    /// - `x`: `[m, k]`, `grad_out`: `[m, n]`; output: `[k, n]`
    ///
    /// # Panics
    ///
    /// As [`dense`](DenseBackend::dense), with `grad_out` in place of `w` and agreeing `m`.
    fn dense_weight_gradient(
        x: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// A dense layer's product `x w`, differentiable in both on an autodiff device (`d/dx = g
/// w^T`, `d/dw = x^T g`).
///
/// # Shapes
///
/// - `x`: `[m, k]`, `w`: `[k, n]`; output: `[m, n]`
///
/// # Panics
///
/// As [`DenseBackend::dense`].
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::ops::dense;
///
/// let device = Device::flex().autodiff();
/// let x = Tensor::<2>::from_floats([[1.0, 2.0], [0.5, -1.0]], &device).require_grad();
/// let w = Tensor::<2>::from_floats([[3.0], [4.0]], &device).require_grad();
/// let y = dense(x.clone(), w.clone());
/// assert_eq!(y.clone().into_data().to_vec::<f32>().unwrap(), [11.0, -2.5]);
/// let grads = y.sum().backward();
/// // d/dw = x^T 1: the column sums of x.
/// assert_eq!(w.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap(), [1.5, 1.0]);
/// assert_eq!(x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap(), [3.0, 4.0, 3.0, 4.0]);
/// ```
pub fn dense(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    if !is_native(&x.device()) {
        return composed::dense(x, w);
    }
    Tensor::from_dispatch(<Dispatch as DenseBackend>::dense(
        x.into_dispatch(),
        w.into_dispatch(),
    ))
}
