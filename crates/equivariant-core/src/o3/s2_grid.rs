//! Signals on the sphere between their two representations, as e3nn's `o3._s2grid`: the
//! coefficients `F^l` of `f(x) = sum_l F^l . Y^l(x)` (`(lmax+1)^2` numbers), and the samples
//! `f(x_ba)` on the grid
//!
//! ```text
//! x_ba   = (sin beta_b sin alpha_a, cos beta_b, sin beta_b cos alpha_a)
//! beta_b = pi (b + 1/2) / res_beta,   alpha_a = 2 pi a / res_alpha
//! ```
//!
//! Both directions are `f[b, a] = sum_m S_m(alpha_a) sum_l n_l P^l_|m|(beta_b) F^l_m` and its
//! weighted transpose, so they are computed separably: a product over `l` per `m` (the
//! harmonics' sparsity: only `l >= |m|` enter), then one over `m` (e3nn takes an FFT for
//! the second; at these sizes a matrix product is as cheap and exact). The synthesis
//! ([`ToS2GridPlan`]) and the analysis ([`FromS2GridPlan`]) are adjoint maps of the same shape, so
//! each one's backward is the other's forward with its own weights.

use rayon::prelude::*;

use super::angular_spherical_harmonics::spherical_harmonics_alpha;
use super::legendre::Legendre;
use super::rotation::angles_to_xyz;
use super::spherical_harmonics::Normalization;
use crate::error::check_len;
use crate::kernels::gemm::{Rows, gemm};
use crate::kernels::simd::{Avx2Fma, prefetch_line};
use crate::kernels::transpose::{transpose, transposed};
use crate::{Error, Real, Result};

/// Signals per parallel task.
const CHUNK: usize = 256;

/// A task's buffers: the coefficients of one order `[lmax + 1, CHUNK]`, the Legendre
/// step's `[2 lmax + 1, res_beta, CHUNK]` and one beta's samples `[res_alpha, CHUNK]`.
struct Workspace<T> {
    x_m: Vec<T>,
    y: Vec<T>,
    g: Vec<T>,
}

/// e3nn's `s2_grid(res_beta, res_alpha)`: the grid's `betas` `[res_beta]`,
/// `pi (b + 1/2) / res_beta`, and `alphas` `[res_alpha]`, `2 pi a / res_alpha`.
///
/// ```
/// let (betas, alphas) = equivariant_core::o3::s2_grid(2, 4);
/// let pi = std::f64::consts::PI;
/// assert_eq!(betas, [pi / 4.0, 3.0 * pi / 4.0]);
/// assert_eq!(alphas, [0.0, pi / 2.0, pi, 3.0 * pi / 2.0]);
/// ```
pub fn s2_grid(res_beta: usize, res_alpha: usize) -> (Vec<f64>, Vec<f64>) {
    let pi = std::f64::consts::PI;
    let betas = (0..res_beta)
        .map(|b| (b as f64 + 0.5) / res_beta as f64 * pi)
        .collect();
    let alphas = (0..res_alpha)
        .map(|a| a as f64 / res_alpha as f64 * 2.0 * pi)
        .collect();
    (betas, alphas)
}

/// The quadrature weights `[2b]` of Kostelec and Rockmore's grid of `2b` betas (e3nn's
/// `_quadrature_weights`, from `lie_learn`): exact for the products of harmonics of degree
/// below `b`,
///
/// ```text
/// w_j = 1/(4 b^3) sin(pi (2j+1) / 4b) sum_{k<b} sin((2j+1)(2k+1) pi / 4b) / (2k+1)
/// ```
///
/// ```
/// // Two betas (b = 1), pi/4 and 3 pi/4: sin^2(pi/4) / 4 each.
/// let w = equivariant_core::o3::quadrature_weights(1);
/// assert!((w[0] - 0.125).abs() < 1e-15 && (w[1] - 0.125).abs() < 1e-15);
/// ```
pub fn quadrature_weights(b: usize) -> Vec<f64> {
    let pi = std::f64::consts::PI;
    let bf = b as f64;
    (0..2 * b)
        .map(|j| {
            let s = (2 * j + 1) as f64;
            let sum: f64 = (0..b)
                .map(|k| {
                    let t = (2 * k + 1) as f64;
                    (s * t * pi / (4.0 * bf)).sin() / t
                })
                .sum();
            (2.0 / bf) * (pi * s / (4.0 * bf)).sin() * sum / (2.0 * (2.0 * bf).powi(2))
        })
        .collect()
}

