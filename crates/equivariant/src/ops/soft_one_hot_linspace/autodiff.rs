//! [`SoftOneHotLinspaceBackend`] on [`Autodiff`]: when tracked, the forward computes the
//! values and their derivatives together and saves the derivatives for the backward.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, TensorMetadata};
use burn::tensor::Shape;
use equivariant_core::math::SoftOneHotLinspace;

use super::SoftOneHotLinspaceBackend;
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step: `dL/dx[i] = sum_k f_k'(x[i]) dL/dout[i, k]` (the Jacobian is
/// diagonal in `i`); for the derivative op, with `f''` saved in place of `f'`.
#[derive(Debug)]
struct SoftOneHotLinspaceBackward;

impl<B: SoftOneHotLinspaceBackend> CustomBackward<B, 1> for SoftOneHotLinspaceBackward {
    /// The derivatives `[n, number]`.
    type State = FloatTensor<B>;

    fn gradients(
        dy: Self::State,
        grad_out: FloatTensor<B>,
        _mask: [bool; 1],
    ) -> [Option<FloatTensor<B>>; 1] {
        let n = dy.shape()[0];
        let grad = B::float_sum_dim(B::float_mul(dy, grad_out), 1);
        [Some(B::float_reshape(grad, Shape::new([n])))]
    }
}

impl<B: SoftOneHotLinspaceBackend, C: CheckpointStrategy> SoftOneHotLinspaceBackend
    for Autodiff<B, C>
{
    fn soft_one_hot_linspace_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // The derivative's backward is the value's with f'' for f': the same step.
        with_slope::<B, C>(
            basis,
            x,
            B::soft_one_hot_linspace_second_derivative,
            B::soft_one_hot_linspace_derivative,
        )
    }

    fn soft_one_hot_linspace_second_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (d1, d2) = B::soft_one_hot_linspace_second_derivative(basis, x.into_primitive());
        (Self::from_inner(d1), Self::from_inner(d2))
    }

    fn soft_one_hot_linspace(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        with_slope::<B, C>(
            basis,
            x,
            B::soft_one_hot_linspace_with_derivative,
            B::soft_one_hot_linspace,
        )
    }

    fn soft_one_hot_linspace_with_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (y, dy) = B::soft_one_hot_linspace_with_derivative(basis, x.into_primitive());
        (Self::from_inner(y), Self::from_inner(dy))
    }
}

/// An inner backend's kernel of the basis at `x`.
type Kernel<B, Out> = fn(Arc<SoftOneHotLinspace>, FloatTensor<B>) -> Out;

/// The `Autodiff` forward of an elementwise function of `x` (`[n] -> [n, number]`):
/// `with_slope` gives the values and their derivatives (saved for the backward) when `x` is
/// tracked, `values` the values alone when not.
fn with_slope<B: SoftOneHotLinspaceBackend, C: CheckpointStrategy>(
    basis: Arc<SoftOneHotLinspace>,
    x: FloatTensor<Autodiff<B, C>>,
    with_slope: Kernel<B, (FloatTensor<B>, FloatTensor<B>)>,
    values: Kernel<B, FloatTensor<B>>,
) -> FloatTensor<Autodiff<B, C>> {
    Autodiff::<B, C>::custom_forward(
        SoftOneHotLinspaceBackward,
        basis,
        [x],
        |basis, [x]| {
            let (y, slope) = with_slope(basis, x);
            (slope, y)
        },
        |basis, [x]| values(basis, x),
    )
}
