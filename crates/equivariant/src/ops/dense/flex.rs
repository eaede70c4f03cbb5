//! [`DenseBackend`] on [`Flex`]: the core's [`dense`] and [`dense_weight_gradient`], f32 and
//! f64.

use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};
use equivariant_core::kernels::{dense, dense_weight_gradient};

use super::DenseBackend;
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

impl DenseBackend for Flex {
    fn dense(x: FlexTensor, w: FlexTensor) -> FlexTensor {
        dispatch_float!("dense", &x, flex_dense(&x, &w))
    }

    fn dense_weight_gradient(x: FlexTensor, grad_out: FlexTensor) -> FlexTensor {
        dispatch_float!(
            "dense_weight_gradient",
            &x,
            flex_weight_gradient(&x, &grad_out)
        )
    }
}

/// The two dimensions of a matrix operand, or a panic naming `op` and `what`.
fn matrix(op: &str, what: &str, t: &FlexTensor) -> [usize; 2] {
    let shape = t.shape();
    assert_eq!(
        shape.num_dims(),
        2,
        "{op}: {what} must be a matrix, got {shape:?}"
    );
    [shape[0], shape[1]]
}

fn flex_dense<T: FlexFloat>(x: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    const OP: &str = "dense";
    let ([m, k], [kw, n]) = (matrix(OP, "x", x), matrix(OP, "w", w));
    assert_eq!(k, kw, "{OP}: x [m, {k}] and w [{kw}, n] disagree on k");
    let (x, w) = (contiguous::<T>(OP, "x", x), contiguous::<T>(OP, "w", w));
    let mut out = vec![T::zero(); m * n];
    dense(data::<T>(&x), data::<T>(&w), &mut out, (m, n, k))
        .unwrap_or_else(|err| panic!("{OP}: {err}"));
    from_vec(out, [m, n])
}

fn flex_weight_gradient<T: FlexFloat>(x: &FlexTensor, grad_out: &FlexTensor) -> FlexTensor {
    const OP: &str = "dense_weight_gradient";
    let ([m, k], [mg, n]) = (matrix(OP, "x", x), matrix(OP, "grad_out", grad_out));
    assert_eq!(
        m, mg,
        "{OP}: x [{m}, k] and grad_out [{mg}, n] disagree on m"
    );
    let (x, g) = (
        contiguous::<T>(OP, "x", x),
        contiguous::<T>(OP, "grad_out", grad_out),
    );
    let mut out = vec![T::zero(); k * n];
    dense_weight_gradient(data::<T>(&x), data::<T>(&g), &mut out, (m, n, k))
        .unwrap_or_else(|err| panic!("{OP}: {err}"));
    from_vec(out, [k, n])
}
