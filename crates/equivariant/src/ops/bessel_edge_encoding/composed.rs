//! The fallback of [`bessel_edge_encoding`](super::bessel_edge_encoding()) and its tangent on
//! backends without [`BesselEdgeEncodingBackend`](super::BesselEdgeEncodingBackend), composed
//! of burn ops: the lengths, e3nn's `bessel` basis, and NequIP's envelope written out.

use std::sync::Arc;

use burn::tensor::Tensor;
use equivariant_core::math::BesselEdgeEncoding;

use crate::ops::edge_vectors::edge_lengths;
use crate::ops::{soft_one_hot_linspace, soft_one_hot_linspace_derivative};

/// NequIP's edge embedding of `vectors` (`[E, 3]` -> `[E, N]`) in burn ops.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::BesselEdgeEncoding;
/// use equivariant::ops::{bessel_edge_encoding, composed};
/// let plan = Arc::new(BesselEdgeEncoding::new(4.0, 8, 6)?);
/// let v = Tensor::<2>::from_floats([[0.5, 1.0, -2.0], [0.0, 0.0, 0.0]], &Device::flex());
/// let native = bessel_edge_encoding(&plan, v.clone());
/// let fallback = composed::bessel_edge_encoding(&plan, v);
/// assert!(native.sub(fallback).abs().max().into_scalar::<f32>() < 1e-6);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn bessel_edge_encoding(plan: &BesselEdgeEncoding, vectors: Tensor<2>) -> Tensor<2> {
    let (length, nonzero) = edge_lengths(vectors);
    parts(plan, length, nonzero, false).0
}

/// The tangent of [`bessel_edge_encoding`] along `tangents` (`[E, 3]` each -> `[E, N]`) in
/// burn ops, differentiable in both.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::BesselEdgeEncoding;
/// use equivariant::ops::{bessel_edge_encoding_tangent, composed};
/// let plan = Arc::new(BesselEdgeEncoding::new(4.0, 8, 6)?);
/// let v = Tensor::<2>::from_floats([[0.5, 1.0, -2.0]], &Device::flex());
/// let t = Tensor::<2>::from_floats([[0.3, -0.2, 0.1]], &Device::flex());
/// let native = bessel_edge_encoding_tangent(&plan, v.clone(), t.clone());
/// let fallback = composed::bessel_edge_encoding_tangent(&plan, v, t);
/// assert!(native.sub(fallback).abs().max().into_scalar::<f32>() < 1e-6);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn bessel_edge_encoding_tangent(
    plan: &BesselEdgeEncoding,
    vectors: Tensor<2>,
    tangents: Tensor<2>,
) -> Tensor<2> {
    let (length, nonzero) = edge_lengths(vectors.clone());
    // d|r| = (r . t) / |r|, on a safe divisor (the length is 0 only with r = 0).
    let divisor = length.clone().add(nonzero.clone().neg().add_scalar(1.0));
    let rate = vectors
        .mul(tangents)
        .sum_dim(1)
        .div(divisor)
        .mul(nonzero.clone());
    let derivative = parts(plan, length, nonzero, true).1.expect("asked for");
    derivative.mul(rate)
}

/// The embedding `[E, N]` at the lengths `[E, 1]` (`nonzero` marks the nonzero ones), and
/// with `derivative` its derivative in the length.
fn parts(
    plan: &BesselEdgeEncoding,
    length: Tensor<2>,
    nonzero: Tensor<2>,
    derivative: bool,
) -> (Tensor<2>, Option<Tensor<2>>) {
    let dtype = length.dtype();
    let e = length.dims()[0];
    let (r_max, p) = (plan.r_max(), plan.p() as i32);
    let bessel = Arc::new(plan.bessel().clone());
    // A length of 1 at a zero-length edge keeps the basis finite on every backend; the
    // envelope is zero there, so is the embedding.
    let r = length
        .clone()
        .add(nonzero.clone().neg().add_scalar(1.0))
        .reshape([e]);
    let basis = soft_one_hot_linspace(&bessel, r.clone());
    // sqrt(2 / r_max) u(x), zero from r_max on (a constant mask: its derivative is zero
    // there) and at a zero-length edge.
    let x = length.mul_scalar(1.0 / r_max);
    let inside = x.clone().lower_elem(1.0).float().cast(dtype).mul(nonzero);
    let (pf, a, b, c) = (
        p as f64,
        ((p + 1) * (p + 2)) as f64 / 2.0,
        (p * (p + 2)) as f64,
        (p * (p + 1)) as f64 / 2.0,
    );
    let scale = (2.0 / r_max).sqrt();
    // u = 1 + x^p (-a + x (b - c x)), one power (burn's powi is a powf) and Horner.
    let x_pm1 = x.clone().powi_scalar(p - 1);
    let x_p = x_pm1.clone().mul(x.clone());
    let envelope = x
        .clone()
        .mul_scalar(-c)
        .add_scalar(b)
        .mul(x.clone())
        .add_scalar(-a)
        .mul(x_p)
        .add_scalar(1.0)
        .mul(inside.clone())
        .mul_scalar(scale);
    let embedding = basis.clone().mul(envelope.clone());
    if !derivative {
        return (embedding, None);
    }
    let d_basis = soft_one_hot_linspace_derivative(&bessel, r);
    // u'(r) = (1 / r_max) x^(p-1) (-a p + x (b (p+1) - c (p+2) x)).
    let d_envelope = x
        .clone()
        .mul_scalar(-c * (pf + 2.0))
        .add_scalar(b * (pf + 1.0))
        .mul(x)
        .add_scalar(-a * pf)
        .mul(x_pm1)
        .mul(inside)
        .mul_scalar(scale / r_max);
    let derivative = d_basis.mul(envelope).add(basis.mul(d_envelope));
    (embedding, Some(derivative))
}
