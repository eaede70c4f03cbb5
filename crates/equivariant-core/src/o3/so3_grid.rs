//! Signals on SO(3), e3nn's `o3.SO3Grid`: the coefficients `F^l` (`[2l+1, 2l+1]` each,
//! `sum_l (2l+1)^2` numbers) of `f(R) = sum_l sqrt(2l+1) tr(F^l D^l(R)^T) / sqrt(dim)`, and
//! its samples on the grid of Euler angles `(alpha_a, beta_b, gamma_c)`: the sphere grid's
//! `2 resolution` betas, and `round(2 aspect_ratio resolution)` alphas, the same for
//! gammas. Both directions are products with one dense matrix, `D [cells, dim]` of
//! [`flat_wigner`] on the grid (with the quadrature weights of the betas for the way back).

use rayon::prelude::*;

use super::s2_grid::{quadrature_weights, s2_grid};
use super::wigner_d::flat_wigner;
use crate::error::check_len;
use crate::kernels::matmul;
use crate::kernels::transpose::transposed;
use crate::{Error, Real, Result};

/// Signals per parallel task.
const CHUNK: usize = 32;

/// e3nn's `o3.SO3Grid(lmax, resolution, normalization="component", aspect_ratio)`:
/// `to_grid` `[z, dim]` to `[z, res_alpha, res_beta, res_gamma]`, `from_grid` back (its
/// inverse on signals of degree at most `lmax`), with `dim = sum_{l <= lmax} (2l+1)^2`.
///
/// ```
/// use equivariant_core::o3::SO3GridPlan;
/// let grid = SO3GridPlan::new(1, 2, 2.0)?;
/// assert_eq!((grid.dim(), grid.res()), (10, [8, 4, 8]));
/// let x: Vec<f64> = (0..10).map(|i| i as f64 / 10.0).collect();
/// let mut samples = vec![0.0; grid.cells()];
/// grid.to_grid(&x, &mut samples)?;
/// let mut back = vec![0.0; 10];
/// grid.from_grid(&samples, &mut back)?;
/// assert!(x.iter().zip(&back).all(|(a, b)| (a - b).abs() < 1e-12));
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SO3GridPlan {
    lmax: u32,
    res: [usize; 3],
    dim: usize,
    /// `D / sqrt(dim)`, `[cells, dim]`, and its transpose `[dim, cells]`: to the grid is
    /// `x D^T / sqrt(dim)`, from it `(w g) D sqrt(dim)`.
    d: Vec<f64>,
    d_t: Vec<f64>,
    /// `w_b dim` for each cell (the quadrature weight of its beta, and the two `sqrt(dim)`).
    cell_weights: Vec<f64>,
}

