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
use crate::kernels::transpose::transpose;
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
    /// `D / sqrt(dim)`, `[dim, cells]` (to the grid) and `[cells, dim]` (its backward).
    to: Vec<f64>,
    to_t: Vec<f64>,
    /// `w_b D sqrt(dim)`, `[cells, dim]` (from the grid) and `[dim, cells]` (its backward).
    from: Vec<f64>,
    from_t: Vec<f64>,
}

impl SO3GridPlan {
    /// The grid of `2 resolution` betas and `round(2 aspect_ratio resolution)` alphas and
    /// gammas (e3nn's default `aspect_ratio` is 2). A zero resolution or a non-positive
    /// aspect ratio is an [`Error::InvalidArgument`].
    ///
    /// ```
    /// use equivariant_core::o3::SO3GridPlan;
    /// assert_eq!(SO3GridPlan::new(2, 3, 2.0)?.res(), [12, 6, 12]);
    /// assert!(SO3GridPlan::new(2, 0, 2.0).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(lmax: u32, resolution: usize, aspect_ratio: f64) -> Result<Self> {
        let na = (2.0 * aspect_ratio * resolution as f64).round();
        if resolution == 0 || na.is_nan() || na < 1.0 {
            return Err(Error::InvalidArgument {
                name: "resolution, aspect_ratio",
                reason: format!(
                    "resolution {resolution} and aspect ratio {aspect_ratio} give no grid"
                ),
            });
        }
        let (nb, na) = (2 * resolution, na as usize);
        let (betas, alphas) = s2_grid(nb, na);
        let weights: Vec<f64> = quadrature_weights(nb / 2)
            .into_iter()
            .map(|w| w * (nb * nb) as f64 / (na * na) as f64)
            .collect();
        let dim = (0..=lmax as usize)
            .map(|l| (2 * l + 1) * (2 * l + 1))
            .sum::<usize>();
        let cells = na * nb * na;
        let root = (dim as f64).sqrt();
        let (mut to_t, mut from) = (vec![0.0; cells * dim], vec![0.0; cells * dim]);
        for (a, &alpha) in alphas.iter().enumerate() {
            for (b, &beta) in betas.iter().enumerate() {
                for (c, &gamma) in alphas.iter().enumerate() {
                    let cell = (a * nb + b) * na + c;
                    let f = flat_wigner(lmax, alpha, beta, gamma);
                    for (i, v) in f.into_iter().enumerate() {
                        to_t[cell * dim + i] = v / root;
                        from[cell * dim + i] = v * weights[b] * root;
                    }
                }
            }
        }
        Ok(SO3GridPlan {
            lmax,
            res: [na, nb, na],
            dim,
            to: transposed(&to_t, cells, dim),
            to_t,
            from_t: transposed(&from, cells, dim),
            from,
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
        apply(x, out, &self.to, self.dim, self.cells())
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
        apply(grad, out, &self.to_t, self.cells(), self.dim)
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
        apply(x, out, &self.from, self.cells(), self.dim)
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
        apply(grad, out, &self.from_t, self.dim, self.cells())
    }
}

/// `a [rows, cols]` transposed.
fn transposed(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; a.len()];
    transpose(None, (rows, cols), a, cols, &mut t, rows);
    t
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
