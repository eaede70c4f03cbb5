//! Edge vectors `pos[dst[e]] - pos[src[e]]` over an [`EdgeIndex`] as a burn backend extension:
//! [`Flex`](burn::backend::Flex) runs the core kernels (a parallel pass over the edges, and for the
//! backward a deterministic per-node sum; `flex.rs`), [`Autodiff`](burn::backend::Autodiff) wires
//! the backward (`autodiff.rs`). On other devices [`edge_vectors`] is two
//! [`gather`](super::gather)s and a subtraction, [`composed::edge_vectors_from_index`], the form
//! over index tensors that every composed path uses. Shapes: `pos` `[N, 3]`, output `[E, 3]`.

mod autodiff;
pub(super) mod composed;
mod flex;

use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use equivariant_core::graph::EdgeIndex;

use super::composed::is_native;
use super::irreps::sqrt_with_zero_gradient;

/// Backends that form edge vectors natively.
///
/// Implemented for [`Flex`](burn::backend::Flex) (f32 and f64) and for
/// [`Autodiff`](burn::backend::Autodiff) over any implementing backend.
///
/// ```
/// use std::sync::Arc;
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::ops::edge_vectors::EdgeVectorsBackend;
/// let edges = Arc::new(EdgeIndex::new(&[0], &[1], 2)?);
/// let pos = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], &Device::flex());
/// let v = <Dispatch as EdgeVectorsBackend>::edge_vectors(edges, pos.into_dispatch());
/// let v = Tensor::<2>::from_dispatch(v).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(v, [1.0, 2.0, 3.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait EdgeVectorsBackend: Backend {
    /// `pos[dst[e]] - pos[src[e]]` for every edge.
    ///
    /// # Shapes
    ///
    /// - `pos`: `[N, 3]`
    /// - output: `[E, 3]`
    ///
    /// # Panics
    ///
    /// On another shape or a dtype other than f32/f64.
    fn edge_vectors(edges: Arc<EdgeIndex>, pos: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient with respect to `pos` (`[N, 3]`) given `grad` `[E, 3]`. Not tracked by
    /// autodiff.
    ///
    /// # Panics
    ///
    /// As [`edge_vectors`](EdgeVectorsBackend::edge_vectors).
    fn edge_vectors_backward(edges: Arc<EdgeIndex>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The guide's `edge_vec = pos[edge_dst] - pos[edge_src]` over `edges`, differentiable with
/// respect to `pos` on an autodiff device.
///
/// # Shapes
///
/// - `pos`: `[N, 3]` with `N = edges.num_nodes()`
/// - output: `[E, 3]`
///
/// # Panics
///
/// As [`EdgeVectorsBackend::edge_vectors`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::ops::edge_vectors;
/// let edges = Arc::new(EdgeIndex::new(&[0, 1], &[1, 0], 2)?);
/// let device = Device::flex().autodiff();
/// let pos = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], &device).require_grad();
/// let v = edge_vectors(&edges, pos.clone());
/// let grads = v.slice([0..1]).sum().backward(); // the first edge only
/// let g = pos.grad(&grads).unwrap().into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(g, [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn edge_vectors(edges: &Arc<EdgeIndex>, pos: Tensor<2>) -> Tensor<2> {
    if !is_native(&pos.device()) {
        return composed::edge_vectors(edges, pos);
    }
    Tensor::from_dispatch(<Dispatch as EdgeVectorsBackend>::edge_vectors(
        Arc::clone(edges),
        pos.into_dispatch(),
    ))
}

/// The adjoint of [`edge_vectors`]: node gradients from edge gradients,
/// `out[i] = sum_{e : dst_e = i} grad[e] - sum_{e : src_e = i} grad[e]` (the backward kernel
/// of [`edge_vectors`], summing in edge order), without autodiff. With `grad = dE/dr` it is
/// `dE/dpos`.
///
/// # Shapes
///
/// - `grad`: `[E, 3]` with `E = edges.num_edges()`
/// - output: `[N, 3]` with `N = edges.num_nodes()`
///
/// # Panics
///
/// As [`EdgeVectorsBackend::edge_vectors_backward`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::ops::edge_vectors::edge_vectors_backward;
/// let edges = Arc::new(EdgeIndex::new(&[0], &[1], 2)?);
/// let g = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &Device::flex());
/// let nodes = edge_vectors_backward(&edges, g).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(nodes, [-1.0, -2.0, -3.0, 1.0, 2.0, 3.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn edge_vectors_backward(edges: &Arc<EdgeIndex>, grad: Tensor<2>) -> Tensor<2> {
    if !is_native(&grad.device()) {
        return composed::edge_vectors_backward(edges, grad);
    }
    Tensor::from_dispatch(<Dispatch as EdgeVectorsBackend>::edge_vectors_backward(
        Arc::clone(edges),
        grad.into_dispatch(),
    ))
}

/// The edge lengths `|r_e|` (`[E, 1]`) with a zero gradient at a zero-length edge (where
/// `sqrt`'s is infinite; the radial layer's kernel does the same), and the indicator of the
/// nonzero ones (`[E, 1]`, a constant).
pub(crate) fn edge_lengths(edge_vec: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    let squared = edge_vec.powi_scalar(2).sum_dim(1);
    let nonzero = squared
        .clone()
        .greater_elem(0.0)
        .float()
        .cast(squared.dtype());
    (sqrt_with_zero_gradient(squared), nonzero)
}
