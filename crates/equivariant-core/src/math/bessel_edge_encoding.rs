//! NequIP's edge-length embedding (`RadialBasisEdgeEncoding`: its `BesselBasis` times its
//! `PolynomialCutoff`) evaluated from the edge vectors in one pass, with the kernels its
//! differentiable op needs: the values and their derivative in the length together, the
//! vector-Jacobian product, the tangent along a direction of the vectors, and that
//! tangent's backward (through the second derivative).
//!
//! For an edge vector `v` of length `r = |v|`:
//!
//! `f_k(r) = s b_k(r) u(r / r_max)`, `k = 1..=N`,
//!
//! with `b_k(r) = sqrt(2 / r_max) sin(k pi r / r_max) / r` (e3nn's `bessel` basis on
//! `[0, r_max]`, [`SoftOneHotLinspace`]), `s = sqrt(2 / r_max)` (together NequIP's prefactor
//! `2 / r_max`), and NequIP's envelope
//!
//! `u(x) = 1 - (p + 1)(p + 2)/2 x^p + p (p + 2) x^(p + 1) - p (p + 1)/2 x^(p + 2)`
//!
//! for `x < 1`, zero from `x = 1` on (where it meets zero with `p - 1` vanishing
//! derivatives). A zero-length edge embeds to zero, with zero derivatives.

use rayon::prelude::*;

use super::radial_layer::length;
use super::soft_one_hot_linspace::{LANES, Tables};
use super::{Basis, SoftOneHotLinspace};
use crate::error::{check_len, first_non_finite};
use crate::kernels::simd::Avx2Fma;
use crate::{Error, Real, Result};

/// Rows per parallel task (each row's result depends on that row only, so any split gives
/// the same bits).
const CHUNK: usize = 1024;

/// NequIP's Bessel basis under its polynomial cutoff, over edge vectors (see the module
/// docs).
///
/// ```
/// use equivariant_core::math::BesselEdgeEncoding;
/// let encoding = BesselEdgeEncoding::new(4.0, 8, 6)?;
/// let mut emb = [0.0f64; 16];
/// // Two edges: length 2 (inside the cutoff), length 5 (beyond it).
/// encoding.compute(&[0.0, 2.0, 0.0, 3.0, 4.0, 0.0], &mut emb, None)?;
/// // f_1(2) = (2 / 4) sin(pi / 2) / 2 u(1 / 2), u(1/2) = 1 - 28/64 + 48/128 - 21/256.
/// let u = 1.0 - 28.0 / 64.0 + 48.0 / 128.0 - 21.0 / 256.0;
/// assert!((emb[0] - 0.25 * u).abs() < 1e-15);
/// assert!(emb[8..].iter().all(|&x| x == 0.0));
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BesselEdgeEncoding {
    bessel: SoftOneHotLinspace,
    r_max: f64,
    p: u32,
}

