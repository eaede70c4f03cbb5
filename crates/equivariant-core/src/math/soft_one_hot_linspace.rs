//! Radial bases of e3nn (`e3nn/math/_soft_one_hot_linspace.py`): a scalar `x` projected on
//! `N` smooth functions spread over `[start, end]`.
//!
//! The basis is precomputed once ([`SoftOneHotLinspace::new`]) and evaluated into
//! caller-provided buffers of shape `[n, N]` (row-major: one row of `N` values per input):
//! [`SoftOneHotLinspace::compute`] gives the values, [`SoftOneHotLinspace::compute_with_derivative`]
//! the values and their derivatives `d out[i, k] / d x[i]` in the same pass. The free function
//! [`soft_one_hot_linspace`] mirrors e3nn's signature.

use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;

use super::exp::exp_nonpositive;
use crate::error::first_non_finite;
use crate::kernels::simd::Avx2Fma;
use crate::kernels::transpose::transpose;
use crate::real::dual::Dual;
use crate::{Error, Real, Result};

/// Above this many inputs the kernels run in parallel (rayon), in chunks of [`CHUNK`] rows.
/// Every row is computed by the same sequential arithmetic, so results do not depend on the
/// number of threads.
const PAR_THRESHOLD: usize = 4096;
/// Rows per parallel task.
const CHUNK: usize = 1024;

/// Rows evaluated together in vector lanes ([`SoftOneHotLinspace::bessel_lanes`],
/// [`SoftOneHotLinspace::smooth_finite_lanes`]).
pub(crate) const LANES: usize = 8;

/// A factor and its derivative, one per lane: `[u, du]`.
pub(crate) type LaneFactor<T> = [[T; LANES]; 2];

/// e3nn's normalization of the `gaussian` basis: `exp(-d^2) / 1.12`.
const GAUSSIAN_DIV: f64 = 1.12;
/// e3nn's normalization of the `smooth_finite` basis (multiplied by `e^2`).
const SMOOTH_FINITE_COEF: f64 = 1.14136;

/// The family of basis functions of [`SoftOneHotLinspace`], named as in e3nn.
///
/// With centers `c_k` and spacing `step` (see [`SoftOneHotLinspace`]), `d_k = (x - c_k) / step`,
/// `L = end - start` and `N` functions:
///
/// | basis | `cutoff = false` | `cutoff = true` |
/// |---|---|---|
/// | `gaussian` | `exp(-d_k^2) / 1.12` | same (centers differ) |
/// | `cosine` | `cos(pi/2 d_k) [-1 < d_k < 1]` | same |
/// | `smooth_finite` | `1.14136 e^2 u(d_k + 1) u(1 - d_k)` | same |
/// | `fourier` | `cos(pi k y) / sqrt(1/4 + N/2)`, `k = 0..N-1` | `sin(pi k y) / sqrt(1/4 + N/2) [0 < y < 1]`, `k = 1..N` |
/// | `bessel` | `sqrt(2/L) sin(k pi r / L) / r`, `k = 1..N` | same times `[0 < r] [r / L < 1]` |
///
/// where `u` is [`soft_unit_step`](fn@super::soft_unit_step), `y = (x - start) / L` and
/// `r = x - start`.
///
/// Parsing accepts e3nn's names exactly; [`Display`](fmt::Display) writes them back.
///
/// ```
/// use equivariant_core::math::Basis;
/// let b: Basis = "smooth_finite".parse()?;
/// assert_eq!(b, Basis::SmoothFinite);
/// assert_eq!(b.to_string(), "smooth_finite");
/// assert!("Gaussian".parse::<Basis>().is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// `exp(-d^2) / 1.12`.
    Gaussian,
    /// `cos(pi d / 2)` on `-1 < d < 1`, zero elsewhere.
    Cosine,
    /// `1.14136 e^2 u(d + 1) u(1 - d)`: C^inf with support `-1 < d < 1`. In f32 its
    /// exponential is a polynomial within 2 ulp (values under `exp(-87.34)` are zero), so
    /// that eight inputs run as one vector.
    SmoothFinite,
    /// Cosine (no cutoff) or sine (cutoff) Fourier series over `[start, end]`.
    Fourier,
    /// `sqrt(2/L) sin(k pi r / L) / r`, the l = 0 spherical Bessel functions.
    Bessel,
}

impl Basis {
    /// Every basis, in e3nn's documentation order.
    ///
    /// ```
    /// use equivariant_core::math::Basis;
    /// assert_eq!(Basis::ALL.len(), 5);
    /// assert_eq!(Basis::ALL[0], Basis::Gaussian);
    /// ```
    pub const ALL: [Basis; 5] = [
        Basis::Gaussian,
        Basis::Cosine,
        Basis::SmoothFinite,
        Basis::Fourier,
        Basis::Bessel,
    ];

