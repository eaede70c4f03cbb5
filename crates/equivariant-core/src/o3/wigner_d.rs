//! Wigner D matrices: the real representation matrices of SO(3) and O(3) in e3nn's basis.
//!
//! `D^l(a, b, c) = exp(a X_y) exp(b X_x) exp(c X_y)` with `X_x, X_y, X_z` the so(3)
//! generators in the real basis (`D^1(R) = R` with basis `(x, y, z)`). Nothing is
//! exponentiated at call time: `exp(t X_y)` is a set of planar rotations of the pairs
//! `(m, -m)` by `m t`, and `exp(t X_x) = J exp(t X_y) J^T` with `J = exp(-pi/2 X_z)`, a
//! per-`l` table computed once (that rotation maps the y axis onto the x axis).

use std::sync::{Arc, OnceLock};

use num_complex::Complex64;

use super::irreps::{Irrep, Irreps, Parity};
use super::rotation::{
    Matrix3, ORTHOGONALITY_TOLERANCE, Quaternion, axis_angle_to_angles, check_orthogonal,
    matrix_to_angles, quaternion_to_angles,
};
use super::table_cache::{TableCache, cached};
use super::wigner_3j::real_to_complex;
use crate::Result;

/// Per-degree tables: the `X_y` rotation frequencies and the matrix `J`.
struct DegreeTables {
    l: usize,
    /// `exp(t X_y)` maps `(v[a], v[b])` by `[[cos wt, sin wt], [-sin wt, cos wt]]` for each
    /// `(a, b, w)`; indices in no pair are fixed.
    pairs: Vec<(usize, usize, f64)>,
    /// `J`, row-major `(2l+1)^2`, with `exp(t X_x) = J exp(t X_y) J^T`.
    j: Vec<f64>,
}

fn degree_tables(l: u32) -> Arc<DegreeTables> {
    static CACHE: OnceLock<TableCache<u32, DegreeTables>> = OnceLock::new();
    cached(CACHE.get_or_init(Default::default), l, || {
        build_degree_tables(l)
    })
}

/// The real so(3) generators `[X_x, X_y, X_z]` of degree `l`, each row-major `(2l+1)^2`
/// (e3nn's `so3_generators`).
///
/// ```
/// // For l = 1 they generate the rotation matrices: exp(t X_y) = matrix_y(t).
/// let [_, xy, _] = equivariant_core::o3::wigner_d::so3_generators(1);
/// assert!((xy[2] - 1.0).abs() < 1e-15 && (xy[6] + 1.0).abs() < 1e-15);
/// ```
pub fn so3_generators(l: u32) -> [Vec<f64>; 3] {
    let d = 2 * l as usize + 1;
    let j = l as f64;
    let zero = Complex64::new(0.0, 0.0);
    let mut raising = vec![zero; d * d];
    let mut lowering = vec![zero; d * d];
    for r in 0..d - 1 {
        let m = -j + r as f64;
        raising[(r + 1) * d + r] = Complex64::new(-(j * (j + 1.0) - m * (m + 1.0)).sqrt(), 0.0);
        let m = m + 1.0;
        lowering[r * d + r + 1] = Complex64::new((j * (j + 1.0) - m * (m - 1.0)).sqrt(), 0.0);
    }
    let mut su2 = [vec![zero; d * d], vec![zero; d * d], vec![zero; d * d]];
    for n in 0..d * d {
        su2[0][n] = 0.5 * (raising[n] + lowering[n]);
        su2[2][n] = Complex64::new(0.0, -0.5) * (raising[n] - lowering[n]);
    }
    for r in 0..d {
        su2[1][r * d + r] = Complex64::new(0.0, -j + r as f64);
    }
    let q = real_to_complex(l).dense();
    su2.map(|x| {
        // conj(Q)^T X Q, real by construction.
        let mut out = vec![0.0; d * d];
        for a in 0..d {
            for b in 0..d {
                let mut acc = zero;
                for r in 0..d {
                    let qa = q[r * d + a].conj();
                    if qa == zero {
                        continue;
                    }
                    for c in 0..d {
                        acc += qa * x[r * d + c] * q[c * d + b];
                    }
                }
                out[a * d + b] = acc.re;
            }
        }
        out
    })
}

