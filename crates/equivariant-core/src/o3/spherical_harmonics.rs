//! Real spherical harmonics in e3nn's basis, for any degree, with their gradients.
//!
//! e3nn's harmonics are the standard real harmonics without the Condon-Shortley phase,
//! written in the coordinates `(X, Y, Z) = (z, x, y)`: y is the polar axis, and index
//! `m = -l..l` of degree `l` sits at `l^2 + l + m`. As homogeneous polynomials of degree `l`
//! (`component` normalization, mean square component 1 on the unit sphere):
//!
//! ```text
//! Y_l^m(v)  = sqrt(2) P~_l^|m|(Z, r^2) Re (X + iY)^m      m > 0
//! Y_l^0(v)  =         P~_l^0  (Z, r^2)
//! Y_l^-m(v) = sqrt(2) P~_l^m  (Z, r^2) Im (X + iY)^m      m > 0
//! P~_m^m    = P~_{m-1}^{m-1} sqrt((2m+1) / (2m)),   P~_0^0 = 1
//! P~_l^m    = a_lm Z P~_{l-1}^m - b_lm r^2 P~_{l-2}^m
//! a_lm      = sqrt((4l^2 - 1) / (l^2 - m^2)),
//! b_lm      = sqrt((2l+1)(l+m-1)(l-m-1) / ((2l-3)(l^2 - m^2)))
//! ```
//!
//! The recursion is normalized at every step, so there is no factorial overflow at high
//! degree. The gradient is carried through the same recursion (`P~` depends on `Z` and
//! `r^2` only), so value and gradient are computed together in one pass. `norm`
//! normalization divides degree `l` by `sqrt(2l+1)`, `integral` divides by `sqrt(4 pi)`.
//!
//! Up to degree 3 (what most potentials ask for) the plan evaluates e3nn's explicit
//! polynomials instead (`o3::low_degree_harmonics`), one vector at a time, straight into its
//! output rows. Above it the recursion runs across sixteen vectors at a time, whose lanes are
//! then transposed into rows; f64 values alone run it one vector at a time.

use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;

use super::irreps::{Irrep, Irreps, MulIr, Parity};
use super::legendre::LegendreRecursion;
use super::low_degree_harmonics::{LOW_DIM, LOW_LMAX, Put, low_degrees};
use crate::error::{check_len, first_non_finite};
use crate::kernels::simd::Avx2Fma;
use crate::kernels::transpose::transpose;
use crate::real::dual::Dual;
use crate::{Error, Real, Result};

/// The largest of `ls`, or [`Error::InvalidArgument`] when no degree is asked for.
pub(crate) fn check_degrees(ls: &[u32]) -> Result<u32> {
    ls.iter().copied().max().ok_or(Error::InvalidArgument {
        name: "ls",
        reason: "no degree asked for".into(),
    })
}

/// e3nn's epsilon in `normalize`: `v / max(|v|, EPS)`.
pub const NORMALIZE_EPS: f64 = 1e-12;

/// Vectors per parallel task.
const CHUNK: usize = 512;

/// Vectors evaluated together in one pass of the recursion.
const LANES: usize = 16;

/// How each degree of the harmonics is scaled.
///
/// ```
/// use equivariant_core::o3::Normalization;
/// assert_eq!("component".parse::<Normalization>()?, Normalization::Component);
/// assert!("foo".parse::<Normalization>().is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Normalization {
    /// `integral Y_lm^2 dOmega = 1` over the unit sphere (e3nn's default).
    #[default]
    Integral,
    /// Each component has mean square 1 on the unit sphere: `|Y^l(v)|^2 = 2l + 1`.
    Component,
    /// `|Y^l(v)| = 1` on the unit sphere.
    Norm,
}

impl Normalization {
    /// The factor applied to the `component`-normalized harmonics of degree `l`.
    ///
    /// ```
    /// use equivariant_core::o3::Normalization;
    /// assert_eq!(Normalization::Norm.factor(4), 1.0 / 3.0);
    /// ```
    pub fn factor(self, l: u32) -> f64 {
        match self {
            Normalization::Component => 1.0,
            Normalization::Norm => 1.0 / ((2 * l + 1) as f64).sqrt(),
            Normalization::Integral => 1.0 / (4.0 * std::f64::consts::PI).sqrt(),
        }
    }
}

impl FromStr for Normalization {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "integral" => Ok(Normalization::Integral),
            "component" => Ok(Normalization::Component),
            "norm" => Ok(Normalization::Norm),
            _ => Err(Error::InvalidArgument {
                name: "normalization",
                reason: format!("{s:?} is not one of \"integral\", \"component\", \"norm\""),
            }),
        }
    }
}

impl fmt::Display for Normalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Normalization::Integral => "integral",
            Normalization::Component => "component",
            Normalization::Norm => "norm",
        })
    }
}

/// A prepared evaluator of the spherical harmonics of a list of degrees, as e3nn's
/// `o3.SphericalHarmonics` module.
///
/// Input: vectors `[n, 3]` row-major `(x, y, z)`. Output `[n, dim]`, the degrees in the
/// order asked for, each `2l+1` components `m = -l..l`. Gradients `[n, 3, dim]`:
/// `grad[i, a, k] = d out[i, k] / d vectors[i, a]`.
///
/// ```
/// use equivariant_core::o3::{Irreps, Normalization, SphericalHarmonicsPlan};
/// let sh = SphericalHarmonicsPlan::new(&"0e+1o+2e".parse()?, true, Normalization::Component)?;
/// let mut out = vec![0.0f64; 9];
/// sh.compute(&[0.0, 2.0, 0.0], &mut out)?;
/// // y is the polar axis: Y^1(y) = sqrt(3) (0, 1, 0).
/// assert!((out[2] - 3f64.sqrt()).abs() < 1e-15);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SphericalHarmonicsPlan {
    ls: Vec<u32>,
    lmax: u32,
    irreps_in: Irreps,
    irreps_out: Irreps,
    normalize: bool,
    normalization: Normalization,
    /// `a_lm`, `b_lm` at `l (l+1) / 2 + m`.
    a: Vec<f64>,
    b: Vec<f64>,
    /// `P~_m^m` for each `m`.
    diagonal: Vec<f64>,
    /// The asked degrees as runs of consecutive degrees: `(first component, first output
    /// column, length)`. A run is contiguous both in the lane-major scratch and in an
    /// output row, so it is stored as one transpose (`0..=lmax` is a single run).
    runs: Vec<(usize, usize, usize)>,
}

