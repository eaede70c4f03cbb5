//! [`S2GridBackend`] on [`Autodiff`]: a transform is linear, so its backward is the
//! transposed transform of the output gradient.

use std::sync::Arc;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;

use super::{S2GridBackend, S2Transform};
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step of [`S2GridBackend::s2_transform`].
#[derive(Debug)]
struct S2TransformBackward;

impl<B: S2GridBackend> CustomBackward<B, 1> for S2TransformBackward {
    /// The transform and the direction of the forward.
    type State = (Arc<S2Transform>, bool);

    fn gradients(
        (transform, transpose): Self::State,
        grad_out: FloatTensor<B>,
        _mask: [bool; 1],
    ) -> [Option<FloatTensor<B>>; 1] {
        [Some(B::s2_transform(transform, grad_out, !transpose))]
    }
}

impl<B: S2GridBackend, C: CheckpointStrategy> S2GridBackend for Autodiff<B, C> {
    fn s2_transform(
        transform: Arc<S2Transform>,
        x: FloatTensor<Self>,
        transpose: bool,
    ) -> FloatTensor<Self> {
        Self::custom_forward(
            S2TransformBackward,
            (transform, transpose),
            [x],
            |(transform, transpose), [x]| {
                let out = B::s2_transform(Arc::clone(&transform), x, transpose);
                ((transform, transpose), out)
            },
            |(transform, transpose), [x]| B::s2_transform(transform, x, transpose),
        )
    }
}
