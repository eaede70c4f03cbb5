//! The real spherical harmonics as functions of Euler angles, e3nn's
//! `o3.spherical_harmonics_alpha_beta`: `Y^l_m(alpha, beta) = S_m(alpha) P^l_|m|(cos beta,
//! sin beta)`, the harmonics of `R_y(alpha) R_x(beta) e_y` (the point
//! [`angles_to_xyz`](super::angles_to_xyz)`(alpha, beta)`), separated into a factor of each
//! angle so that a grid of `alpha` by `beta` costs one of each.

use super::legendre::Legendre;
use super::spherical_harmonics::{Normalization, check_degrees};
use crate::error::check_len;
use crate::{Real, Result};

/// e3nn's `o3.spherical_harmonics_alpha(l, alpha)`: `S_m(alpha)` for `m = -l..l`,
///
/// ```text
/// S_m = sqrt(2) sin(|m| alpha)  (m < 0),   S_0 = 1,   S_m = sqrt(2) cos(m alpha)  (m > 0)
/// ```
///
/// Input `alpha` `[n]`, output `[n, 2l+1]`; a wrong `out` length is an
/// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch).
///
/// ```
/// use equivariant_core::o3::spherical_harmonics_alpha;
/// let mut out = [0.0f64; 3];
/// spherical_harmonics_alpha(1, &[0.0], &mut out)?;
/// assert_eq!(out, [0.0, 1.0, 2f64.sqrt()]);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn spherical_harmonics_alpha<T: Real>(l: u32, alpha: &[T], out: &mut [T]) -> Result<()> {
    let d = 2 * l as usize + 1;
    check_len("out [n, 2l+1]", alpha.len() * d, out.len())?;
    let l = l as usize;
    let sqrt2 = std::f64::consts::SQRT_2;
    for (row, &a) in out.chunks_exact_mut(d).zip(alpha) {
        let a = a.to_f64();
        row[l] = T::one();
        for m in 1..=l {
            let (sin, cos) = (m as f64 * a).sin_cos();
            row[l - m] = T::from_f64(sqrt2 * sin);
            row[l + m] = T::from_f64(sqrt2 * cos);
        }
    }
    Ok(())
}

/// e3nn's `o3.spherical_harmonics_alpha_beta(ls, alpha, beta, normalization)`: the
/// harmonics of the degrees `ls` (any order, repeats allowed) at the points
/// `(sin b sin a, cos b, sin b cos a)`, equal to
/// [`spherical_harmonics`](super::spherical_harmonics()) of those points.
///
/// Input `alpha`, `beta` `[n]`, output `[n, sum(2l+1)]`. An empty `ls` is an
/// [`Error::InvalidArgument`](crate::Error::InvalidArgument), wrong lengths an
/// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch).
///
/// ```
/// use equivariant_core::o3::{Normalization, spherical_harmonics_alpha_beta};
/// // beta = 0 is the polar axis y: Y^1 = sqrt(3) (0, 1, 0) in component normalization.
/// let mut out = [0.0f64; 3];
/// spherical_harmonics_alpha_beta(&[1], &[0.3], &[0.0], Normalization::Component, &mut out)?;
/// assert!(out[0].abs() < 1e-15 && (out[1] - 3f64.sqrt()).abs() < 1e-15 && out[2].abs() < 1e-15);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn spherical_harmonics_alpha_beta<T: Real>(
    ls: &[u32],
    alpha: &[T],
    beta: &[T],
    normalization: Normalization,
    out: &mut [T],
) -> Result<()> {
    let lmax = check_degrees(ls)?;
    let n = alpha.len();
    check_len("beta [n]", n, beta.len())?;
    let legendre = Legendre::new(ls)?;
    let dim = legendre.dim();
    check_len("out [n, sum(2l+1)]", n * dim, out.len())?;
    let (cos, sin): (Vec<f64>, Vec<f64>) = beta
        .iter()
        .map(|b| {
            let (s, c) = Real::to_f64(*b).sin_cos();
            (c, s)
        })
        .unzip();
    let mut p = vec![0.0; n * dim];
    legendre.compute(&cos, &sin, &mut p)?;
    let width = 2 * lmax as usize + 1;
    let mut s = vec![0.0; n * width];
    let alpha: Vec<f64> = alpha.iter().map(|&a| Real::to_f64(a)).collect();
    spherical_harmonics_alpha(lmax, &alpha, &mut s)?;
    // Integral normalization times this factor per degree.
    let sqrt_4pi = (4.0 * std::f64::consts::PI).sqrt();
    let lmax = lmax as usize;
    for k in 0..n {
        let mut i = 0;
        for &l in ls {
            let factor = sqrt_4pi * normalization.factor(l);
            let l = l as usize;
            for m in 0..2 * l + 1 {
                let at = k * dim + i;
                out[at] = T::from_f64(factor * p[at] * s[k * width + lmax - l + m]);
                i += 1;
            }
        }
    }
    Ok(())
}
