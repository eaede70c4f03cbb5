//! Edge vectors composed of burn ops: the fallback of
//! [`edge_vectors`](super::edge_vectors()) on backends without
//! [`EdgeVectorsBackend`](super::EdgeVectorsBackend), and the form over index tensors that
//! every composed path uses.

use burn::tensor::{Int, Tensor};
use equivariant_core::graph::EdgeIndex;

use crate::ops::composed::edge_index_tensors;
use crate::ops::scatter::{gather, scatter_sum};

/// [`ops::edge_vectors`](crate::ops::edge_vectors()) composed of burn ops:
/// [`edge_vectors_from_index`] with the edges' index tensors.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::ops::composed;
/// let edges = EdgeIndex::new(&[0], &[1], 2)?;
/// let pos = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], &Device::flex());
/// let v = composed::edge_vectors(&edges, pos).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(v, [1.0, 2.0, 3.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn edge_vectors(edges: &EdgeIndex, pos: Tensor<2>) -> Tensor<2> {
    let (src, dst) = edge_index_tensors(edges, &pos.device());
    edge_vectors_from_index(pos, src, dst)
}

/// `pos[dst[e]] - pos[src[e]]` for every edge `e`, the edges given as index tensors (as
/// [`gather`] takes them, e.g. a graph's `src` and `dst`): two gathers and a subtraction,
/// differentiable on any backend. Every edge vector composed of burn ops is this function;
/// [`ops::edge_vectors`](crate::ops::edge_vectors()) is the native op over an [`EdgeIndex`].
///
/// # Shapes
///
/// - `pos`: `[N, 3]`
/// - `src`, `dst`: `[E]`, values in `0..N`
/// - output: `[E, 3]`
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use equivariant::ops::composed::edge_vectors_from_index;
/// let device = Device::flex();
/// let pos = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], &device);
/// let src = Tensor::<1, Int>::from_ints([0, 1], &device);
/// let dst = Tensor::<1, Int>::from_ints([1, 0], &device);
/// let v = edge_vectors_from_index(pos, src, dst);
/// assert_eq!(v.into_data().try_into_vec::<f32>().unwrap(), [1.0, 2.0, 3.0, -1.0, -2.0, -3.0]);
/// ```
pub fn edge_vectors_from_index(
    pos: Tensor<2>,
    src: Tensor<1, Int>,
    dst: Tensor<1, Int>,
) -> Tensor<2> {
    gather(pos.clone(), dst).sub(gather(pos, src))
}

/// The adjoint of [`edge_vectors`], as
/// [`edge_vectors_backward`](super::edge_vectors_backward()), composed of burn ops:
/// `scatter_sum(grad, dst) - scatter_sum(grad, src)`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::ops::composed;
/// let edges = EdgeIndex::new(&[0, 0], &[1, 2], 3)?;
/// let g = Tensor::<2>::from_floats([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], &Device::flex());
/// let nodes = composed::edge_vectors_backward(&edges, g).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(nodes, [-1.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn edge_vectors_backward(edges: &EdgeIndex, grad: Tensor<2>) -> Tensor<2> {
    let (src, dst) = edge_index_tensors(edges, &grad.device());
    let n = edges.num_nodes();
    scatter_sum(grad.clone(), dst, n).sub(scatter_sum(grad, src, n))
}