fn build_degree_tables(l: u32) -> DegreeTables {
    let d = 2 * l as usize + 1;
    let [xx, xy, xz] = so3_generators(l);
    let mut pairs = Vec::new();
    for a in 0..d {
        for b in a + 1..d {
            if xy[a * d + b].abs() > 1e-12 {
                debug_assert!((xy[a * d + b] + xy[b * d + a]).abs() < 1e-12);
                pairs.push((a, b, xy[a * d + b]));
            }
        }
    }
    // exp(-pi/2 X_z) maps the y axis onto the x axis; the other sign maps it onto -x.
    // Pick the one that conjugates X_y into X_x (a check, not a guess about conventions).
    let mut best = (f64::INFINITY, Vec::new());
    for sign in [-1.0, 1.0] {
        let scaled: Vec<f64> = xz
            .iter()
            .map(|x| sign * std::f64::consts::FRAC_PI_2 * x)
            .collect();
        let j = expm(&scaled, d);
        let conj = matmul(&matmul(&j, &xy, d), &transpose(&j, d), d);
        let err = conj
            .iter()
            .zip(&xx)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        if err < best.0 {
            best = (err, j);
        }
    }
    debug_assert!(best.0 < 1e-9, "no J for l = {l}: {}", best.0);
    // One Newton-Schulz step, J <- J (3 I - J^T J) / 2, takes J to orthogonal within an ulp
    // or two, so that D(identity) = J J^T is the identity to ~1e-16.
    let j = best.1;
    let jtj = matmul(&transpose(&j, d), &j, d);
    let correction: Vec<f64> = identity(d)
        .iter()
        .zip(&jtj)
        .map(|(i, x)| 1.5 * i - 0.5 * x)
        .collect();
    let j = matmul(&j, &correction, d);
    DegreeTables { l: d, pairs, j }
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..d {
                out[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    out
}

fn transpose(a: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            out[j * d + i] = a[i * d + j];
        }
    }
    out
}

/// `exp(A)` by scaling and squaring of a Taylor series; table-build time only.
fn expm(a: &[f64], d: usize) -> Vec<f64> {
    let norm = a.iter().map(|x| x.abs()).sum::<f64>().max(1e-300);
    let squarings = (norm / 0.25).log2().ceil().max(0.0) as i32;
    let scale = 0.5f64.powi(squarings);
    let a: Vec<f64> = a.iter().map(|x| x * scale).collect();
    let mut result = identity(d);
    let mut term = identity(d);
    for k in 1..30 {
        term = matmul(&term, &a, d);
        term.iter_mut().for_each(|x| *x /= k as f64);
        result.iter_mut().zip(&term).for_each(|(r, t)| *r += t);
    }
    for _ in 0..squarings {
        result = matmul(&result, &result, d);
    }
    result
}

impl DegreeTables {
    /// `M <- M exp(t X_y)` (right) for a row-major `d x d` matrix.
    fn rotate_y_right(&self, t: f64, m: &mut [f64]) {
        let d = self.l;
        for &(a, b, w) in &self.pairs {
            let (s, c) = (w * t).sin_cos();
            for row in m.chunks_exact_mut(d) {
                let (x, y) = (row[a], row[b]);
                row[a] = c * x - s * y;
                row[b] = s * x + c * y;
            }
        }
    }

    /// `M <- exp(t X_y) M` (left) for a row-major `d x d` matrix.
    fn rotate_y_left(&self, t: f64, m: &mut [f64]) {
        let d = self.l;
        for &(a, b, w) in &self.pairs {
            let (s, c) = (w * t).sin_cos();
            for col in 0..d {
                let (x, y) = (m[a * d + col], m[b * d + col]);
                m[a * d + col] = c * x + s * y;
                m[b * d + col] = -s * x + c * y;
            }
        }
    }
}

