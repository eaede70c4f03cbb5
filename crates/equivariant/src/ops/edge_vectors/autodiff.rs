//! [`EdgeVectorsBackend`] on [`Autodiff`]: the forward saves the edges, and the backward
//! is the inner backend's
//! [`edge_vectors_backward`](EdgeVectorsBackend::edge_vectors_backward).

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};
use equivariant_core::graph::EdgeIndex;

use super::EdgeVectorsBackend;
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step of [`EdgeVectorsBackend::edge_vectors`].
#[derive(Debug)]
struct EdgeVectorsBackward;

impl<B: EdgeVectorsBackend> CustomBackward<B, 1> for EdgeVectorsBackward {
    /// The edges.
    type State = Arc<EdgeIndex>;

    fn gradients(
        edges: Self::State,
        grad_out: FloatTensor<B>,
        _mask: [bool; 1],
    ) -> [Option<FloatTensor<B>>; 1] {
        [Some(B::edge_vectors_backward(edges, grad_out))]
    }
}

impl<B: EdgeVectorsBackend, C: CheckpointStrategy> EdgeVectorsBackend for Autodiff<B, C> {
    fn edge_vectors(edges: Arc<EdgeIndex>, pos: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::custom_forward(
            EdgeVectorsBackward,
            edges,
            [pos],
            |edges, [pos]| (Arc::clone(&edges), B::edge_vectors(edges, pos)),
            |edges, [pos]| B::edge_vectors(edges, pos),
        )
    }

    fn edge_vectors_backward(edges: Arc<EdgeIndex>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::edge_vectors_backward(edges, grad.into_primitive()))
    }
}
