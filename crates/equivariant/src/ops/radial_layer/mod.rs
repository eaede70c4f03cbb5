//! The radial embedding fused with the first layer of the radial MLP ([`RadialLayer`]: `h = c act(s
//! basis(|v|) W)`) as a burn backend extension: [`Flex`](burn::backend::Flex) runs the core kernel
//! (`flex.rs`), [`Autodiff`](burn::backend::Autodiff) its backward (gradients for the edge vectors
//! and `W`; `autodiff.rs`). [`radial_layer`] is the `Tensor`-level entry point; on other devices it
//! is composed of burn ops ([`composed::radial_layer`]).
//! Shapes: `vectors` `[E, 3]`, `weight` `[num_basis, width]`, output `[E, width]`.

mod autodiff;
pub(super) mod composed;
mod flex;

use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use equivariant_core::math::RadialLayer;

use super::composed::is_native;

/// The gradients of [`radial_layer`], `(vectors, weight)`; `None` where not requested.
///
/// ```
/// use burn::backend::Flex;
/// use equivariant::ops::radial_layer::RadialLayerGrads;
/// let none: RadialLayerGrads<Flex> = (None, None);
/// assert!(none.0.is_none());
/// ```
pub type RadialLayerGrads<B> = (Option<FloatTensor<B>>, Option<FloatTensor<B>>);

/// Backends that run a [`RadialLayer`] natively: `h[e] = c act(s basis(|v_e|) W)`.
///
/// Implemented for [`Flex`](burn::backend::Flex) (f32 and f64) and for
/// [`Autodiff`](burn::backend::Autodiff) over any implementing backend.
///
/// ```
/// use std::sync::Arc;
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, RadialLayer, SoftOneHotLinspace};
/// use equivariant::ops::radial_layer::RadialLayerBackend;
///
/// let basis = SoftOneHotLinspace::new(0.0, 2.0, 2, Basis::Cosine, true)?;
/// let layer = Arc::new(RadialLayer::new(basis, 1.0, 1.0, None));
/// let device = Device::flex();
/// let v = Tensor::<2>::from_floats([[0.0, 0.0, 2.0 / 3.0]], &device);
/// let w = Tensor::<2>::from_floats([[1.0], [0.0]], &device);
/// let h = <Dispatch as RadialLayerBackend>::radial_layer(layer, v.into_dispatch(), w.into_dispatch());
/// let h = Tensor::<2>::from_dispatch(h).into_data().try_into_vec::<f32>().unwrap();
/// assert!((h[0] - 1.0).abs() < 1e-6); // the first cosine at its center
/// # Ok::<(), equivariant::Error>(())
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait RadialLayerBackend: Backend {
    /// The layer at every edge vector.
    ///
    /// # Shapes
    ///
    /// - `vectors`: `[E, 3]`, `weight`: `[num_basis, width]`
    /// - output: `[E, width]`
    ///
    /// # Panics
    ///
    /// On other shapes, a dtype other than f32/f64, or a NaN or infinite vector.
    fn radial_layer(
        layer: Arc<RadialLayer>,
        vectors: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The gradients for `vectors` and `weight` given `grad_out` `[E, width]`, each only if
    /// `mask` asks for it. Not tracked by autodiff.
    ///
    /// # Panics
    ///
    /// As [`radial_layer`](RadialLayerBackend::radial_layer).
    fn radial_layer_backward(
        layer: Arc<RadialLayer>,
        vectors: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        mask: [bool; 2],
    ) -> (Option<FloatTensor<Self>>, Option<FloatTensor<Self>>);
}

/// `h = c act(s basis(|v|) W)` for edge vectors `v` (see [`RadialLayer`]), differentiable
/// with respect to `vectors` and `weight` on an autodiff device.
///
/// # Shapes
///
/// - `vectors`: `[E, 3]`, `weight`: `[num_basis, width]`
/// - output: `[E, width]`
///
/// # Panics
///
/// As [`RadialLayerBackend::radial_layer`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Distribution, Tensor};
/// use equivariant::math::{ActivationFunction, Basis, RadialLayer, SoftOneHotLinspace};
/// use equivariant::ops::radial_layer;
///
/// let basis = SoftOneHotLinspace::new(0.0, 1.8, 10, Basis::SmoothFinite, true)?;
/// let relu = (ActivationFunction::Relu, ActivationFunction::Relu.normalize2mom_constant());
/// let layer = Arc::new(RadialLayer::new(basis, 10f64.sqrt(), 10f64.sqrt().recip(), Some(relu)));
/// let device = Device::flex().autodiff();
/// let v = Tensor::<2>::random([5, 3], Distribution::Normal(0.0, 1.0), &device).require_grad();
/// let w = Tensor::<2>::random([10, 16], Distribution::Normal(0.0, 1.0), &device).require_grad();
/// let h = radial_layer(&layer, v.clone(), w.clone());
/// assert_eq!(h.dims(), [5, 16]);
/// let grads = h.sum().backward();
/// assert_eq!(w.grad(&grads).unwrap().dims(), [10, 16]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn radial_layer(layer: &Arc<RadialLayer>, vectors: Tensor<2>, weight: Tensor<2>) -> Tensor<2> {
    if !is_native(&vectors.device()) {
        return composed::radial_layer(layer, vectors, weight);
    }
    Tensor::from_dispatch(<Dispatch as RadialLayerBackend>::radial_layer(
        Arc::clone(layer),
        vectors.into_dispatch(),
        weight.into_dispatch(),
    ))
}
