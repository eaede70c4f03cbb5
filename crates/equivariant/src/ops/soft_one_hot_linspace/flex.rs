//! [`SoftOneHotLinspaceBackend`] on [`Flex`]: the core bases
//! ([`SoftOneHotLinspace::compute`], [`SoftOneHotLinspace::compute_with_derivative`]), f32
//! and f64.

use std::sync::Arc;

use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};
use equivariant_core::math::SoftOneHotLinspace;

use super::SoftOneHotLinspaceBackend;
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

impl SoftOneHotLinspaceBackend for Flex {
    fn soft_one_hot_linspace(basis: Arc<SoftOneHotLinspace>, x: FlexTensor) -> FlexTensor {
        dispatch_float!("soft_one_hot_linspace", &x, flex_forward(&basis, &x, false)).0
    }

    fn soft_one_hot_linspace_with_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let (y, dy) = dispatch_float!("soft_one_hot_linspace", &x, flex_forward(&basis, &x, true));
        (y, dy.expect("requested"))
    }

    fn soft_one_hot_linspace_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FlexTensor,
    ) -> FlexTensor {
        let (_, dy) = dispatch_float!("soft_one_hot_linspace", &x, flex_forward(&basis, &x, true));
        dy.expect("requested")
    }

    fn soft_one_hot_linspace_second_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        dispatch_float!(
            "soft_one_hot_linspace",
            &x,
            flex_second_derivative(&basis, &x)
        )
    }
}

fn flex_second_derivative<T: FlexFloat>(
    basis: &SoftOneHotLinspace,
    x: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    const OP: &str = "soft_one_hot_linspace second derivative";
    let shape = x.shape();
    assert!(shape.num_dims() == 1, "{OP}: x must be [n], got {shape:?}");
    let (n, number) = (shape[0], basis.number());
    let x = contiguous::<T>(OP, "x", x);
    let mut y = vec![T::zero(); n * number];
    let (mut d1, mut d2) = (y.clone(), y.clone());
    basis
        .compute_with_second_derivative(data::<T>(&x), &mut y, &mut d1, &mut d2)
        .unwrap_or_else(|e| panic!("{OP}: {e}"));
    (from_vec(d1, [n, number]), from_vec(d2, [n, number]))
}

fn flex_forward<T: FlexFloat>(
    basis: &SoftOneHotLinspace,
    x: &FlexTensor,
    with_derivative: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    const OP: &str = "soft_one_hot_linspace";
    let shape = x.shape();
    assert!(shape.num_dims() == 1, "{OP}: x must be [n], got {shape:?}");
    let (n, number) = (shape[0], basis.number());
    let x = contiguous::<T>(OP, "x", x);
    let x = data::<T>(&x);
    let mut y = vec![T::zero(); n * number];
    if with_derivative {
        let mut dy = vec![T::zero(); n * number];
        basis
            .compute_with_derivative(x, &mut y, &mut dy)
            .unwrap_or_else(|e| panic!("{OP}: {e}"));
        (from_vec(y, [n, number]), Some(from_vec(dy, [n, number])))
    } else {
        basis
            .compute(x, &mut y)
            .unwrap_or_else(|e| panic!("{OP}: {e}"));
        (from_vec(y, [n, number]), None)
    }
}
