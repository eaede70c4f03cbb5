//! [`S2GridBackend`] on [`Flex`]: the core's grid kernels, f32 and f64.

use std::sync::Arc;

use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};

use super::{S2GridBackend, S2Transform};
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

impl S2GridBackend for Flex {
    fn s2_transform(transform: Arc<S2Transform>, x: FlexTensor, transpose: bool) -> FlexTensor {
        dispatch_float!("s2_transform", &x, flex_run(&transform, &x, transpose))
    }
}

fn flex_run<T: FlexFloat>(transform: &S2Transform, x: &FlexTensor, transpose: bool) -> FlexTensor {
    let x = contiguous::<T>("s2_transform", "x", x);
    let (mut from, mut to) = (transform.in_len(), transform.out_len());
    if transpose {
        std::mem::swap(&mut from, &mut to);
    }
    let shape = x.shape();
    assert!(
        shape.num_dims() == 2 && shape[1] == from,
        "s2_transform: x must be [z, {from}], got {shape:?}"
    );
    let rows = shape[0];
    let mut out = vec![T::zero(); rows * to];
    transform
        .apply(data::<T>(&x), &mut out, transpose)
        .unwrap_or_else(|err| panic!("s2_transform: {err}"));
    from_vec(out, [rows, to])
}
