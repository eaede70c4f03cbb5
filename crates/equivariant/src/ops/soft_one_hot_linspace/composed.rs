//! The fallback of [`soft_one_hot_linspace`](super::soft_one_hot_linspace()) on backends
//! without [`SoftOneHotLinspaceBackend`](super::SoftOneHotLinspaceBackend): the radial bases
//! written out in burn ops.

use std::f64::consts::{FRAC_PI_2, PI};

use burn::tensor::{Bool, Tensor};
use equivariant_core::math::{Basis, SoftOneHotLinspace};

use crate::ops::composed::constant;
use crate::ops::soft_unit_step;

/// The radial basis of each value, as
/// [`soft_one_hot_linspace`](crate::ops::soft_one_hot_linspace()), composed of burn ops
/// (the formulas of [`SoftOneHotLinspace`]).
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, SoftOneHotLinspace};
/// use equivariant::ops::{composed, soft_one_hot_linspace};
///
/// let basis = Arc::new(SoftOneHotLinspace::new(0.0, 1.8, 10, Basis::SmoothFinite, false)?);
/// let x = Tensor::<1>::from_floats([0.1, 0.7, 1.5], &Device::flex());
/// let fallback = composed::soft_one_hot_linspace(&basis, x.clone());
/// let native = soft_one_hot_linspace(&basis, x);
/// assert!(native.sub(fallback).abs().max().into_scalar::<f32>() < 1e-5);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn soft_one_hot_linspace(basis: &SoftOneHotLinspace, x: Tensor<1>) -> Tensor<2> {
    let [n] = x.dims();
    let number = basis.number();
    let x = x.reshape([n, 1]);
    let row = |values: Vec<f64>| constant(values, [1, number], &x);
    let len = basis.end() - basis.start();
    match basis.basis() {
        Basis::Gaussian | Basis::Cosine | Basis::SmoothFinite => {
            let (d, _) = scaled_distances(basis, &x);
            match basis.basis() {
                Basis::Gaussian => d.clone().mul(d).neg().exp().mul_scalar(1.0 / 1.12),
                Basis::Cosine => {
                    let inside = d.clone().abs().lower_elem(1.0).float().cast(x.dtype());
                    d.mul_scalar(FRAC_PI_2).cos().mul(inside)
                }
                _ => soft_unit_step(d.clone().add_scalar(1.0))
                    .mul(soft_unit_step(d.neg().add_scalar(1.0)))
                    .mul_scalar(1.14136 * 2f64.exp()),
            }
        }
        Basis::Fourier => {
            let y = x.clone().sub_scalar(basis.start()).mul_scalar(1.0 / len);
            let coef = 1.0 / (0.25 + number as f64 / 2.0).sqrt();
            if basis.cutoff() {
                let freq = row((1..=number).map(|k| k as f64 * PI).collect());
                let inside = y
                    .clone()
                    .greater_elem(0.0)
                    .float()
                    .cast(x.dtype())
                    .mul(y.clone().lower_elem(1.0).float().cast(x.dtype()));
                y.mul(freq).sin().mul(inside).mul_scalar(coef)
            } else {
                let freq = row((0..number).map(|k| k as f64 * PI).collect());
                y.mul(freq).cos().mul_scalar(coef)
            }
        }
        Basis::Bessel => {
            let (r, freq, coef, at_zero, safe) = bessel_radius(basis, &x);
            // At r = 0, sin(f r) / r is its limit f.
            let zero = at_zero.float().cast(x.dtype());
            let values = safe
                .clone()
                .mul(row(freq.clone()))
                .sin()
                .div(safe)
                .mul(zero.clone().neg().add_scalar(1.0))
                .add(zero.mul(row(freq)))
                .mul_scalar(coef);
            if basis.cutoff() {
                let inside = r
                    .clone()
                    .greater_elem(0.0)
                    .float()
                    .cast(x.dtype())
                    .mul(r.lower_elem(len).float().cast(x.dtype()));
                values.mul(inside)
            } else {
                values
            }
        }
    }
}

