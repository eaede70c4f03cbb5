//! [`EdgeVectorsBackend`] on [`Flex`]: the core kernels ([`EdgeIndex::edge_vectors`],
//! [`EdgeIndex::edge_vectors_backward`]), f32 and f64.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use equivariant_core::graph::EdgeIndex;

use super::EdgeVectorsBackend;
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

impl EdgeVectorsBackend for Flex {
    fn edge_vectors(edges: Arc<EdgeIndex>, pos: FlexTensor) -> FlexTensor {
        dispatch_float!("edge_vectors", &pos, flex_run(&edges, &pos, false))
    }

    fn edge_vectors_backward(edges: Arc<EdgeIndex>, grad: FlexTensor) -> FlexTensor {
        dispatch_float!(
            "edge_vectors_backward",
            &grad,
            flex_run(&edges, &grad, true)
        )
    }
}

/// The forward (`x` the positions) or the backward (`x` the edge gradient).
fn flex_run<T: FlexFloat>(edges: &EdgeIndex, x: &FlexTensor, backward: bool) -> FlexTensor {
    let op = if backward {
        "edge_vectors_backward"
    } else {
        "edge_vectors"
    };
    let x = contiguous::<T>(op, "input", x);
    let rows = if backward {
        edges.num_nodes()
    } else {
        edges.num_edges()
    };
    let mut out = vec![T::zero(); rows * 3];
    let result = if backward {
        edges.edge_vectors_backward(data::<T>(&x), &mut out)
    } else {
        edges.edge_vectors(data::<T>(&x), &mut out)
    };
    result.unwrap_or_else(|err| panic!("{op}: {err}"));
    from_vec(out, [rows, 3])
}
