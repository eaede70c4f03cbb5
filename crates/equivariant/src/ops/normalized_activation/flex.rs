//! [`NormalizedActivationBackend`] on [`Flex`]: the core kernels
//! ([`ActivationFunction::forward_slice`],
//! [`ActivationFunction::forward_with_derivative_slice`], ...), f32 and f64.

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
    let xs = data::<T>(&x);
    let mut out = vec![T::zero(); xs.len()];
    f.tangent_slice(T::from_f64(constant), xs, data::<T>(&dx), &mut out)
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
    let xs = data::<T>(&x);
    let (mut gx, mut gdx) = (vec![T::zero(); xs.len()], vec![T::zero(); xs.len()]);
    let c = T::from_f64(constant);
    f.tangent_backward_slice(
        c,
        xs,
        data::<T>(&dx),
        data::<T>(&grad_out),
        &mut gx,
        &mut gdx,
    )
    .unwrap_or_else(|err| panic!("{OP}: {err}"));
    (from_vec(gx, x.shape()), from_vec(gdx, x.shape()))
}

fn flex_forward<T: FlexFloat>(f: ActivationFunction, constant: f64, x: &FlexTensor) -> FlexTensor {
    const OP: &str = "normalized_activation";
    let x = contiguous::<T>(OP, "x", x);
    let xs = data::<T>(&x);
    let mut out = vec![T::zero(); xs.len()];
    f.forward_slice(T::from_f64(constant), xs, &mut out)
        .unwrap_or_else(|err| panic!("{OP}: {err}"));
    from_vec(out, x.shape())
}

fn flex_with_derivative<T: FlexFloat>(
    f: ActivationFunction,
    constant: f64,
    x: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    const OP: &str = "normalized_activation_with_derivative";
    let x = contiguous::<T>(OP, "x", x);
    let xs = data::<T>(&x);
    let (mut out, mut slope) = (vec![T::zero(); xs.len()], vec![T::zero(); xs.len()]);
    f.forward_with_derivative_slice(T::from_f64(constant), xs, &mut out, &mut slope)
        .unwrap_or_else(|err| panic!("{OP}: {err}"));
    (from_vec(out, x.shape()), from_vec(slope, x.shape()))
}