/// The harmonics on the grid, e3nn's `spherical_harmonics_s2_grid(lmax, res_beta,
/// res_alpha)`: `shb` `[res_beta, (lmax+1)^2]`, the [`Legendre`] functions of every degree
/// up to `lmax` at `(cos beta_b, |sin beta_b|)`, and `sha` `[res_alpha, 2 lmax + 1]`, the
/// [`spherical_harmonics_alpha`] of `alpha_a`; `Y^l_m(x_ba) = shb[b, l^2+l+m] sha[a,
/// lmax+m]` (integral normalization).
///
/// ```
/// let (shb, sha) = equivariant_core::o3::spherical_harmonics_s2_grid(1, 2, 3);
/// assert_eq!((shb.len(), sha.len()), (2 * 4, 3 * 3));
/// ```
pub fn spherical_harmonics_s2_grid(
    lmax: u32,
    res_beta: usize,
    res_alpha: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (betas, alphas) = s2_grid(res_beta, res_alpha);
    let ls: Vec<u32> = (0..=lmax).collect();
    let legendre = Legendre::new(&ls).expect("0..=lmax is not empty");
    let cos: Vec<f64> = betas.iter().map(|b| b.cos()).collect();
    let sin: Vec<f64> = betas.iter().map(|b| b.sin().abs()).collect();
    let mut shb = vec![0.0; res_beta * legendre.dim()];
    legendre
        .compute(&cos, &sin, &mut shb)
        .expect("lengths made to match");
    let mut sha = vec![0.0; res_alpha * (2 * lmax as usize + 1)];
    spherical_harmonics_alpha(lmax, &alphas, &mut sha).expect("lengths made to match");
    (shb, sha)
}

/// e3nn's `_complete_lmax_res`: the `(lmax, res_beta, res_alpha)` a grid transform uses
/// when some are not given. `res_beta` defaults to `2 (lmax + 1)` (the fewest betas that
/// go to the sphere and back), `res_alpha` to `max(2 lmax + 1, res_beta - 1)`, `lmax` to
/// the largest the resolution resolves. An odd `res_beta`, no alphas, an `lmax` the betas
/// cannot resolve (`lmax + 1 > res_beta / 2`) or nothing given is an
/// [`Error::InvalidArgument`].
///
/// ```
/// use equivariant_core::o3::complete_lmax_res;
/// assert_eq!(complete_lmax_res(Some(3), None, None)?, (3, 8, 7));
/// assert_eq!(complete_lmax_res(None, Some(10), None)?, (4, 10, 9));
/// assert!(complete_lmax_res(Some(6), Some(10), None).is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn complete_lmax_res(
    lmax: Option<u32>,
    res_beta: Option<usize>,
    res_alpha: Option<usize>,
) -> Result<(u32, usize, usize)> {
    let invalid = |reason: String| Error::InvalidArgument {
        name: "lmax, res_beta, res_alpha",
        reason,
    };
    let res_beta = match (res_beta, lmax, res_alpha) {
        (Some(b), _, _) => b,
        (None, Some(l), _) => 2 * (l as usize + 1),
        (None, None, Some(a)) => 2 * a.div_ceil(2),
        (None, None, None) => return Err(invalid("none of them is given".into())),
    };
    let res_alpha = match (res_alpha, lmax) {
        (Some(a), _) => a,
        (None, Some(l)) => (2 * l as usize + 1).max(res_beta.saturating_sub(1)),
        (None, None) => res_beta.saturating_sub(1),
    };
    let lmax = match lmax {
        Some(l) => l,
        None => {
            let most = (res_beta / 2).min(res_alpha.saturating_sub(1) / 2 + 1);
            let most = most.checked_sub(1).ok_or_else(|| {
                invalid(format!(
                    "res_beta {res_beta} x res_alpha {res_alpha} resolves no degree"
                ))
            })?;
            u32::try_from(most).map_err(|_| invalid(format!("lmax {most} is too large")))?
        }
    };
    if res_alpha == 0 {
        return Err(invalid("res_alpha 0: no alphas".into()));
    }
    if !res_beta.is_multiple_of(2) {
        return Err(invalid(format!("res_beta {res_beta} is odd")));
    }
    if lmax as usize + 1 > res_beta / 2 {
        return Err(invalid(format!(
            "res_beta {res_beta} resolves degrees up to {}, not lmax {lmax}",
            (res_beta / 2) as isize - 1
        )));
    }
    Ok((lmax, res_beta, res_alpha))
}