impl BesselEdgeEncoding {
    /// The encoding of `num_basis` Bessel functions on `[0, r_max]` under the envelope of
    /// exponent `p`.
    ///
    /// Errors: [`Error::InvalidArgument`] for an `r_max` that is not finite and positive,
    /// no basis function, or `p < 2` (the envelope would not be smooth at `r_max`).
    ///
    /// ```
    /// use equivariant_core::math::BesselEdgeEncoding;
    /// assert!(BesselEdgeEncoding::new(4.0, 8, 1).is_err());
    /// assert_eq!(BesselEdgeEncoding::new(4.0, 8, 6)?.num_basis(), 8);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(r_max: f64, num_basis: usize, p: u32) -> Result<Self> {
        let bad = |name, reason: String| Err(Error::InvalidArgument { name, reason });
        if !(r_max.is_finite() && r_max > 0.0) {
            return bad("r_max", format!("must be finite and positive, got {r_max}"));
        }
        if num_basis == 0 {
            return bad("num_basis", "needs at least one basis function".into());
        }
        if p < 2 {
            return bad(
                "PolynomialCutoff_p",
                format!("must be at least 2 (a smooth envelope), got {p}"),
            );
        }
        Ok(BesselEdgeEncoding {
            bessel: SoftOneHotLinspace::new(0.0, r_max, num_basis, Basis::Bessel, false)?,
            r_max,
            p,
        })
    }

    /// The cutoff radius.
    ///
    /// ```
    /// use equivariant_core::math::BesselEdgeEncoding;
    /// assert_eq!(BesselEdgeEncoding::new(4.0, 8, 6)?.r_max(), 4.0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn r_max(&self) -> f64 {
        self.r_max
    }

    /// The number of basis functions `N`.
    ///
    /// ```
    /// use equivariant_core::math::BesselEdgeEncoding;
    /// assert_eq!(BesselEdgeEncoding::new(4.0, 8, 6)?.num_basis(), 8);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn num_basis(&self) -> usize {
        self.bessel.number()
    }

    /// The Bessel basis `b_k` (e3nn's `bessel` on `[0, r_max]`, no cutoff).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, BesselEdgeEncoding};
    /// let encoding = BesselEdgeEncoding::new(4.0, 8, 6)?;
    /// assert_eq!((encoding.bessel().basis(), encoding.bessel().number()), (Basis::Bessel, 8));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn bessel(&self) -> &SoftOneHotLinspace {
        &self.bessel
    }

    /// The envelope's exponent `p`.
    ///
    /// ```
    /// use equivariant_core::math::BesselEdgeEncoding;
    /// assert_eq!(BesselEdgeEncoding::new(4.0, 8, 6)?.p(), 6);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn p(&self) -> u32 {
        self.p
    }

    /// The embedding of `vectors` (`[n, 3]`) into `out` (`[n, N]`), and with `derivative`
    /// (`[n, N]`) each function's derivative in the length, `f_k'(|v|)`, computed together.
    ///
    /// Errors: [`Error::ShapeMismatch`] for wrong lengths, [`Error::NonFinite`] naming the
    /// first NaN or infinite coordinate, or the first coordinate of a vector whose length
    /// overflows (the outputs are then unspecified).
    ///
    /// ```
    /// use equivariant_core::math::BesselEdgeEncoding;
    /// let encoding = BesselEdgeEncoding::new(4.0, 1, 6)?;
    /// let (mut f, mut d) = ([0.0f64; 1], [0.0f64; 1]);
    /// encoding.compute(&[0.0, 0.0, 4.0], &mut f, Some(&mut d))?;
    /// // At the cutoff the envelope and its derivative vanish.
    /// assert_eq!((f[0], d[0]), (0.0, 0.0));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn compute<T: Real>(
        &self,
        vectors: &[T],
        out: &mut [T],
        derivative: Option<&mut [T]>,
    ) -> Result<()> {
        let n = self.rows(vectors)?;
        let k = self.num_basis();
        check_len("out [n, N]", n * k, out.len())?;
        let chunks = out
            .par_chunks_mut(CHUNK * k)
            .zip(vectors.par_chunks(CHUNK * 3))
            .enumerate()
            .map(|(c, (out, v))| (out, (c * CHUNK, v)));
        // Detected once, on the calling thread (which `with_instruction_set` limits).
        let avx2 = Avx2Fma::detect();
        match derivative {
            None => chunks
                .try_for_each(|(out, (first, v))| self.evaluate_first(avx2, first, v, out, None)),
            Some(derivative) => {
                check_len("derivative [n, N]", n * k, derivative.len())?;
                chunks
                    .zip(derivative.par_chunks_mut(CHUNK * k))
                    .try_for_each(|((out, (first, v)), d)| {
                        self.evaluate_first(avx2, first, v, out, Some(d))
                    })
            }
        }
    }

    /// The backward of the embedding from the derivatives [`compute`](Self::compute) made:
    /// `out[i] = (sum_k grad_out[i, k] derivative[i, k]) v_i / |v_i|` (zero for a
    /// zero-length edge). Shapes: `vectors`, `out` `[n, 3]`; `derivative`, `grad_out`
    /// `[n, N]`.
    ///
    /// Errors: [`Error::ShapeMismatch`] for lengths not of one `n`.
    ///
    /// ```
    /// use equivariant_core::math::BesselEdgeEncoding;
    /// let encoding = BesselEdgeEncoding::new(4.0, 1, 6)?;
    /// let v = [0.0, 3.0, 0.0];
    /// let (mut f, mut d) = ([0.0f64; 1], [0.0f64; 1]);
    /// encoding.compute(&v, &mut f, Some(&mut d))?;
    /// let mut g = [0.0; 3];
    /// encoding.vector_jacobian_product(&v, &d, &[1.0], &mut g)?;
    /// assert!(g[0] == 0.0 && g[2] == 0.0 && (g[1] - d[0]).abs() < 1e-15); // along the edge
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn vector_jacobian_product<T: Real>(
        &self,
        vectors: &[T],
        derivative: &[T],
        grad_out: &[T],
        out: &mut [T],
    ) -> Result<()> {
        let n = vectors.len() / 3;
        let k = self.num_basis();
        check_len("vectors [n, 3]", n * 3, vectors.len())?;
        check_len("out [n, 3]", n * 3, out.len())?;
        check_len("derivative [n, N]", n * k, derivative.len())?;
        check_len("grad_out [n, N]", n * k, grad_out.len())?;
        out.par_chunks_mut(CHUNK * 3)
            .zip(vectors.par_chunks(CHUNK * 3))
            .zip(derivative.par_chunks(CHUNK * k))
            .zip(grad_out.par_chunks(CHUNK * k))
            .for_each(|(((out, v), d), g)| {
                for (((o, v), d), g) in out
                    .chunks_exact_mut(3)
                    .zip(v.chunks_exact(3))
                    .zip(d.chunks_exact(k))
                    .zip(g.chunks_exact(k))
                {
                    let r = length(v);
                    let slope = dot(d, g);
                    for (o, &v) in o.iter_mut().zip(v) {
                        *o = if r > T::zero() {
                            slope * v / r
                        } else {
                            T::zero()
                        };
                    }
                }
            });
        Ok(())
    }

    /// The embedding's tangent along `tangents`: `out[i, k] = f_k'(r_i) (v_i . t_i) / r_i`,
    /// the derivative of `f_k(|v_i + h t_i|)` at `h = 0` (zero for a zero-length edge).
    /// Shapes: `vectors`, `tangents` `[n, 3]`; `out` `[n, N]`.
    ///
    /// Errors: as [`compute`](Self::compute), for either input.
    ///
    /// ```
    /// use equivariant_core::math::BesselEdgeEncoding;
    /// let encoding = BesselEdgeEncoding::new(4.0, 2, 6)?;
    /// let v = [0.0, 3.0, 0.0];
    /// let (mut f, mut d, mut t) = ([0.0f64; 2], [0.0f64; 2], [0.0f64; 2]);
    /// encoding.compute(&v, &mut f, Some(&mut d))?;
    /// // Across the edge the length does not change; along it, at twice the rate.
    /// encoding.compute_tangent(&v, &[1.0, 0.0, 0.0], &mut t)?;
    /// assert_eq!(t, [0.0, 0.0]);
    /// encoding.compute_tangent(&v, &[0.0, 2.0, 0.0], &mut t)?;
    /// assert_eq!(t, [2.0 * d[0], 2.0 * d[1]]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn compute_tangent<T: Real>(
        &self,
        vectors: &[T],
        tangents: &[T],
        out: &mut [T],
    ) -> Result<()> {
        let n = self.rows(vectors)?;
        self.check_tangents(n, tangents)?;
        check_len("out [n, N]", n * self.num_basis(), out.len())?;
        let k = self.num_basis();
        out.par_chunks_mut(CHUNK * k)
            .zip(vectors.par_chunks(CHUNK * 3))
            .zip(tangents.par_chunks(CHUNK * 3))
            .try_for_each(|((out, v), t)| {
                let mut f = vec![T::zero(); out.len()];
                let length = self.evaluate(v, &mut f, Some(&mut *out), None, None)?;
                // `out` holds f'; scaled by the rate in place.
                for (i, o) in out.chunks_exact_mut(k).enumerate() {
                    let rate = rate(length[i], &v[3 * i..3 * i + 3], &t[3 * i..3 * i + 3]);
                    o.iter_mut().for_each(|o| *o *= rate);
                }
                Ok(())
            })
    }

    /// The backward of [`compute_tangent`](Self::compute_tangent) for `grad_out = dL/d(out)`
    /// (`[n, N]`): `grad_vectors` and `grad_tangents` (`[n, 3]` each). With `r = |v|`,
    /// `q = (v . t) / r`, `A = q sum_k g_k f_k''(r)` and `B = sum_k g_k f_k'(r)`:
    ///
    /// `dL/dv = A v / r + B (t / r - q v / r^2)`, `dL/dt = B v / r`
    ///
    /// (zero for a zero-length edge).
    ///
    /// Errors: as [`compute_tangent`](Self::compute_tangent); [`Error::ShapeMismatch`] for
    /// the gradients' lengths.
    ///
    /// ```
    /// use equivariant_core::math::BesselEdgeEncoding;
    /// let encoding = BesselEdgeEncoding::new(4.0, 1, 6)?;
    /// let (v, t) = ([0.0, 3.0, 0.0], [0.0, 1.0, 0.0]);
    /// let (mut f, mut d) = ([0.0f64; 1], [0.0f64; 1]);
    /// encoding.compute(&v, &mut f, Some(&mut d))?;
    /// let (mut gv, mut gt) = ([0.0; 3], [0.0; 3]);
    /// encoding.tangent_backward(&v, &t, &[1.0], &mut gv, &mut gt)?;
    /// // The tangent is f'(|v|) t_y for t along v: its gradient in t is f'(|v|) along v.
    /// assert!((gt[1] - d[0]).abs() < 1e-15 && gt[0] == 0.0);
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
        let n = self.rows(vectors)?;
        let k = self.num_basis();
        self.check_tangents(n, tangents)?;
        check_len("grad_out [n, N]", n * k, grad_out.len())?;
        check_len("grad_vectors [n, 3]", n * 3, grad_vectors.len())?;
        check_len("grad_tangents [n, 3]", n * 3, grad_tangents.len())?;
        grad_vectors
            .par_chunks_mut(CHUNK * 3)
            .zip(grad_tangents.par_chunks_mut(CHUNK * 3))
            .zip(vectors.par_chunks(CHUNK * 3))
            .zip(tangents.par_chunks(CHUNK * 3))
            .zip(grad_out.par_chunks(CHUNK * k))
            .try_for_each(|((((gv, gt), v), t), g)| {
                let rows = v.len() / 3;
                let (mut f, mut d1, mut d2) = (
                    vec![T::zero(); rows * k],
                    vec![T::zero(); rows * k],
                    vec![T::zero(); rows * k],
                );
                let length = self.evaluate(v, &mut f, Some(&mut d1), Some(&mut d2), None)?;
                for (i, &r) in length.iter().enumerate() {
                    let (gv, gt) = (&mut gv[3 * i..3 * i + 3], &mut gt[3 * i..3 * i + 3]);
                    if r <= T::zero() {
                        gv.fill(T::zero());
                        gt.fill(T::zero());
                        continue;
                    }
                    let (v, t, g) = (
                        &v[3 * i..3 * i + 3],
                        &t[3 * i..3 * i + 3],
                        &g[k * i..k * (i + 1)],
                    );
                    let (d1, d2) = (&d1[k * i..k * (i + 1)], &d2[k * i..k * (i + 1)]);
                    let q = rate(r, v, t);
                    let a = q * dot(d2, g);
                    let b = dot(d1, g);
                    for c in 0..3 {
                        gv[c] = a * v[c] / r + b * (t[c] / r - q * v[c] / (r * r));
                        gt[c] = b * v[c] / r;
                    }
                }
                Ok(())
            })
    }

    /// The number of rows of `vectors` (`[n, 3]`), checked finite.
    fn rows<T: Real>(&self, vectors: &[T]) -> Result<usize> {
        if !vectors.len().is_multiple_of(3) {
            return Err(Error::ShapeMismatch {
                what: "vectors [n, 3]",
                expected: vectors.len().div_ceil(3) * 3,
                got: vectors.len(),
            });
        }
        if let Some(index) = first_non_finite(vectors) {
            return Err(Error::NonFinite {
                what: "vectors",
                index,
            });
        }
        Ok(vectors.len() / 3)
    }

    fn check_tangents<T: Real>(&self, n: usize, tangents: &[T]) -> Result<()> {
        check_len("tangents [n, 3]", n * 3, tangents.len())?;
        if let Some(index) = first_non_finite(tangents) {
            return Err(Error::NonFinite {
                what: "tangents",
                index,
            });
        }
        Ok(())
    }

    /// The functions at the lengths of `vectors` into `f`, and their first and second
    /// derivatives into `d1` and `d2` where given (`[rows, N]` each); returns the lengths.
    /// The Bessel values land in the outputs first and are turned into the encoding's in
    /// place, so a chunk allocates only its lengths. `basis`: the caller's instruction set
    /// and tables, for a caller that has them and has checked its lengths finite (the
    /// basis's rows then, without its checks, its own detection and table building; not
    /// used with `d2`).
    fn evaluate<T: Real>(
        &self,
        vectors: &[T],
        f: &mut [T],
        mut d1: Option<&mut [T]>,
        mut d2: Option<&mut [T]>,
        basis: Option<(Option<Avx2Fma>, &Tables<T>)>,
    ) -> Result<Vec<T>> {
        let k = self.num_basis();
        let length: Vec<T> = vectors.chunks_exact(3).map(length).collect();
        // A length of 1 at a zero-length edge keeps the basis finite; the mask below zeroes
        // its row.
        let at: Vec<T> = length
            .iter()
            .map(|&r| if r > T::zero() { r } else { T::one() })
            .collect();
        match (d1.as_deref_mut(), d2.as_deref_mut(), basis) {
            (None, _, Some((avx2, t))) => self.bessel.rows::<T, false>(avx2, t, &at, f, &mut []),
            (Some(d1), None, Some((avx2, t))) => self.bessel.rows::<T, true>(avx2, t, &at, f, d1),
            (None, _, None) => self.bessel.compute(&at, f)?,
            (Some(d1), None, None) => self.bessel.compute_with_derivative(&at, f, d1)?,
            (Some(d1), Some(d2), _) => {
                self.bessel.compute_with_second_derivative(&at, f, d1, d2)?;
            }
        }
        let s = T::from_f64((2.0 / self.r_max).sqrt());
        let two = T::from_f64(2.0);
        for (i, &r) in length.iter().enumerate() {
            let x = r * T::from_f64(1.0 / self.r_max);
            let span = k * i..k * (i + 1);
            if !(r > T::zero() && x < T::one()) {
                f[span.clone()].fill(T::zero());
                for d in [d1.as_deref_mut(), d2.as_deref_mut()].into_iter().flatten() {
                    d[span.clone()].fill(T::zero());
                }
                continue;
            }
            let [[u], [du], [d2u]] = self.envelope([x]);
            // Written per case, so each loop is branch-free over the row.
            let (su, sdu, sd2u) = (s * u, s * du, s * d2u);
            let f = &mut f[span.clone()];
            match (d1.as_deref_mut(), d2.as_deref_mut()) {
                (None, _) => f.iter_mut().for_each(|f| *f *= su),
                (Some(d1), None) => {
                    for (f, d1) in f.iter_mut().zip(&mut d1[span]) {
                        *d1 = *d1 * su + *f * sdu;
                        *f *= su;
                    }
                }
                (Some(d1), Some(d2)) => {
                    let (d1, d2) = (&mut d1[span.clone()], &mut d2[span]);
                    for ((f, d1), d2) in f.iter_mut().zip(d1).zip(d2) {
                        *d2 = *d2 * su + two * *d1 * sdu + *f * sd2u;
                        *d1 = *d1 * su + *f * sdu;
                        *f *= su;
                    }
                }
            }
        }
        Ok(length)
    }

    /// [`evaluate`](Self::evaluate) without the second derivative: blocks of eight edges
    /// that [`SoftOneHotLinspace::bessel_lanes`] takes and that lie inside the cutoff (every
    /// edge of an atomistic graph but the shortest and the cut ones) in vector lanes, the
    /// basis, the envelope and their product together; the others by `evaluate`, with this
    /// call's tables and instruction set, and the same bits. `evaluate` forms the basis,
    /// then multiplies by the envelope in a second pass over the rows, one row at a time:
    /// two thirds of its time (with a call to `powi` per row, then).
    fn evaluate_first<T: Real>(
        &self,
        avx2: Option<Avx2Fma>,
        first: usize,
        vectors: &[T],
        f: &mut [T],
        d1: Option<&mut [T]>,
    ) -> Result<()> {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = avx2 {
            // SAFETY: `token` proves the CPU has the AVX2 and FMA the twin is compiled for.
            return unsafe { self.evaluate_first_avx2(token, first, vectors, f, d1) };
        }
        self.evaluate_first_on(avx2, first, vectors, f, d1)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn evaluate_first_avx2<T: Real>(
        &self,
        token: Avx2Fma,
        first: usize,
        vectors: &[T],
        f: &mut [T],
        d1: Option<&mut [T]>,
    ) -> Result<()> {
        self.evaluate_first_on(Some(token), first, vectors, f, d1)
    }

    /// [`Self::evaluate_first`] for the instruction set of the caller (`avx2`: its token,
    /// for the transposes). Nothing here asks for a fused multiply-add, so every instance
    /// gives the same bits.
    #[inline(always)]
    fn evaluate_first_on<T: Real>(
        &self,
        avx2: Option<Avx2Fma>,
        first: usize,
        vectors: &[T],
        f: &mut [T],
        mut d1: Option<&mut [T]>,
    ) -> Result<()> {
        use std::array::from_fn as lanes;
        // A finite vector whose length overflows (row `first + row` of the caller's).
        let overflow = |row: usize| Error::NonFinite {
            what: "vectors (the length overflows)",
            index: 3 * (first + row),
        };
        let k = self.num_basis();
        let t = self.bessel.tables::<T>();
        let mut buffer = vec![T::zero(); 2 * k * LANES];
        let s = T::from_f64((2.0 / self.r_max).sqrt());
        let inv = T::from_f64(1.0 / self.r_max);
        let (blocks, _) = vectors.as_chunks::<{ 3 * LANES }>();
        for (i, v) in blocks.iter().enumerate() {
            let rows = k * LANES * i..k * LANES * (i + 1);
            let r: [T; LANES] = lanes(|l| length(&v[3 * l..3 * l + 3]));
            if let Some(l) = r.iter().position(|r| !r.is_finite()) {
                return Err(overflow(LANES * i + l));
            }
            let x: [T; LANES] = lanes(|l| r[l] * inv);
            let inside = (r.iter().zip(&x)).all(|(&r, &x)| r > T::zero() && x < T::one());
            let done = inside && {
                let [u, du, _] = self.envelope(x);
                let factor = [lanes(|l| s * u[l]), lanes(|l| s * du[l])];
                let (b, f) = (&self.bessel, &mut f[rows.clone()]);
                match d1.as_deref_mut() {
                    None => b.bessel_lanes::<T, false>(
                        avx2,
                        &t,
                        &r,
                        f,
                        &mut [],
                        &mut buffer,
                        Some(&factor),
                    ),
                    Some(d1) => b.bessel_lanes::<T, true>(
                        avx2,
                        &t,
                        &r,
                        f,
                        &mut d1[rows.clone()],
                        &mut buffer,
                        Some(&factor),
                    ),
                }
            };
            if !done {
                let d1 = d1.as_deref_mut().map(|d| &mut d[rows.clone()]);
                self.evaluate(v, &mut f[rows], d1, None, Some((avx2, &t)))?;
            }
        }
        let done = blocks.len() * LANES;
        let rest = vectors[3 * done..].chunks_exact(3);
        if let Some(j) = rest.map(length).position(|r| !r.is_finite()) {
            return Err(overflow(done + j));
        }
        let d1 = d1.map(|d| &mut d[k * done..]);
        self.evaluate(
            &vectors[3 * done..],
            &mut f[k * done..],
            d1,
            None,
            Some((avx2, &t)),
        )?;
        Ok(())
    }

    /// The envelope `u` at `x = r / r_max < 1` and its first two derivatives in `r`, by
    /// Horner's rule in `x` (one power): `u = 1 + x^p (-a + x (b - c x))`; lane by lane for
    /// `L` values of `x` (the same bits for any `L`).
    #[inline(always)]
    fn envelope<T: Real, const L: usize>(&self, x: [T; L]) -> [[T; L]; 3] {
        let p = self.p as f64;
        let (a, b, c) = (
            (p + 1.0) * (p + 2.0) / 2.0,
            p * (p + 2.0),
            p * (p + 1.0) / 2.0,
        );
        let t = T::from_f64;
        let inv = t(1.0 / self.r_max);
        let x_pm2 = powi(x, self.p - 2);
        use std::array::from_fn as lanes;
        let x_pm1: [T; L] = lanes(|l| x_pm2[l] * x[l]);
        let x_p: [T; L] = lanes(|l| x_pm1[l] * x[l]);
        let u = lanes(|l| T::one() + x_p[l] * (t(-a) + x[l] * (t(b) - t(c) * x[l])));
        // u'(r) = x^(p-1) (-a p + x (b (p+1) - c (p+2) x)) / r_max.
        let du = lanes(|l| {
            x_pm1[l] * (t(-a * p) + x[l] * (t(b * (p + 1.0)) - t(c * (p + 2.0)) * x[l])) * inv
        });
        // u''(r) = x^(p-2) (-a p (p-1) + x (b (p+1) p - c (p+2)(p+1) x)) / r_max^2.
        let d2u = lanes(|l| {
            x_pm2[l]
                * (t(-a * p * (p - 1.0))
                    + x[l] * (t(b * (p + 1.0) * p) - t(c * (p + 2.0) * (p + 1.0)) * x[l]))
                * inv
                * inv
        });
        [u, du, d2u]
    }
}

