//! [`ConvolutionBackend`] on [`Autodiff`]: the forward saves the plan, the edges, the scale
//! and its inputs, and the backward runs the fused backward kernel for the tracked parents
//! only.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};
use equivariant_core::graph::EdgeIndex;
use equivariant_core::o3::tensor_product::TensorProductPlan;

use super::{ConvolutionBackend, ConvolutionMask, Grads4};
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step of [`ConvolutionBackend::fused_convolution`].
#[derive(Debug)]
struct FusedConvolutionBackward;

impl<B: ConvolutionBackend> CustomBackward<B, 4> for FusedConvolutionBackward {
    /// The plan, the edges and the scale, and the inputs `[x1, x2, hidden, linear]`.
    type State = (
        (Arc<TensorProductPlan>, Arc<EdgeIndex>, f64),
        [FloatTensor<B>; 4],
    );

    fn gradients(
        ((plan, edges, scale), [x1, x2, hidden, linear]): Self::State,
        grad_out: FloatTensor<B>,
        mask: ConvolutionMask,
    ) -> [Option<FloatTensor<B>>; 4] {
        let (g1, g2, gh, glin) = B::fused_convolution_backward(
            plan, edges, x1, x2, hidden, linear, scale, grad_out, mask,
        );
        [g1, g2, gh, glin]
    }
}

impl<B: ConvolutionBackend, C: CheckpointStrategy> ConvolutionBackend for Autodiff<B, C> {
    fn fused_convolution(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        hidden: FloatTensor<Self>,
        linear: FloatTensor<Self>,
        scale: f64,
    ) -> FloatTensor<Self> {
        Self::custom_forward_saving_inputs(
            FusedConvolutionBackward,
            (plan, edges, scale),
            [x1, x2, hidden, linear],
            |(plan, edges, scale), [x1, x2, hidden, linear]| {
                B::fused_convolution(plan, edges, x1, x2, hidden, linear, scale)
            },
        )
    }

    fn fused_convolution_backward(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        hidden: FloatTensor<Self>,
        linear: FloatTensor<Self>,
        scale: f64,
        grad_out: FloatTensor<Self>,
        mask: ConvolutionMask,
    ) -> Grads4<Self> {
        let (g1, g2, gh, glin) = B::fused_convolution_backward(
            plan,
            edges,
            x1.into_primitive(),
            x2.into_primitive(),
            hidden.into_primitive(),
            linear.into_primitive(),
            scale,
            grad_out.into_primitive(),
            mask,
        );
        (
            g1.map(Self::from_inner),
            g2.map(Self::from_inner),
            gh.map(Self::from_inner),
            glin.map(Self::from_inner),
        )
    }
}
