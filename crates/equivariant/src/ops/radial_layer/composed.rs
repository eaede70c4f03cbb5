//! The fallback of [`radial_layer`](super::radial_layer()) on backends without
//! [`RadialLayerBackend`](super::RadialLayerBackend): the layer unfused, in burn ops.

use burn::tensor::Tensor;
use equivariant_core::math::RadialLayer;

use crate::ops::composed::soft_one_hot_linspace;
use crate::ops::normalized_activation::composed::apply;

/// [`ops::radial_layer`](crate::ops::radial_layer::radial_layer): the edge lengths, the
/// basis ([`soft_one_hot_linspace`]), the matrix product and the activation as separate ops.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, RadialLayer, SoftOneHotLinspace};
/// use equivariant::ops::composed;
/// let basis = SoftOneHotLinspace::new(0.0, 2.0, 2, Basis::Cosine, true)?;
/// let layer = RadialLayer::new(basis, 1.0, 1.0, None);
/// let device = Device::flex();
/// let v = Tensor::<2>::from_floats([[0.0, 0.0, 2.0 / 3.0]], &device);
/// let h = composed::radial_layer(&layer, v, Tensor::<2>::from_floats([[1.0], [0.0]], &device));
/// assert!((h.into_scalar::<f32>() - 1.0).abs() < 1e-6);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn radial_layer(layer: &RadialLayer, vectors: Tensor<2>, weight: Tensor<2>) -> Tensor<2> {
    let [e, _] = vectors.dims();
    let length = vectors.powi_scalar(2).sum_dim(1).sqrt().reshape([e]);
    let emb = soft_one_hot_linspace(layer.basis(), length).mul_scalar(layer.basis_scale());
    let pre = emb.matmul(weight.mul_scalar(layer.weight_scale()));
    match layer.activation() {
        Some((act, c)) => apply(act, pre).mul_scalar(c),
        None => pre,
    }
}