/// e3nn's `rfft(x, l)`: the real Fourier coefficients `[n, 2l+1]` of `x` `[n, res]`
/// sampled at `alpha_a = 2 pi a / res`, in the layout of [`spherical_harmonics_alpha`]:
/// `out[m] = sum_a x[a] S_m(alpha_a)`. `l` above `res / 2` is an
/// [`Error::InvalidArgument`], wrong lengths an [`Error::ShapeMismatch`].
///
/// ```
/// let mut out = [0.0f64; 3];
/// equivariant_core::o3::rfft(&[1.0, 1.0, 1.0], 3, 1, &mut out)?;
/// assert!((out[1] - 3.0).abs() < 1e-15 && out[0].abs() < 1e-15 && out[2].abs() < 1e-15);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn rfft<T: Real>(x: &[T], res: usize, l: u32, out: &mut [T]) -> Result<()> {
    if l as usize > res / 2 {
        return Err(Error::InvalidArgument {
            name: "l",
            reason: format!("{res} samples have no frequency {l}"),
        });
    }
    let d = 2 * l as usize + 1;
    let n = x.len().checked_div(res).unwrap_or(0);
    check_len("x [n, res]", n * res, x.len())?;
    check_len("out [n, 2l+1]", n * d, out.len())?;
    let sha = fourier_table(l, res);
    for (x, out) in x.chunks_exact(res.max(1)).zip(out.chunks_exact_mut(d)) {
        for (m, o) in out.iter_mut().enumerate() {
            let sum: f64 = (0..res).map(|a| x[a].to_f64() * sha[a * d + m]).sum();
            *o = T::from_f64(sum);
        }
    }
    Ok(())
}

/// e3nn's `irfft(x, res)`: the samples `[n, res]` at `alpha_a = 2 pi a / res` of the real
/// Fourier series `x` `[n, 2l+1]`, `out[a] = sum_m S_m(alpha_a) x[m]`. An even `res` or one
/// below `2l+1` is an [`Error::InvalidArgument`], as in e3nn; wrong lengths an
/// [`Error::ShapeMismatch`].
///
/// ```
/// let mut out = [0.0f64; 3];
/// equivariant_core::o3::irfft(&[0.0, 1.0, 0.0], 1, 3, &mut out)?;
/// assert_eq!(out, [1.0, 1.0, 1.0]);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn irfft<T: Real>(x: &[T], l: u32, res: usize, out: &mut [T]) -> Result<()> {
    let d = 2 * l as usize + 1;
    if res.is_multiple_of(2) || res < d {
        return Err(Error::InvalidArgument {
            name: "res",
            reason: format!("{res} samples: must be odd and at least 2l+1 = {d}"),
        });
    }
    let n = x.len() / d;
    check_len("x [n, 2l+1]", n * d, x.len())?;
    check_len("out [n, res]", n * res, out.len())?;
    let sha = fourier_table(l, res);
    for (x, out) in x.chunks_exact(d).zip(out.chunks_exact_mut(res)) {
        for (a, o) in out.iter_mut().enumerate() {
            let sum: f64 = (0..d).map(|m| x[m].to_f64() * sha[a * d + m]).sum();
            *o = T::from_f64(sum);
        }
    }
    Ok(())
}

/// `S_m(2 pi a / res)`, `[res, 2l+1]`.
fn fourier_table(l: u32, res: usize) -> Vec<f64> {
    let (_, alphas) = s2_grid(0, res);
    let mut sha = vec![0.0; res * (2 * l as usize + 1)];
    spherical_harmonics_alpha(l, &alphas, &mut sha).expect("lengths made to match");
    sha
}

