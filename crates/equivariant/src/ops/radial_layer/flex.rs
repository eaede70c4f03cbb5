//! [`RadialLayerBackend`] on [`Flex`]: the core kernel ([`RadialLayer::forward`],
//! [`RadialLayer::backward`]), f32 and f64.

use std::sync::Arc;

use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};
use equivariant_core::math::RadialLayer;

use super::{RadialLayerBackend, RadialLayerGrads};
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

impl RadialLayerBackend for Flex {
    fn radial_layer(
        layer: Arc<RadialLayer>,
        vectors: FlexTensor,
        weight: FlexTensor,
    ) -> FlexTensor {
        dispatch_float!(
            "radial_layer",
            &vectors,
            flex_forward(&layer, &vectors, &weight)
        )
    }

    fn radial_layer_backward(
        layer: Arc<RadialLayer>,
        vectors: FlexTensor,
        weight: FlexTensor,
        grad_out: FlexTensor,
        mask: [bool; 2],
    ) -> RadialLayerGrads<Self> {
        dispatch_float!(
            "radial_layer_backward",
            &vectors,
            flex_backward(&layer, &vectors, &weight, &grad_out, mask)
        )
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
