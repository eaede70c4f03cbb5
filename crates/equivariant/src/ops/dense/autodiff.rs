//! [`DenseBackend`] on [`Autodiff`]: the forward keeps `x` and `w`; the backward is `g w^T`
//! (the inner backend's [`dense`](DenseBackend::dense) with `w` transposed) and `x^T g`
//! ([`dense_weight_gradient`](DenseBackend::dense_weight_gradient)), each where asked.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};

use super::DenseBackend;
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step of [`DenseBackend::dense`].
#[derive(Debug)]
struct DenseBackward;

impl<B: DenseBackend> CustomBackward<B, 2> for DenseBackward {
    /// The forward inputs `[x, w]`.
    type State = ((), [FloatTensor<B>; 2]);

    fn gradients(
        ((), [x, w]): Self::State,
        grad_out: FloatTensor<B>,
        mask: [bool; 2],
    ) -> [Option<FloatTensor<B>>; 2] {
        let gx = mask[0].then(|| B::dense(grad_out.clone(), B::float_transpose(w)));
        let gw = mask[1].then(|| B::dense_weight_gradient(x, grad_out));
        [gx, gw]
    }
}

impl<B: DenseBackend, C: CheckpointStrategy> DenseBackend for Autodiff<B, C> {
    fn dense(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::custom_forward_saving_inputs(DenseBackward, (), [x, w], |(), [x, w]| B::dense(x, w))
    }

    fn dense_weight_gradient(
        x: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::dense_weight_gradient(
            x.into_primitive(),
            grad_out.into_primitive(),
        ))
    }
}
