//! [`NormalizedActivationBackend`] on [`Autodiff`]: a tracked forward computes the slope `c
//! f'(x)` with the values (the inner backend's
//! [`normalized_activation_with_derivative`](NormalizedActivationBackend::normalized_activation_with_derivative))
//! and keeps it; the backward multiplies the output gradient by it. The tangent op keeps its
//! inputs and calls the inner backend's tangent backward.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};
use equivariant_core::math::ActivationFunction;

use super::NormalizedActivationBackend;
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step of [`NormalizedActivationBackend::normalized_activation`].
#[derive(Debug)]
struct NormalizedActivationBackward;

impl<B: NormalizedActivationBackend> CustomBackward<B, 1> for NormalizedActivationBackward {
    /// The slope `c f'(x)` at the forward input.
    type State = FloatTensor<B>;

    fn gradients(
        slope: Self::State,
        grad_out: FloatTensor<B>,
        _mask: [bool; 1],
    ) -> [Option<FloatTensor<B>>; 1] {
        [Some(B::float_mul(grad_out, slope))]
    }
}

#[derive(Debug)]
struct TangentBackward;

impl<B: NormalizedActivationBackend> CustomBackward<B, 2> for TangentBackward {
    /// The function, its constant and the forward inputs `[x, dx]`.
    type State = ((ActivationFunction, f64), [FloatTensor<B>; 2]);

    fn gradients(
        ((f, constant), [x, dx]): Self::State,
        grad_out: FloatTensor<B>,
        mask: [bool; 2],
    ) -> [Option<FloatTensor<B>>; 2] {
        let (gx, gdx) = B::normalized_activation_tangent_backward(f, constant, x, dx, grad_out);
        [mask[0].then_some(gx), mask[1].then_some(gdx)]
    }
}

impl<B: NormalizedActivationBackend, C: CheckpointStrategy> NormalizedActivationBackend
    for Autodiff<B, C>
{
    fn normalized_activation(
        f: ActivationFunction,
        constant: f64,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::custom_forward(
            NormalizedActivationBackward,
            (f, constant),
            [x],
            |(f, constant), [x]| {
                let (out, slope) = B::normalized_activation_with_derivative(f, constant, x);
                (slope, out)
            },
            |(f, constant), [x]| B::normalized_activation(f, constant, x),
        )
    }

    fn normalized_activation_tangent(
        f: ActivationFunction,
        constant: f64,
        x: FloatTensor<Self>,
        dx: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::custom_forward_saving_inputs(
            TangentBackward,
            (f, constant),
            [x, dx],
            |(f, constant), [x, dx]| B::normalized_activation_tangent(f, constant, x, dx),
        )
    }

    fn normalized_activation_tangent_backward(
        f: ActivationFunction,
        constant: f64,
        x: FloatTensor<Self>,
        dx: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gx, gdx) = B::normalized_activation_tangent_backward(
            f,
            constant,
            x.into_primitive(),
            dx.into_primitive(),
            grad_out.into_primitive(),
        );
        (Self::from_inner(gx), Self::from_inner(gdx))
    }

    fn normalized_activation_with_derivative(
        f: ActivationFunction,
        constant: f64,
        x: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (out, slope) =
            B::normalized_activation_with_derivative(f, constant, x.into_primitive());
        (Self::from_inner(out), Self::from_inner(slope))
    }
}
