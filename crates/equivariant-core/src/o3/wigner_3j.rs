//! Wigner 3j symbols (real Clebsch-Gordan coefficients) in e3nn's basis and sign.
//!
//! `C^{l1 l2 l3}` is the unique (up to sign) tensor of shape `(2l1+1, 2l2+1, 2l3+1)` with
//! `C_{lmn} = C_{ijk} D^{l1}_{il}(g) D^{l2}_{jm}(g) D^{l3}_{kn}(g)` for every rotation `g`,
//! normalized to Frobenius norm 1. It is built as e3nn builds it: the complex SU(2)
//! Clebsch-Gordan coefficients (Racah's formula, the alternating sum in exact rational
//! arithmetic) changed to the real basis of [`mod@super::wigner_d`] by
//! `C = Q1^T Q2^T conj(Q3)^T C_complex`, then normalized. Tables are computed once per
//! triple, in f64, and cached for the life of the process (thread-safe).

use std::sync::{Arc, OnceLock};

use num_bigint::BigInt;
use num_complex::Complex64;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::table_cache::{TableCache, cached};
use crate::{Error, Result};

/// One nonzero entry `C[i, j, k] = value` of a [`Wigner3j`] table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nonzero {
    /// Index into the first irrep, `0..2l1+1`.
    pub i: u16,
    /// Index into the second irrep, `0..2l2+1`.
    pub j: u16,
    /// Index into the third irrep, `0..2l3+1`.
    pub k: u16,
    /// The coefficient.
    pub value: f64,
}

/// The Wigner 3j table of one triple `(l1, l2, l3)`: dense values and the nonzero list.
#[derive(Debug, Clone, PartialEq)]
pub struct Wigner3j {
    /// The three degrees.
    pub ls: [u32; 3],
    values: Vec<f64>,
    nonzeros: Vec<Nonzero>,
}

impl Wigner3j {
    /// Computes the table afresh, without the cache (what [`wigner_3j`] does on first use).
    ///
    /// ```
    /// use equivariant_core::o3::wigner_3j::Wigner3j;
    /// let c = Wigner3j::new(6, 6, 12)?;
    /// assert_eq!(c.shape(), [13, 13, 25]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(l1: u32, l2: u32, l3: u32) -> Result<Self> {
        check_triangle(l1, l2, l3)?;
        Ok(build(l1, l2, l3))
    }

    /// `(2l1+1, 2l2+1, 2l3+1)`.
    ///
    /// ```
    /// let c = equivariant_core::o3::wigner_3j(1, 2, 3)?;
    /// assert_eq!(c.shape(), [3, 5, 7]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn shape(&self) -> [usize; 3] {
        self.ls.map(|l| 2 * l as usize + 1)
    }

    /// The dense values, row-major over `(i, j, k)`.
    ///
    /// ```
    /// let c = equivariant_core::o3::wigner_3j(1, 1, 0)?;
    /// assert_eq!(c.values().len(), 9);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// `C[i, j, k]`. Panics if an index is out of range (an internal-use accessor).
    ///
    /// ```
    /// // C(1,1,0) = I / sqrt(3)
    /// let c = equivariant_core::o3::wigner_3j(1, 1, 0)?;
    /// assert!((c.get(2, 2, 0) - 3f64.sqrt().recip()).abs() < 1e-15);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn get(&self, i: usize, j: usize, k: usize) -> f64 {
        let [_, d2, d3] = self.shape();
        self.values[(i * d2 + j) * d3 + k]
    }

    /// The nonzero entries (|value| > 1e-14), in row-major order: what kernels loop over, so
    /// no work is spent on the zeros of the dense table.
    ///
    /// ```
    /// // l=1 (x) l=1 -> l=1 is the cross product: 6 nonzeros out of 27.
    /// let c = equivariant_core::o3::wigner_3j(1, 1, 1)?;
    /// assert_eq!(c.nonzeros().len(), 6);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn nonzeros(&self) -> &[Nonzero] {
        &self.nonzeros
    }
}

/// The Wigner 3j symbol `C^{l1 l2 l3}`, shape `(2l1+1, 2l2+1, 2l3+1)`, e3nn's
/// `o3.wigner_3j(l1, l2, l3)` in f64.
///
/// Nonzero only for `|l1 - l2| <= l3 <= l1 + l2`; other triples give [`Error::Triangle`].
/// The first call for a triple builds the table (exact rational arithmetic); later calls
/// return the cached `Arc`.
///
/// ```
/// use equivariant_core::o3::wigner_3j;
/// // C(1,1,1) is the Levi-Civita symbol / sqrt(6) in e3nn's sign.
/// let c = wigner_3j(1, 1, 1)?;
/// assert!((c.get(0, 1, 2) - 6f64.sqrt().recip()).abs() < 1e-15);
/// assert!(wigner_3j(1, 1, 3).is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn wigner_3j(l1: u32, l2: u32, l3: u32) -> Result<Arc<Wigner3j>> {
    check_triangle(l1, l2, l3)?;
    static CACHE: OnceLock<TableCache<[u32; 3], Wigner3j>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    Ok(cached(cache, [l1, l2, l3], || build(l1, l2, l3)))
}