    /// e3nn's name of the basis (`"gaussian"`, `"cosine"`, `"smooth_finite"`, `"fourier"`,
    /// `"bessel"`).
    ///
    /// ```
    /// use equivariant_core::math::Basis;
    /// assert_eq!(Basis::Bessel.name(), "bessel");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Basis::Gaussian => "gaussian",
            Basis::Cosine => "cosine",
            Basis::SmoothFinite => "smooth_finite",
            Basis::Fourier => "fourier",
            Basis::Bessel => "bessel",
        }
    }

    /// Whether the basis is built from the centers and their spacing (`gaussian`, `cosine`,
    /// `smooth_finite`); `fourier` and `bessel` only use `start` and `end`.
    fn uses_centers(self) -> bool {
        matches!(self, Basis::Gaussian | Basis::Cosine | Basis::SmoothFinite)
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Basis {
    type Err = Error;

    /// Parses e3nn's name; anything else is [`Error::InvalidArgument`].
    fn from_str(s: &str) -> Result<Self> {
        Basis::ALL
            .iter()
            .copied()
            .find(|b| b.name() == s)
            .ok_or_else(|| Error::InvalidArgument {
                name: "basis",
                reason: format!(
                    "unknown basis {s:?}, expected one of gaussian, cosine, smooth_finite, \
                     fourier, bessel"
                ),
            })
    }
}

/// `torch.linspace(start, end, steps)` in f64, point for point: the first half is
/// `start + i * step`, the second half `end - (steps - 1 - i) * step`, with
/// `step = (end - start) / (steps - 1)`.
fn torch_linspace(start: f64, end: f64, steps: usize) -> Result<Vec<f64>> {
    let mut v = Vec::new();
    v.try_reserve_exact(steps)
        .map_err(|e| Error::InvalidArgument {
            name: "number",
            reason: format!("cannot allocate {steps} centers: {e}"),
        })?;
    if steps == 1 {
        v.push(start);
        return Ok(v);
    }
    let step = (end - start) / (steps - 1) as f64;
    let halfway = steps / 2;
    v.extend((0..steps).map(|i| {
        if i < halfway {
            start + step * i as f64
        } else {
            end - step * (steps - 1 - i) as f64
        }
    }));
    Ok(v)
}

/// A precomputed radial basis: e3nn's `soft_one_hot_linspace(x, start, end, number, basis,
/// cutoff)` for any number of inputs.
///
/// **Centers.** `cutoff = false`: `c = linspace(start, end, N)`; `cutoff = true`:
/// `c = linspace(start, end, N + 2)[1..N+1]` (the end points are dropped, so every function
/// vanishes (`cosine`, `smooth_finite`) or nearly vanishes (`gaussian`) at `start` and `end`).
/// `step = c'[1] - c'[0]` of that linspace `c'`, computed as torch does. See [`Basis`] for the
/// functions themselves.
///
/// **Shapes.** Input `x: [n]`, output `[n, N]` row-major (`out[i * N + k]` is function `k`
/// at `x[i]`); the derivative buffer has the same layout and holds `d out[i, k] / d x[i]`.
///
/// **Deviations from e3nn 0.6.0** (which gives NaN or raises in these cases):
/// - `bessel` at `x == start`: e3nn divides `0 / 0` (NaN). Here the value is the limit
///   `sqrt(2/L) k pi / L` and the derivative its limit `0` when `cutoff = false`; with
///   `cutoff = true` the mask `[0 < x - start]` is zero there, so both are `0`.
/// - `fourier` and `bessel` with `N = 1`, `cutoff = false` are accepted (e3nn raises
///   `IndexError` computing the spacing, which these bases never use).
/// - The `bessel` derivative near `x = start` is evaluated by a series where the textbook
///   formula (which e3nn's autograd follows) loses digits to cancellation.
/// - Non-finite inputs are rejected ([`Error::NonFinite`]).
///
/// e3nn builds `smooth_finite`'s `e^2` in torch's default dtype; in float32 that constant
/// carries a relative error of ~1e-8 even for float64 inputs. Here it is always f64.
///
/// ```
/// use equivariant_core::math::{Basis, SoftOneHotLinspace};
/// let basis = SoftOneHotLinspace::new(0.0, 1.8, 5, Basis::Gaussian, false)?;
/// assert_eq!(basis.centers(), &[0.0, 0.45, 0.9, 1.35, 1.8]);
/// let x = [0.45f64, 1.0];
/// let mut out = vec![0.0; 2 * 5];
/// basis.compute(&x, &mut out)?;
/// // x[0] sits on center 1: exp(0) / 1.12.
/// assert!((out[1] - 1.0 / 1.12).abs() < 1e-15);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SoftOneHotLinspace {
    start: f64,
    end: f64,
    number: usize,
    basis: Basis,
    cutoff: bool,
    centers: Vec<f64>,
    step: Option<f64>,
}

/// The smooth_finite functions that may be nonzero at one `x`: `(first, count, f, df)`,
/// functions `first..first + count` with values `f[..count]` (derivatives `df`).
pub(crate) type Window<T> = (usize, usize, [T; 3], [T; 3]);

/// The constants of one evaluation, cast to the data type.
pub(crate) struct Tables<T> {
    centers: Vec<T>,
    step: T,
    /// `1 / step` (smooth_finite finds its support with it).
    inv_step: T,
    /// `pi * k` (fourier: `k = 0..N-1` without cutoff, `1..N` with; bessel: `1..N`).
    freq: Vec<T>,
    start: T,
    /// `end - start`.
    len: T,
    /// fourier: `sqrt(1/4 + N/2)`; bessel: `sqrt(2 / L)`; smooth_finite: `1.14136 e^2`.
    coef: T,
}

/// `d/dt (sin t / t) = (t cos t - sin t) / t^2` by its Taylor series
/// `sum_{n>=1} (-1)^n 2n t^(2n-1) / (2n+1)!`, accurate to f64 rounding for `|t| <= 0.5`.
fn sinc_derivative_series<T: Real>(t: T) -> T {
    // Coefficients of t^(2n-1), n = 1..=8: (-1)^n 2n / (2n+1)!.
    const C: [f64; 8] = [
        -1.0 / 3.0,
        1.0 / 30.0,
        -1.0 / 840.0,
        1.0 / 45360.0,
        -1.0 / 3991680.0,
        1.0 / 518918400.0,
        -1.0 / 93405312000.0,
        1.0 / 22230464256000.0,
    ];
    let t2 = t * t;
    let mut acc = T::from_f64(C[7]);
    for &c in C[..7].iter().rev() {
        acc = acc * t2 + T::from_f64(c);
    }
    acc * t
}

/// The smooth_finite support at `x` (see [`SoftOneHotLinspace::support`]): the centers are
/// evenly spaced up to rounding, so the nonzero ones are within one spacing of the fractional
/// index `pos` of `x`; one more on the low side absorbs the rounding.
#[inline(always)]
fn support_window<T: Real>(c0: T, inv_step: T, number: usize, x: T) -> std::ops::Range<usize> {
    let (first, count) = window_in_floats(c0, inv_step, number, x);
    let first = first.to_f64() as usize;
    first..first + count.to_f64() as usize
}