/// The separable map between coefficients `[z, (lmax+1)^2]` and grids `[z, res_beta,
/// res_alpha]`: `grid[b, a] = sum_m sha[a, m] sum_{l >= |m|} shb_m[b, l - |m|] x[l^2+l+m]`.
#[derive(Debug, Clone)]
struct GridMap {
    lmax: u32,
    res_beta: usize,
    res_alpha: usize,
    /// Per `m = -lmax..lmax` (at `lmax + m`): `[res_beta, lmax + 1 - |m|]`.
    shb: Vec<Vec<f64>>,
    /// `[res_alpha, 2 lmax + 1]`.
    sha: Vec<f64>,
}

/// A [`GridMap`]'s tables in `T`, both orientations.
struct Tables<T> {
    shb: Vec<Vec<T>>,
    shb_t: Vec<Vec<T>>,
    sha: Vec<T>,
    sha_t: Vec<T>,
}

fn cast<T: Real>(a: &[f64]) -> Vec<T> {
    a.iter().map(|&v| T::from_f64(v)).collect()
}

impl GridMap {
    /// The map with weights `scale[b] * norm[l] * P^l_|m|(beta_b)`.
    fn new(lmax: u32, res_beta: usize, res_alpha: usize, norm: &[f64], scale: &[f64]) -> Self {
        let (shb_all, sha) = spherical_harmonics_s2_grid(lmax, res_beta, res_alpha);
        let dim = ((lmax + 1) * (lmax + 1)) as usize;
        let lmax_i = lmax as i64;
        let shb = (-lmax_i..=lmax_i)
            .map(|m| {
                let first = m.unsigned_abs() as usize;
                let width = lmax as usize + 1 - first;
                let mut t = vec![0.0; res_beta * width];
                for b in 0..res_beta {
                    for l in first..=lmax as usize {
                        let i = (l * l + l) as i64 + m;
                        t[b * width + l - first] =
                            scale[b] * norm[l] * shb_all[b * dim + i as usize];
                    }
                }
                t
            })
            .collect();
        GridMap {
            lmax,
            res_beta,
            res_alpha,
            shb,
            sha,
        }
    }

    fn dim(&self) -> usize {
        ((self.lmax + 1) * (self.lmax + 1)) as usize
    }

    /// One task's buffers for chunks of at most `min(CHUNK, signals)` signals, reused over
    /// its chunks (each step overwrites what it writes).
    fn workspace<T: Real>(&self, signals: usize) -> Workspace<T> {
        let (l, ms) = (self.lmax as usize + 1, 2 * self.lmax as usize + 1);
        let chunk = CHUNK.min(signals);
        Workspace {
            x_m: vec![T::zero(); l * chunk],
            y: vec![T::zero(); ms * self.res_beta * chunk],
            g: vec![T::zero(); self.res_alpha * chunk],
        }
    }

    fn tables<T: Real>(&self) -> Tables<T> {
        let ms = 2 * self.lmax as usize + 1;
        Tables {
            shb: self.shb.iter().map(|t| cast(t)).collect(),
            shb_t: self
                .shb
                .iter()
                .map(|t| transposed(&cast::<T>(t), self.res_beta, t.len() / self.res_beta.max(1)))
                .collect(),
            sha: cast(&self.sha),
            sha_t: transposed(&cast::<T>(&self.sha), self.res_alpha, ms),
        }
    }

    /// `l^2 + l + m` for `l = |m|..=lmax`: where the coefficients of order `m` sit.
    fn indices(&self, k: usize) -> impl Iterator<Item = usize> {
        let m = k as i64 - self.lmax as i64;
        (m.unsigned_abs() as usize..=self.lmax as usize)
            .map(move |l| ((l * l + l) as i64 + m) as usize)
    }

