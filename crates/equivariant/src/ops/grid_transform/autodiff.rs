//! [`GridTransformBackend`] on [`Autodiff`]: a transform is linear, so its backward is the
//! transposed transform of the output gradient.

use std::sync::Arc;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;

use super::{GridTransform, GridTransformBackend};
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step of [`GridTransformBackend::grid_transform`].
#[derive(Debug)]
struct GridTransformBackward;

impl<B: GridTransformBackend> CustomBackward<B, 1> for GridTransformBackward {
    /// The transform and the direction of the forward.
    type State = (Arc<GridTransform>, bool);

    fn gradients(
        (transform, transpose): Self::State,
        grad_out: FloatTensor<B>,
        _mask: [bool; 1],
    ) -> [Option<FloatTensor<B>>; 1] {
        [Some(B::grid_transform(transform, grad_out, !transpose))]
    }
}

impl<B: GridTransformBackend, C: CheckpointStrategy> GridTransformBackend for Autodiff<B, C> {
    fn grid_transform(
        transform: Arc<GridTransform>,
        x: FloatTensor<Self>,
        transpose: bool,
    ) -> FloatTensor<Self> {
        Self::custom_forward(
            GridTransformBackward,
            (transform, transpose),
            [x],
            |(transform, transpose), [x]| {
                let out = B::grid_transform(Arc::clone(&transform), x, transpose);
                ((transform, transpose), out)
            },
            |(transform, transpose), [x]| B::grid_transform(transform, x, transpose),
        )
    }
}
