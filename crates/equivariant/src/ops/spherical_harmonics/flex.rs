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