/// [`support_window`] as `(first, count)` in `T`, branch-free so that lanes of it run as one
/// vector: the integers involved are small and exact in floats (`number`, the basis's size,
/// is far below f32's 2^24), and `count` is at most 3 by construction.
#[inline(always)]
fn window_in_floats<T: Real>(c0: T, inv_step: T, number: usize, x: T) -> (T, T) {
    let (zero, one) = (T::zero(), T::one());
    let pos = (x - c0) * inv_step;
    let inside = pos > T::from_f64(-2.0) && pos < T::from_f64(number as f64 + 1.0);
    let near = pos.floor();
    let first = (near - one).max(zero);
    let last = (near + one + one).max(zero).min(T::from_f64(number as f64));
    let count = (last - first).max(zero).min(T::from_f64(3.0));
    if inside { (first, count) } else { (zero, zero) }
}

/// The smooth_finite function centered at `c` and its derivative (if `D`) at `x`, zero
/// unless `valid` (the lanes of [`SoftOneHotLinspace::smooth_finite_lanes`] outside a
/// window) and inside its support: the one evaluation of the basis.
#[inline(always)]
fn smooth_finite_value<T: Real, const D: bool>(t: &Tables<T>, x: T, c: T, valid: bool) -> (T, T) {
    let (zero, one) = (T::zero(), T::one());
    let d = (x - c) / t.step;
    // Outside the support one step is zero.
    let inside = valid && !(d.abs() >= one || d.is_nan());
    // u(1 + d) u(1 - d) = exp(-1/(1 + d) - 1/(1 - d)) = exp(-2 / (1 - d^2)): one exponential
    // instead of two; outside, any nonpositive argument (the value is dropped).
    let q = one - d * d;
    let e = exp_nonpositive(if inside { -(one + one) / q } else { -one });
    let f = if inside { t.coef * e } else { zero };
    let df = if D && inside {
        let four = one + one + one + one;
        t.coef * e * (-four * d / (q * q)) / t.step
    } else {
        zero
    };
    (f, df)
}

