//! The fallback of [`fused_convolution`](super::fused_convolution()) on backends without
//! [`ConvolutionBackend`](super::ConvolutionBackend): gather, the composed tensor product
//! and a scatter-sum, unfused.

use burn::tensor::Tensor;
use equivariant_core::graph::EdgeIndex;
use equivariant_core::o3::tensor_product::TensorProductPlan;

use crate::ops::composed::{edge_index_tensors, tensor_product};
use crate::ops::scatter::{gather, scatter_sum};

/// The convolution of [`fused_convolution`](crate::ops::fused_convolution()), unfused and
/// composed of burn ops: `out[i] = scale sum_{e: dst(e) = i} TP(x1[src(e)], x2[e],
/// hidden[e] linear)`, materializing the per-edge weights and messages.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::o3::tensor_product::fully_connected_tensor_product;
/// use equivariant::ops::{composed, fused_convolution};
///
/// let device = Device::flex();
/// let options = Default::default();
/// let plan = fully_connected_tensor_product(&"2x0e".parse()?, &"0e + 1o".parse()?, &"1x0e + 1x1o".parse()?, options)?;
/// let plan = Arc::new(plan.with_shared_weights(false));
/// let edges = Arc::new(EdgeIndex::new(&[0, 1, 1], &[1, 0, 2], 3)?);
/// let x1 = Tensor::<2>::ones([3, 2], &device).cumsum(0);
/// let x2 = Tensor::<2>::ones([3, 4], &device).cumsum(1);
/// let hidden = Tensor::<2>::ones([3, 2], &device).cumsum(0);
/// let linear = Tensor::<2>::ones([2, plan.weight_numel()], &device);
/// let fused = fused_convolution(&plan, &edges, x1.clone(), x2.clone(), hidden.clone(), linear.clone(), 0.5);
/// let fallback = composed::fused_convolution(&plan, &edges, x1, x2, hidden, linear, 0.5);
/// assert!(fused.sub(fallback).abs().max().into_scalar::<f32>() < 1e-4);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn fused_convolution(
    plan: &TensorProductPlan,
    edges: &EdgeIndex,
    x1: Tensor<2>,
    x2: Tensor<2>,
    hidden: Tensor<2>,
    linear: Tensor<2>,
    scale: f64,
) -> Tensor<2> {
    let (src, dst) = edge_index_tensors(edges, &x1.device());
    let messages = tensor_product(plan, gather(x1, src), x2, hidden.matmul(linear));
    scatter_sum(messages, dst, edges.num_nodes()).mul_scalar(scale)
}