impl SphericalHarmonicsPlan {
    /// Harmonics with the degrees of `irreps_out` (each repeated `mul` times), for a vector
    /// input (`1o`) unless an odd degree is asked with even parity, which means a
    /// pseudovector (`1e`) input, as e3nn infers. Parities inconsistent with the input are
    /// an error.
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::new(&"1e+2e".parse()?, false, Normalization::Norm)?;
    /// assert_eq!(sh.irreps_in().to_string(), "1x1e");
    /// assert!(SphericalHarmonicsPlan::new(&"1o+2o".parse()?, false, Normalization::Norm).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(irreps_out: &Irreps, normalize: bool, normalization: Normalization) -> Result<Self> {
        let pseudo = irreps_out
            .iter()
            .any(|m| m.ir.l % 2 == 1 && m.ir.p == Parity::Even);
        let input_p = if pseudo { Parity::Even } else { Parity::Odd };
        let mut ls = Vec::new();
        for m in irreps_out {
            if m.ir.p != input_p.pow(m.ir.l) {
                return Err(Error::InvalidArgument {
                    name: "irreps_out",
                    reason: format!(
                        "{irreps_out} asks for l = {} with parity {:?}; a {} input gives {:?}",
                        m.ir.l,
                        m.ir.p,
                        Irrep::new(1, input_p),
                        input_p.pow(m.ir.l)
                    ),
                });
            }
            ls.extend(std::iter::repeat_n(m.ir.l, m.mul));
        }
        Self::build(ls, input_p, normalize, normalization)
    }

    /// Harmonics of the degrees `ls` (any order, repeats allowed) of a vector (`1o`).
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::from_ls(&[2, 0], true, Normalization::Component)?;
    /// assert_eq!(sh.irreps_out().to_string(), "1x2e+1x0e");
    /// assert_eq!(sh.dim(), 6);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn from_ls(ls: &[u32], normalize: bool, normalization: Normalization) -> Result<Self> {
        Self::build(ls.to_vec(), Parity::Odd, normalize, normalization)
    }

    fn build(
        ls: Vec<u32>,
        input_p: Parity,
        normalize: bool,
        normalization: Normalization,
    ) -> Result<Self> {
        let lmax = check_degrees(&ls)?;
        let irreps_out: Irreps = ls
            .iter()
            .map(|&l| MulIr::new(1, Irrep::new(l, input_p.pow(l))))
            .collect::<Irreps>()
            .simplify();
        let LegendreRecursion { a, b, diagonal } = LegendreRecursion::new(lmax);
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        let mut at = 0;
        for &l in &ls {
            let (src, d) = ((l * l) as usize, 2 * l as usize + 1);
            match runs.last_mut() {
                Some((first, _, len)) if *first + *len == src => *len += d,
                _ => runs.push((src, at, d)),
            }
            at += d;
        }
        Ok(SphericalHarmonicsPlan {
            runs,
            ls,
            lmax,
            irreps_in: Irrep::new(1, input_p).into(),
            irreps_out,
            normalize,
            normalization,
            a,
            b,
            diagonal,
        })
    }

    /// The degrees, in output order.
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::new(&"2x1o".parse()?, true, Normalization::Component)?;
    /// assert_eq!(sh.ls(), [1, 1]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn ls(&self) -> &[u32] {
        &self.ls
    }

    /// `1x1o` (vector input) or `1x1e` (pseudovector input).
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::from_ls(&[1], true, Normalization::Component)?;
    /// assert_eq!(sh.irreps_in().to_string(), "1x1o");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn irreps_in(&self) -> &Irreps {
        &self.irreps_in
    }

    /// Whether the vectors are normalized first (`Y(v / |v|)`) or not (`|v|^l Y(v / |v|)`,
    /// a polynomial).
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// assert!(!SphericalHarmonicsPlan::from_ls(&[1], false, Normalization::Norm)?.normalize());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn normalize(&self) -> bool {
        self.normalize
    }

    /// The normalization of each degree.
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::from_ls(&[1], false, Normalization::Norm)?;
    /// assert_eq!(sh.normalization(), Normalization::Norm);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn normalization(&self) -> Normalization {
        self.normalization
    }

    /// The output irreps (adjacent equal degrees merged, as e3nn).
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::from_ls(&[0, 1, 1], true, Normalization::Component)?;
    /// assert_eq!(sh.irreps_out().to_string(), "1x0e+2x1o");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn irreps_out(&self) -> &Irreps {
        &self.irreps_out
    }

    /// The output dimension `sum (2l+1)`.
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// assert_eq!(SphericalHarmonicsPlan::from_ls(&[0, 1, 2], true, Normalization::Norm)?.dim(), 9);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn dim(&self) -> usize {
        self.irreps_out.dim()
    }

    /// The harmonics of `vectors` (`[n, 3]`) into `out` (`[n, dim]`).
    ///
    /// Errors: [`Error::ShapeMismatch`] for wrong lengths, [`Error::NonFinite`] naming the
    /// first NaN or infinite coordinate (`out` is then unspecified).
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::from_ls(&[0, 1], false, Normalization::Component)?;
    /// let mut out = [0.0f32; 4];
    /// sh.compute(&[1.0f32, 0.0, 0.0], &mut out)?;
    /// assert!((out[1] - 3f32.sqrt()).abs() < 1e-6 && out[2] == 0.0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn compute<T: Real>(&self, vectors: &[T], out: &mut [T]) -> Result<()> {
        let n = self.check(vectors, out.len(), None)?;
        if n == 0 {
            return Ok(());
        }
        let dim = self.dim();
        let tables = self.tables::<T>();
        let bad = out
            .par_chunks_mut(CHUNK * dim)
            .zip(vectors.par_chunks(CHUNK * 3))
            .enumerate()
            .filter_map(|(k, (out, vectors))| {
                let bad = chunk_first_non_finite(vectors, k);
                if bad.is_none() {
                    self.task::<T, false>(&tables, vectors, out, &mut []);
                }
                bad
            })
            .min();
        non_finite_error(bad)
    }

    /// The harmonics into `out` (`[n, dim]`) and their gradients with respect to the
    /// vectors into `grad` (`[n, 3, dim]`), computed together.
    ///
    /// At the zero vector with `normalize = true` the value is `(1, 0, ...)` and the
    /// gradient is finite (e3nn's `v / max(|v|, 1e-12)`).
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::from_ls(&[1], false, Normalization::Component)?;
    /// let (mut out, mut grad) = ([0.0f64; 3], [0.0f64; 9]);
    /// sh.compute_with_gradients(&[0.3, -0.2, 0.5], &mut out, &mut grad)?;
    /// // Y^1 = sqrt(3) v: the gradient is sqrt(3) I.
    /// assert!((grad[0] - 3f64.sqrt()).abs() < 1e-15 && grad[1].abs() < 1e-15);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn compute_with_gradients<T: Real>(
        &self,
        vectors: &[T],
        out: &mut [T],
        grad: &mut [T],
    ) -> Result<()> {
        let n = self.check(vectors, out.len(), Some(grad.len()))?;
        if n == 0 {
            return Ok(());
        }
        let dim = self.dim();
        let tables = self.tables::<T>();
        let bad = out
            .par_chunks_mut(CHUNK * dim)
            .zip(grad.par_chunks_mut(CHUNK * 3 * dim))
            .zip(vectors.par_chunks(CHUNK * 3))
            .enumerate()
            .filter_map(|(k, ((out, grad), vectors))| {
                let bad = chunk_first_non_finite(vectors, k);
                if bad.is_none() {
                    self.task::<T, true>(&tables, vectors, out, grad);
                }
                bad
            })
            .min();
        non_finite_error(bad)
    }

    /// The vector-Jacobian product of the harmonics from the gradients
    /// [`compute_with_gradients`](Self::compute_with_gradients) made: `out[i, a] = sum_k
    /// grad[i, a, k] grad_out[i, k]` (`grad` `[n, 3, dim]`, `grad_out` `[n, dim]`, `out`
    /// `[n, 3]`), the backward of the harmonics, in parallel over rows.
    ///
    /// Errors: [`Error::ShapeMismatch`] for lengths that are not `[n, 3, dim]`, `[n, dim]`
    /// and `[n, 3]` of one `n`.
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::from_ls(&[1], false, Normalization::Component)?;
    /// let (mut y, mut grad) = ([0.0f64; 3], [0.0f64; 9]);
    /// sh.compute_with_gradients(&[0.3, -0.2, 0.5], &mut y, &mut grad)?;
    /// let mut g = [0.0; 3];
    /// sh.vector_jacobian_product(&grad, &[1.0, 0.0, 0.0], &mut g)?;
    /// // Y^1 = sqrt(3) v: d(Y_0)/dv = sqrt(3) e_0.
    /// assert!((g[0] - 3f64.sqrt()).abs() < 1e-15 && g[1].abs() < 1e-15);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn vector_jacobian_product<T: Real>(
        &self,
        grad: &[T],
        grad_out: &[T],
        out: &mut [T],
    ) -> Result<()> {
        let dim = self.dim();
        let n = out.len() / 3;
        for (what, expected, got) in [
            ("out [n, 3]", n * 3, out.len()),
            ("grad [n, 3, dim]", n * 3 * dim, grad.len()),
            ("grad_out [n, dim]", n * dim, grad_out.len()),
        ] {
            if expected != got {
                return Err(Error::ShapeMismatch {
                    what,
                    expected,
                    got,
                });
            }
        }
        if dim == 0 {
            out.fill(T::zero());
            return Ok(());
        }
        out.par_chunks_mut(CHUNK * 3)
            .zip(grad.par_chunks(CHUNK * 3 * dim))
            .zip(grad_out.par_chunks(CHUNK * dim))
            .for_each(|((out, grad), grad_out)| contract(grad, grad_out, out, dim));
        Ok(())
    }

    /// The backward of the harmonics at `vectors` (`[n, 3]`) given `grad_out` (`[n, dim]`):
    /// `out[i, a] = sum_k dY_k/dv_a (v_i) grad_out[i, k]` (`[n, 3]`), the values
    /// [`compute_with_gradients`](Self::compute_with_gradients) then
    /// [`vector_jacobian_product`](Self::vector_jacobian_product) give, with each parallel
    /// task's gradients in a buffer of its rows instead of an `[n, 3, dim]` one written and
    /// read back.
    ///
    /// Errors: as [`compute`](Self::compute), and [`Error::ShapeMismatch`] for `grad_out`
    /// and `out` of other lengths.
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::from_ls(&[1], false, Normalization::Component)?;
    /// let mut g = [0.0f64; 3];
    /// sh.backward(&[0.3, -0.2, 0.5], &[1.0, 0.0, 0.0], &mut g)?;
    /// // Y^1 = sqrt(3) v: d(Y_0)/dv = sqrt(3) e_0.
    /// assert!((g[0] - 3f64.sqrt()).abs() < 1e-15 && g[1].abs() < 1e-15);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn backward<T: Real>(&self, vectors: &[T], grad_out: &[T], out: &mut [T]) -> Result<()> {
        let dim = self.dim();
        let n = self.check(vectors, vectors.len() / 3 * dim, None)?;
        check_len("grad_out [n, dim]", n * dim, grad_out.len())?;
        check_len("out [n, 3]", n * 3, out.len())?;
        if n == 0 || dim == 0 {
            out.fill(T::zero());
            return Ok(());
        }
        let tables = self.tables::<T>();
        let bad = out
            .par_chunks_mut(CHUNK * 3)
            .zip(vectors.par_chunks(CHUNK * 3))
            .zip(grad_out.par_chunks(CHUNK * dim))
            .enumerate()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(y, jac), (k, ((out, vectors), grad_out))| {
                    let bad = chunk_first_non_finite(vectors, k);
                    if bad.is_none() {
                        let rows = vectors.len() / 3;
                        y.resize(rows * dim, T::zero());
                        jac.resize(rows * 3 * dim, T::zero());
                        self.task::<T, true>(&tables, vectors, y, jac);
                        contract(jac, grad_out, out, dim);
                    }
                    bad
                },
            )
            .flatten()
            .min();
        non_finite_error(bad)
    }

    /// The tangent of the harmonics along `tangents` (`[n, 3]`): `out[i] = J_Y(v_i) s_i`
    /// (`[n, dim]`), the derivative of `Y(v_i + h s_i)` at `h = 0`, computed exactly (by
    /// dual numbers through the recursion, in f64).
    ///
    /// Errors: as [`compute`](Self::compute), and [`Error::ShapeMismatch`] /
    /// [`Error::NonFinite`] for `tangents` unlike `vectors`.
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::from_ls(&[1], true, Normalization::Component)?;
    /// let mut dy = [0.0f64; 3];
    /// // Y^1 = sqrt(3) v / |v|: moving along v leaves it unchanged, across it does not.
    /// sh.compute_tangent(&[2.0, 0.0, 0.0], &[1.0, 0.0, 0.0], &mut dy)?;
    /// assert!(dy.iter().all(|d| d.abs() < 1e-15));
    /// sh.compute_tangent(&[2.0, 0.0, 0.0], &[0.0, 1.0, 0.0], &mut dy)?;
    /// assert!((dy[1] - 3f64.sqrt() / 2.0).abs() < 1e-15); // y is the polar axis: m = 0
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn compute_tangent<T: Real>(
        &self,
        vectors: &[T],
        tangents: &[T],
        out: &mut [T],
    ) -> Result<()> {
        let seeds = Self::seeds(vectors, tangents)?;
        let mut y = vec![Dual::default(); out.len()];
        self.compute(&seeds, &mut y)?;
        out.iter_mut()
            .zip(&y)
            .for_each(|(o, y)| *o = T::from_f64(y.eps));
        Ok(())
    }

    /// The backward of [`compute_tangent`](Self::compute_tangent): for `grad_out = dL/d(dY)`
    /// (`[n, dim]`), `grad_vectors[i, b] = sum_k grad_out[i, k] sum_a d^2 Y_k / dv_b dv_a
    /// s_a` (the Hessian along `s_i`) and `grad_tangents[i, a] = sum_k grad_out[i, k]
    /// dY_k/dv_a` (`[n, 3]` each), exact (dual numbers through the gradient's recursion, in
    /// f64).
    ///
    /// Errors: as [`compute_tangent`](Self::compute_tangent), and
    /// [`Error::ShapeMismatch`] for buffers of the wrong length.
    ///
    /// ```
    /// use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan};
    /// let sh = SphericalHarmonicsPlan::from_ls(&[2], true, Normalization::Component)?;
    /// let (v, s, g) = ([0.3, -0.4, 1.2], [0.5, 0.1, -0.2], [1.0, -2.0, 0.5, 0.3, 0.7]);
    /// let (mut gv, mut gs) = ([0.0f64; 3], [0.0f64; 3]);
    /// sh.tangent_backward(&v, &s, &g, &mut gv, &mut gs)?;
    /// // Against a central difference of g . dY(v) in v_x.
    /// let dot = |v: [f64; 3]| {
    ///     let mut dy = [0.0; 5];
    ///     sh.compute_tangent(&v, &s, &mut dy).unwrap();
    ///     dy.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
    /// };
    /// let h = 1e-6;
    /// let slope = (dot([v[0] + h, v[1], v[2]]) - dot([v[0] - h, v[1], v[2]])) / (2.0 * h);
    /// assert!((gv[0] - slope).abs() < 1e-7);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn tangent_backward<T: Real>(
        &self,
        vectors: &[T],
        tangents: &[T],
        grad_out: &[T],
        grad_vectors: &mut [T],
        grad_tangents: &mut [T],
    ) -> Result<()> {
        let seeds = Self::seeds(vectors, tangents)?;
        let dim = self.dim();
        for (what, len) in [
            ("grad_vectors [n, 3]", grad_vectors.len()),
            ("grad_tangents [n, 3]", grad_tangents.len()),
        ] {
            if len != vectors.len() {
                return Err(Error::ShapeMismatch {
                    what,
                    expected: vectors.len(),
                    got: len,
                });
            }
        }
        let n = vectors.len() / 3;
        if grad_out.len() != n * dim {
            return Err(Error::ShapeMismatch {
                what: "grad_out [n, dim]",
                expected: n * dim,
                got: grad_out.len(),
            });
        }
        let mut y = vec![Dual::default(); n * dim];
        let mut grad = vec![Dual::default(); n * 3 * dim];
        self.compute_with_gradients(&seeds, &mut y, &mut grad)?;
        for (((gv, gs), grad), g) in grad_vectors
            .chunks_exact_mut(3)
            .zip(grad_tangents.chunks_exact_mut(3))
            .zip(grad.chunks_exact(3 * dim.max(1)))
            .zip(grad_out.chunks_exact(dim.max(1)))
        {
            for (a, row) in grad.chunks_exact(dim).enumerate() {
                let (mut hessian, mut jacobian) = (0.0, 0.0);
                for (d, &g) in row.iter().zip(g) {
                    hessian += d.eps * Real::to_f64(g);
                    jacobian += d.re * Real::to_f64(g);
                }
                gv[a] = T::from_f64(hessian);
                gs[a] = T::from_f64(jacobian);
            }
        }
        Ok(())
    }

    /// The dual vectors `v + s eps` (f64), after checking that `tangents` is like `vectors`
    /// and finite.
    fn seeds<T: Real>(vectors: &[T], tangents: &[T]) -> Result<Vec<Dual>> {
        if tangents.len() != vectors.len() {
            return Err(Error::ShapeMismatch {
                what: "tangents (as vectors, [n, 3])",
                expected: vectors.len(),
                got: tangents.len(),
            });
        }
        if let Some(index) = first_non_finite(tangents) {
            return Err(Error::NonFinite {
                what: "tangents",
                index,
            });
        }
        Ok(vectors
            .iter()
            .zip(tangents)
            .map(|(v, s)| Dual::new(Real::to_f64(*v), Real::to_f64(*s)))
            .collect())
    }

    /// Validates lengths and finiteness; returns the number of vectors.
    fn check<T: Real>(
        &self,
        vectors: &[T],
        out_len: usize,
        grad_len: Option<usize>,
    ) -> Result<usize> {
        if !vectors.len().is_multiple_of(3) {
            return Err(Error::ShapeMismatch {
                what: "vectors (a multiple of 3)",
                expected: vectors.len() / 3 * 3,
                got: vectors.len(),
            });
        }
        let n = vectors.len() / 3;
        let expected = n * self.dim();
        if out_len != expected {
            return Err(Error::ShapeMismatch {
                what: "spherical harmonics output [n, dim]",
                expected,
                got: out_len,
            });
        }
        if let Some(got) = grad_len
            && got != 3 * expected
        {
            return Err(Error::ShapeMismatch {
                what: "spherical harmonics gradient [n, 3, dim]",
                expected: 3 * expected,
                got,
            });
        }
        Ok(n)
    }

    fn tables<T: Real>(&self) -> Tables<T> {
        let cast = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect();
        Tables {
            a: cast(&self.a),
            b: cast(&self.b),
            diagonal: cast(&self.diagonal),
            factor: (0..=self.lmax)
                .map(|l| T::from_f64(self.normalization.factor(l)))
                .collect(),
            sqrt2: T::from_f64(std::f64::consts::SQRT_2),
            avx2: Avx2Fma::detect(),
        }
    }

    /// The blocks of one parallel task: `vectors` `[n, 3]` into `out` `[n, dim]` (and, with
    /// `GRAD`, `grad` `[n, 3, dim]`), compiled for AVX2 and FMA where `t` holds their token
    /// (the lane loops then run eight f32 or four f64 wide, instead of SSE2's four or two).
    fn task<T: Real, const GRAD: bool>(
        &self,
        t: &Tables<T>,
        vectors: &[T],
        out: &mut [T],
        grad: &mut [T],
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = t.avx2 {
            // SAFETY: `token` proves the CPU has the AVX2 and FMA `task_avx2` is compiled
            // for.
            return unsafe { self.task_avx2::<T, GRAD>(token, t, vectors, out, grad) };
        }
        self.blocks::<T, GRAD>(t, vectors, out, grad)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn task_avx2<T: Real, const GRAD: bool>(
        &self,
        _token: Avx2Fma,
        t: &Tables<T>,
        vectors: &[T],
        out: &mut [T],
        grad: &mut [T],
    ) {
        self.blocks::<T, GRAD>(t, vectors, out, grad)
    }

    /// [`task`](Self::task) for the instruction set of the caller.
    #[inline(always)]
    fn blocks<T: Real, const GRAD: bool>(
        &self,
        t: &Tables<T>,
        vectors: &[T],
        out: &mut [T],
        grad: &mut [T],
    ) {
        if self.lmax <= LOW_LMAX {
            // The components as a constant, so the per-vector loops and copies unroll.
            return match self.lmax {
                0 => self.rows::<T, GRAD, 1>(t, vectors, out, grad),
                1 => self.rows::<T, GRAD, 4>(t, vectors, out, grad),
                2 => self.rows::<T, GRAD, 9>(t, vectors, out, grad),
                _ => self.rows::<T, GRAD, LOW_DIM>(t, vectors, out, grad),
            };
        }
        // The values alone in f64: one vector at a time beats the lanes, whose 4 x 4
        // transposes bound them (1e5 vectors, lmax 8, 2 threads: 3.6-4.0 against 4.7-4.9 ms;
        // equal at lmax 5). In f32 the lanes' 8 x 8 transposes win (2.7-3.1 against 3.5 ms).
        if !GRAD && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>() {
            return self.rows_recursion(t, vectors, out);
        }
        let dim = self.dim();
        let mut s = LaneScratch::new(self.lmax, GRAD);
        let blocks = out.chunks_mut(LANES * dim).zip(vectors.chunks(LANES * 3));
        if GRAD {
            for ((out, v), grad) in blocks.zip(grad.chunks_mut(LANES * 3 * dim)) {
                self.block::<T, true>(t, v, out, grad, &mut s);
            }
        } else {
            for (out, v) in blocks {
                self.block::<T, false>(t, v, out, &mut [], &mut s);
            }
        }
    }

    /// The values of every degree by the recursion of [`Self::block`] (the same operations
    /// in the same order, so the same bits), one vector at a time, straight into its output
    /// row (through a row of all components where the degrees are not all asked in order).
    #[inline(always)]
    fn rows_recursion<T: Real>(&self, t: &Tables<T>, vectors: &[T], out: &mut [T]) {
        let dim = self.dim();
        let n = ((self.lmax + 1) * (self.lmax + 1)) as usize;
        let whole = self.runs == [(0, 0, n)];
        let zero = T::zero();
        let eps = T::from_f64(NORMALIZE_EPS);
        let mut all = vec![zero; if whole { 0 } else { n }];
        let lmax = self.lmax as usize;
        // The recursion's coefficients and each component's scale, in its (m, l) order.
        let coef: Vec<(T, T, T)> = (0..=lmax)
            .flat_map(|m| (m..=lmax).map(move |l| (m, l)))
            .map(|(m, l)| {
                let at = l * (l + 1) / 2 + m;
                let f = if m == 0 {
                    t.factor[l]
                } else {
                    t.factor[l] * t.sqrt2
                };
                (t.a[at], t.b[at], f)
            })
            .collect();
        let blocks = vectors.chunks(LANES * 3).zip(out.chunks_mut(LANES * dim));
        for (vectors, out) in blocks {
            let mut inv_norms = [T::one(); LANES];
            if self.normalize {
                let mut sq = [zero; LANES];
                for (s, v) in sq.iter_mut().zip(vectors.chunks_exact(3)) {
                    *s = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
                }
                for j in 0..LANES {
                    let norm = sq[j].sqrt();
                    inv_norms[j] = if norm > eps { norm } else { eps }.recip();
                }
            }
            for ((v, out_row), inv_norm) in vectors
                .chunks_exact(3)
                .zip(out.chunks_exact_mut(dim))
                .zip(inv_norms)
            {
                let row: &mut [T] = if whole { &mut out_row[..n] } else { &mut all };
                // The standard frame (X, Y, Z) = (z, x, y), as in `block`.
                let (x, y, z) = (v[2] * inv_norm, v[0] * inv_norm, v[1] * inv_norm);
                let r2 = x * x + y * y + z * z;
                let (mut c, mut sn) = (T::one(), zero);
                let mut k = 0;
                for m in 0..=lmax {
                    if m > 0 {
                        (c, sn) = (x * c - y * sn, x * sn + y * c);
                    }
                    let (mut p1, mut p2) = (t.diagonal[m], zero);
                    let (fc, fs) = if m == 0 { (T::one(), zero) } else { (c, sn) };
                    for l in m..=lmax {
                        let (a, b, f) = coef[k];
                        k += 1;
                        if l > m {
                            let p = a * z * p1 - b * r2 * p2;
                            (p2, p1) = (p1, p);
                        }
                        let centre = l * l + l;
                        let fp = f * p1;
                        row[centre + m] = fp * fc;
                        if m > 0 {
                            row[centre - m] = fp * fs;
                        }
                    }
                }
                if !whole {
                    for &(src, at, len) in &self.runs {
                        out_row[at..at + len].copy_from_slice(&all[src..src + len]);
                    }
                }
            }
        }
    }

    /// The degrees up to 3, one vector at a time: e3nn's polynomials
    /// ([`low_degrees`]) and their partials, scaled and projected as [`Self::block`]
    /// does, each vector's values written as its own rows (no transposes).
    #[inline(always)]
    fn rows<T: Real, const GRAD: bool, const N: usize>(
        &self,
        t: &Tables<T>,
        vectors: &[T],
        out: &mut [T],
        grad: &mut [T],
    ) {
        // `component` normalization multiplies by nothing: compiled without the factors.
        if self.normalization == Normalization::Component {
            self.rows_scaled::<T, GRAD, N, false>(t, vectors, out, grad)
        } else {
            self.rows_scaled::<T, GRAD, N, true>(t, vectors, out, grad)
        }
    }

    /// [`Self::rows`], with (`SCALED`) or without the normalization's factors.
    #[inline(always)]
    fn rows_scaled<T: Real, const GRAD: bool, const N: usize, const SCALED: bool>(
        &self,
        t: &Tables<T>,
        vectors: &[T],
        out: &mut [T],
        grad: &mut [T],
    ) {
        debug_assert_eq!(N, ((self.lmax + 1) * (self.lmax + 1)) as usize);
        let dim = self.dim();
        // Every degree up to lmax in order (the usual case): each component goes straight
        // to its place in the output rows. Otherwise through a row of all components.
        let whole = self.runs == [(0, 0, N)];
        let zero = T::zero();
        let mut factor = [T::one(); LOW_LMAX as usize + 1];
        factor[..t.factor.len()].copy_from_slice(&t.factor);
        let eps = T::from_f64(NORMALIZE_EPS);
        let (mut val, mut g) = ([zero; N], [[zero; N]; 3]);
        let blocks = vectors.chunks(LANES * 3).zip(out.chunks_mut(LANES * dim));
        for (b, (vectors, out)) in blocks.enumerate() {
            // `1 / max(|v|, eps)` and whether `v` was projected, for the block's vectors
            // together: as vectors, the square roots and divisions cost a lane's share each.
            let (mut inv_norms, mut projected) = ([T::one(); LANES], [zero; LANES]);
            if self.normalize {
                let mut sq = [zero; LANES];
                for (s, v) in sq.iter_mut().zip(vectors.chunks_exact(3)) {
                    *s = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
                }
                for j in 0..LANES {
                    let norm = sq[j].sqrt();
                    let project = norm > eps;
                    inv_norms[j] = if project { norm } else { eps }.recip();
                    projected[j] = if project { T::one() } else { zero };
                }
            }
            if whole && !GRAD {
                // The values alone, every degree in order (dim == N): rows of the block.
                for ((v, row), (inv_norm, _)) in vectors
                    .chunks_exact(3)
                    .zip(out.chunks_exact_mut(N))
                    .zip(inv_norms.iter().zip(&projected))
                {
                    let mut u = [v[0], v[1], v[2]];
                    if self.normalize {
                        u = u.map(|x| x * *inv_norm);
                    }
                    let row: &mut [T; N] = row.try_into().expect("N");
                    let mut put = Values::<T, N, SCALED> { row, factor };
                    low_degrees(self.lmax, (u[0], u[1], u[2]), &mut put);
                }
                continue;
            }
            let grad = if GRAD {
                &mut grad[b * LANES * 3 * dim..][..vectors.len() * dim]
            } else {
                &mut []
            };
            // In f64 the compiler packs this loop's stores across rows with shuffles and it
            // runs slower than the general loop below (value + gradient at 1e5 vectors, lmax
            // 3: 4.7-4.9 against 3.3 ms on one thread); in f32 it is the faster (2.1-2.3
            // against 3.0 ms).
            let f32 = std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>();
            if whole && f32 {
                // Values and gradients, every degree in order (dim == N): rows of the block.
                for ((v, (row, rows)), (inv_norm, projected)) in vectors
                    .chunks_exact(3)
                    .zip(out.chunks_exact_mut(N).zip(grad.chunks_exact_mut(3 * N)))
                    .zip(inv_norms.iter().zip(&projected))
                {
                    let mut u = [v[0], v[1], v[2]];
                    if self.normalize {
                        u = u.map(|x| x * *inv_norm);
                    }
                    let (x, rest) = rows.split_at_mut(N);
                    let (y, z) = rest.split_at_mut(N);
                    let mut row = Row {
                        value: row.try_into().expect("N"),
                        grad: Some([x, y, z].map(|r| <&mut [T; N]>::try_from(r).expect("N"))),
                    };
                    let mut put = Projected::<T, N, SCALED> {
                        row: &mut row,
                        factor,
                        k: u.map(|x| x * *projected),
                        inv_norm: *inv_norm,
                    };
                    low_degrees(self.lmax, (u[0], u[1], u[2]), &mut put);
                }
                continue;
            }
            for (j, v) in vectors.chunks_exact(3).enumerate() {
                let (mut u, inv_norm) = ([v[0], v[1], v[2]], inv_norms[j]);
                if self.normalize {
                    u = u.map(|x| x * inv_norm);
                }
                let mut row = if whole {
                    let value: &mut [T; N] = (&mut out[j * dim..][..N]).try_into().expect("N");
                    let grad = if GRAD {
                        let [x, y, z] = grad[j * 3 * dim..][..3 * dim]
                            .get_disjoint_mut([0..N, dim..dim + N, 2 * dim..2 * dim + N])
                            .expect("three rows");
                        Some([x, y, z].map(|r| <&mut [T; N]>::try_from(r).expect("N")))
                    } else {
                        None
                    };
                    Row { value, grad }
                } else {
                    let [x, y, z] = &mut g;
                    Row {
                        value: &mut val,
                        grad: GRAD.then_some([x, y, z]),
                    }
                };
                let mut put = Projected::<T, N, SCALED> {
                    row: &mut row,
                    factor,
                    k: u.map(|x| x * projected[j]),
                    inv_norm,
                };
                low_degrees(self.lmax, (u[0], u[1], u[2]), &mut put);
                if whole {
                    continue;
                }
                for &(src, at, len) in &self.runs {
                    out[j * dim + at..][..len].copy_from_slice(&val[src..src + len]);
                    if GRAD {
                        for (axis, g) in g.iter().enumerate() {
                            let row = &mut grad[(j * 3 + axis) * dim + at..][..len];
                            row.copy_from_slice(&g[src..src + len]);
                        }
                    }
                }
            }
        }
    }

    /// Up to [`LANES`] vectors at once, structure of arrays: the recursion runs across lanes
    /// into lane-major buffers (`[component][lane]`, contiguous, so the loops vectorize and
    /// the dependency chain of the recursion is hidden by independent lanes); the asked
    /// degrees are then stored as transposes of those buffers, a run of degrees at a time.
    #[inline(always)]
    fn block<T: Real, const GRAD: bool>(
        &self,
        t: &Tables<T>,
        vectors: &[T],
        out: &mut [T],
        grad: &mut [T],
        s: &mut LaneScratch<T>,
    ) {
        let nb = vectors.len() / 3;
        let dim = self.dim();
        let zero = T::zero();
        // The standard frame (X, Y, Z) = (z, x, y) of the (normalized) vectors.
        let (mut cx, mut cy, mut cz) = ([zero; LANES], [zero; LANES], [zero; LANES]);
        for (i, v) in vectors.chunks_exact(3).enumerate() {
            (cx[i], cy[i], cz[i]) = (v[2], v[0], v[1]);
        }
        // Normalized across lanes (so the square roots and divisions run as vectors);
        // `projected[i]` is 1 where the vector was projected on the sphere, else 0 (the
        // zero vector, or no normalization), for the gradient below.
        let mut inv_norm = [T::one(); LANES];
        let mut projected = [zero; LANES];
        if self.normalize {
            let eps = T::from_f64(NORMALIZE_EPS);
            for i in 0..LANES {
                let norm = (cy[i] * cy[i] + cz[i] * cz[i] + cx[i] * cx[i]).sqrt();
                let project = norm > eps;
                inv_norm[i] = if project { norm } else { eps }.recip();
                projected[i] = if project { T::one() } else { zero };
                cx[i] *= inv_norm[i];
                cy[i] *= inv_norm[i];
                cz[i] *= inv_norm[i];
            }
        }
        let mut r2 = [zero; LANES];
        for i in 0..LANES {
            r2[i] = cx[i] * cx[i] + cy[i] * cy[i] + cz[i] * cz[i];
        }
        let two = T::from_f64(2.0);
        // Re / Im (X + iY)^m and of the previous power.
        let (mut c, mut sn) = ([T::one(); LANES], [zero; LANES]);
        let (mut c_prev, mut s_prev) = ([zero; LANES], [zero; LANES]);
        for m in 0..=self.lmax as usize {
            if m > 0 {
                c_prev = c;
                s_prev = sn;
                for i in 0..LANES {
                    c[i] = cx[i] * c_prev[i] - cy[i] * s_prev[i];
                    sn[i] = cx[i] * s_prev[i] + cy[i] * c_prev[i];
                }
            }
            let mf = T::from_f64(m as f64);
            // P~_l^m and its partials in Z and s = r^2, for l = m, m+1, ...
            let mut p1 = [t.diagonal[m]; LANES];
            let (mut p1z, mut p1s) = ([zero; LANES], [zero; LANES]);
            let (mut p2, mut p2z, mut p2s) = ([zero; LANES], [zero; LANES], [zero; LANES]);
            for l in m..=self.lmax as usize {
                if l > m {
                    let at = l * (l + 1) / 2 + m;
                    let (a, b) = (t.a[at], t.b[at]);
                    for i in 0..LANES {
                        let p = a * cz[i] * p1[i] - b * r2[i] * p2[i];
                        if GRAD {
                            let pz = a * (p1[i] + cz[i] * p1z[i]) - b * r2[i] * p2z[i];
                            let ps = a * cz[i] * p1s[i] - b * (p2[i] + r2[i] * p2s[i]);
                            p2z[i] = p1z[i];
                            p2s[i] = p1s[i];
                            p1z[i] = pz;
                            p1s[i] = ps;
                        }
                        p2[i] = p1[i];
                        p1[i] = p;
                    }
                }
                let f = if m == 0 {
                    t.factor[l]
                } else {
                    t.factor[l] * t.sqrt2
                };
                let (pos, neg) = (l * l + l + m, l * l + l - m);
                if m == 0 {
                    let v = &mut s.value[pos];
                    for i in 0..LANES {
                        v[i] = f * p1[i];
                    }
                } else {
                    let (vp, vn): ([T; LANES], [T; LANES]) = (
                        std::array::from_fn(|i| f * p1[i] * c[i]),
                        std::array::from_fn(|i| f * p1[i] * sn[i]),
                    );
                    (s.value[pos], s.value[neg]) = (vp, vn);
                }
                if !GRAD {
                    continue;
                }
                // Formed in local rows, then stored: written in place, the rows' bounds
                // checks kept this loop from running as vectors.
                let (mut gp, mut gn) = ([[zero; LANES]; 3], [[zero; LANES]; 3]);
                for i in 0..LANES {
                    let fp = f * p1[i];
                    let ds = two * p1s[i] * f;
                    let dz = p1z[i] * f + cz[i] * ds;
                    if m == 0 {
                        gp[0][i] = cx[i] * ds;
                        gp[1][i] = cy[i] * ds;
                        gp[2][i] = dz;
                    } else {
                        // d Re(X+iY)^m = m (Re_{m-1} dX - Im_{m-1} dY),
                        // d Im(X+iY)^m = m (Im_{m-1} dX + Re_{m-1} dY).
                        let (mc, ms) = (mf * c_prev[i] * fp, mf * s_prev[i] * fp);
                        gp[0][i] = cx[i] * ds * c[i] + mc;
                        gp[1][i] = cy[i] * ds * c[i] - ms;
                        gp[2][i] = dz * c[i];
                        gn[0][i] = cx[i] * ds * sn[i] + ms;
                        gn[1][i] = cy[i] * ds * sn[i] + mc;
                        gn[2][i] = dz * sn[i];
                    }
                }
                for (axis, (gp, gn)) in gp.into_iter().zip(gn).enumerate() {
                    s.grad[axis][pos] = gp;
                    if m > 0 {
                        s.grad[axis][neg] = gn;
                    }
                }
            }
        }
        // Store the asked degrees: each run is the transpose of a lane-major block.
        let store = |scratch: &[[T; LANES]], out: &mut [T], stride: usize| {
            let scratch = scratch.as_flattened();
            for &(src, at, len) in &self.runs {
                let src = &scratch[src * LANES..];
                transpose(t.avx2, (len, nb), src, LANES, &mut out[at..], stride);
            }
        };
        store(&s.value, out, dim);
        if !GRAD {
            return;
        }
        // Through the normalization: Y is homogeneous of degree l, so
        // (I - u u^T) grad Y(u) = grad Y(u) - l Y(u) u (Euler's theorem); at the zero
        // vector (not projected) the gradient is the unprojected one.
        // e3nn's frame: d/dx = d/dY, d/dy = d/dZ, d/dz = d/dX (grad[1], [2], [0]).
        let u = [&cx, &cy, &cz];
        for (axis, u) in u.into_iter().enumerate() {
            for l in 0..=self.lmax as usize {
                let lf = T::from_f64(l as f64);
                let k: [T; LANES] = std::array::from_fn(|i| lf * projected[i] * u[i]);
                for c in l * l..(l + 1) * (l + 1) {
                    let y = s.value[c];
                    let g = &mut s.grad[axis][c];
                    for i in 0..LANES {
                        g[i] = (g[i] - y[i] * k[i]) * inv_norm[i];
                    }
                }
            }
        }
        for (axis, frame) in [1, 2, 0].into_iter().enumerate() {
            store(&s.grad[frame], &mut grad[axis * dim..], 3 * dim);
        }
    }
}