    /// `grid [z, res_beta, res_alpha] = map(x [z, dim])`.
    ///
    /// Per chunk of `Z` signals, with the signal index innermost so that both products
    /// run along it (the grids' own sizes, ~2 lmax, are too short for a vector kernel):
    /// `x_m [L_m, Z]` (the coefficients of order `m`), `y [M, res_beta, Z]` with `y_m =
    /// shb_m [res_beta, L_m] x_m`, then per beta `g_b [res_alpha, Z] = sha [res_alpha, M]
    /// y[:, b, :]`, transposed into the grid.
    fn synthesize<T: Real>(&self, x: &[T], grid: &mut [T]) -> Result<()> {
        let (dim, cells) = (self.dim(), self.res_beta * self.res_alpha);
        let z = x.len() / dim;
        check_len("x [z, (lmax+1)^2]", z * dim, x.len())?;
        check_len("grid [z, res_beta, res_alpha]", z * cells, grid.len())?;
        if cells == 0 {
            return Ok(());
        }
        let t = self.tables::<T>();
        let (rb, ra, ms) = (self.res_beta, self.res_alpha, 2 * self.lmax as usize + 1);
        let avx2 = Avx2Fma::detect();
        x.par_chunks(CHUNK * dim)
            .zip(grid.par_chunks_mut(CHUNK * cells))
            .for_each_init(
                || self.workspace::<T>(z),
                |w, (x, grid)| {
                    let zc = x.len() / dim;
                    let plane = rb * zc;
                    for (k, shb) in t.shb.iter().enumerate() {
                        let mut width = 0;
                        for (row, i) in w.x_m.chunks_exact_mut(zc).zip(self.indices(k)) {
                            for (v, signal) in row.iter_mut().zip(x.chunks_exact(dim)) {
                                *v = signal[i];
                            }
                            width += 1;
                        }
                        gemm::<T, false, false>(
                            None,
                            (rb, zc, width),
                            Rows {
                                data: shb,
                                stride: width,
                            },
                            Rows {
                                data: &w.x_m,
                                stride: zc,
                            },
                            &mut w.y[k * plane..(k + 1) * plane],
                            zc,
                        );
                    }
                    // Per beta, the Fourier step `g_b [res_alpha, Z] = sha y[:, b, :]` into a
                    // small block (in the first-level cache up to lmax ~16 in f32), then
                    // transposed into the grid.
                    let g = &mut w.g[..ra * zc];
                    for b in 0..rb {
                        gemm::<T, false, false>(
                            None,
                            (ra, zc, ms),
                            Rows {
                                data: &t.sha,
                                stride: ms,
                            },
                            Rows {
                                data: &w.y[b * zc..],
                                stride: plane,
                            },
                            g,
                            zc,
                        );
                        transpose(avx2, (ra, zc), g, zc, &mut grid[b * ra..], cells);
                    }
                },
            );
        Ok(())
    }

    /// `x [z, dim] = map^T(grid [z, res_beta, res_alpha])`: [`Self::synthesize`]'s steps
    /// transposed and in reverse order.
    fn analyze<T: Real>(&self, grid: &[T], x: &mut [T]) -> Result<()> {
        let (dim, cells) = (self.dim(), self.res_beta * self.res_alpha);
        let z = x.len() / dim;
        check_len("coefficients [z, (lmax+1)^2]", z * dim, x.len())?;
        check_len("grid [z, res_beta, res_alpha]", z * cells, grid.len())?;
        if cells == 0 {
            x.fill(T::zero());
            return Ok(());
        }
        let t = self.tables::<T>();
        let (rb, ra, ms) = (self.res_beta, self.res_alpha, 2 * self.lmax as usize + 1);
        let avx2 = Avx2Fma::detect();
        grid.par_chunks(CHUNK * cells)
            .zip(x.par_chunks_mut(CHUNK * dim))
            .for_each_init(
                || self.workspace::<T>(z),
                |w, (grid, x)| {
                    let zc = x.len() / dim;
                    let plane = rb * zc;
                    // Per beta, the grid's samples `g_b [res_alpha, Z]` (transposed into a
                    // small block), then the transposed Fourier step `y[:, b, :] = sha^T g_b`.
                    // The chunk's samples are read per beta, in strides of a signal; ask for
                    // them in memory order first, so that those reads find them in cache.
                    let per_line = (64 / std::mem::size_of::<T>()).max(1);
                    for at in (0..grid.len()).step_by(per_line) {
                        prefetch_line(&grid[at]);
                    }
                    let g = &mut w.g[..ra * zc];
                    for b in 0..rb {
                        transpose(avx2, (zc, ra), &grid[b * ra..], cells, g, zc);
                        gemm::<T, false, false>(
                            None,
                            (ms, zc, ra),
                            Rows {
                                data: &t.sha_t,
                                stride: ra,
                            },
                            Rows {
                                data: g,
                                stride: zc,
                            },
                            &mut w.y[b * zc..],
                            plane,
                        );
                    }
                    for (k, shb_t) in t.shb_t.iter().enumerate() {
                        let width = shb_t.len() / rb;
                        gemm::<T, false, false>(
                            None,
                            (width, zc, rb),
                            Rows {
                                data: shb_t,
                                stride: rb,
                            },
                            Rows {
                                data: &w.y[k * plane..],
                                stride: zc,
                            },
                            &mut w.x_m,
                            zc,
                        );
                        for (row, i) in w.x_m.chunks_exact(zc).zip(self.indices(k)) {
                            for (&v, signal) in row.iter().zip(x.chunks_exact_mut(dim)) {
                                signal[i] = v;
                            }
                        }
                    }
                },
            );
        Ok(())
    }

