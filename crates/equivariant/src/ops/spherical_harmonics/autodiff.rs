//! [`SphericalHarmonicsBackend`] on [`Autodiff`]: when tracked, the forward computes the
//! harmonics and their gradient table together and saves the table for the backward.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};
use equivariant_core::o3::SphericalHarmonicsPlan;

use super::SphericalHarmonicsBackend;
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step: `dL/dv[i, a] = sum_k dY_k/dv_a[i] dL/dY[i, k]`, a batched
/// `[3, dim] x [dim, 1]` product per vector.
#[derive(Debug)]
struct SphericalHarmonicsBackward;

impl<B: SphericalHarmonicsBackend> CustomBackward<B, 1> for SphericalHarmonicsBackward {
    /// The plan and the gradient table `[n, 3, dim]`.
    type State = (Arc<SphericalHarmonicsPlan>, FloatTensor<B>);

    fn gradients(
        (sh, table): Self::State,
        grad_out: FloatTensor<B>,
        _mask: [bool; 1],
    ) -> [Option<FloatTensor<B>>; 1] {
        // A kernel over the rows: as a batched matrix product ([n] products of 3 x dim by
        // dim x 1) it ran on one thread, one small product at a time.
        [Some(B::spherical_harmonics_vector_jacobian_product(
            sh, table, grad_out,
        ))]
    }
}

/// The tangent's backward step: the core's Hessian along the tangents for the vectors,
/// `J^T g` for the tangents (one call computes both).
#[derive(Debug)]
struct TangentBackward;

impl<B: SphericalHarmonicsBackend> CustomBackward<B, 2> for TangentBackward {
    /// The plan, the vectors and the tangents.
    type State = (Arc<SphericalHarmonicsPlan>, [FloatTensor<B>; 2]);

    fn gradients(
        (sh, [vectors, tangents]): Self::State,
        grad_out: FloatTensor<B>,
        mask: [bool; 2],
    ) -> [Option<FloatTensor<B>>; 2] {
        let (gv, gs) = B::spherical_harmonics_tangent_backward(sh, vectors, tangents, grad_out);
        [mask[0].then_some(gv), mask[1].then_some(gs)]
    }
}

impl<B: SphericalHarmonicsBackend, C: CheckpointStrategy> SphericalHarmonicsBackend
    for Autodiff<B, C>
{
    fn spherical_harmonics_tangent(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FloatTensor<Self>,
        tangents: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::custom_forward_saving_inputs(
            TangentBackward,
            sh,
            [vectors, tangents],
            |sh, [v, s]| B::spherical_harmonics_tangent(sh, v, s),
        )
    }

    fn spherical_harmonics_tangent_backward(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FloatTensor<Self>,
        tangents: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gv, gs) = B::spherical_harmonics_tangent_backward(
            sh,
            vectors.into_primitive(),
            tangents.into_primitive(),
            grad_out.into_primitive(),
        );
        (Self::from_inner(gv), Self::from_inner(gs))
    }

    fn spherical_harmonics(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::custom_forward(
            SphericalHarmonicsBackward,
            sh,
            [vectors],
            |sh, [vectors]| {
                let (y, table) = B::spherical_harmonics_with_gradient(Arc::clone(&sh), vectors);
                ((sh, table), y)
            },
            |sh, [vectors]| B::spherical_harmonics(sh, vectors),
        )
    }

    fn spherical_harmonics_with_gradient(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (y, grad) = B::spherical_harmonics_with_gradient(sh, vectors.into_primitive());
        (Self::from_inner(y), Self::from_inner(grad))
    }

    fn spherical_harmonics_vector_jacobian_product(
        sh: Arc<SphericalHarmonicsPlan>,
        grad: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::spherical_harmonics_vector_jacobian_product(
            sh,
            grad.into_primitive(),
            grad_out.into_primitive(),
        ))
    }
}
