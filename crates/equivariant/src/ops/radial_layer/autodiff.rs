//! [`RadialLayerBackend`] on [`Autodiff`]: the forward saves the layer and its inputs, and
//! the backward calls the inner backend's
//! [`radial_layer_backward`](RadialLayerBackend::radial_layer_backward) for the tracked
//! parents only.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};
use equivariant_core::math::RadialLayer;

use super::{RadialLayerBackend, RadialLayerGrads};
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step of [`RadialLayerBackend::radial_layer`].
#[derive(Debug)]
struct RadialLayerBackward;

impl<B: RadialLayerBackend> CustomBackward<B, 2> for RadialLayerBackward {
    /// The layer and the forward inputs `[vectors, weight]`.
    type State = (Arc<RadialLayer>, [FloatTensor<B>; 2]);

    fn gradients(
        (layer, [vectors, weight]): Self::State,
        grad_out: FloatTensor<B>,
        mask: [bool; 2],
    ) -> [Option<FloatTensor<B>>; 2] {
        let (gv, gw) = B::radial_layer_backward(layer, vectors, weight, grad_out, mask);
        [gv, gw]
    }
}

impl<B: RadialLayerBackend, C: CheckpointStrategy> RadialLayerBackend for Autodiff<B, C> {
    fn radial_layer(
        layer: Arc<RadialLayer>,
        vectors: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::custom_forward_saving_inputs(
            RadialLayerBackward,
            layer,
            [vectors, weight],
            |layer, [vectors, weight]| B::radial_layer(layer, vectors, weight),
        )
    }

    fn radial_layer_backward(
        layer: Arc<RadialLayer>,
        vectors: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        mask: [bool; 2],
    ) -> RadialLayerGrads<Self> {
        let (gv, gw) = B::radial_layer_backward(
            layer,
            vectors.into_primitive(),
            weight.into_primitive(),
            grad_out.into_primitive(),
            mask,
        );
        (gv.map(Self::from_inner), gw.map(Self::from_inner))
    }
}