    fn grid(&self) -> Vec<f64> {
        let (betas, alphas) = s2_grid(self.res_beta, self.res_alpha);
        betas
            .iter()
            .flat_map(|&b| alphas.iter().flat_map(move |&a| angles_to_xyz(a, b)))
            .collect()
    }
}

/// The accessors both transforms share; `$make` builds one of degree 2 on a 6 x 5 grid
/// for their examples.
macro_rules! grid_accessors {
    ($make:literal) => {
        #[doc = concat!(
                    "The largest degree of the coefficients.\n\n```\n",
                    "use equivariant_core::o3::*;\nlet m = ", $make, ";\n",
                    "assert_eq!(m.lmax(), 2);\n# Ok::<(), equivariant_core::Error>(())\n```"
                )]
        pub fn lmax(&self) -> u32 {
            self.map.lmax
        }

        #[doc = concat!(
                    "`(lmax + 1)^2`, the coefficients per signal.\n\n```\n",
                    "use equivariant_core::o3::*;\nlet m = ", $make, ";\n",
                    "assert_eq!(m.dim(), 9);\n# Ok::<(), equivariant_core::Error>(())\n```"
                )]
        pub fn dim(&self) -> usize {
            self.map.dim()
        }

        #[doc = concat!(
                    "The grid's betas.\n\n```\n",
                    "use equivariant_core::o3::*;\nlet m = ", $make, ";\n",
                    "assert_eq!(m.res_beta(), 6);\n# Ok::<(), equivariant_core::Error>(())\n```"
                )]
        pub fn res_beta(&self) -> usize {
            self.map.res_beta
        }

        #[doc = concat!(
                    "The grid's alphas.\n\n```\n",
                    "use equivariant_core::o3::*;\nlet m = ", $make, ";\n",
                    "assert_eq!(m.res_alpha(), 5);\n# Ok::<(), equivariant_core::Error>(())\n```"
                )]
        pub fn res_alpha(&self) -> usize {
            self.map.res_alpha
        }

        #[doc = concat!(
                    "The grid's points `[res_beta, res_alpha, 3]` (e3nn's `grid`).\n\n```\n",
                    "use equivariant_core::o3::*;\nlet m = ", $make, ";\n",
                    "let grid = m.grid();\nassert_eq!(grid.len(), 6 * 5 * 3);\n",
                    "assert_eq!(&grid[..3], &angles_to_xyz(0.0, std::f64::consts::PI / 12.0));\n",
                    "# Ok::<(), equivariant_core::Error>(())\n```"
                )]
        pub fn grid(&self) -> Vec<f64> {
            self.map.grid()
        }
    };
}

/// e3nn's `o3.ToS2Grid(lmax, res, normalization)`: coefficients `[z, (lmax+1)^2]` to
/// samples `[z, res_beta, res_alpha]`, `f(x_ba) = sum_l n_l F^l . Y^l(x_ba)` (integral
/// harmonics) with
///
/// ```text
/// component: n_l = sqrt(4 pi / ((2l+1)(lmax+1)))   (unit variance on the sphere for
/// norm:      n_l = sqrt(4 pi / (lmax+1))             unit-variance components)
/// integral:  n_l = 1
/// ```
///
/// ```
/// use equivariant_core::o3::{Normalization, ToS2GridPlan};
/// let to_grid = ToS2GridPlan::new(Some(1), None, None, Normalization::Integral)?;
/// assert_eq!((to_grid.res_beta(), to_grid.res_alpha()), (4, 3));
/// let mut grid = vec![0.0f64; 12];
/// to_grid.forward(&[1.0, 0.0, 0.0, 0.0], &mut grid)?;
/// // A constant: Y^0 = 1 / sqrt(4 pi) everywhere.
/// assert!(grid.iter().all(|g| (g - 0.28209479177387814).abs() < 1e-15));
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ToS2GridPlan {
    map: GridMap,
}

