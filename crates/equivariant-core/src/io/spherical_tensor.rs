//! e3nn's `io.SphericalTensor`: the irreps `1x0 + 1x1 + ... + 1xlmax` of a signal on the
//! sphere, `f(x) = sum_l F^l . Y^l(x)` (integral-normalized harmonics), with parities
//! `p_val p_arg^l` (the signal transforms as `f(r) -> p_val f(p_arg r)`), and what one does
//! with such a signal: its value at points, its samples on a grid, its coefficients from
//! samples, the norm of each degree, and a surface to draw it.

use crate::error::check_len;
use crate::math::{Matrix, eigh};
use crate::o3::rotation::normalize;
use crate::o3::{
    FromS2GridPlan, Irrep, Irreps, MulIr, Normalization, Parity, SphericalHarmonicsPlan,
    ToS2GridPlan,
};
use crate::{Error, Result};

/// A signal on the sphere of degree at most `lmax` (e3nn's `io.SphericalTensor(lmax, p_val,
/// p_arg)`). Signals are flat `[z, dim]` slices, `dim = (lmax+1)^2`.
///
/// ```
/// use equivariant_core::io::SphericalTensor;
/// use equivariant_core::o3::Parity;
/// let s = SphericalTensor::new(2, Parity::Even, Parity::Odd);
/// assert_eq!(s.irreps().to_string(), "1x0e+1x1o+1x2e");
/// assert_eq!(s.norms(&[1.5, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0])?, [1.5, 5.0, 0.0]);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SphericalTensor {
    lmax: u32,
    irreps: Irreps,
}

/// A signal drawn as a surface ([`SphericalTensor::plot`]): the points `[res_beta,
/// res_alpha + 1, 3]` (the first alpha repeated at the end, to close the surface; the
/// first and last rows pulled to the poles) and the values `[res_beta, res_alpha + 1]`.
///
/// ```
/// use equivariant_core::io::SphericalTensor;
/// use equivariant_core::o3::{Normalization, Parity};
/// let s = SphericalTensor::new(1, Parity::Even, Parity::Odd);
/// let surface = s.plot(&[0.0, 0.0, 1.0, 0.0], None, 6, false, false, Normalization::Component)?;
/// assert_eq!(surface.points.len(), surface.rows * surface.cols * 3);
/// // The first row is the north pole (y = 1), the last the south pole: f ~ y there.
/// assert_eq!(&surface.points[..3], &[0.0, 1.0, 0.0]);
/// let last = surface.values.len() - 1;
/// assert!(surface.values[0] > 0.5 && surface.values[last] < -0.5);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SphereSurface {
    /// Rows (betas).
    pub rows: usize,
    /// Columns (alphas, the first repeated).
    pub cols: usize,
    /// `[rows, cols, 3]`.
    pub points: Vec<f64>,
    /// `[rows, cols]`.
    pub values: Vec<f64>,
}

impl SphericalTensor {
    /// The signals of degree at most `lmax` with parities `p_val p_arg^l`.
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::Parity;
    /// let s = SphericalTensor::new(1, Parity::Odd, Parity::Odd);
    /// assert_eq!(s.irreps().to_string(), "1x0o+1x1e");
    /// ```
    pub fn new(lmax: u32, p_val: Parity, p_arg: Parity) -> Self {
        let irreps = Irreps::from_entries(
            (0..=lmax)
                .map(|l| MulIr::new(1, Irrep::new(l, p_val * p_arg.pow(l))))
                .collect(),
        );
        SphericalTensor { lmax, irreps }
    }

    /// `1x0 + ... + 1xlmax` with their parities.
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::Parity;
    /// assert_eq!(SphericalTensor::new(1, Parity::Even, Parity::Even).irreps().to_string(), "1x0e+1x1e");
    /// ```
    pub fn irreps(&self) -> &Irreps {
        &self.irreps
    }

    /// The largest degree.
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::Parity;
    /// assert_eq!(SphericalTensor::new(3, Parity::Even, Parity::Odd).lmax(), 3);
    /// ```
    pub fn lmax(&self) -> u32 {
        self.lmax
    }

    /// `(lmax + 1)^2`.
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::Parity;
    /// assert_eq!(SphericalTensor::new(3, Parity::Even, Parity::Odd).dim(), 16);
    /// ```
    pub fn dim(&self) -> usize {
        self.irreps.dim()
    }

    fn rows(&self, what: &'static str, signal: &[f64]) -> Result<usize> {
        let dim = self.dim();
        let z = signal.len() / dim;
        check_len(what, z * dim, signal.len())?;
        Ok(z)
    }

