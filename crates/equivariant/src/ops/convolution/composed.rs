//! The fallback of [`fused_convolution`](super::fused_convolution()) on backends without
//! [`ConvolutionBackend`](super::ConvolutionBackend): gather, the composed tensor product
//! and a scatter-sum, unfused.

use burn::tensor::Tensor;
use equivariant_core::graph::EdgeIndex;
use equivariant_core::o3::tensor_product::TensorProductPlan;

use super::Dual;
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

/// [`fused_convolution_tangent`](crate::ops::fused_convolution_tangent()) composed of burn
/// ops: `(out, d_out)` with `d_out = conv(dx1, x2, h) + conv(x1, dx2, h) + conv(x1, x2, dh) -
/// conv(x1, x2, 0)`, each term a [`fused_convolution`] (the last one only for a plan with a
/// path without weights: such a path does not move with `h`, and `conv(x1, x2, dh)` holds
/// it). Terms whose tangent is `None` are left out; with none at all, `d_out` is zero.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::o3::tensor_product::{fully_connected_tensor_product, TensorProductOptions};
/// use equivariant::ops::{composed, fused_convolution_tangent};
///
/// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
/// let plan = Arc::new(fully_connected_tensor_product(&"2x0e".parse()?, &"1o".parse()?, &"1x1o".parse()?, options)?);
/// let edges = Arc::new(EdgeIndex::new(&[0, 1], &[1, 0], 2)?);
/// let d = Device::flex();
/// let x1 = Tensor::<2>::ones([2, 2], &d).cumsum(0);
/// let x2 = Tensor::<2>::ones([2, 3], &d).cumsum(1);
/// let (h, dh) = (Tensor::<2>::ones([2, 3], &d), Tensor::<2>::ones([2, 3], &d).cumsum(1));
/// let linear = Tensor::<2>::ones([3, plan.weight_numel()], &d);
/// let args = |x1: &Tensor<2>| ((x1.clone(), None), (x2.clone(), Some(x2.clone())), (h.clone(), Some(dh.clone())));
/// let (a1, a2, a3) = args(&x1);
/// let (_, fused) = fused_convolution_tangent(&plan, &edges, a1, a2, a3, linear.clone(), 0.5);
/// let (b1, b2, b3) = args(&x1);
/// let (_, fallback) = composed::fused_convolution_tangent(&plan, &edges, b1, b2, b3, linear, 0.5);
/// assert!(fused.sub(fallback).abs().max().into_scalar::<f32>() < 1e-4);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn fused_convolution_tangent(
    plan: &TensorProductPlan,
    edges: &EdgeIndex,
    (x1, dx1): Dual,
    (x2, dx2): Dual,
    (hidden, dhidden): Dual,
    linear: Tensor<2>,
    scale: f64,
) -> (Tensor<2>, Tensor<2>) {
    let conv = |a: Tensor<2>, b: Tensor<2>, h: Tensor<2>| {
        fused_convolution(plan, edges, a, b, h, linear.clone(), scale)
    };
    let out = conv(x1.clone(), x2.clone(), hidden.clone());
    let mut terms = Vec::new();
    if let Some(dx2) = dx2 {
        terms.push(conv(x1.clone(), dx2, hidden.clone()));
    }
    if let Some(dh) = dhidden {
        let fixed = plan.instructions().iter().any(|i| !i.has_weight);
        let still = fixed.then(|| conv(x1.clone(), x2.clone(), dh.zeros_like()));
        let moved = conv(x1.clone(), x2.clone(), dh);
        terms.push(match still {
            Some(still) => moved.sub(still),
            None => moved,
        });
    }
    if let Some(dx1) = dx1 {
        terms.push(conv(dx1, x2, hidden));
    }
    let d_out = terms
        .into_iter()
        .reduce(|a, b| a.add(b))
        .unwrap_or_else(|| out.zeros_like());
    (out, d_out)
}