/// `x^n` lane by lane, by squaring as `powi` computes it (compiler-rt's `__powisf2` and
/// `__powidf2`: the same products in the same order, so the same bits), in the lanes'
/// vector registers where `powi` is a call per value.
#[inline(always)]
fn powi<T: Real, const L: usize>(mut x: [T; L], mut n: u32) -> [T; L] {
    let mut power = [T::one(); L];
    loop {
        if n & 1 != 0 {
            power.iter_mut().zip(&x).for_each(|(p, &x)| *p *= x);
        }
        n >>= 1;
        if n == 0 {
            return power;
        }
        x.iter_mut().for_each(|x| *x *= *x);
    }
}

/// The rate of change of the length `r = |v|` along `t`, `(v . t) / r` (zero at `r = 0`).
fn rate<T: Real>(r: T, v: &[T], t: &[T]) -> T {
    if r <= T::zero() {
        return T::zero();
    }
    dot(v, t) / r
}

/// `sum_i a_i b_i`, in order.
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |acc, (&a, &b)| acc + a * b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finite vector whose length overflows is an error naming its first coordinate,
    /// in a block of eight and in the tail, in whichever parallel chunk it falls.
    #[test]
    fn an_overflowing_length_is_named() {
        let encoding = BesselEdgeEncoding::new(4.0, 8, 6).unwrap();
        for (n, row) in [(20, 2), (20, 13), (20, 17), (CHUNK + 20, CHUNK + 3)] {
            let mut v = vec![0.5f32; 3 * n];
            v[3 * row + 1] = 1e20;
            let mut f = vec![0.0f32; 8 * n];
            let got = encoding.compute(&v, &mut f, None);
            assert!(
                matches!(got, Err(Error::NonFinite { index, .. }) if index == 3 * row),
                "row {row} of {n}: {got:?}"
            );
        }
    }

    /// The squaring `powi` gives `powi`'s bits, the exponents an envelope takes and more.
    #[test]
    fn powi_by_squaring_is_powi() {
        for n in 0..40u32 {
            for i in 0..200 {
                let x = 0.013 * i as f64 - 1.1;
                assert_eq!(
                    powi([x], n)[0].to_bits(),
                    x.powi(n as i32).to_bits(),
                    "{x}^{n}"
                );
                let x = x as f32;
                assert_eq!(
                    powi([x], n)[0].to_bits(),
                    x.powi(n as i32).to_bits(),
                    "{x}^{n}"
                );
            }
        }
    }

    /// [`BesselEdgeEncoding::compute`] (blocks of eight in vector lanes, the envelope with
    /// them) gives, bit for bit, what [`BesselEdgeEncoding::evaluate`] gives row by row,
    /// values and derivatives, f32 and f64, on every instruction set (the rows that fall
    /// back on the caller's, as the lanes): blocks all inside the cutoff, blocks with a
    /// zero, a very short (the basis's series) or a cut edge, and a tail of fewer than
    /// eight.
    #[test]
    fn lanes_equal_rows() {
        use crate::kernels::{InstructionSet, with_instruction_set};
        fn check<T: Real>(encoding: &BesselEdgeEncoding, vectors: &[T]) {
            let n = vectors.len() / 3 * encoding.num_basis();
            let (mut f, mut d, mut f_only) =
                (vec![T::zero(); n], vec![T::zero(); n], vec![T::zero(); n]);
            encoding.compute(vectors, &mut f, Some(&mut d)).unwrap();
            encoding.compute(vectors, &mut f_only, None).unwrap();
            let k = encoding.num_basis();
            for (i, v) in vectors.chunks_exact(3).enumerate() {
                let (mut f1, mut d1) = (vec![T::zero(); k], vec![T::zero(); k]);
                encoding
                    .evaluate(v, &mut f1, Some(&mut d1), None, None)
                    .unwrap();
                let row = i * k..(i + 1) * k;
                assert_eq!(&f[row.clone()], &f1[..], "row {i}");
                assert_eq!(&f_only[row.clone()], &f1[..], "row {i}");
                assert_eq!(&d[row], &d1[..], "row {i}");
            }
        }
        // 45 edges: five blocks and a tail of five. Lengths 1.2 to 3.9 (inside r_max = 4)
        // but in block 1 (a zero), block 2 (length 0.05), block 3 (past the cutoff).
        let mut vectors: Vec<f64> = (0..45)
            .flat_map(|e| {
                let r = 1.2 + 0.06 * e as f64;
                let (a, b) = (0.7 * e as f64, 0.3 * e as f64);
                [r * a.sin() * b.cos(), r * a.sin() * b.sin(), r * a.cos()]
            })
            .collect();
        vectors[3 * 9..3 * 10].fill(0.0);
        vectors[3 * 17..3 * 18].copy_from_slice(&[0.0, 0.05, 0.0]);
        vectors[3 * 26..3 * 27].copy_from_slice(&[4.5, 0.0, 0.0]);
        let single: Vec<f32> = vectors.iter().map(|&v| v as f32).collect();
        for isa in [InstructionSet::Portable, InstructionSet::detected()] {
            with_instruction_set(isa, || {
                for (num_basis, p) in [(8, 6), (5, 2), (13, 9)] {
                    let encoding = BesselEdgeEncoding::new(4.0, num_basis, p).unwrap();
                    check(&encoding, &vectors);
                    check(&encoding, &single);
                }
            });
        }
    }
}
