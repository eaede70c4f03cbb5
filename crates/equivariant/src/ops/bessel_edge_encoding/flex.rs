//! [`BesselEdgeEncodingBackend`] on [`Flex`]: the core [`BesselEdgeEncoding`]'s kernels, f32
//! and f64.

use std::sync::Arc;

use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};
use equivariant_core::math::BesselEdgeEncoding;

use super::BesselEdgeEncodingBackend;
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

impl BesselEdgeEncodingBackend for Flex {
    fn bessel_edge_encoding(plan: Arc<BesselEdgeEncoding>, vectors: FlexTensor) -> FlexTensor {
        dispatch_float!(
            "bessel_edge_encoding",
            &vectors,
            flex_forward(&plan, &vectors, false)
        )
        .0
    }

    fn bessel_edge_encoding_with_derivative(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let (y, d) = dispatch_float!(
            "bessel_edge_encoding",
            &vectors,
            flex_forward(&plan, &vectors, true)
        );
        (y, d.expect("requested"))
    }

    fn bessel_edge_encoding_vector_jacobian_product(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FlexTensor,
        derivative: FlexTensor,
        grad_out: FlexTensor,
    ) -> FlexTensor {
        dispatch_float!(
            "bessel_edge_encoding backward",
            &vectors,
            flex_vector_jacobian_product(&plan, &vectors, &derivative, &grad_out)
        )
    }

    fn bessel_edge_encoding_tangent(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FlexTensor,
        tangents: FlexTensor,
    ) -> FlexTensor {
        dispatch_float!(
            "bessel_edge_encoding_tangent",
            &vectors,
            flex_tangent(&plan, &vectors, &tangents)
        )
    }

    fn bessel_edge_encoding_tangent_backward(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FlexTensor,
        tangents: FlexTensor,
        grad_out: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        dispatch_float!(
            "bessel_edge_encoding_tangent backward",
            &vectors,
            flex_tangent_backward(&plan, &vectors, &tangents, &grad_out)
        )
    }
}

/// The number of rows of `vectors`, panicking unless it is `[E, 3]`.
fn rows(op: &str, vectors: &FlexTensor) -> usize {
    let shape = vectors.shape();
    assert!(
        shape.num_dims() == 2 && shape[1] == 3,
        "{op}: vectors must be [E, 3], got {shape:?}"
    );
    shape[0]
}

fn flex_forward<T: FlexFloat>(
    plan: &BesselEdgeEncoding,
    vectors: &FlexTensor,
    with_derivative: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    const OP: &str = "bessel_edge_encoding";
    let (e, k) = (rows(OP, vectors), plan.num_basis());
    let vectors = contiguous::<T>(OP, "vectors", vectors);
    let mut y = vec![T::zero(); e * k];
    let mut d = with_derivative.then(|| vec![T::zero(); e * k]);
    plan.compute(data::<T>(&vectors), &mut y, d.as_deref_mut())
        .unwrap_or_else(|err| panic!("{OP}: {err}"));
    (from_vec(y, [e, k]), d.map(|d| from_vec(d, [e, k])))
}

fn flex_vector_jacobian_product<T: FlexFloat>(
    plan: &BesselEdgeEncoding,
    vectors: &FlexTensor,
    derivative: &FlexTensor,
    grad_out: &FlexTensor,
) -> FlexTensor {
    const OP: &str = "bessel_edge_encoding backward";
    let e = rows(OP, vectors);
    let (vectors, derivative, grad_out) = (
        contiguous::<T>(OP, "vectors", vectors),
        contiguous::<T>(OP, "derivative", derivative),
        contiguous::<T>(OP, "grad_out", grad_out),
    );
    let mut out = vec![T::zero(); e * 3];
    plan.vector_jacobian_product(
        data::<T>(&vectors),
        data::<T>(&derivative),
        data::<T>(&grad_out),
        &mut out,
    )
    .unwrap_or_else(|err| panic!("{OP}: {err}"));
    from_vec(out, [e, 3])
}

fn flex_tangent<T: FlexFloat>(
    plan: &BesselEdgeEncoding,
    vectors: &FlexTensor,
    tangents: &FlexTensor,
) -> FlexTensor {
    const OP: &str = "bessel_edge_encoding_tangent";
    let (e, k) = (rows(OP, vectors), plan.num_basis());
    let (vectors, tangents) = (
        contiguous::<T>(OP, "vectors", vectors),
        contiguous::<T>(OP, "tangents", tangents),
    );
    let mut out = vec![T::zero(); e * k];
    plan.compute_tangent(data::<T>(&vectors), data::<T>(&tangents), &mut out)
        .unwrap_or_else(|err| panic!("{OP}: {err}"));
    from_vec(out, [e, k])
}

fn flex_tangent_backward<T: FlexFloat>(
    plan: &BesselEdgeEncoding,
    vectors: &FlexTensor,
    tangents: &FlexTensor,
    grad_out: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    const OP: &str = "bessel_edge_encoding_tangent backward";
    let e = rows(OP, vectors);
    let (vectors, tangents, grad_out) = (
        contiguous::<T>(OP, "vectors", vectors),
        contiguous::<T>(OP, "tangents", tangents),
        contiguous::<T>(OP, "grad_out", grad_out),
    );
    let (mut gv, mut gt) = (vec![T::zero(); e * 3], vec![T::zero(); e * 3]);
    plan.tangent_backward(
        data::<T>(&vectors),
        data::<T>(&tangents),
        data::<T>(&grad_out),
        &mut gv,
        &mut gt,
    )
    .unwrap_or_else(|err| panic!("{OP}: {err}"));
    (from_vec(gv, [e, 3]), from_vec(gt, [e, 3]))
}
