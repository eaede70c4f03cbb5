//! e3nn's `o3.Legendre`: the associated Legendre functions in the normalization that makes
//! the real spherical harmonics of Euler angles a product `Y^l_m(alpha, beta) =
//! S_m(alpha) P^l_|m|(cos beta, sin beta)` (`integral` normalization).
//!
//! ```text
//! P^l_m(z, y) = sqrt((2l+1)/(4 pi) (l-m)!/(l+m)!) / (2^l l!) y^m d^(l+m)/dz^(l+m) (z^2-1)^l
//! ```
//!
//! without the Condon-Shortley phase, a polynomial in `z` and `y` (so defined off the unit
//! circle too). It is `y^m P~^l_m(z, 1) / sqrt(4 pi)` with `P~` the normalized recursion of
//! the harmonics ([`spherical_harmonics`](mod@super::spherical_harmonics)), whose coefficients
//! live here, written once for both.

use super::spherical_harmonics::{Normalization, check_degrees};
use crate::error::check_len;
use crate::{Real, Result};

/// The coefficients of the normalized associated Legendre recursion up to `lmax`:
///
/// ```text
/// P~_m^m = P~_{m-1}^{m-1} sqrt((2m+1) / (2m)),   P~_0^0 = 1
/// P~_l^m = a_lm Z P~_{l-1}^m - b_lm r^2 P~_{l-2}^m
/// a_lm   = sqrt((4l^2 - 1) / (l^2 - m^2)),
/// b_lm   = sqrt((2l+1)(l+m-1)(l-m-1) / ((2l-3)(l^2 - m^2)))
/// ```
///
/// `a`, `b` at `l (l+1) / 2 + m`; `diagonal[m] = P~_m^m`.
#[derive(Debug, Clone)]
pub(crate) struct LegendreRecursion {
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    pub diagonal: Vec<f64>,
}

impl LegendreRecursion {
    pub fn new(lmax: u32) -> Self {
        let lmax = lmax as usize;
        let n = (lmax + 1) * (lmax + 2) / 2;
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        for l in 1..=lmax {
            for m in 0..l {
                let (lf, mf) = (l as f64, m as f64);
                let at = l * (l + 1) / 2 + m;
                a[at] = ((4.0 * lf * lf - 1.0) / (lf * lf - mf * mf)).sqrt();
                if l >= m + 2 {
                    b[at] = ((2.0 * lf + 1.0) * (lf + mf - 1.0) * (lf - mf - 1.0)
                        / ((2.0 * lf - 3.0) * (lf * lf - mf * mf)))
                        .sqrt();
                }
            }
        }
        let mut diagonal = vec![1.0; lmax + 1];
        for m in 1..=lmax {
            diagonal[m] = diagonal[m - 1] * ((2 * m + 1) as f64 / (2 * m) as f64).sqrt();
        }
        LegendreRecursion { a, b, diagonal }
    }

    /// `p[l (l+1) / 2 + m] = P~_l^m(z, r2)` for `m <= l <= lmax`.
    pub fn evaluate(&self, z: f64, r2: f64, p: &mut [f64]) {
        let lmax = self.diagonal.len() - 1;
        let at = |l: usize, m: usize| l * (l + 1) / 2 + m;
        for m in 0..=lmax {
            p[at(m, m)] = self.diagonal[m];
            for l in m + 1..=lmax {
                let k = at(l, m);
                let below = if l >= m + 2 { p[at(l - 2, m)] } else { 0.0 };
                p[k] = self.a[k] * z * p[at(l - 1, m)] - self.b[k] * r2 * below;
            }
        }
    }
}

/// e3nn's `o3.Legendre(ls)`: `P^l_|m|(z, y)` for each degree of `ls` (any order, repeats
/// allowed), each `2l+1` components `m = -l..l` (`P^l_m = P^l_-m`).
///
/// Input: `z`, `y` `[n]`; output `[n, sum(2l+1)]`.
///
/// ```
/// use equivariant_core::o3::Legendre;
/// let legendre = Legendre::new(&[0, 1])?;
/// let mut out = vec![0.0; 4];
/// legendre.compute(&[0.5], &[0.25], &mut out)?;
/// // P^1_0 = sqrt(3 / 4 pi) z, P^1_1 = sqrt(3 / 8 pi) y.
/// let c = (3.0 / (4.0 * std::f64::consts::PI)).sqrt();
/// assert!((out[2] - c * 0.5).abs() < 1e-15 && (out[3] - c * 0.25 / 2f64.sqrt()).abs() < 1e-15);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Legendre {
    ls: Vec<u32>,
    lmax: u32,
    recursion: LegendreRecursion,
}

impl Legendre {
    /// The functions of the degrees `ls`; an empty list is an
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    ///
    /// ```
    /// assert!(equivariant_core::o3::Legendre::new(&[]).is_err());
    /// ```
    pub fn new(ls: &[u32]) -> Result<Self> {
        let lmax = check_degrees(ls)?;
        Ok(Legendre {
            ls: ls.to_vec(),
            lmax,
            recursion: LegendreRecursion::new(lmax),
        })
    }

    /// The degrees, in output order.
    ///
    /// ```
    /// assert_eq!(equivariant_core::o3::Legendre::new(&[2, 0])?.ls(), [2, 0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn ls(&self) -> &[u32] {
        &self.ls
    }

    /// `sum(2l+1)`, the components per point.
    ///
    /// ```
    /// assert_eq!(equivariant_core::o3::Legendre::new(&[2, 0])?.dim(), 6);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn dim(&self) -> usize {
        self.ls.iter().map(|&l| 2 * l as usize + 1).sum()
    }

    /// `out[k, :] = P(z[k], y[k])`, `out` `[n, dim]`. Wrong lengths are an
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch).
    ///
    /// ```
    /// use equivariant_core::o3::Legendre;
    /// let mut out = [0.0f32; 2];
    /// Legendre::new(&[0])?.compute(&[0.1, 0.2], &[0.3, 0.4], &mut out)?;
    /// assert!((out[1] - 0.2820948).abs() < 1e-6); // 1 / sqrt(4 pi)
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn compute<T: Real>(&self, z: &[T], y: &[T], out: &mut [T]) -> Result<()> {
        let n = z.len();
        check_len("y [n]", n, y.len())?;
        let dim = self.dim();
        check_len("out [n, dim]", n * dim, out.len())?;
        let lmax = self.lmax as usize;
        let mut p = vec![0.0; (lmax + 1) * (lmax + 2) / 2];
        let mut y_pow = vec![1.0; lmax + 1];
        let scale = Normalization::Integral.factor(0);
        for (k, row) in out.chunks_exact_mut(dim.max(1)).enumerate().take(n) {
            let (zk, yk) = (z[k].to_f64(), y[k].to_f64());
            self.recursion.evaluate(zk, 1.0, &mut p);
            for m in 1..=lmax {
                y_pow[m] = y_pow[m - 1] * yk;
            }
            let mut i = 0;
            for &l in &self.ls {
                let l = l as usize;
                for m in -(l as isize)..=l as isize {
                    let m = m.unsigned_abs();
                    row[i] = T::from_f64(scale * y_pow[m] * p[l * (l + 1) / 2 + m]);
                    i += 1;
                }
            }
        }
        Ok(())
    }
}
