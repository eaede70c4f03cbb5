//! [`GridTransformBackend`] on [`Flex`]: the core's grid kernels, f32 and f64.

use std::sync::Arc;

use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};

use super::{GridTransform, GridTransformBackend};
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

impl GridTransformBackend for Flex {
    fn grid_transform(transform: Arc<GridTransform>, x: FlexTensor, transpose: bool) -> FlexTensor {
        dispatch_float!("grid_transform", &x, flex_run(&transform, &x, transpose))
    }
}

fn flex_run<T: FlexFloat>(
    transform: &GridTransform,
    x: &FlexTensor,
    transpose: bool,
) -> FlexTensor {
    let x = contiguous::<T>("grid_transform", "x", x);
    let (mut from, mut to) = (transform.in_len(), transform.out_len());
    if transpose {
        std::mem::swap(&mut from, &mut to);
    }
    let shape = x.shape();
    assert!(
        shape.num_dims() == 2 && shape[1] == from,
        "grid_transform: x must be [z, {from}], got {shape:?}"
    );
    let rows = shape[0];
    let mut out = vec![T::zero(); rows * to];
    transform
        .apply(data::<T>(&x), &mut out, transpose)
        .unwrap_or_else(|err| panic!("grid_transform: {err}"));
    from_vec(out, [rows, to])
}