impl SoftOneHotLinspace {
    /// Precomputes the basis of `number` functions of family `basis` over `[start, end]`.
    ///
    /// Errors ([`Error::InvalidArgument`]): `start` or `end` not finite, `start >= end`,
    /// `end - start` overflowing, `number == 0`, `number == 1` with `cutoff = false` for the
    /// center-based bases (`gaussian`, `cosine`, `smooth_finite`: their spacing needs two
    /// centers), or a spacing that rounds to zero.
    ///
    /// ```
    /// use equivariant_core::{math::{Basis, SoftOneHotLinspace}, Error};
    /// let b = SoftOneHotLinspace::new(0.0, 3.0, 2, Basis::Cosine, true)?;
    /// assert_eq!(b.centers(), &[1.0, 2.0]);
    /// assert_eq!(b.step(), Some(1.0));
    /// assert!(matches!(
    ///     SoftOneHotLinspace::new(1.0, 1.0, 4, Basis::Cosine, true),
    ///     Err(Error::InvalidArgument { .. })
    /// ));
    /// assert!(SoftOneHotLinspace::new(0.0, 1.0, 1, Basis::Gaussian, false).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(start: f64, end: f64, number: usize, basis: Basis, cutoff: bool) -> Result<Self> {
        if !start.is_finite() || !end.is_finite() {
            return Err(Error::InvalidArgument {
                name: "start/end",
                reason: format!("must be finite, got start = {start}, end = {end}"),
            });
        }
        if start >= end {
            return Err(Error::InvalidArgument {
                name: "start/end",
                reason: format!("start must be less than end, got start = {start}, end = {end}"),
            });
        }
        if !(end - start).is_finite() {
            return Err(Error::InvalidArgument {
                name: "start/end",
                reason: format!("end - start overflows, got start = {start}, end = {end}"),
            });
        }
        if number == 0 {
            return Err(Error::InvalidArgument {
                name: "number",
                reason: "the number of basis functions must be at least 1".into(),
            });
        }
        if !cutoff && number == 1 && basis.uses_centers() {
            return Err(Error::InvalidArgument {
                name: "number",
                reason: format!(
                    "basis {basis} without cutoff needs at least 2 functions to define the \
                     spacing of its centers, got 1"
                ),
            });
        }
        let (centers, step) = if cutoff {
            let steps = number
                .checked_add(2)
                .ok_or_else(|| Error::InvalidArgument {
                    name: "number",
                    reason: format!("{number} basis functions is too many"),
                })?;
            let all = torch_linspace(start, end, steps)?;
            (all[1..=number].to_vec(), Some(all[1] - all[0]))
        } else {
            let all = torch_linspace(start, end, number)?;
            let step = (number >= 2).then(|| all[1] - all[0]);
            (all, step)
        };
        if basis.uses_centers() {
            // `step` is `Some` here by the checks above.
            let s = step.unwrap_or(f64::NAN);
            if !(s > 0.0 && s.is_finite()) {
                return Err(Error::InvalidArgument {
                    name: "number",
                    reason: format!(
                        "{number} centers over [{start}, {end}] give the spacing {s}, which is \
                         not a positive finite number"
                    ),
                });
            }
        }
        Ok(SoftOneHotLinspace {
            start,
            end,
            number,
            basis,
            cutoff,
            centers,
            step,
        })
    }

    /// The lower end `start` of the interval.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.5, 3.0, 10, Basis::Bessel, true)?;
    /// assert_eq!((b.start(), b.end()), (0.5, 3.0));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn start(&self) -> f64 {
        self.start
    }

    /// The upper end `end` of the interval.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.0, 1.8, 5, Basis::Gaussian, false)?;
    /// assert_eq!(b.end(), 1.8);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn end(&self) -> f64 {
        self.end
    }

    /// The indices `k` whose function may be nonzero at `x`: for `smooth_finite` (support
    /// one spacing either side of its center) at most three around `x`, for every other
    /// basis all `N`. Outside the range the value and derivative are exactly zero.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.0, 9.0, 10, Basis::SmoothFinite, false)?;
    /// assert_eq!(b.support(4.5), 3..6);
    /// assert_eq!(b.support(-5.0), 0..0);
    /// let g = SoftOneHotLinspace::new(0.0, 9.0, 10, Basis::Gaussian, false)?;
    /// assert_eq!(g.support(4.5), 0..10);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn support(&self, x: f64) -> std::ops::Range<usize> {
        if self.basis != Basis::SmoothFinite {
            return 0..self.number;
        }
        let inv_step = self.step.unwrap_or(1.0).recip();
        support_window(self.centers[0], inv_step, self.number, x)
    }

    /// The number `N` of basis functions: the row length of the `[n, N]` outputs.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.0, 1.8, 5, Basis::Gaussian, false)?;
    /// assert_eq!(b.number(), 5);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn number(&self) -> usize {
        self.number
    }

    /// The basis family.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.0, 1.8, 5, Basis::Fourier, true)?;
    /// assert_eq!(b.basis(), Basis::Fourier);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// Whether the functions are cut off outside `(start, end)` (see [`SoftOneHotLinspace`]).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.0, 1.8, 5, Basis::Fourier, true)?;
    /// assert!(b.cutoff());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn cutoff(&self) -> bool {
        self.cutoff
    }

    /// The `N` centers `c_k`: `linspace(start, end, N)` without cutoff,
    /// `linspace(start, end, N + 2)[1..N+1]` with (used by `gaussian`, `cosine` and
    /// `smooth_finite`).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.0, 4.0, 3, Basis::SmoothFinite, true)?;
    /// assert_eq!(b.centers(), &[1.0, 2.0, 3.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn centers(&self) -> &[f64] {
        &self.centers
    }

    /// The spacing `step = c'[1] - c'[0]` of the linspace `c'` the centers come from; `None`
    /// only for `fourier` and `bessel` with `N = 1` and no cutoff, where it is undefined
    /// (and unused).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.0, 4.0, 5, Basis::Gaussian, false)?;
    /// assert_eq!(b.step(), Some(1.0));
    /// let f = SoftOneHotLinspace::new(0.0, 4.0, 1, Basis::Fourier, false)?;
    /// assert_eq!(f.step(), None);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn step(&self) -> Option<f64> {
        self.step
    }

    pub(crate) fn tables<T: Real>(&self) -> Tables<T> {
        let n = self.number;
        let freq: Vec<T> = match (self.basis, self.cutoff) {
            (Basis::Fourier, false) => (0..n)
                .map(|k| T::from_f64(std::f64::consts::PI * k as f64))
                .collect(),
            (Basis::Fourier, true) | (Basis::Bessel, _) => (1..=n)
                .map(|k| T::from_f64(k as f64 * std::f64::consts::PI))
                .collect(),
            _ => Vec::new(),
        };
        let len = self.end - self.start;
        let coef = match self.basis {
            Basis::SmoothFinite => SMOOTH_FINITE_COEF * 2.0f64.exp(),
            Basis::Fourier => (0.25 + n as f64 / 2.0).sqrt(),
            Basis::Bessel => (2.0 / len).sqrt(),
            _ => 1.0,
        };
        Tables {
            centers: self.centers.iter().map(|&c| T::from_f64(c)).collect(),
            step: T::from_f64(self.step.unwrap_or(1.0)),
            inv_step: T::from_f64(self.step.unwrap_or(1.0).recip()),
            freq,
            start: T::from_f64(self.start),
            len: T::from_f64(len),
            coef: T::from_f64(coef),
        }
    }

    /// The `smooth_finite` functions that may be nonzero at `x`: their range `k0..k1`
    /// (at most three) and their values `f[k - k0]` (derivatives `df` if `D`); every other
    /// function is zero there. [`Self::row`] spreads it over a row.
    #[inline(always)]
    fn smooth_finite_window<T: Real, const D: bool>(
        &self,
        t: &Tables<T>,
        x: T,
    ) -> (std::ops::Range<usize>, [T; 3], [T; 3]) {
        let (mut f, mut df) = ([T::zero(); 3], [T::zero(); 3]);
        let window = support_window(t.centers[0], t.inv_step, t.centers.len(), x);
        for (j, k) in window.clone().enumerate() {
            (f[j], df[j]) = smooth_finite_value::<T, D>(t, x, t.centers[k], true);
        }
        (window, f, df)
    }

    /// [`Self::smooth_finite_window`] at every `x`: `(first, count, f, df)` each, [`LANES`]
    /// at a time in vector lanes ([`Self::smooth_finite_lanes`]), the last few one by one;
    /// the same bits either way. Compiled for AVX2 and FMA with the caller's token `avx2`.
    pub(crate) fn smooth_finite_windows<T: Real, const D: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        t: &Tables<T>,
        x: &[T],
    ) -> Vec<Window<T>> {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = avx2 {
            // SAFETY: `token` proves the CPU has the AVX2 and FMA the twin is compiled for.
            return unsafe { self.smooth_finite_windows_avx2::<T, D>(token, t, x) };
        }
        let _ = avx2;
        self.smooth_finite_windows_on::<T, D>(t, x)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn smooth_finite_windows_avx2<T: Real, const D: bool>(
        &self,
        _token: Avx2Fma,
        t: &Tables<T>,
        x: &[T],
    ) -> Vec<Window<T>> {
        self.smooth_finite_windows_on::<T, D>(t, x)
    }

    /// [`Self::smooth_finite_windows`] for the instruction set of the caller.
    #[inline(always)]
    fn smooth_finite_windows_on<T: Real, const D: bool>(
        &self,
        t: &Tables<T>,
        x: &[T],
    ) -> Vec<Window<T>> {
        let mut out = Vec::with_capacity(x.len());
        let (blocks, rest) = x.as_chunks::<LANES>();
        for block in blocks {
            out.extend(self.smooth_finite_lanes::<T, D>(t, block));
        }
        for &x in rest {
            let (window, f, df) = self.smooth_finite_window::<T, D>(t, x);
            out.push((window.start, window.len(), f, df));
        }
        out
    }

    /// [`Self::smooth_finite_window`] at [`LANES`] `x` at once, lane by lane the same
    /// helpers (so the same bits), in arrays the compiler runs as vectors: `(first, count,
    /// f, df)` per lane.
    #[inline(always)]
    fn smooth_finite_lanes<T: Real, const D: bool>(
        &self,
        t: &Tables<T>,
        x: &[T; LANES],
    ) -> [Window<T>; LANES] {
        let number = t.centers.len();
        let window: [(T, T); LANES] =
            std::array::from_fn(|l| window_in_floats(t.centers[0], t.inv_step, number, x[l]));
        let first: [usize; LANES] = std::array::from_fn(|l| window[l].0.to_f64() as usize);
        let mut f = [[T::zero(); LANES]; 3];
        let mut df = [[T::zero(); LANES]; 3];
        for j in 0..3 {
            // Lanes past their window read any center (the last) and are dropped.
            let c: [T; LANES] = std::array::from_fn(|l| t.centers[(first[l] + j).min(number - 1)]);
            let jf = T::from_f64(j as f64);
            for l in 0..LANES {
                (f[j][l], df[j][l]) = smooth_finite_value::<T, D>(t, x[l], c[l], jf < window[l].1);
            }
        }
        std::array::from_fn(|l| {
            (
                first[l],
                window[l].1.to_f64() as usize,
                [f[0][l], f[1][l], f[2][l]],
                [df[0][l], df[1][l], df[2][l]],
            )
        })
    }

    /// One row: the `N` values at `x` into `out`, and if `D` their derivatives into `dout`.
    #[inline]
    fn row<T: Real, const D: bool>(&self, t: &Tables<T>, x: T, out: &mut [T], dout: &mut [T]) {
        let zero = T::zero();
        let one = T::one();
        match self.basis {
            Basis::Gaussian => {
                let div = T::from_f64(GAUSSIAN_DIV);
                for (k, &c) in t.centers.iter().enumerate() {
                    let d = (x - c) / t.step;
                    let v = (-(d * d)).exp() / div;
                    out[k] = v;
                    if D {
                        dout[k] = -(v * (d + d)) / t.step;
                    }
                }
            }
            Basis::Cosine => {
                let half_pi = T::from_f64(std::f64::consts::FRAC_PI_2);
                for (k, &c) in t.centers.iter().enumerate() {
                    let d = (x - c) / t.step;
                    if d < one && -one < d {
                        let (s, co) = (half_pi * d).sin_cos();
                        out[k] = co;
                        if D {
                            dout[k] = -(s * half_pi) / t.step;
                        }
                    } else {
                        out[k] = zero;
                        if D {
                            dout[k] = zero;
                        }
                    }
                }
            }
            Basis::SmoothFinite => {
                out.fill(zero);
                if D {
                    dout.fill(zero);
                }
                let (window, f, df) = self.smooth_finite_window::<T, D>(t, x);
                for (j, k) in window.enumerate() {
                    out[k] = f[j];
                    if D {
                        dout[k] = df[j];
                    }
                }
            }
            Basis::Fourier => {
                let y = (x - t.start) / t.len;
                let inside = !self.cutoff || (zero < y && y < one);
                for (k, &f) in t.freq.iter().enumerate() {
                    if !inside {
                        out[k] = zero;
                        if D {
                            dout[k] = zero;
                        }
                        continue;
                    }
                    let (s, co) = (f * y).sin_cos();
                    if self.cutoff {
                        out[k] = s / t.coef;
                        if D {
                            dout[k] = co * f / t.len / t.coef;
                        }
                    } else {
                        out[k] = co / t.coef;
                        if D {
                            dout[k] = -(s * f) / t.len / t.coef;
                        }
                    }
                }
            }
            Basis::Bessel => {
                let r = x - t.start;
                let inside = !self.cutoff || (zero < r && r / t.len < one);
                let series_below = T::from_f64(0.5);
                // sin(k theta), cos(k theta) for theta = pi r / L by angle addition from
                // k = 1: one sin_cos per row instead of one per function (the rounding grows
                // by about one ulp per step, as the arguments' own rounding does).
                let (s1, c1) = if inside {
                    (t.freq[0] * r / t.len).sin_cos()
                } else {
                    (zero, one)
                };
                let (mut s, mut co) = (zero, one);
                // One division per row (unused where r = 0, the limit below).
                let inv_r = one / r;
                for (k, &f) in t.freq.iter().enumerate() {
                    (s, co) = (s * c1 + co * s1, co * c1 - s * s1);
                    if !inside {
                        out[k] = zero;
                        if D {
                            dout[k] = zero;
                        }
                        continue;
                    }
                    let arg = f * r / t.len;
                    if arg == zero {
                        // r == 0 (or f * r underflows): the limit sqrt(2/L) k pi / L, slope 0.
                        out[k] = t.coef * f / t.len;
                        if D {
                            dout[k] = zero;
                        }
                        continue;
                    }
                    out[k] = t.coef * s * inv_r;
                    if D {
                        let w = f / t.len;
                        dout[k] = if arg.abs() < series_below {
                            t.coef * w * w * sinc_derivative_series(arg)
                        } else {
                            t.coef * (co * w - s * inv_r) * inv_r
                        };
                    }
                }
            }
        }
    }

    /// Rows `x` (`out`, `dout`: `[x.len(), N]`), eight at a time in vector lanes where
    /// [`Self::bessel_lanes`] takes them, the others (and the last `< 8`) by [`Self::row`];
    /// compiled for AVX2 and FMA with the caller's token `avx2` (the same arithmetic, so the
    /// same bits: nothing here asks for a fused multiply-add). `x` must be finite (the
    /// public entry points check it).
    pub(crate) fn rows<T: Real, const D: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        t: &Tables<T>,
        x: &[T],
        out: &mut [T],
        dout: &mut [T],
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = avx2 {
            // SAFETY: `token` proves the CPU has the AVX2 and FMA the twin is compiled for.
            return unsafe { self.rows_avx2::<T, D>(token, t, x, out, dout) };
        }
        self.rows_on::<T, D>(avx2, t, x, out, dout)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn rows_avx2<T: Real, const D: bool>(
        &self,
        token: Avx2Fma,
        t: &Tables<T>,
        x: &[T],
        out: &mut [T],
        dout: &mut [T],
    ) {
        self.rows_on::<T, D>(Some(token), t, x, out, dout)
    }

    /// [`Self::rows`] for the instruction set of the caller (`avx2`: its token, for the
    /// transposes).
    #[inline(always)]
    fn rows_on<T: Real, const D: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        t: &Tables<T>,
        x: &[T],
        out: &mut [T],
        dout: &mut [T],
    ) {
        let n = self.number;
        let mut done = 0;
        if self.basis == Basis::Bessel && n > 0 {
            // The lanes' values and derivatives, `[N][8]` each, on their way to the rows.
            let mut lanes = vec![T::zero(); 2 * n * LANES];
            for (i, xs) in x.chunks_exact(LANES).enumerate() {
                let span = i * LANES * n..(i + 1) * LANES * n;
                let d = if D {
                    &mut dout[span.clone()]
                } else {
                    &mut [][..]
                };
                let lanes = &mut lanes;
                if !self.bessel_lanes::<T, D>(avx2, t, xs, &mut out[span.clone()], d, lanes, None) {
                    for (l, &xi) in xs.iter().enumerate() {
                        let row = span.start + l * n..span.start + (l + 1) * n;
                        let d = if D {
                            &mut dout[row.clone()]
                        } else {
                            &mut [][..]
                        };
                        self.row::<T, D>(t, xi, &mut out[row], d);
                    }
                }
            }
            done = x.len() / LANES * LANES;
        }
        for (i, &xi) in x.iter().enumerate().skip(done) {
            let row = i * n..(i + 1) * n;
            let d = if D {
                &mut dout[row.clone()]
            } else {
                &mut [][..]
            };
            self.row::<T, D>(t, xi, &mut out[row], d);
        }
    }

    /// Eight rows of the Bessel basis at once (`x`: 8 values; `out`, `dout`: `[8, N]`), lane
    /// by lane the arithmetic of [`Self::row`]'s Bessel case, so the same bits; the
    /// compiler vectorizes it across the rows, where a row alone runs one value at a time.
    /// Only for rows that take none of that case's branches (every `x` inside the cutoff,
    /// with `pi r / L >= 1/2`: neither the zero at `r = 0`, nor the derivative's series, nor
    /// the outside); returns `false`, writing nothing, for any other block. The radial
    /// lengths of an atomistic graph (`r` above ~0.16 of the cutoff) all qualify.
    ///
    /// The values land lane-major in `lanes` (`[2][N][8]`) and go to the rows by one
    /// transpose (stored lane by lane into rows, each was a scalar store: a third of the
    /// basis's time).
    ///
    /// With `envelope = Some((u, du))` (a factor of each lane and its derivative) the rows
    /// are the products `f u` and their derivatives `f' u + f du`, formed in the lanes
    /// (NequIP's cutoff, [`BesselEdgeEncoding`](super::BesselEdgeEncoding)).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn bessel_lanes<T: Real, const D: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        t: &Tables<T>,
        x: &[T],
        out: &mut [T],
        dout: &mut [T],
        lanes: &mut [T],
        envelope: Option<&LaneFactor<T>>,
    ) -> bool {
        let (zero, one, half) = (T::zero(), T::one(), T::from_f64(0.5));
        let r: [T; LANES] = std::array::from_fn(|l| x[l] - t.start);
        // `pi k r / L` grows with `k` (rounding is monotone), so the first is the least.
        let first: [T; LANES] = std::array::from_fn(|l| t.freq[0] * r[l] / t.len);
        let plain = (0..LANES)
            .all(|l| first[l] >= half && (!self.cutoff || (zero < r[l] && r[l] / t.len < one)));
        if !plain {
            return false;
        }
        let n = self.number;
        let (values, derivatives) = lanes.split_at_mut(n * LANES);
        let sc: [(T, T); LANES] = std::array::from_fn(|l| first[l].sin_cos());
        let (s1, c1): ([T; LANES], [T; LANES]) = (sc.map(|p| p.0), sc.map(|p| p.1));
        let (mut s, mut co) = ([zero; LANES], [one; LANES]);
        let inv_r: [T; LANES] = std::array::from_fn(|l| one / r[l]);
        for (k, &f) in t.freq.iter().enumerate() {
            for l in 0..LANES {
                (s[l], co[l]) = (s[l] * c1[l] + co[l] * s1[l], co[l] * c1[l] - s[l] * s1[l]);
            }
            let v: [T; LANES] = std::array::from_fn(|l| t.coef * s[l] * inv_r[l]);
            if D {
                let w = f / t.len;
                let mut d: [T; LANES] =
                    std::array::from_fn(|l| t.coef * (co[l] * w - s[l] * inv_r[l]) * inv_r[l]);
                if let Some([u, du]) = envelope {
                    d = std::array::from_fn(|l| d[l] * u[l] + v[l] * du[l]);
                }
                derivatives[k * LANES..(k + 1) * LANES].copy_from_slice(&d);
            }
            let v = match envelope {
                Some([u, _]) => std::array::from_fn(|l| v[l] * u[l]),
                None => v,
            };
            values[k * LANES..(k + 1) * LANES].copy_from_slice(&v);
        }
        transpose(avx2, (n, LANES), values, LANES, out, n);
        if D {
            transpose(avx2, (n, LANES), derivatives, LANES, dout, n);
        }
        true
    }

    fn check_shapes<T: Real>(&self, x: &[T], out_len: usize, what: &'static str) -> Result<()> {
        let expected = x.len().saturating_mul(self.number);
        if out_len != expected {
            return Err(Error::ShapeMismatch {
                what,
                expected,
                got: out_len,
            });
        }
        if let Some(index) = first_non_finite(x) {
            return Err(Error::NonFinite { what: "x", index });
        }
        Ok(())
    }

    /// Evaluates the basis at every `x[i]`: `out[i * N + k] = f_k(x[i])`.
    ///
    /// Shapes: `x: [n]`, `out: [n, N]` row-major. Errors: [`Error::ShapeMismatch`] if
    /// `out.len() != n * N`, [`Error::NonFinite`] for a NaN or infinite input. Runs in
    /// parallel above 4096 inputs, with results identical to the sequential ones.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.0, 3.0, 2, Basis::Cosine, true)?; // centers 1, 2
    /// let mut out = [0.0f32; 4];
    /// b.compute(&[1.0f32, 2.5], &mut out)?;
    /// assert_eq!(out[0], 1.0); // cos(0)
    /// assert_eq!(out[2], 0.0); // |d| = 1.5 is outside the support
    /// assert!((out[3] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6); // cos(pi/4)
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn compute<T: Real>(&self, x: &[T], out: &mut [T]) -> Result<()> {
        self.check_shapes(x, out.len(), "soft_one_hot_linspace output")?;
        let t = self.tables::<T>();
        let n = self.number;
        // Detected once, on the calling thread (which `with_instruction_set` limits).
        let avx2 = Avx2Fma::detect();
        let run = |xs: &[T], o: &mut [T]| self.rows::<T, false>(avx2, &t, xs, o, &mut []);
        if x.len() > PAR_THRESHOLD {
            x.par_chunks(CHUNK)
                .zip(out.par_chunks_mut(CHUNK * n))
                .for_each(|(xs, o)| run(xs, o));
        } else {
            run(x, out);
        }
        Ok(())
    }

    /// Evaluates the basis and its derivative at every `x[i]` in one pass:
    /// `out[i * N + k] = f_k(x[i])`, `dout[i * N + k] = f_k'(x[i])` (the diagonal of the
    /// Jacobian `d out[i, k] / d x[j]`, which is zero for `i != j`).
    ///
    /// Shapes: `x: [n]`, `out, dout: [n, N]` row-major. Errors: [`Error::ShapeMismatch`] if
    /// either buffer is not `n * N` long, [`Error::NonFinite`] for a NaN or infinite input.
    /// Where a basis is cut off by an indicator (`cosine`, masked `fourier`/`bessel`), the
    /// derivative is that of the formula times the indicator, as torch's autograd gives.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.0, 1.0, 3, Basis::Gaussian, false)?; // step 0.5
    /// let (mut v, mut dv) = ([0.0f64; 3], [0.0f64; 3]);
    /// b.compute_with_derivative(&[0.25], &mut v, &mut dv)?;
    /// // d = -0.5 for center 0.5: d/dx exp(-d^2)/1.12 = -2 d exp(-d^2) / 1.12 / step.
    /// let expected = 2.0 * (-0.25f64).exp() / 1.12;
    /// assert!((dv[1] - expected).abs() < 1e-14);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn compute_with_derivative<T: Real>(
        &self,
        x: &[T],
        out: &mut [T],
        dout: &mut [T],
    ) -> Result<()> {
        self.check_shapes(x, out.len(), "soft_one_hot_linspace output")?;
        self.check_shapes(x, dout.len(), "soft_one_hot_linspace derivative")?;
        let t = self.tables::<T>();
        let n = self.number;
        // Detected once, on the calling thread (which `with_instruction_set` limits).
        let avx2 = Avx2Fma::detect();
        let run = |xs: &[T], o: &mut [T], d: &mut [T]| self.rows::<T, true>(avx2, &t, xs, o, d);
        if x.len() > PAR_THRESHOLD {
            x.par_chunks(CHUNK)
                .zip(out.par_chunks_mut(CHUNK * n))
                .zip(dout.par_chunks_mut(CHUNK * n))
                .for_each(|((xs, o), d)| run(xs, o, d));
        } else {
            run(x, out, dout);
        }
        Ok(())
    }

    /// Evaluates the basis and its first and second derivatives at every `x[i]`:
    /// `out`, `d1`, `d2` (`[n, N]` each) as [`compute_with_derivative`](Self::compute_with_derivative)
    /// gives the first two, exact (dual numbers through the first derivative, in f64). The
    /// tangent passes' backward needs `f''` (see `Convolution::forward_edges_tangent`).
    ///
    /// Errors: as [`compute_with_derivative`](Self::compute_with_derivative).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, SoftOneHotLinspace};
    /// let b = SoftOneHotLinspace::new(0.0, 1.0, 3, Basis::Gaussian, false)?; // step 0.5
    /// let (mut v, mut d1, mut d2) = ([0.0f64; 3], [0.0f64; 3], [0.0f64; 3]);
    /// b.compute_with_second_derivative(&[0.25], &mut v, &mut d1, &mut d2)?;
    /// // exp(-d^2) / 1.12 with d = (x - 0.5) / 0.5: f'' = (4 d^2 - 2) exp(-d^2) / 1.12 / 0.25.
    /// let expected = (4.0 * 0.25 - 2.0) * (-0.25f64).exp() / 1.12 / 0.25;
    /// assert!((d2[1] - expected).abs() < 1e-13);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn compute_with_second_derivative<T: Real>(
        &self,
        x: &[T],
        out: &mut [T],
        d1: &mut [T],
        d2: &mut [T],
    ) -> Result<()> {
        self.check_shapes(x, out.len(), "soft_one_hot_linspace output")?;
        self.check_shapes(x, d1.len(), "soft_one_hot_linspace derivative")?;
        self.check_shapes(x, d2.len(), "soft_one_hot_linspace second derivative")?;
        // The values from the plain kernel: at the bessel basis' start the dual run misses the
        // `r == 0` branch (a moving zero is not a constant zero) and divides 0 by 0 there;
        // its derivative takes the series branch, right in both orders.
        self.compute(x, out)?;
        let seeds: Vec<Dual> = x.iter().map(|x| Dual::new(Real::to_f64(*x), 1.0)).collect();
        let mut value = vec![Dual::default(); out.len()];
        let mut slope = vec![Dual::default(); out.len()];
        self.compute_with_derivative(&seeds, &mut value, &mut slope)?;
        for ((a, b), s) in d1.iter_mut().zip(d2).zip(&slope) {
            *a = T::from_f64(s.re);
            *b = T::from_f64(s.eps);
        }
        Ok(())
    }
}