fn check_triangle(l1: u32, l2: u32, l3: u32) -> Result<()> {
    if l3 < l1.abs_diff(l2) || l3 > l1 + l2 {
        return Err(Error::Triangle { l1, l2, l3 });
    }
    Ok(())
}

/// Builds the real table (uncached).
fn build(l1: u32, l2: u32, l3: u32) -> Wigner3j {
    let [d1, d2, d3] = [l1, l2, l3].map(|l| 2 * l as usize + 1);
    let (q1, q2, q3) = (
        real_to_complex(l1),
        real_to_complex(l2),
        real_to_complex(l3),
    );
    let su2 = su2_clebsch_gordan(l1, l2, l3);
    let mut values = vec![0.0; d1 * d2 * d3];
    // C_real[a, b, c] = sum_{i, j, k} Q1[i, a] Q2[j, b] conj(Q3[k, c]) C_su2[i, j, k], where
    // i, j, k are complex m indices and C_su2 is nonzero only for m3 = m1 + m2. Each real
    // column of Q has at most two nonzero rows, so the sums are tiny.
    let mut imag_max = 0.0f64;
    let mut acc = vec![Complex64::zero(); d3];
    for a in 0..d1 {
        for b in 0..d2 {
            acc.iter_mut().for_each(|z| *z = Complex64::zero());
            for &(i, qa) in &q1.columns[a] {
                for &(j, qb) in &q2.columns[b] {
                    let m3 = (i as i64 - l1 as i64) + (j as i64 - l2 as i64);
                    if m3.unsigned_abs() > l3 as u64 {
                        continue;
                    }
                    let k = (m3 + l3 as i64) as usize;
                    let cg = su2[i * d2 + j];
                    if cg == 0.0 {
                        continue;
                    }
                    for &(c, qc) in &q3.rows[k] {
                        acc[c] += qa * qb * qc.conj() * cg;
                    }
                }
            }
            for (c, z) in acc.iter().enumerate() {
                imag_max = imag_max.max(z.im.abs());
                values[(a * d2 + b) * d3 + c] = z.re;
            }
        }
    }
    debug_assert!(
        imag_max < 1e-10,
        "wigner_3j({l1},{l2},{l3}) not real: {imag_max}"
    );
    let norm = values.iter().map(|x| x * x).sum::<f64>().sqrt();
    values.iter_mut().for_each(|x| *x /= norm);
    let nonzeros = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.abs() > 1e-14)
        .map(|(n, &value)| Nonzero {
            i: (n / (d2 * d3)) as u16,
            j: (n / d3 % d2) as u16,
            k: (n % d3) as u16,
            value,
        })
        .collect();
    Wigner3j {
        ls: [l1, l2, l3],
        values,
        nonzeros,
    }
}

/// The sparse change of basis `Q` from real to complex harmonics of degree `l`
/// (e3nn's `change_basis_real_to_complex`): `Q[complex m, real m]`, at most two nonzeros
/// per row and per column, including the `(-i)^l` factor that makes the 3j symbols real.
pub(crate) struct RealToComplex {
    l: u32,
    /// Nonzero `(row, value)` of each column.
    columns: Vec<Vec<(usize, Complex64)>>,
    /// Nonzero `(col, value)` of each row.
    rows: Vec<Vec<(usize, Complex64)>>,
}

impl RealToComplex {
    /// The dense matrix, row-major `(2l+1)^2`.
    pub(crate) fn dense(&self) -> Vec<Complex64> {
        let d = 2 * self.l as usize + 1;
        let mut out = vec![Complex64::zero(); d * d];
        for (r, row) in self.rows.iter().enumerate() {
            for &(c, v) in row {
                out[r * d + c] += v;
            }
        }
        out
    }
}

pub(crate) fn real_to_complex(l: u32) -> RealToComplex {
    let li = l as i64;
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let phase = Complex64::new(0.0, -1.0).powu(l);
    let mut entries = Vec::with_capacity(2 * l as usize + 1);
    let idx = |m: i64| (li + m) as usize;
    for m in -li..0 {
        entries.push((idx(m), idx(-m), Complex64::new(s, 0.0)));
        entries.push((idx(m), idx(m), Complex64::new(0.0, -s)));
    }
    entries.push((idx(0), idx(0), Complex64::one()));
    for m in 1..=li {
        let sign = if m % 2 == 0 { 1.0 } else { -1.0 };
        entries.push((idx(m), idx(m), Complex64::new(sign * s, 0.0)));
        entries.push((idx(m), idx(-m), Complex64::new(0.0, sign * s)));
    }
    let d = 2 * l as usize + 1;
    let (mut columns, mut rows) = (vec![Vec::new(); d], vec![Vec::new(); d]);
    for (r, c, v) in entries {
        columns[c].push((r, v * phase));
        rows[r].push((c, v * phase));
    }
    RealToComplex { l, columns, rows }
}

