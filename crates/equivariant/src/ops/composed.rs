//! The fallback of every extension op, composed of burn tensor ops: it runs (and
//! differentiates, through burn's autodiff) on any backend, where the native ops need one
//! that implements their extension trait (Flex). The `Tensor`-level entry points of
//! [`ops`](crate::ops) route here when the device is not native ([`is_native`]).
//!
//! These follow the definitions, not the fast kernels: the tensor product contracts each
//! path's dense Wigner 3j block with matrix products, the harmonics recurse
//! `Y^l ∝ C(l-1, 1, l) : (Y^(l-1) ⊗ v)`, the radial bases are written out.
//!
//! Each fallback lives with its op (`ops/<op>/composed.rs`); this module gathers them under
//! one path and holds what they share.

use burn::backend::DispatchDevice;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use equivariant_core::graph::EdgeIndex;

use super::scatter::index_tensor;

pub use super::bessel_edge_encoding::composed::{
    bessel_edge_encoding, bessel_edge_encoding_tangent,
};
pub use super::convolution::composed::{fused_convolution, fused_convolution_tangent};
pub use super::dense::composed::dense;
pub use super::edge_vectors::composed::{
    edge_vectors, edge_vectors_backward, edge_vectors_from_index,
};
pub use super::grid_transform::composed::grid_transform;
pub use super::normalized_activation::composed::{
    normalized_activation, normalized_activation_tangent,
};
pub use super::radial_layer::composed::radial_layer;
pub use super::soft_one_hot_linspace::composed::{
    soft_one_hot_linspace, soft_one_hot_linspace_derivative,
};
pub use super::spherical_harmonics::composed::{spherical_harmonics, spherical_harmonics_tangent};
pub use super::tensor_product::composed::tensor_product;

/// Whether `device` runs the native kernels (Flex, with or without autodiff).
///
/// ```
/// use burn::tensor::Device;
/// assert!(equivariant::ops::composed::is_native(&Device::flex().autodiff()));
/// ```
pub fn is_native(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// A constant `[d0, d1]` tensor like `like` (device and dtype).
pub(super) fn constant<const D: usize>(
    values: Vec<f64>,
    shape: [usize; D],
    like: &Tensor<2>,
) -> Tensor<D> {
    Tensor::<D>::from_data(TensorData::new(values, shape), (&like.device(), DType::F64))
        .cast(like.dtype())
}

/// The sources and destinations of `edges` as index tensors.
pub(crate) fn edge_index_tensors(
    edges: &EdgeIndex,
    device: &Device,
) -> (Tensor<1, Int>, Tensor<1, Int>) {
    let index = |f: &dyn Fn(usize) -> usize| {
        let v: Vec<usize> = (0..edges.num_edges()).map(f).collect();
        index_tensor(&v, device)
    };
    (index(&|e| edges.src(e)), index(&|e| edges.dst(e)))
}