/// The derivative of the bases, as
/// [`soft_one_hot_linspace_derivative`](crate::ops::soft_one_hot_linspace_derivative()),
/// written out in burn ops (burn differentiates it once more): the formulas' derivatives
/// times the bases' indicators; at the bessel basis' start its limit `0`, with the second
/// derivative `-w^3 / 3` (times the basis' factor) as the native kernel's series gives.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, SoftOneHotLinspace};
/// use equivariant::ops::{composed, soft_one_hot_linspace_derivative};
///
/// let x = Tensor::<1>::from_floats([0.1, 0.45, 0.8, 1.3], &Device::flex());
/// for basis in Basis::ALL {
///     let basis = Arc::new(SoftOneHotLinspace::new(0.0, 1.5, 4, basis, true)?);
///     let native = soft_one_hot_linspace_derivative(&basis, x.clone());
///     let fallback = composed::soft_one_hot_linspace_derivative(&basis, x.clone());
///     assert!(native.sub(fallback).abs().max().into_scalar::<f32>() < 1e-4);
/// }
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn soft_one_hot_linspace_derivative(basis: &SoftOneHotLinspace, x: Tensor<1>) -> Tensor<2> {
    let [n] = x.dims();
    let number = basis.number();
    let x = x.reshape([n, 1]);
    let row = |values: Vec<f64>| constant(values, [1, number], &x);
    let indicator = |mask: Tensor<2, Bool>| mask.float().cast(x.dtype());
    let len = basis.end() - basis.start();
    match basis.basis() {
        Basis::Gaussian | Basis::Cosine | Basis::SmoothFinite => {
            let (d, step) = scaled_distances(basis, &x);
            match basis.basis() {
                // d/dx exp(-d^2) / 1.12 = -2 d exp(-d^2) / 1.12 / step.
                Basis::Gaussian => d
                    .clone()
                    .mul(d.clone())
                    .neg()
                    .exp()
                    .mul(d)
                    .mul_scalar(-2.0 / 1.12 / step),
                Basis::Cosine => {
                    let inside = indicator(d.clone().abs().lower_elem(1.0));
                    d.mul_scalar(FRAC_PI_2)
                        .sin()
                        .mul(inside)
                        .mul_scalar(-FRAC_PI_2 / step)
                }
                _ => {
                    // c exp(-2 / q), q = 1 - d^2, inside |d| < 1: slope c exp(-2/q) (-4 d / q^2).
                    let q = d.clone().mul(d.clone()).neg().add_scalar(1.0);
                    let inside = q.clone().greater_elem(0.0);
                    let safe = q.mask_fill(inside.clone().bool_not(), 1.0);
                    safe.clone()
                        .recip()
                        .mul_scalar(-2.0)
                        .exp()
                        .mul(d)
                        .div(safe.clone().mul(safe))
                        .mul(indicator(inside))
                        .mul_scalar(-4.0 * 1.14136 * 2f64.exp() / step)
                }
            }
        }
        Basis::Fourier => {
            let y = x.clone().sub_scalar(basis.start()).mul_scalar(1.0 / len);
            let coef = 1.0 / (0.25 + number as f64 / 2.0).sqrt();
            if basis.cutoff() {
                let freq: Vec<f64> = (1..=number).map(|k| k as f64 * PI).collect();
                let inside = indicator(y.clone().greater_elem(0.0))
                    .mul(indicator(y.clone().lower_elem(1.0)));
                y.mul(row(freq.clone()))
                    .cos()
                    .mul(row(freq))
                    .mul(inside)
                    .mul_scalar(coef / len)
            } else {
                let freq: Vec<f64> = (0..number).map(|k| k as f64 * PI).collect();
                y.mul(row(freq.clone()))
                    .sin()
                    .mul(row(freq))
                    .mul_scalar(-coef / len)
            }
        }
        Basis::Bessel => {
            // d/dr sin(w r) / r = (w cos(w r) - sin(w r) / r) / r, whose limit at r = 0 is 0
            // with slope -w^3 / 3: there the term r (-w^3 / 3) gives both.
            let (r, freq, coef, at_zero, safe) = bessel_radius(basis, &x);
            let arg = safe.clone().mul(row(freq.clone()));
            let curvature: Vec<f64> = freq.iter().map(|w| -w * w * w / 3.0).collect();
            let at_start = r
                .clone()
                .mul(row(curvature))
                .mul(indicator(at_zero.clone()));
            let slope = arg
                .clone()
                .cos()
                .mul(row(freq))
                .sub(arg.sin().div(safe.clone()))
                .div(safe)
                .mul(indicator(at_zero.bool_not()))
                .add(at_start)
                .mul_scalar(coef);
            if basis.cutoff() {
                slope
                    .mul(indicator(r.clone().greater_elem(0.0)))
                    .mul(indicator(r.lower_elem(len)))
            } else {
                slope
            }
        }
    }
}

/// `d[i, k] = (x[i] - c_k) / step` for the centered bases, `[n, number]`, and the step.
fn scaled_distances(basis: &SoftOneHotLinspace, x: &Tensor<2>) -> (Tensor<2>, f64) {
    let step = basis.step().unwrap_or(1.0);
    let centers = constant(basis.centers().to_vec(), [1, basis.number()], x);
    (x.clone().sub(centers).mul_scalar(1.0 / step), step)
}

/// The bessel basis' radius `r = x - start` (`[n, 1]`), frequencies `k pi / L`, factor
/// `sqrt(2 / L)`, where `r = 0`, and `r` with those entries set to 1 (a safe divisor).
fn bessel_radius(
    basis: &SoftOneHotLinspace,
    x: &Tensor<2>,
) -> (Tensor<2>, Vec<f64>, f64, Tensor<2, Bool>, Tensor<2>) {
    let len = basis.end() - basis.start();
    let r = x.clone().sub_scalar(basis.start());
    let freq = (1..=basis.number()).map(|k| k as f64 * PI / len).collect();
    let at_zero = r.clone().equal_elem(0.0);
    let safe = r.clone().mask_fill(at_zero.clone(), 1.0);
    (r, freq, (2.0 / len).sqrt(), at_zero, safe)
}