/// The SU(2) Clebsch-Gordan coefficients `<l1 m1 l2 m2 | l3 m1+m2>` by Racah's formula,
/// as a `(2l1+1) x (2l2+1)` table over complex indices `(l1 + m1, l2 + m2)` (zero where
/// `|m1 + m2| > l3`).
///
/// `C = sqrt((2 l3 + 1) P) S` with `P` a ratio of factorials and `S` an alternating sum of
/// ratios of factorials. Every denominator of `S` divides
/// `K = vmax! (l3-l1+l2-vmin)! (l3+m3-vmin)! (vmax+l1-l2-m3)!`, so `K S` is an exact
/// integer sum (no gcds, no cancellation error); one rounding remains, in the final
/// `sqrt((2 l3 + 1) Pnum (K S)^2 / (Pden K^2))`.
fn su2_clebsch_gordan(l1: u32, l2: u32, l3: u32) -> Vec<f64> {
    let n = (l1 + l2 + l3 + 2) as usize;
    let mut fact = Vec::with_capacity(n);
    fact.push(BigInt::one());
    for k in 1..n {
        let next = &fact[k - 1] * BigInt::from(k);
        fact.push(next);
    }
    let f = |k: i64| &fact[k as usize];
    let (j1, j2, j3) = (l1 as i64, l2 as i64, l3 as i64);
    let (d1, d2) = (2 * l1 as usize + 1, 2 * l2 as usize + 1);
    let mut table = vec![0.0; d1 * d2];
    let triangle = f(j3 + j1 - j2) * f(j3 - j1 + j2) * f(j1 + j2 - j3);
    for i in 0..d1 {
        for j in 0..d2 {
            let (m1, m2) = (i as i64 - j1, j as i64 - j2);
            let m3 = m1 + m2;
            if m3.abs() > j3 {
                continue;
            }
            let vmin = (-j1 + j2 + m3).max(-j1 + m1).max(0);
            let vmax = (j2 + j3 + m1).min(j3 - j1 + j2).min(j3 + m3);
            if vmin > vmax {
                continue;
            }
            let k = f(vmax) * f(j3 - j1 + j2 - vmin) * f(j3 + m3 - vmin) * f(vmax + j1 - j2 - m3);
            // K T_vmin, then T_{v+1} / T_v = (B+1) C D / (A (v+1) (E+1)) with
            // A = l2+l3+m1-v, B = l1-m1+v, C = l3-l1+l2-v, D = l3+m3-v, E = v+l1-l2-m3:
            // each step multiplies and divides exactly by small integers.
            let v = vmin;
            let mut term = f(j2 + j3 + m1 - v) * f(j1 - m1 + v) * &k
                / (f(v) * f(j3 - j1 + j2 - v) * f(j3 + m3 - v) * f(v + j1 - j2 - m3));
            let mut sum = BigInt::zero();
            for v in vmin..=vmax {
                if (v + j2 + m2).rem_euclid(2) == 0 {
                    sum += &term;
                } else {
                    sum -= &term;
                }
                if v < vmax {
                    let (a, b, c) = (j2 + j3 + m1 - v, j1 - m1 + v, j3 - j1 + j2 - v);
                    let (d, e) = (j3 + m3 - v, v + j1 - j2 - m3);
                    term =
                        term * BigInt::from((b + 1) * c * d) / BigInt::from(a * (v + 1) * (e + 1));
                }
            }
            if sum.is_zero() {
                continue;
            }
            let p_num =
                &triangle * f(j3 + m3) * f(j3 - m3) * BigInt::from(2 * j3 + 1) * &sum * &sum;
            let p_den =
                f(j1 + j2 + j3 + 1) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2) * &k * &k;
            let magnitude = ratio_to_f64(p_num, p_den).sqrt();
            table[i * d2 + j] = if sum.is_negative() {
                -magnitude
            } else {
                magnitude
            };
        }
    }
    table
}

/// `num / den` in f64: two roundings while both fit in f64, exact rational otherwise.
fn ratio_to_f64(num: BigInt, den: BigInt) -> f64 {
    match (num.to_f64(), den.to_f64()) {
        (Some(n), Some(d)) if n.is_finite() && d.is_finite() => n / d,
        _ => BigRational::new(num, den).to_f64().unwrap_or(f64::NAN),
    }
}