/// One vector's output: its values and, for the gradient, its three rows `d/dx`, `d/dy`,
/// `d/dz` (`[N]` each).
struct Row<'a, T, const N: usize> {
    value: &'a mut [T; N],
    grad: Option<[&'a mut [T; N]; 3]>,
}

/// [`low_degrees`]' values alone into one row, scaled by their degree's normalization
/// `factor[l]` with `SCALED`.
struct Values<'a, T, const N: usize, const SCALED: bool> {
    row: &'a mut [T; N],
    factor: [T; LOW_LMAX as usize + 1],
}

impl<T: Real, const N: usize, const SCALED: bool> Put<T> for Values<'_, T, N, SCALED> {
    #[inline(always)]
    fn put(&mut self, c: usize, l: usize, p: T, _: [T; 3]) {
        self.row[c] = if SCALED { self.factor[l] * p } else { p };
    }
}

/// [`low_degrees`]' components scaled by their degree's normalization `factor[l]` (with
/// `SCALED`; `component` normalization has none) and
/// their partials taken through the normalization: `(f grad P - l f P k) inv_norm`, with `k`
/// the unit vector where it was projected on the sphere (zero elsewhere).
struct Projected<'r, 'a, T, const N: usize, const SCALED: bool> {
    row: &'r mut Row<'a, T, N>,
    factor: [T; LOW_LMAX as usize + 1],
    k: [T; 3],
    inv_norm: T,
}

