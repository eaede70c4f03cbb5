//! [`BesselEdgeEncodingBackend`] on [`Autodiff`]: when tracked, the forward computes the
//! embedding and its derivatives in the length together and keeps the derivatives for the
//! backward; the tangent keeps its inputs, and its backward runs the core's second
//! derivatives.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};
use equivariant_core::math::BesselEdgeEncoding;

use super::BesselEdgeEncodingBackend;
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step: `dL/dv_e = (sum_k f_k'(|v_e|) dL/dout[e, k]) v_e / |v_e|`.
#[derive(Debug)]
struct EncodingBackward;

impl<B: BesselEdgeEncodingBackend> CustomBackward<B, 1> for EncodingBackward {
    /// The plan, the vectors and the derivatives `[E, N]`.
    type State = (Arc<BesselEdgeEncoding>, FloatTensor<B>, FloatTensor<B>);

    fn gradients(
        (plan, vectors, derivative): Self::State,
        grad_out: FloatTensor<B>,
        _mask: [bool; 1],
    ) -> [Option<FloatTensor<B>>; 1] {
        [Some(B::bessel_edge_encoding_vector_jacobian_product(
            plan, vectors, derivative, grad_out,
        ))]
    }
}

/// The tangent's backward step: the core's gradients in the vectors (through `f''`) and in
/// the tangents, from one call.
#[derive(Debug)]
struct TangentBackward;

impl<B: BesselEdgeEncodingBackend> CustomBackward<B, 2> for TangentBackward {
    /// The plan, the vectors and the tangents.
    type State = (Arc<BesselEdgeEncoding>, [FloatTensor<B>; 2]);

    fn gradients(
        (plan, [vectors, tangents]): Self::State,
        grad_out: FloatTensor<B>,
        mask: [bool; 2],
    ) -> [Option<FloatTensor<B>>; 2] {
        let (gv, gt) = B::bessel_edge_encoding_tangent_backward(plan, vectors, tangents, grad_out);
        [mask[0].then_some(gv), mask[1].then_some(gt)]
    }
}

impl<B: BesselEdgeEncodingBackend, C: CheckpointStrategy> BesselEdgeEncodingBackend
    for Autodiff<B, C>
{
    fn bessel_edge_encoding(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::custom_forward(
            EncodingBackward,
            plan,
            [vectors],
            |plan, [vectors]| {
                let (y, derivative) =
                    B::bessel_edge_encoding_with_derivative(Arc::clone(&plan), vectors.clone());
                ((plan, vectors, derivative), y)
            },
            |plan, [vectors]| B::bessel_edge_encoding(plan, vectors),
        )
    }

    fn bessel_edge_encoding_with_derivative(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (y, d) = B::bessel_edge_encoding_with_derivative(plan, vectors.into_primitive());
        (Self::from_inner(y), Self::from_inner(d))
    }

    fn bessel_edge_encoding_vector_jacobian_product(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FloatTensor<Self>,
        derivative: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::bessel_edge_encoding_vector_jacobian_product(
            plan,
            vectors.into_primitive(),
            derivative.into_primitive(),
            grad_out.into_primitive(),
        ))
    }

    fn bessel_edge_encoding_tangent(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FloatTensor<Self>,
        tangents: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::custom_forward_saving_inputs(
            TangentBackward,
            plan,
            [vectors, tangents],
            |plan, [v, t]| B::bessel_edge_encoding_tangent(plan, v, t),
        )
    }

    fn bessel_edge_encoding_tangent_backward(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FloatTensor<Self>,
        tangents: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gv, gt) = B::bessel_edge_encoding_tangent_backward(
            plan,
            vectors.into_primitive(),
            tangents.into_primitive(),
            grad_out.into_primitive(),
        );
        (Self::from_inner(gv), Self::from_inner(gt))
    }
}