/// `D^l` as a function of its angles, for code that evaluates it on tensors (the burn
/// crate's batched, differentiable `ops::wigner_d`): `D^l(a, b, c) = Y(a) J Y(b) J^T Y(c)`
/// with
///
/// ```text
/// Y(t) = exp(t X_y) = fixed + sum_{k=1..l} cos(k t) cos_k + sin(k t) sin_k
/// ```
///
/// All matrices row-major `(2l+1) x (2l+1)`; `cos[k - 1]`, `sin[k - 1]` for `k = 1..=l`.
///
/// ```
/// use equivariant_core::o3::{wigner_d, wigner_d_factors};
/// let f = wigner_d_factors(2);
/// let (d, t) = (5, 0.7);
/// let y: Vec<f64> = (0..d * d)
///     .map(|i| f.fixed[i] + (1..=2).map(|k| (k as f64 * t).cos() * f.cos[k - 1][i] + (k as f64 * t).sin() * f.sin[k - 1][i]).sum::<f64>())
///     .collect();
/// let want = wigner_d(2, t, 0.0, 0.0);
/// assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-14));
/// ```
#[derive(Debug, Clone)]
pub struct WignerDFactors {
    /// The part of `Y(t)` that does not turn (the `m = 0` component).
    pub fixed: Vec<f64>,
    /// The coefficient of `cos(k t)` in `Y(t)`, `k = 1..=l`.
    pub cos: Vec<Vec<f64>>,
    /// The coefficient of `sin(k t)` in `Y(t)`, `k = 1..=l`.
    pub sin: Vec<Vec<f64>>,
    /// `J` (`exp(t X_x) = J exp(t X_y) J^T`).
    pub j: Vec<f64>,
}

/// The factors of `D^l` ([`WignerDFactors`]).
///
/// ```
/// let f = equivariant_core::o3::wigner_d_factors(1);
/// assert_eq!((f.cos.len(), f.j.len()), (1, 9));
/// ```
pub fn wigner_d_factors(l: u32) -> WignerDFactors {
    let t = degree_tables(l);
    let d = t.l;
    let mut fixed = identity(d);
    let (mut cos, mut sin) = (
        vec![vec![0.0; d * d]; l as usize],
        vec![vec![0.0; d * d]; l as usize],
    );
    for &(a, b, w) in &t.pairs {
        // exp(t X_y) turns (v[a], v[b]) by [[cos wt, sin wt], [-sin wt, cos wt]], w = +-k.
        let k = w.abs().round() as usize;
        let sign = w.signum();
        fixed[a * d + a] = 0.0;
        fixed[b * d + b] = 0.0;
        cos[k - 1][a * d + a] = 1.0;
        cos[k - 1][b * d + b] = 1.0;
        sin[k - 1][a * d + b] = sign;
        sin[k - 1][b * d + a] = -sign;
    }
    WignerDFactors {
        fixed,
        cos,
        sin,
        j: t.j.clone(),
    }
}

/// e3nn's `flat_wigner(lmax, alpha, beta, gamma)` (of `o3._so3grid`): `sqrt(2l+1) D^l(alpha,
/// beta, gamma)` flattened row-major, for `l = 0..=lmax` one after the other
/// (`sum (2l+1)^2` values), the functions on SO(3) that `SO3Grid` samples.
///
/// ```
/// let f = equivariant_core::o3::flat_wigner(1, 0.0, 0.0, 0.0);
/// assert_eq!(f.len(), 1 + 9);
/// assert_eq!(f[0], 1.0);
/// assert!((f[1] - 3f64.sqrt()).abs() < 1e-15); // sqrt(3) times the identity
/// ```
pub fn flat_wigner(lmax: u32, alpha: f64, beta: f64, gamma: f64) -> Vec<f64> {
    (0..=lmax)
        .flat_map(|l| {
            let scale = ((2 * l + 1) as f64).sqrt();
            wigner_d(l, alpha, beta, gamma)
                .into_iter()
                .map(move |x| scale * x)
        })
        .collect()
}

/// The Wigner D matrix `D^l(alpha, beta, gamma)`, row-major `(2l+1) x (2l+1)`, e3nn's
/// `o3.wigner_D(l, alpha, beta, gamma)` = `exp(alpha X_y) exp(beta X_x) exp(gamma X_y)`.
///
/// `alpha`, `gamma` rotate about y and `beta` about x; `gamma` is applied first.
///
/// ```
/// use equivariant_core::o3::{angles_to_matrix, wigner_d};
/// let (a, b, c) = (0.3, 1.2, -0.7);
/// let d1 = wigner_d(1, a, b, c);
/// let r = angles_to_matrix(a, b, c);
/// for i in 0..3 {
///     for j in 0..3 {
///         assert!((d1[i * 3 + j] - r[i][j]).abs() < 1e-14);
///     }
/// }
/// ```
pub fn wigner_d(l: u32, alpha: f64, beta: f64, gamma: f64) -> Vec<f64> {
    let t = degree_tables(l);
    let d = t.l;
    // exp(b X_x) exp(c X_y) = J exp(b X_y) J^T exp(c X_y): one dense product, the rest are
    // sparse planar rotations.
    let mut m = transpose(&t.j, d);
    t.rotate_y_right(gamma, &mut m);
    t.rotate_y_left(beta, &mut m);
    let mut out = matmul(&t.j, &m, d);
    t.rotate_y_left(alpha, &mut out);
    out
}