impl ToS2GridPlan {
    /// The map for `lmax` and the resolution `res_beta x res_alpha`, the missing ones
    /// completed by [`complete_lmax_res`] (whose errors it returns).
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, ToS2GridPlan};
    /// let m = ToS2GridPlan::new(Some(4), None, None, Normalization::Component)?;
    /// assert_eq!((m.res_beta(), m.res_alpha()), (10, 9));
    /// assert!(ToS2GridPlan::new(Some(4), Some(8), None, Normalization::Component).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(
        lmax: Option<u32>,
        res_beta: Option<usize>,
        res_alpha: Option<usize>,
        normalization: Normalization,
    ) -> Result<Self> {
        let (lmax, res_beta, res_alpha) = complete_lmax_res(lmax, res_beta, res_alpha)?;
        let pi4 = 4.0 * std::f64::consts::PI;
        let lf = lmax as f64 + 1.0;
        let norm: Vec<f64> = (0..=lmax)
            .map(|l| match normalization {
                Normalization::Component => (pi4 / ((2 * l + 1) as f64 * lf)).sqrt(),
                Normalization::Norm => (pi4 / lf).sqrt(),
                Normalization::Integral => 1.0,
            })
            .collect();
        Ok(ToS2GridPlan {
            map: GridMap::new(lmax, res_beta, res_alpha, &norm, &vec![1.0; res_beta]),
        })
    }

    grid_accessors!("ToS2GridPlan::new(Some(2), Some(6), Some(5), Normalization::Norm)?");

    /// `grid [z, res_beta, res_alpha]` of `x [z, (lmax+1)^2]`; wrong lengths are an
    /// [`Error::ShapeMismatch`].
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, ToS2GridPlan};
    /// let m = ToS2GridPlan::new(Some(1), None, None, Normalization::Component)?;
    /// let mut grid = vec![0.0f32; 2 * 4 * 3];
    /// m.forward(&[1.0f32; 8], &mut grid)?;
    /// assert!(m.forward(&[1.0f32; 7], &mut grid).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward<T: Real>(&self, x: &[T], grid: &mut [T]) -> Result<()> {
        self.map.synthesize(x, grid)
    }

    /// The gradient `[z, (lmax+1)^2]` of a loss with respect to the coefficients, from its
    /// gradient `[z, res_beta, res_alpha]` with respect to the samples (the transposed map).
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, ToS2GridPlan};
    /// // The gradient of the sum of the samples of the constant: res_beta res_alpha Y^0.
    /// let m = ToS2GridPlan::new(Some(1), None, None, Normalization::Integral)?;
    /// let mut grad = vec![0.0f64; 4];
    /// m.backward(&[1.0; 12], &mut grad)?;
    /// assert!((grad[0] - 12.0 * 0.28209479177387814).abs() < 1e-13);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn backward<T: Real>(&self, grad_grid: &[T], grad_x: &mut [T]) -> Result<()> {
        self.map.analyze(grad_grid, grad_x)
    }
}

/// e3nn's `o3.FromS2Grid(res, lmax, normalization, lmax_in)`: samples `[z, res_beta,
/// res_alpha]` to coefficients `[z, (lmax+1)^2]` by the grid's quadrature, the inverse of
/// [`ToS2GridPlan`] of the same normalization on signals of degree at most `lmax`:
/// `F^l_m = n'_l sum_ba w_b f(x_ba) Y^l_m(x_ba)` with `w_b` the [`quadrature_weights`]
/// times `res_beta^2 / res_alpha` and
///
/// ```text
/// component: n'_l = sqrt(4 pi (2l+1) (lmax_in+1)),   norm: n'_l = sqrt(4 pi (lmax_in+1)),
/// integral:  n'_l = 4 pi
/// ```
///
/// (`lmax_in`, the degree of the signal sampled, defaults to `lmax`).
///
/// ```
/// use equivariant_core::o3::{FromS2GridPlan, Normalization, ToS2GridPlan};
/// let to_grid = ToS2GridPlan::new(Some(2), None, None, Normalization::Component)?;
/// let from_grid = FromS2GridPlan::new(None, None, Some(2), Normalization::Component, None)?;
/// let x: Vec<f64> = (0..9).map(|i| i as f64 - 4.0).collect();
/// let mut grid = vec![0.0; to_grid.res_beta() * to_grid.res_alpha()];
/// to_grid.forward(&x, &mut grid)?;
/// let mut back = vec![0.0; 9];
/// from_grid.forward(&grid, &mut back)?;
/// assert!(x.iter().zip(&back).all(|(a, b)| (a - b).abs() < 1e-12));
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FromS2GridPlan {
    map: GridMap,
}