impl<T: Real, const N: usize, const SCALED: bool> Put<T> for Projected<'_, '_, T, N, SCALED> {
    #[inline(always)]
    fn put(&mut self, c: usize, l: usize, p: T, dp: [T; 3]) {
        let f = self.factor[l];
        let y = if SCALED { f * p } else { p };
        self.row.value[c] = y;
        if let Some(grad) = &mut self.row.grad {
            let ly = T::from_f64(l as f64) * y;
            for axis in 0..3 {
                let d = if SCALED { f * dp[axis] } else { dp[axis] };
                grad[axis][c] = (d - ly * self.k[axis]) * self.inv_norm;
            }
        }
    }
}

/// Lane-major buffers of one block: every component up to `lmax`, `[component][lane]`,
/// and the three gradient components (standard frame).
struct LaneScratch<T> {
    value: Vec<[T; LANES]>,
    grad: [Vec<[T; LANES]>; 3],
}

impl<T: Real> LaneScratch<T> {
    fn new(lmax: u32, with_grad: bool) -> Self {
        let n = ((lmax + 1) * (lmax + 1)) as usize;
        let g = if with_grad { n } else { 0 };
        let z = [T::zero(); LANES];
        LaneScratch {
            value: vec![z; n],
            grad: [vec![z; g], vec![z; g], vec![z; g]],
        }
    }
}

