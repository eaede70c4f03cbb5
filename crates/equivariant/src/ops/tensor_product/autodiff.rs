//! [`TensorProductBackend`] on [`Autodiff`]: the forward saves the plan and its inputs, and
//! the backward calls the inner backend's
//! [`tensor_product_backward`](TensorProductBackend::tensor_product_backward) for the
//! tracked parents only.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};
use equivariant_core::o3::tensor_product::TensorProductPlan;

use super::{GradientMask, TensorProductBackend, TensorProductGrads};
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step of [`TensorProductBackend::tensor_product`].
#[derive(Debug)]
struct TensorProductBackward;

impl<B: TensorProductBackend> CustomBackward<B, 3> for TensorProductBackward {
    /// The plan and the forward inputs `[x1, x2, weight]`.
    type State = (Arc<TensorProductPlan>, [FloatTensor<B>; 3]);

    fn gradients(
        (plan, [x1, x2, weight]): Self::State,
        grad_out: FloatTensor<B>,
        mask: GradientMask,
    ) -> [Option<FloatTensor<B>>; 3] {
        let (g1, g2, gw) = B::tensor_product_backward(plan, x1, x2, weight, grad_out, mask);
        [g1, g2, gw]
    }
}

impl<B: TensorProductBackend, C: CheckpointStrategy> TensorProductBackend for Autodiff<B, C> {
    fn tensor_product(
        plan: Arc<TensorProductPlan>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::custom_forward_saving_inputs(
            TensorProductBackward,
            plan,
            [x1, x2, weight],
            |plan, [x1, x2, weight]| B::tensor_product(plan, x1, x2, weight),
        )
    }

    fn tensor_product_backward(
        plan: Arc<TensorProductPlan>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        mask: GradientMask,
    ) -> TensorProductGrads<Self> {
        let (g1, g2, gw) = B::tensor_product_backward(
            plan,
            x1.into_primitive(),
            x2.into_primitive(),
            weight.into_primitive(),
            grad_out.into_primitive(),
            mask,
        );
        (
            g1.map(Self::from_inner),
            g2.map(Self::from_inner),
            gw.map(Self::from_inner),
        )
    }
}