    /// The norm of each degree, `[z, lmax + 1]`, of the signals `[z, dim]`.
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::Parity;
    /// let s = SphericalTensor::new(1, Parity::Even, Parity::Odd);
    /// assert_eq!(s.norms(&[1.5, 0.0, 3.0, 4.0])?, [1.5, 5.0]);
    /// assert!(s.norms(&[1.0; 5]).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn norms(&self, signal: &[f64]) -> Result<Vec<f64>> {
        self.rows("signal [z, dim]", signal)?;
        Ok(signal
            .chunks_exact(self.dim())
            .flat_map(|row| {
                (0..=self.lmax as usize).map(move |l| {
                    row[l * l..(l + 1) * (l + 1)]
                        .iter()
                        .map(|x| x * x)
                        .sum::<f64>()
                        .sqrt()
                })
            })
            .collect())
    }

    /// The harmonics `[n, dim]` of the directions of `points` `[n, 3]`.
    fn harmonics(&self, points: &[f64]) -> Result<Vec<f64>> {
        let n = points.len() / 3;
        check_len("points [n, 3]", n * 3, points.len())?;
        let sh = SphericalHarmonicsPlan::new(&self.irreps, true, Normalization::Integral)?;
        let mut out = vec![0.0; n * self.dim()];
        sh.compute(points, &mut out)?;
        Ok(out)
    }

    /// `f(x / |x|)` of each signal at each point: `[z, n]` from signals `[z, dim]` and
    /// points `[n, 3]`. Signals whose `l = 0` part is odd (`p_val` odd) are not functions of
    /// a direction alone: an [`Error::InvalidArgument`], as in e3nn.
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::Parity;
    /// let s = SphericalTensor::new(0, Parity::Even, Parity::Odd);
    /// let f = s.signal_xyz(&[2.0], &[0.0, 0.0, 3.0])?;
    /// assert!((f[0] - 2.0 / (4.0 * std::f64::consts::PI).sqrt()).abs() < 1e-15);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn signal_xyz(&self, signal: &[f64], points: &[f64]) -> Result<Vec<f64>> {
        let z = self.rows("signal [z, dim]", signal)?;
        let sh = self.harmonics(points)?;
        let (dim, n) = (self.dim(), points.len() / 3);
        let mut out = vec![0.0; z * n];
        for (s, row) in signal.chunks_exact(dim).enumerate() {
            for (p, y) in sh.chunks_exact(dim).enumerate() {
                out[s * n + p] = row.iter().zip(y).map(|(a, b)| a * b).sum();
            }
        }
        Ok(out)
    }

    /// The sum of (band-limited) Dirac deltas `f = sum_i v_i delta(r_i)`,
    /// `4 pi / (lmax+1)^2 sum_i v_i Y(r_i / |r_i|)`, from positions `[n, 3]` and values `[n]`.
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::Parity;
    /// let s = SphericalTensor::new(7, Parity::Even, Parity::Odd);
    /// let x = s.sum_of_diracs(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0], &[-1.0, 1.0])?;
    /// let f = s.signal_xyz(&x, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0])?;
    /// assert!((f[0] * 10.0).round() == -10.0 && (f[1] * 10.0).round() == 10.0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn sum_of_diracs(&self, positions: &[f64], values: &[f64]) -> Result<Vec<f64>> {
        let sh = self.harmonics(positions)?;
        check_len("values [n]", positions.len() / 3, values.len())?;
        let scale = 4.0 * std::f64::consts::PI / f64::from((self.lmax + 1) * (self.lmax + 1));
        let mut out = vec![0.0; self.dim()];
        for (y, v) in sh.chunks_exact(self.dim()).zip(values) {
            out.iter_mut().zip(y).for_each(|(o, y)| *o += scale * v * y);
        }
        Ok(out)
    }

    /// A signal `[dim]` whose value at each direction `r_i / |r_i|` is `values[i]` (default
    /// `|r_i|`) and that is a combination of the harmonics of those directions: the least
    /// squares solution of `Y(r_a) . Y(r_b) s_b = v_a`, then `sum_b s_b Y(r_b)`. Points
    /// with a zero value are left out. Needs `p_val` even (the default values are radii);
    /// otherwise, or when the directions cannot carry the values (too many for `lmax`), an
    /// [`Error::InvalidArgument`].
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::Parity;
    /// let s = SphericalTensor::new(4, Parity::Even, Parity::Odd);
    /// let points = [1.0, 0.0, 0.0, 3.0, 4.0, 0.0];
    /// let x = s.with_peaks_at(&points, None)?;
    /// let f = s.signal_xyz(&x, &points)?;
    /// assert!((f[0] - 1.0).abs() < 1e-10 && (f[1] - 5.0).abs() < 1e-10);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn with_peaks_at(&self, vectors: &[f64], values: Option<&[f64]>) -> Result<Vec<f64>> {
        if vectors.is_empty() {
            // No peaks, whatever the parity (as e3nn).
            return Ok(vec![0.0; self.dim()]);
        }
        if self.irreps.entries()[0].ir.p != Parity::Even {
            return Err(Error::InvalidArgument {
                name: "p_val",
                reason: "peaks set by radii need an even signal (p_val even)".into(),
            });
        }
        let n = vectors.len() / 3;
        check_len("vectors [n, 3]", n * 3, vectors.len())?;
        let radii: Vec<f64>;
        let values = match values {
            Some(v) => {
                check_len("values [n]", n, v.len())?;
                v
            }
            None => {
                radii = vectors
                    .chunks_exact(3)
                    .map(|v| v.iter().map(|x| x * x).sum::<f64>().sqrt())
                    .collect();
                &radii
            }
        };
        let keep: Vec<usize> = (0..n).filter(|&i| values[i] != 0.0).collect();
        if keep.is_empty() {
            return Ok(vec![0.0; self.dim()]);
        }
        let points: Vec<f64> = keep
            .iter()
            .flat_map(|&i| vectors[3 * i..3 * i + 3].to_vec())
            .collect();
        let v: Vec<f64> = keep.iter().map(|&i| values[i]).collect();
        let sh = self.harmonics(&points)?;
        let (dim, m) = (self.dim(), keep.len());
        let mut gram = vec![0.0; m * m];
        for a in 0..m {
            for b in 0..m {
                gram[a * m + b] = (0..dim).map(|i| sh[a * dim + i] * sh[b * dim + i]).sum();
            }
        }
        // The least squares solution through the eigenvectors of the (symmetric) Gram
        // matrix, dropping the directions it does not see.
        let (eigenvalues, vectors_) = eigh(&Matrix::new(m, m, gram.clone())?)?;
        let largest = eigenvalues.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        let mut solution = vec![0.0; m];
        for (k, &lambda) in eigenvalues.iter().enumerate() {
            if lambda.abs() <= 1e-12 * largest {
                continue;
            }
            let projection: f64 = (0..m).map(|a| vectors_.get(a, k) * v[a]).sum::<f64>() / lambda;
            for (a, s) in solution.iter_mut().enumerate() {
                *s += projection * vectors_.get(a, k);
            }
        }
        let scale = v.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        for a in 0..m {
            let fitted: f64 = (0..m).map(|b| gram[a * m + b] * solution[b]).sum();
            if (fitted - v[a]).abs() > 1e-5 * scale {
                return Err(Error::InvalidArgument {
                    name: "vectors",
                    reason: format!(
                        "{m} peaks are more than degree {} can place (value {} fitted as {fitted})",
                        self.lmax, v[a]
                    ),
                });
            }
        }
        let mut out = vec![0.0; dim];
        for (s, y) in solution.iter().zip(sh.chunks_exact(dim)) {
            out.iter_mut().zip(y).for_each(|(o, y)| *o += s * y);
        }
        Ok(out)
    }

    /// The coefficients `[z, dim]` of signals known by samples: `values` `[z, n]` at the
    /// directions of `positions` `[n, 3]`, each grid point of a `res` x `res_alpha` grid
    /// (e3nn's [`FromS2GridPlan`] with `res_beta = res`, integral normalization) taking the
    /// value of the nearest sample.
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::Parity;
    /// let s = SphericalTensor::new(2, Parity::Even, Parity::Even);
    /// // +1 towards +z, -1 towards -z: mostly the z component of degree 1.
    /// let x = s.from_samples_on_s2(&[0.0, 0.0, 1.0, 0.0, 0.0, -1.0], &[1.0, -1.0], 200)?;
    /// assert_eq!(x.iter().map(|v| *v as i64).collect::<Vec<_>>(), [0, 0, 0, 3, 0, 0, 0, 0, 0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn from_samples_on_s2(
        &self,
        positions: &[f64],
        values: &[f64],
        res: usize,
    ) -> Result<Vec<f64>> {
        let n = positions.len() / 3;
        check_len("positions [n, 3]", n * 3, positions.len())?;
        if n == 0 {
            return Err(Error::InvalidArgument {
                name: "positions",
                reason: "no samples".into(),
            });
        }
        let z = values.len() / n;
        check_len("values [z, n]", z * n, values.len())?;
        let plan = FromS2GridPlan::new(
            Some(res),
            None,
            Some(self.lmax),
            Normalization::Integral,
            None,
        )?;
        let directions: Vec<[f64; 3]> = positions
            .chunks_exact(3)
            .map(|p| normalize([p[0], p[1], p[2]]))
            .collect();
        let grid = plan.grid();
        let nearest: Vec<usize> = grid
            .chunks_exact(3)
            .map(|g| {
                // The first of the nearest, as torch's argmin.
                let distance = |d: &[f64; 3]| (0..3).map(|k| (g[k] - d[k]).powi(2)).sum::<f64>();
                let (mut best, mut closest) = (0, f64::INFINITY);
                for (j, d) in directions.iter().enumerate() {
                    let r = distance(d);
                    if r < closest {
                        (best, closest) = (j, r);
                    }
                }
                best
            })
            .collect();
        let samples: Vec<f64> = values
            .chunks_exact(n)
            .flat_map(|row| nearest.iter().map(move |&j| row[j]))
            .collect();
        let mut out = vec![0.0; z * self.dim()];
        plan.forward(&samples, &mut out)?;
        Ok(out)
    }

    /// The samples of signals `[z, dim]` on e3nn's grid of `res` betas ([`ToS2GridPlan`]
    /// with `res_beta = res`): the grid's points `[res, res_alpha, 3]` and the values `[z,
    /// res, res_alpha]`.
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::{Normalization, Parity};
    /// let s = SphericalTensor::new(1, Parity::Even, Parity::Odd);
    /// let (grid, values) = s.signal_on_grid(&[1.0, 0.0, 0.0, 0.0], 10, Normalization::Integral)?;
    /// assert_eq!((grid.len(), values.len()), (10 * 9 * 3, 10 * 9));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn signal_on_grid(
        &self,
        signal: &[f64],
        res: usize,
        normalization: Normalization,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let z = self.rows("signal [z, dim]", signal)?;
        let plan = ToS2GridPlan::new(Some(self.lmax), Some(res), None, normalization)?;
        let mut values = vec![0.0; z * plan.res_beta() * plan.res_alpha()];
        plan.forward(signal, &mut values)?;
        Ok((plan.grid(), values))
    }

    /// A surface to draw one signal `[dim]` (e3nn's `plot`): its samples on the grid of
    /// `res` betas (with `relu`, their positive part), the poles' rows set to the pole and
    /// their mean, the first column repeated at the end; with `radius`, each point scaled
    /// by `|f|`; then moved to `center`.
    ///
    /// ```
    /// use equivariant_core::io::SphericalTensor;
    /// use equivariant_core::o3::{Normalization, Parity};
    /// let s = SphericalTensor::new(1, Parity::Even, Parity::Odd);
    /// let surface = s.plot(&[1.0, 0.0, 0.0, 0.0], None, 10, true, false, Normalization::Integral)?;
    /// assert_eq!((surface.rows, surface.cols), (10, 10));
    /// // A constant: a sphere of radius 1 / sqrt(4 pi), the north pole first.
    /// assert!((surface.points[1] - 0.28209479177387814).abs() < 1e-15);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn plot(
        &self,
        signal: &[f64],
        center: Option<[f64; 3]>,
        res: usize,
        radius: bool,
        relu: bool,
        normalization: Normalization,
    ) -> Result<SphereSurface> {
        check_len("signal [dim]", self.dim(), signal.len())?;
        let (grid, mut f) = self.signal_on_grid(signal, res, normalization)?;
        let (rows, ra) = (res, f.len() / res);
        if relu {
            f.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        let cols = ra + 1;
        let (mut points, mut values) = (vec![0.0; rows * cols * 3], vec![0.0; rows * cols]);
        for b in 0..rows {
            let pole = if b == 0 {
                Some(1.0)
            } else if b + 1 == rows {
                Some(-1.0)
            } else {
                None
            };
            let mean = f[b * ra..(b + 1) * ra].iter().sum::<f64>() / ra as f64;
            for c in 0..cols {
                let a = c % ra;
                let value = if pole.is_some() { mean } else { f[b * ra + a] };
                let mut p = match pole {
                    Some(y) => [0.0, y, 0.0],
                    None => [
                        grid[(b * ra + a) * 3],
                        grid[(b * ra + a) * 3 + 1],
                        grid[(b * ra + a) * 3 + 2],
                    ],
                };
                if radius {
                    p.iter_mut().for_each(|x| *x *= value.abs());
                }
                if let Some(center) = center {
                    p.iter_mut().zip(center).for_each(|(x, c)| *x += c);
                }
                points[(b * cols + c) * 3..(b * cols + c) * 3 + 3].copy_from_slice(&p);
                values[b * cols + c] = value;
            }
        }
        Ok(SphereSurface {
            rows,
            cols,
            points,
            values,
        })
    }
}