/// The coefficient tables cast to the data type.
struct Tables<T> {
    a: Vec<T>,
    b: Vec<T>,
    diagonal: Vec<T>,
    factor: Vec<T>,
    sqrt2: T,
    /// The AVX2 the stores' transposes may use.
    avx2: Option<Avx2Fma>,
}

/// The index in the whole input of the first NaN or infinite coordinate of parallel chunk
/// `k` (`vectors`, [`CHUNK`] vectors each), if any: each task checks what it reads, where a
/// pass over the input first had cost a serial ~6% of a call.
fn chunk_first_non_finite<T: Real>(vectors: &[T], k: usize) -> Option<usize> {
    first_non_finite(vectors).map(|i| k * CHUNK * 3 + i)
}

/// `out[i, a] = sum_k jac[i, a, k] grad_out[i, k]` for the rows of `jac` (`[n, 3, dim]`),
/// `grad_out` (`[n, dim]`) and `out` (`[n, 3]`).
fn contract<T: Real>(jac: &[T], grad_out: &[T], out: &mut [T], dim: usize) {
    // The low degrees' lengths as constants, so each row's sums unroll (the same sums).
    match dim {
        1 => contract_dim::<T, 1>(jac, grad_out, out, dim),
        4 => contract_dim::<T, 4>(jac, grad_out, out, dim),
        9 => contract_dim::<T, 9>(jac, grad_out, out, dim),
        16 => contract_dim::<T, 16>(jac, grad_out, out, dim),
        _ => contract_dim::<T, 0>(jac, grad_out, out, dim),
    }
}

