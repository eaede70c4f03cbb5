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
        Self::custom_forward(
            SoftOneHotLinspaceBackward,
            basis,
            [x],
            |basis, [x]| {
                let (d1, d2) = B::soft_one_hot_linspace_second_derivative(basis, x);
                (d2, d1)
            },
            |basis, [x]| B::soft_one_hot_linspace_derivative(basis, x),
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
        Self::custom_forward(
            SoftOneHotLinspaceBackward,
            basis,
            [x],
            |basis, [x]| {
                let (y, dy) = B::soft_one_hot_linspace_with_derivative(basis, x);
                (dy, y)
            },
            |basis, [x]| B::soft_one_hot_linspace(basis, x),
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
