//! [`NormalizedActivationBackend`] on [`Flex`]: the core kernels
//! ([`ActivationFunction::forward_vec`],
//! [`ActivationFunction::forward_with_derivative_vec`], ...: outputs never zero-filled
//! first), f32 and f64.

use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};
use equivariant_core::math::ActivationFunction;

use super::NormalizedActivationBackend;
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

impl NormalizedActivationBackend for Flex {
    fn normalized_activation(f: ActivationFunction, constant: f64, x: FlexTensor) -> FlexTensor {
        dispatch_float!("normalized_activation", &x, flex_forward(f, constant, &x))
    }

    fn normalized_activation_with_derivative(
        f: ActivationFunction,
        constant: f64,
        x: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        dispatch_float!(
            "normalized_activation_with_derivative",
            &x,
            flex_with_derivative(f, constant, &x)
        )
    }

    fn normalized_activation_tangent(
        f: ActivationFunction,
        constant: f64,
        x: FlexTensor,
        dx: FlexTensor,
    ) -> FlexTensor {
        dispatch_float!(
            "normalized_activation_tangent",
            &x,
            flex_tangent(f, constant, &x, &dx)
        )
    }

    fn normalized_activation_tangent_backward(
        f: ActivationFunction,
        constant: f64,
        x: FlexTensor,
        dx: FlexTensor,
        grad_out: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        dispatch_float!(
            "normalized_activation_tangent_backward",
            &x,
            flex_tangent_backward(f, constant, &x, &dx, &grad_out)
        )
    }
}

/// `x` and `dx` as contiguous tensors of one shape (`op` names a mismatch).
fn pair<T: FlexFloat>(op: &str, x: &FlexTensor, dx: &FlexTensor) -> (FlexTensor, FlexTensor) {
    assert_eq!(x.shape(), dx.shape(), "{op}: dx must have the shape of x");
    (contiguous::<T>(op, "x", x), contiguous::<T>(op, "dx", dx))
}

fn flex_tangent<T: FlexFloat>(
    f: ActivationFunction,
    constant: f64,
    x: &FlexTensor,
    dx: &FlexTensor,
) -> FlexTensor {
    const OP: &str = "normalized_activation_tangent";
    let (x, dx) = pair::<T>(OP, x, dx);
    let out = f
        .tangent_vec(T::from_f64(constant), data::<T>(&x), data::<T>(&dx))
        .unwrap_or_else(|err| panic!("{OP}: {err}"));
    from_vec(out, x.shape())
}

fn flex_tangent_backward<T: FlexFloat>(
    f: ActivationFunction,
    constant: f64,
    x: &FlexTensor,
    dx: &FlexTensor,
    grad_out: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    const OP: &str = "normalized_activation_tangent_backward";
    let (x, dx) = pair::<T>(OP, x, dx);
    assert_eq!(
        x.shape(),
        grad_out.shape(),
        "{OP}: grad_out must have the shape of x"
    );
    let grad_out = contiguous::<T>(OP, "grad_out", grad_out);
    let c = T::from_f64(constant);
    let (gx, gdx) = f
        .tangent_backward_vec(c, data::<T>(&x), data::<T>(&dx), data::<T>(&grad_out))
        .unwrap_or_else(|err| panic!("{OP}: {err}"));
    (from_vec(gx, x.shape()), from_vec(gdx, x.shape()))
}

fn flex_forward<T: FlexFloat>(f: ActivationFunction, constant: f64, x: &FlexTensor) -> FlexTensor {
    const OP: &str = "normalized_activation";
    let x = contiguous::<T>(OP, "x", x);
    let out = f.forward_vec(T::from_f64(constant), data::<T>(&x));
    from_vec(out, x.shape())
}

fn flex_with_derivative<T: FlexFloat>(
    f: ActivationFunction,
    constant: f64,
    x: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    const OP: &str = "normalized_activation_with_derivative";
    let x = contiguous::<T>(OP, "x", x);
    let (out, slope) = f.forward_with_derivative_vec(T::from_f64(constant), data::<T>(&x));
    (from_vec(out, x.shape()), from_vec(slope, x.shape()))
}