/// e3nn's `soft_one_hot_linspace(x, start, end, number, basis, cutoff)`: builds
/// [`SoftOneHotLinspace`] and evaluates it, returning a new `[n, number]` row-major vector.
///
/// For repeated calls, build the [`SoftOneHotLinspace`] once and use
/// [`SoftOneHotLinspace::compute`]. Errors: those of [`SoftOneHotLinspace::new`] and
/// [`SoftOneHotLinspace::compute`].
///
/// ```
/// use equivariant_core::math::{soft_one_hot_linspace, Basis};
/// let x = [0.5f64, 1.0, 1.5];
/// let y = soft_one_hot_linspace(&x, 0.0, 2.0, 4, Basis::SmoothFinite, true)?;
/// assert_eq!(y.len(), 3 * 4);
/// // Centers 0.4, 0.8, 1.2, 1.6 with step 0.4: x = 0.5 is out of reach of the last two.
/// assert_eq!(y[2], 0.0);
/// assert_eq!(y[3], 0.0);
/// assert!(y[0] > 0.0 && y[1] > 0.0);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn soft_one_hot_linspace<T: Real>(
    x: &[T],
    start: f64,
    end: f64,
    number: usize,
    basis: Basis,
    cutoff: bool,
) -> Result<Vec<T>> {
    let b = SoftOneHotLinspace::new(start, end, number, basis, cutoff)?;
    let len = x
        .len()
        .checked_mul(number)
        .ok_or_else(|| Error::InvalidArgument {
            name: "number",
            reason: format!("{} inputs x {number} functions overflows", x.len()),
        })?;
    let mut out = vec![T::zero(); len];
    b.compute(x, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lengths for a smooth_finite basis on `[0, end]`: below the start, across every
    /// center (on a grid of quarter steps too, so exactly on centers and on the window's
    /// edges), and past the end.
    fn lengths<T: Real>(end: f64, step: f64) -> Vec<T> {
        let mut x: Vec<T> = (0..203)
            .map(|i| T::from_f64(-0.25 * end + 1.5 * end * i as f64 / 202.0))
            .collect();
        x.extend((-12..((end / step) as i64 + 8) * 4).map(|i| T::from_f64(i as f64 * step / 4.0)));
        x.extend([0.0, 1e-30, -3.0 * end, 5.0 * end].map(T::from_f64));
        x
    }

    /// Eight lengths at a time (in vector lanes) give the same bits as one at a time, values
    /// and derivatives, f32 and f64, with and without a cutoff, for bases of 1, 2 and 10
    /// functions; the row holds the window's values and zeros.
    fn lanes_match_one_at_a_time<T: Real>() {
        for (end, number, cutoff) in [
            (1.8, 10, false),
            (1.8, 10, true),
            (2.0, 9, false),
            (1.0, 2, false),
            (1.0, 1, true),
            (1.0, 2, true),
        ] {
            let basis = SoftOneHotLinspace::new(0.0, end, number, Basis::SmoothFinite, cutoff)
                .expect("a valid basis");
            let t = basis.tables::<T>();
            let x = lengths::<T>(end, basis.step().expect("a spacing"));
            let one_by_one: Vec<Window<T>> = x
                .iter()
                .map(|&x| {
                    let (window, f, df) = basis.smooth_finite_window::<T, true>(&t, x);
                    (window.start, window.len(), f, df)
                })
                .collect();
            assert!(one_by_one.iter().any(|w| w.1 == 0));
            assert!(one_by_one.iter().any(|w| w.1 == number.min(3)));
            let bits = |w: &[Window<T>]| -> Vec<(usize, usize, Vec<u64>)> {
                w.iter()
                    .map(|(a, n, f, df)| {
                        let v = f[..*n].iter().chain(&df[..*n]);
                        (*a, *n, v.map(|&x| Real::to_f64(x).to_bits()).collect())
                    })
                    .collect()
            };
            let lanes = basis.smooth_finite_windows_on::<T, true>(&t, &x);
            assert_eq!(
                bits(&lanes),
                bits(&one_by_one),
                "{number} functions, cutoff {cutoff}"
            );
            let avx2 = basis.smooth_finite_windows::<T, true>(Avx2Fma::detect(), &t, &x);
            assert_eq!(
                bits(&avx2),
                bits(&one_by_one),
                "{number} functions, cutoff {cutoff}, AVX2"
            );
            let mut row = vec![T::zero(); number];
            for (&x, w) in x.iter().zip(&lanes) {
                basis.row::<T, false>(&t, x, &mut row, &mut []);
                for (k, &got) in row.iter().enumerate() {
                    let expected = if (w.0..w.0 + w.1).contains(&k) {
                        w.2[k - w.0]
                    } else {
                        T::zero()
                    };
                    assert_eq!(
                        Real::to_f64(got).to_bits(),
                        Real::to_f64(expected).to_bits()
                    );
                }
            }
        }
    }

    #[test]
    fn smooth_finite_lanes_match_one_at_a_time() {
        lanes_match_one_at_a_time::<f32>();
        lanes_match_one_at_a_time::<f64>();
    }
}