/// [`contract`] for `dim = D`, or any `dim` for `D = 0`.
#[inline(always)]
fn contract_dim<T: Real, const D: usize>(jac: &[T], grad_out: &[T], out: &mut [T], dim: usize) {
    let dim = if D > 0 { D } else { dim };
    for ((o, jac), g) in out
        .chunks_exact_mut(3)
        .zip(jac.chunks_exact(3 * dim))
        .zip(grad_out.chunks_exact(dim))
    {
        for (o, row) in o.iter_mut().zip(jac.chunks_exact(dim)) {
            *o = row.iter().zip(g).fold(T::zero(), |s, (&j, &g)| s + j * g);
        }
    }
}

/// [`Error::NonFinite`] naming the first bad coordinate over all chunks, or success.
fn non_finite_error(bad: Option<usize>) -> Result<()> {
    match bad {
        Some(index) => Err(Error::NonFinite {
            what: "vectors",
            index,
        }),
        None => Ok(()),
    }
}

/// The spherical harmonics of `vectors` (`[n, 3]`), shape `[n, dim]`: e3nn's
/// `o3.spherical_harmonics(irreps_out, vectors, normalize, normalization)`.
///
/// ```
/// use equivariant_core::o3::{spherical_harmonics, Irreps, Normalization, Parity};
/// let irreps = Irreps::spherical_harmonics(2, Parity::Odd);
/// let y = spherical_harmonics(&irreps, &[1.0f64, 0.0, 0.0], true, Normalization::Component)?;
/// // Y^2 at x: [sqrt15 xz, sqrt15 xy, sqrt5 (y^2 - (x^2+z^2)/2), sqrt15 yz, sqrt15/2 (z^2-x^2)]
/// assert!((y[6] + 5f64.sqrt() / 2.0).abs() < 1e-14);
/// assert!((y[8] + 15f64.sqrt() / 2.0).abs() < 1e-14);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn spherical_harmonics<T: Real>(
    irreps_out: &Irreps,
    vectors: &[T],
    normalize: bool,
    normalization: Normalization,
) -> Result<Vec<T>> {
    let sh = SphericalHarmonicsPlan::new(irreps_out, normalize, normalization)?;
    let mut out = vec![T::zero(); vectors.len() / 3 * sh.dim()];
    sh.compute(vectors, &mut out)?;
    Ok(out)
}