impl FromS2GridPlan {
    /// The map for `lmax` and the resolution `res_beta x res_alpha`, the missing ones
    /// completed by [`complete_lmax_res`] (whose errors it returns).
    ///
    /// ```
    /// use equivariant_core::o3::{FromS2GridPlan, Normalization};
    /// let m = FromS2GridPlan::new(Some(10), None, None, Normalization::Integral, None)?;
    /// assert_eq!((m.lmax(), m.res_alpha()), (4, 9));
    /// assert!(FromS2GridPlan::new(Some(9), None, None, Normalization::Integral, None).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(
        res_beta: Option<usize>,
        res_alpha: Option<usize>,
        lmax: Option<u32>,
        normalization: Normalization,
        lmax_in: Option<u32>,
    ) -> Result<Self> {
        let (lmax, res_beta, res_alpha) = complete_lmax_res(lmax, res_beta, res_alpha)?;
        let pi4 = 4.0 * std::f64::consts::PI;
        let lin = lmax_in.unwrap_or(lmax) as f64 + 1.0;
        let norm: Vec<f64> = (0..=lmax)
            .map(|l| match normalization {
                Normalization::Component => (pi4 * (2 * l + 1) as f64 * lin).sqrt(),
                Normalization::Norm => (pi4 * lin).sqrt(),
                Normalization::Integral => pi4,
            })
            .collect();
        let rb = res_beta as f64;
        let weights: Vec<f64> = quadrature_weights(res_beta / 2)
            .into_iter()
            .map(|w| w * rb * rb / res_alpha as f64)
            .collect();
        Ok(FromS2GridPlan {
            map: GridMap::new(lmax, res_beta, res_alpha, &norm, &weights),
        })
    }

    grid_accessors!("FromS2GridPlan::new(Some(6), Some(5), Some(2), Normalization::Norm, None)?");

    /// `x [z, (lmax+1)^2]` of `grid [z, res_beta, res_alpha]`; wrong lengths are an
    /// [`Error::ShapeMismatch`].
    ///
    /// ```
    /// use equivariant_core::o3::{FromS2GridPlan, Normalization};
    /// // A constant 1 on the sphere is sqrt(4 pi) Y^0 (integral normalization).
    /// let m = FromS2GridPlan::new(Some(4), Some(3), None, Normalization::Integral, None)?;
    /// let mut x = vec![0.0f64; 4];
    /// m.forward(&[1.0; 12], &mut x)?;
    /// assert!((x[0] - (4.0 * std::f64::consts::PI).sqrt()).abs() < 1e-12 && x[1].abs() < 1e-12);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward<T: Real>(&self, grid: &[T], x: &mut [T]) -> Result<()> {
        self.map.analyze(grid, x)
    }

    /// The gradient `[z, res_beta, res_alpha]` of a loss with respect to the samples, from
    /// its gradient `[z, (lmax+1)^2]` with respect to the coefficients (the transposed map).
    ///
    /// ```
    /// use equivariant_core::o3::{FromS2GridPlan, Normalization};
    /// let m = FromS2GridPlan::new(Some(4), Some(3), None, Normalization::Integral, None)?;
    /// let mut grad = vec![0.0f64; 12];
    /// m.backward(&[1.0, 0.0, 0.0, 0.0], &mut grad)?;
    /// assert!(grad.iter().all(|g| *g > 0.0)); // quadrature weights times Y^0
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn backward<T: Real>(&self, grad_x: &[T], grad_grid: &mut [T]) -> Result<()> {
        self.map.synthesize(grad_x, grad_grid)
    }
}