/// The identity matrix of size `d`, row-major.
fn identity(d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    (0..d).for_each(|i| out[i * d + i] = 1.0);
    out
}

impl Irrep {
    /// `D(a, b, c) * p^k`: the representation of the rotation, times the parity to the power
    /// `k` (`k = 1` composes with the inversion). Row-major `dim x dim`.
    ///
    /// ```
    /// let ir: equivariant_core::o3::Irrep = "1o".parse()?;
    /// let d = ir.d_from_angles(0.0, 0.0, 0.0, 1);
    /// assert!((d[0] + 1.0).abs() < 1e-14); // the inversion flips an odd vector
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn d_from_angles(&self, alpha: f64, beta: f64, gamma: f64, k: u32) -> Vec<f64> {
        let mut d = wigner_d(self.l, alpha, beta, gamma);
        if self.p.pow(k) == Parity::Odd {
            d.iter_mut().for_each(|x| *x = -*x);
        }
        d
    }
}

impl Irreps {
    /// The block-diagonal representation matrix, row-major `dim x dim`: each irrep
    /// instance gets `D^l(a, b, c) p^k` (e3nn's `Irreps.D_from_angles`).
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "2x0e+1x1o".parse()?;
    /// let d = irreps.d_from_angles(0.1, 0.2, 0.3, 0);
    /// assert_eq!(d.len(), 25);
    /// assert_eq!(d[0], 1.0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn d_from_angles(&self, alpha: f64, beta: f64, gamma: f64, k: u32) -> Vec<f64> {
        let dim = self.dim();
        let mut out = vec![0.0; dim * dim];
        let mut start = 0;
        for m in self {
            let block = m.ir.d_from_angles(alpha, beta, gamma, k);
            let d = m.ir.dim();
            for _ in 0..m.mul {
                for i in 0..d {
                    out[(start + i) * dim + start..(start + i) * dim + start + d]
                        .copy_from_slice(&block[i * d..(i + 1) * d]);
                }
                start += d;
            }
        }
        out
    }

    /// The representation of an orthogonal matrix `R` (O(3)): with `s = det R = ±1`, the
    /// rotation `s R` and `k = (1 - s) / 2` inversions (e3nn's `D_from_matrix`).
    /// A matrix that is not orthogonal is [`crate::Error::NotOrthogonal`].
    ///
    /// ```
    /// use equivariant_core::o3::{Irreps, rand_matrix};
    /// use rand::SeedableRng;
    /// let r = rand_matrix(&mut rand::rngs::StdRng::seed_from_u64(1));
    /// let irreps: Irreps = "1o".parse()?;
    /// let d = irreps.d_from_matrix(&r)?;
    /// assert!((d[1] - r[0][1]).abs() < 1e-12); // D^1(R) = R
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn d_from_matrix(&self, r: &Matrix3) -> Result<Vec<f64>> {
        let det = check_orthogonal(r, ORTHOGONALITY_TOLERANCE)?;
        let (s, k) = if det > 0.0 { (1.0, 0) } else { (-1.0, 1) };
        let proper = r.map(|row| row.map(|x| s * x));
        let (a, b, c) = matrix_to_angles(&proper)?;
        Ok(self.d_from_angles(a, b, c, k))
    }

    /// The representation of the rotation `q` (w, x, y, z), composed with `k` inversions.
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "1e".parse()?;
    /// let d = irreps.d_from_quaternion([1.0, 0.0, 0.0, 0.0], 0);
    /// assert!((d[0] - 1.0).abs() < 1e-12);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn d_from_quaternion(&self, q: Quaternion, k: u32) -> Vec<f64> {
        let (a, b, c) = quaternion_to_angles(q);
        self.d_from_angles(a, b, c, k)
    }

    /// The representation of the rotation by `angle` about `axis`, with `k` inversions.
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "1o".parse()?;
    /// let d = irreps.d_from_axis_angle([0.0, 1.0, 0.0], std::f64::consts::PI, 0);
    /// assert!((d[0] + 1.0).abs() < 1e-12); // half turn about y flips x
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn d_from_axis_angle(&self, axis: [f64; 3], angle: f64, k: u32) -> Vec<f64> {
        let (a, b, c) = axis_angle_to_angles(axis, angle);
        self.d_from_angles(a, b, c, k)
    }
}
