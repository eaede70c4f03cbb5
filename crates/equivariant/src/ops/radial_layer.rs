//! The radial embedding fused with the first layer of the radial MLP
//! ([`RadialLayer`]: `h = c act(s basis(|v|) W)`) as a burn backend extension: [`Flex`] runs
//! the core kernel, [`Autodiff`] its backward (gradients for the edge vectors and `W`).
//! [`radial_layer`] is the `Tensor`-level entry point; on other devices it is composed of
//! burn ops.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension,
};
use burn::tensor::{DType, Tensor};
use equivariant_core::math::RadialLayer;

use super::flex::{FlexFloat, contiguous, data, float_dtype, from_vec};

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
/// Implemented for [`Flex`] (f32 and f64) and for [`Autodiff`] over any implementing
/// backend.
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
    if !super::composed::is_native(&vectors.device()) {
        return super::composed::radial_layer(layer, vectors, weight);
    }
    Tensor::from_dispatch(<Dispatch as RadialLayerBackend>::radial_layer(
        Arc::clone(layer),
        vectors.into_dispatch(),
        weight.into_dispatch(),
    ))
}

// ---------------------------------------------------------------------------------------
// Flex: the core kernels.

impl RadialLayerBackend for Flex {
    fn radial_layer(
        layer: Arc<RadialLayer>,
        vectors: FlexTensor,
        weight: FlexTensor,
    ) -> FlexTensor {
        match float_dtype("radial_layer", &vectors) {
            DType::F32 => flex_forward::<f32>(&layer, &vectors, &weight),
            _ => flex_forward::<f64>(&layer, &vectors, &weight),
        }
    }

    fn radial_layer_backward(
        layer: Arc<RadialLayer>,
        vectors: FlexTensor,
        weight: FlexTensor,
        grad_out: FlexTensor,
        mask: [bool; 2],
    ) -> RadialLayerGrads<Self> {
        match float_dtype("radial_layer_backward", &vectors) {
            DType::F32 => flex_backward::<f32>(&layer, &vectors, &weight, &grad_out, mask),
            _ => flex_backward::<f64>(&layer, &vectors, &weight, &grad_out, mask),
        }
    }
}

/// `(E, width)`, checking the ranks and widths.
fn check_shapes(
    op: &str,
    layer: &RadialLayer,
    vectors: &FlexTensor,
    weight: &FlexTensor,
) -> (usize, usize) {
    let (sv, sw) = (vectors.shape(), weight.shape());
    assert!(
        sv.num_dims() == 2 && sv[1] == 3,
        "{op}: vectors must be [E, 3], got {sv:?}"
    );
    let nb = layer.num_basis();
    assert!(
        sw.num_dims() == 2 && sw[0] == nb,
        "{op}: weight must be [{nb}, width] (num_basis rows), got {sw:?}"
    );
    (sv[0], sw[1])
}

fn flex_forward<T: FlexFloat>(
    layer: &RadialLayer,
    vectors: &FlexTensor,
    weight: &FlexTensor,
) -> FlexTensor {
    const OP: &str = "radial_layer";
    let (e, width) = check_shapes(OP, layer, vectors, weight);
    let (vectors, weight) = (
        contiguous::<T>(OP, "vectors", vectors),
        contiguous::<T>(OP, "weight", weight),
    );
    let mut out = vec![T::zero(); e * width];
    layer
        .forward(data::<T>(&vectors), data::<T>(&weight), &mut out)
        .unwrap_or_else(|err| panic!("{OP}: {err}"));
    from_vec(out, [e, width])
}

fn flex_backward<T: FlexFloat>(
    layer: &RadialLayer,
    vectors: &FlexTensor,
    weight: &FlexTensor,
    grad_out: &FlexTensor,
    [want_v, want_w]: [bool; 2],
) -> RadialLayerGrads<Flex> {
    const OP: &str = "radial_layer_backward";
    let (e, width) = check_shapes(OP, layer, vectors, weight);
    let (vectors, weight, grad_out) = (
        contiguous::<T>(OP, "vectors", vectors),
        contiguous::<T>(OP, "weight", weight),
        contiguous::<T>(OP, "grad_out", grad_out),
    );
    let mut gv = want_v.then(|| vec![T::zero(); e * 3]);
    let mut gw = want_w.then(|| vec![T::zero(); layer.num_basis() * width]);
    layer
        .backward(
            data::<T>(&vectors),
            data::<T>(&weight),
            data::<T>(&grad_out),
            gv.as_deref_mut(),
            gw.as_deref_mut(),
        )
        .unwrap_or_else(|err| panic!("{OP}: {err}"));
    (
        gv.map(|g| from_vec(g, [e, 3])),
        gw.map(|g| from_vec(g, [layer.num_basis(), width])),
    )
}

// ---------------------------------------------------------------------------------------
// Autodiff: the custom backward.

#[derive(Debug)]
struct RadialLayerBackward;

impl<B: RadialLayerBackend> Backward<B, 2> for RadialLayerBackward {
    /// The layer and the forward inputs `(vectors, weight)`.
    type State = (Arc<RadialLayer>, FloatTensor<B>, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_v, node_w] = ops.parents;
        let grad_out = grads.consume::<B>(&ops.node);
        let (layer, vectors, weight) = ops.state;
        let mask = [node_v.is_some(), node_w.is_some()];
        let (gv, gw) = B::radial_layer_backward(layer, vectors, weight, grad_out, mask);
        for (node, grad) in [(node_v, gv), (node_w, gw)] {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: RadialLayerBackend, C: CheckpointStrategy> RadialLayerBackend for Autodiff<B, C> {
    fn radial_layer(
        layer: Arc<RadialLayer>,
        vectors: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match RadialLayerBackward
            .prepare::<C>([vectors.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (vectors, weight) = (vectors.into_primitive(), weight.into_primitive());
                let out = B::radial_layer(Arc::clone(&layer), vectors.clone(), weight.clone());
                prep.finish((layer, vectors, weight), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::radial_layer(
                layer,
                vectors.into_primitive(),
                weight.into_primitive(),
            )),
        }
    }

    fn radial_layer_backward(
        layer: Arc<RadialLayer>,
        vectors: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        mask: [bool; 2],
    ) -> RadialLayerGrads<Self> {
        let (gv, gw) = B::radial_layer_backward(
            layer,
            vectors.into_primitive(),
            weight.into_primitive(),
            grad_out.into_primitive(),
            mask,
        );
        (gv.map(Self::from_inner), gw.map(Self::from_inner))
    }
}