impl SO3GridPlan {
    /// The grid of `2 resolution` betas and `round(2 aspect_ratio resolution)` alphas and
    /// gammas (halves to even, as Python rounds; e3nn's default `aspect_ratio` is 2). A
    /// resolution and aspect ratio that give no alphas (zero, negative, NaN) or more samples
    /// than memory can index are an [`Error::InvalidArgument`].
    ///
    /// ```
    /// use equivariant_core::o3::SO3GridPlan;
    /// assert_eq!(SO3GridPlan::new(2, 3, 2.0)?.res(), [12, 6, 12]);
    /// assert_eq!(SO3GridPlan::new(1, 1, 1.25)?.res(), [2, 2, 2]); // round(2.5) = 2
    /// assert!(SO3GridPlan::new(2, 0, 2.0).is_err());
    /// assert!(SO3GridPlan::new(2, 1, f64::INFINITY).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(lmax: u32, resolution: usize, aspect_ratio: f64) -> Result<Self> {
        let invalid = |why: &str| Error::InvalidArgument {
            name: "resolution, aspect_ratio",
            reason: format!("resolution {resolution} and aspect ratio {aspect_ratio} {why}"),
        };
        let na = (2.0 * aspect_ratio * resolution as f64).round_ties_even();
        if resolution == 0 || !na.is_finite() || na < 1.0 {
            return Err(invalid("give no grid"));
        }
        let (nb, na) = (2 * resolution, na as usize);
        let dim = (0..=lmax as usize)
            .map(|l| (2 * l + 1) * (2 * l + 1))
            .sum::<usize>();
        let cells = na
            .checked_mul(nb)
            .and_then(|c| c.checked_mul(na))
            .filter(|c| {
                c.checked_mul(dim)
                    .is_some_and(|n| n <= isize::MAX as usize / 8)
            })
            .ok_or_else(|| {
                invalid(&format!(
                    "give more samples than memory holds at lmax {lmax}"
                ))
            })?;
        let (betas, alphas) = s2_grid(nb, na);
        let weights: Vec<f64> = quadrature_weights(nb / 2)
            .into_iter()
            .map(|w| w * (nb * nb) as f64 / (na * na) as f64)
            .collect();
        let root = (dim as f64).sqrt();
        let mut d = vec![0.0; cells * dim];
        let mut cell_weights = vec![0.0; cells];
        for (a, &alpha) in alphas.iter().enumerate() {
            for (b, &beta) in betas.iter().enumerate() {
                for (c, &gamma) in alphas.iter().enumerate() {
                    let cell = (a * nb + b) * na + c;
                    let f = flat_wigner(lmax, alpha, beta, gamma);
                    for (i, v) in f.into_iter().enumerate() {
                        d[cell * dim + i] = v / root;
                    }
                    cell_weights[cell] = weights[b] * dim as f64;
                }
            }
        }
        Ok(SO3GridPlan {
            lmax,
            res: [na, nb, na],
            dim,
            d_t: transposed(&d, cells, dim),
            d,
            cell_weights,
        })
    }

    /// The largest degree.
    ///
    /// ```
    /// assert_eq!(equivariant_core::o3::SO3GridPlan::new(2, 1, 2.0)?.lmax(), 2);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn lmax(&self) -> u32 {
        self.lmax
    }

    /// `sum_{l <= lmax} (2l+1)^2`, the coefficients per signal.
    ///
    /// ```
    /// assert_eq!(equivariant_core::o3::SO3GridPlan::new(2, 1, 2.0)?.dim(), 35);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `[res_alpha, res_beta, res_gamma]`.
    ///
    /// ```
    /// assert_eq!(equivariant_core::o3::SO3GridPlan::new(0, 1, 1.0)?.res(), [2, 2, 2]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn res(&self) -> [usize; 3] {
        self.res
    }

    /// `res_alpha res_beta res_gamma`, the samples per signal.
    ///
    /// ```
    /// assert_eq!(equivariant_core::o3::SO3GridPlan::new(0, 1, 1.0)?.cells(), 8);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn cells(&self) -> usize {
        self.res.iter().product()
    }

    /// The samples `[z, cells]` of `x` `[z, dim]`.
    ///
    /// ```
    /// use equivariant_core::o3::SO3GridPlan;
    /// let grid = SO3GridPlan::new(0, 1, 1.0)?;
    /// let mut out = [0.0f32; 8];
    /// grid.to_grid(&[2.0f32], &mut out)?;
    /// assert_eq!(out, [2.0; 8]); // degree 0: a constant
    /// assert!(grid.to_grid(&[2.0f32], &mut out[1..]).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn to_grid<T: Real>(&self, x: &[T], out: &mut [T]) -> Result<()> {
        apply(x, out, &self.d_t, self.dim, self.cells())
    }

    /// The gradient `[z, dim]` for `x` of [`to_grid`](Self::to_grid) given the gradient
    /// `[z, cells]` of its output (the transposed map).
    ///
    /// ```
    /// use equivariant_core::o3::SO3GridPlan;
    /// let grid = SO3GridPlan::new(0, 1, 1.0)?;
    /// let mut out = [0.0f64; 1];
    /// grid.to_grid_backward(&[1.0; 8], &mut out)?;
    /// assert!((out[0] - 8.0).abs() < 1e-15);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn to_grid_backward<T: Real>(&self, grad: &[T], out: &mut [T]) -> Result<()> {
        apply(grad, out, &self.d, self.cells(), self.dim)
    }

    /// The coefficients `[z, dim]` of the samples `x` `[z, cells]`.
    ///
    /// ```
    /// use equivariant_core::o3::SO3GridPlan;
    /// let grid = SO3GridPlan::new(0, 1, 1.0)?;
    /// let mut out = [0.0f64; 1];
    /// grid.from_grid(&[3.0; 8], &mut out)?;
    /// assert!((out[0] - 3.0).abs() < 1e-14);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn from_grid<T: Real>(&self, x: &[T], out: &mut [T]) -> Result<()> {
        let cells = self.cells();
        check_len("samples [z, cells]", x.len() / cells * cells, x.len())?;
        let mut weighted = x.to_vec();
        for row in weighted.chunks_exact_mut(cells) {
            for (v, &w) in row.iter_mut().zip(&self.cell_weights) {
                *v *= T::from_f64(w);
            }
        }
        apply(&weighted, out, &self.d, cells, self.dim)
    }

    /// The gradient `[z, cells]` for the samples of [`from_grid`](Self::from_grid) given the
    /// gradient `[z, dim]` of its output (the transposed map).
    ///
    /// ```
    /// use equivariant_core::o3::SO3GridPlan;
    /// let grid = SO3GridPlan::new(0, 1, 1.0)?;
    /// let mut out = [0.0f64; 8];
    /// grid.from_grid_backward(&[1.0], &mut out)?;
    /// assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-14);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn from_grid_backward<T: Real>(&self, grad: &[T], out: &mut [T]) -> Result<()> {
        apply(grad, out, &self.d_t, self.dim, self.cells())?;
        for row in out.chunks_exact_mut(self.cells()) {
            for (v, &w) in row.iter_mut().zip(&self.cell_weights) {
                *v *= T::from_f64(w);
            }
        }
        Ok(())
    }
}

/// `out [z, n] = x [z, k] m [k, n]`, in parallel over chunks of rows.
fn apply<T: Real>(x: &[T], out: &mut [T], m: &[f64], k: usize, n: usize) -> Result<()> {
    let z = x.len().checked_div(k).unwrap_or(0);
    check_len("input [z, in]", z * k, x.len())?;
    check_len("output [z, out]", z * n, out.len())?;
    if n == 0 || k == 0 {
        out.fill(T::zero());
        return Ok(());
    }
    let m: Vec<T> = m.iter().map(|&v| T::from_f64(v)).collect();
    x.par_chunks(CHUNK * k)
        .zip(out.par_chunks_mut(CHUNK * n))
        .try_for_each(|(x, out)| matmul(x, &m, out, (x.len() / k, n, k), false))
}
