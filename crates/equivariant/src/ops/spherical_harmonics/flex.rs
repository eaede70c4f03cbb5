//! [`SphericalHarmonicsBackend`] on [`Flex`]: the core table
//! ([`SphericalHarmonicsPlan::compute`], [`SphericalHarmonicsPlan::compute_with_gradients`]), f32
//! and f64.

use std::sync::Arc;

use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};
use equivariant_core::o3::SphericalHarmonicsPlan;

use super::SphericalHarmonicsBackend;
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

impl SphericalHarmonicsBackend for Flex {
    fn spherical_harmonics(sh: Arc<SphericalHarmonicsPlan>, vectors: FlexTensor) -> FlexTensor {
        dispatch_float!(
            "spherical_harmonics",
            &vectors,
            flex_forward(&sh, &vectors, false)
        )
        .0
    }

    fn spherical_harmonics_with_gradient(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let (y, grad) = dispatch_float!(
            "spherical_harmonics",
            &vectors,
            flex_forward(&sh, &vectors, true)
        );
        (y, grad.expect("requested"))
    }

    fn spherical_harmonics_tangent(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FlexTensor,
        tangents: FlexTensor,
    ) -> FlexTensor {
        dispatch_float!(
            "spherical_harmonics_tangent",
            &vectors,
            flex_tangent(&sh, &vectors, &tangents)
        )
    }

    fn spherical_harmonics_tangent_backward(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FlexTensor,
        tangents: FlexTensor,
        grad_out: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        dispatch_float!(
            "spherical_harmonics_tangent",
            &vectors,
            flex_tangent_backward(&sh, &vectors, &tangents, &grad_out)
        )
    }

    fn spherical_harmonics_vector_jacobian_product(
        sh: Arc<SphericalHarmonicsPlan>,
        grad: FlexTensor,
        grad_out: FlexTensor,
    ) -> FlexTensor {
        dispatch_float!(
            "spherical_harmonics_vector_jacobian_product",
            &grad,
            flex_vector_jacobian_product(&sh, &grad, &grad_out)
        )
    }
}

fn flex_vector_jacobian_product<T: FlexFloat>(
    sh: &SphericalHarmonicsPlan,
    grad: &FlexTensor,
    grad_out: &FlexTensor,
) -> FlexTensor {
    const OP: &str = "spherical_harmonics_vector_jacobian_product";
    let n = grad.shape()[0];
    let (grad, grad_out) = (
        contiguous::<T>(OP, "grad", grad),
        contiguous::<T>(OP, "grad_out", grad_out),
    );
    let mut out = vec![T::zero(); n * 3];
    sh.vector_jacobian_product(data::<T>(&grad), data::<T>(&grad_out), &mut out)
        .unwrap_or_else(|e| panic!("{OP}: {e}"));
    from_vec(out, [n, 3])
}

/// The number of `[n, 3]` rows of `vectors` and `tangents`, panicking unless both are.
fn rows(op: &str, vectors: &FlexTensor, tangents: &FlexTensor) -> usize {
    let (shape, other) = (vectors.shape(), tangents.shape());
    assert!(
        shape.num_dims() == 2 && shape[1] == 3 && other == shape,
        "{op}: vectors and tangents must be [n, 3], got {shape:?} and {other:?}"
    );
    shape[0]
}

fn flex_tangent<T: FlexFloat>(
    sh: &SphericalHarmonicsPlan,
    vectors: &FlexTensor,
    tangents: &FlexTensor,
) -> FlexTensor {
    const OP: &str = "spherical_harmonics_tangent";
    let n = rows(OP, vectors, tangents);
    let (vectors, tangents) = (
        contiguous::<T>(OP, "vectors", vectors),
        contiguous::<T>(OP, "tangents", tangents),
    );
    let mut dy = vec![T::zero(); n * sh.dim()];
    sh.compute_tangent(data::<T>(&vectors), data::<T>(&tangents), &mut dy)
        .unwrap_or_else(|e| panic!("{OP}: {e}"));
    from_vec(dy, [n, sh.dim()])
}

fn flex_tangent_backward<T: FlexFloat>(
    sh: &SphericalHarmonicsPlan,
    vectors: &FlexTensor,
    tangents: &FlexTensor,
    grad_out: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    const OP: &str = "spherical_harmonics_tangent backward";
    let n = rows(OP, vectors, tangents);
    let (vectors, tangents, grad_out) = (
        contiguous::<T>(OP, "vectors", vectors),
        contiguous::<T>(OP, "tangents", tangents),
        contiguous::<T>(OP, "grad_out", grad_out),
    );
    let (mut gv, mut gs) = (vec![T::zero(); n * 3], vec![T::zero(); n * 3]);
    sh.tangent_backward(
        data::<T>(&vectors),
        data::<T>(&tangents),
        data::<T>(&grad_out),
        &mut gv,
        &mut gs,
    )
    .unwrap_or_else(|e| panic!("{OP}: {e}"));
    (from_vec(gv, [n, 3]), from_vec(gs, [n, 3]))
}

fn flex_forward<T: FlexFloat>(
    sh: &SphericalHarmonicsPlan,
    vectors: &FlexTensor,
    with_gradient: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    const OP: &str = "spherical_harmonics";
    let shape = vectors.shape();
    assert!(
        shape.num_dims() == 2 && shape[1] == 3,
        "{OP}: vectors must be [n, 3], got {shape:?}"
    );
    let n = shape[0];
    let dim = sh.dim();
    let vectors = contiguous::<T>(OP, "vectors", vectors);
    let v = data::<T>(&vectors);
    let mut y = vec![T::zero(); n * dim];
    if with_gradient {
        let mut grad = vec![T::zero(); n * 3 * dim];
        sh.compute_with_gradients(v, &mut y, &mut grad)
            .unwrap_or_else(|e| panic!("{OP}: {e}"));
        (from_vec(y, [n, dim]), Some(from_vec(grad, [n, 3, dim])))
    } else {
        sh.compute(v, &mut y)
            .unwrap_or_else(|e| panic!("{OP}: {e}"));
        (from_vec(y, [n, dim]), None)
    }
}
