//! Edge vectors `pos[dst[e]] - pos[src[e]]` over an [`EdgeIndex`] as a burn backend
//! extension: [`Flex`] runs the core kernels (a parallel pass over the edges, and for the
//! backward a deterministic per-node sum), [`Autodiff`] wires the backward. On other devices
//! [`edge_vectors`] is two [`gather`](super::gather)s and a subtraction.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Tensor};
use equivariant_core::graph::EdgeIndex;

use super::flex::{FlexFloat, contiguous, data, float_dtype, from_vec};

/// Backends that form edge vectors natively.
///
/// Implemented for [`Flex`] (f32 and f64) and for [`Autodiff`] over any implementing
/// backend.
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
    if !super::composed::is_native(&pos.device()) {
        return super::composed::edge_vectors(edges, pos);
    }
    Tensor::from_dispatch(<Dispatch as EdgeVectorsBackend>::edge_vectors(
        Arc::clone(edges),
        pos.into_dispatch(),
    ))
}

// ---------------------------------------------------------------------------------------
// Flex: the core kernels.

impl EdgeVectorsBackend for Flex {
    fn edge_vectors(edges: Arc<EdgeIndex>, pos: FlexTensor) -> FlexTensor {
        match float_dtype("edge_vectors", &pos) {
            DType::F32 => flex_run::<f32>(&edges, &pos, false),
            _ => flex_run::<f64>(&edges, &pos, false),
        }
    }

    fn edge_vectors_backward(edges: Arc<EdgeIndex>, grad: FlexTensor) -> FlexTensor {
        match float_dtype("edge_vectors_backward", &grad) {
            DType::F32 => flex_run::<f32>(&edges, &grad, true),
            _ => flex_run::<f64>(&edges, &grad, true),
        }
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

// ---------------------------------------------------------------------------------------
// Autodiff: the custom backward.

#[derive(Debug)]
struct EdgeVectorsBackward;

impl<B: EdgeVectorsBackend> Backward<B, 1> for EdgeVectorsBackward {
    type State = Arc<EdgeIndex>;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad_out = grads.consume::<B>(&ops.node);
        if let Some(node) = node {
            grads.register::<B>(node.id, B::edge_vectors_backward(ops.state, grad_out));
        }
    }
}

impl<B: EdgeVectorsBackend, C: CheckpointStrategy> EdgeVectorsBackend for Autodiff<B, C> {
    fn edge_vectors(edges: Arc<EdgeIndex>, pos: FloatTensor<Self>) -> FloatTensor<Self> {
        match EdgeVectorsBackward
            .prepare::<C>([pos.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = B::edge_vectors(Arc::clone(&edges), pos.into_primitive());
                prep.finish(edges, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::edge_vectors(edges, pos.into_primitive())),
        }
    }

    fn edge_vectors_backward(edges: Arc<EdgeIndex>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::edge_vectors_backward(edges, grad.into_primitive()))
    }
}
