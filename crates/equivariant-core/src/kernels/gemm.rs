//! The small dense products inside the kernels, `C (+)= A B` over strided row-major slices,
//! and the vector helpers they share.
//!
//! Every function here is `#[inline(always)]` and generic over `FMA`, so it compiles into its
//! caller: inside a `#[target_feature(enable = "avx2,fma")]` function (`FMA = true`) the
//! loops become 256-bit fused multiply-adds, elsewhere portable SSE2 multiplies and adds.
//! `FMA` only chooses the arithmetic (`mul_add` is exact on any CPU); the explicit AVX2
//! intrinsics run only with an [`Avx2Fma`] token.

use super::simd::Avx2Fma;
#[cfg(doc)]
use super::simd::InstructionSet;
#[cfg(target_arch = "x86_64")]
use super::simd::is_f32;
use super::transpose::transpose;
use crate::error::check_len;
use crate::{Real, Result};

/// `acc + a b`, with one rounding when `FMA`.
#[inline(always)]
pub(crate) fn madd<T: Real, const FMA: bool>(acc: T, a: T, b: T) -> T {
    if FMA { a.mul_add(b, acc) } else { acc + a * b }
}

/// `y[n] += a x[n]`.
#[inline(always)]
pub(crate) fn axpy<T: Real, const FMA: bool>(y: &mut [T], a: T, x: &[T]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = madd::<T, FMA>(*y, a, x);
    }
}

/// `sum_n a[n] b[n]`, in order (a serial chain: for short vectors).
#[inline(always)]
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |s, (&x, &y)| s + x * y)
}

/// `y[n] += a[n] b[n]`.
#[inline(always)]
pub(crate) fn mul_acc<T: Real, const FMA: bool>(y: &mut [T], a: &[T], b: &[T]) {
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        *y = madd::<T, FMA>(*y, a, b);
    }
}

/// The vector width the kernels pad their edge loops to.
pub(crate) const LANES: usize = 8;

/// The sums of eight lane vectors, `[sum_l v[s][l] for s in 0..8]`, each as a tree (lane
/// halves, then quarters; a fixed order, so deterministic): with AVX2 and f32 the eight
/// reduced together by horizontal adds (about one instruction per result instead of a
/// chain of seven). The intrinsics run with `avx2` only (and `FMA`, the instantiation
/// inside an `avx2,fma` function).
#[inline(always)]
pub(crate) fn lane_sums8<T: Real, const FMA: bool>(
    avx2: Option<Avx2Fma>,
    v: &[[T; LANES]; 8],
) -> [T; 8] {
    #[cfg(target_arch = "x86_64")]
    if FMA
        && let Some(_token) = avx2
        && is_f32::<T>()
    {
        // SAFETY: the CPU has AVX2 (`_token`, an `Avx2Fma`, exists only there); `T` is
        // `f32` (same type id), so each `[T; 8]` is eight contiguous `f32`.
        unsafe {
            use std::arch::x86_64::*;
            let r: [__m256; 8] =
                std::array::from_fn(|s| _mm256_loadu_ps(v[s].as_ptr() as *const f32));
            // [s0 half sums, s1, s2, s3 | the other halves], then [s4..s7 | ...].
            let t = [
                _mm256_hadd_ps(r[0], r[1]),
                _mm256_hadd_ps(r[2], r[3]),
                _mm256_hadd_ps(r[4], r[5]),
                _mm256_hadd_ps(r[6], r[7]),
            ];
            let (u0, u1) = (_mm256_hadd_ps(t[0], t[1]), _mm256_hadd_ps(t[2], t[3]));
            let sum = _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(u0, u1),
                _mm256_permute2f128_ps::<0x31>(u0, u1),
            );
            let mut out = [T::zero(); 8];
            _mm256_storeu_ps(out.as_mut_ptr() as *mut f32, sum);
            return out;
        }
    }
    let _ = avx2;
    std::array::from_fn(|s| lane_sum(&v[s]))
}

/// `sum_l v[l]` as a tree: lane halves, then quarters (reduces as vector halves, not as a
/// serial chain).
#[inline(always)]
pub(crate) fn lane_sum<T: Real>(v: &[T; LANES]) -> T {
    let h: [T; 4] = std::array::from_fn(|l| v[l] + v[l + 4]);
    (h[0] + h[2]) + (h[1] + h[3])
}

/// A strided row-major matrix operand: row `i` starts at `data[i * stride]`.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a, T> {
    pub data: &'a [T],
    pub stride: usize,
}

/// `c[i, j] = (c[i, j] if ACC) + sum_l a[i, l] b[l, j]` for `i < m`, `j < n`, `l < k`, with
/// `c` of row stride `ldc`.
///
/// Small f32 products inside an `avx2,fma` function (`m n k <= 2^14`) run in registers
/// ([`small_product`]); other f32 and f64 products on the `gemm` crate's packed,
/// cache-blocked kernels, single-threaded (the callers are already parallel over nodes;
/// one thread per call keeps the sums' order, so results, fixed). It picks its kernel at run time from the CPU's features
/// (AVX-512, AVX2 and FMA, or portable code), so no token is needed: measured 72-81
/// GFLOP/s on one AVX-512 core for the convolution's shapes (`1500 x 120 x 100`,
/// `64 x 64 x 64`), against 36 for the register-blocked AVX2 block it replaced. Other
/// `T` (the dual numbers of the tangent code) take the portable blocked loop.
#[inline(always)]
pub(crate) fn gemm<T: Real, const FMA: bool, const ACC: bool>(
    avx2: Option<Avx2Fma>,
    dims: (usize, usize, usize),
    a: Rows<'_, T>,
    b: Rows<'_, T>,
    c: &mut [T],
    ldc: usize,
) {
    product::<T, FMA, ACC>(avx2, dims, (a, false), b, c, ldc)
}

/// [`gemm`] with `a` given transposed: `c[i, j] = (c[i, j] if ACC) + sum_l a[l, i] b[l, j]`,
/// `a` `[k, m]` rows `a.stride` apart. For a product whose natural `m` is small (16 output
/// rows: one AVX-512 register of f32): with the long side as `m` the `gemm` crate runs its
/// wider kernels.
#[inline(always)]
pub(crate) fn gemm_tn<T: Real, const FMA: bool, const ACC: bool>(
    avx2: Option<Avx2Fma>,
    dims: (usize, usize, usize),
    a: Rows<'_, T>,
    b: Rows<'_, T>,
    c: &mut [T],
    ldc: usize,
) {
    product::<T, FMA, ACC>(avx2, dims, (a, true), b, c, ldc)
}

/// [`gemm`] (`a` as rows) or [`gemm_tn`] (`a_transposed`: `a` as `[k, m]` rows).
#[inline(always)]
fn product<T: Real, const FMA: bool, const ACC: bool>(
    avx2: Option<Avx2Fma>,
    (m, n, k): (usize, usize, usize),
    (a, a_transposed): (Rows<'_, T>, bool),
    b: Rows<'_, T>,
    c: &mut [T],
    ldc: usize,
) {
    let _ = avx2;
    if m == 0 || n == 0 {
        return;
    }
    let (a_rows, a_cols) = if a_transposed { (k, m) } else { (m, k) };
    assert!(
        k == 0 || a.data.len() >= (a_rows - 1) * a.stride + a_cols,
        "gemm: a too short"
    );
    assert!(
        k == 0 || b.data.len() >= (k - 1) * b.stride + n,
        "gemm: b too short"
    );
    assert!(c.len() >= (m - 1) * ldc + n, "gemm: c too short");
    if k == 0 {
        if !ACC {
            if ldc == n {
                // Contiguous rows: one fill (a call per row of a few numbers showed).
                c[..m * n].fill(T::zero());
            } else {
                for i in 0..m {
                    c[i * ldc..i * ldc + n].fill(T::zero());
                }
            }
        }
        return;
    }
    // `a[i, l]` at `i row + l col`.
    let a_strides = if a_transposed {
        (1, a.stride)
    } else {
        (a.stride, 1)
    };
    #[cfg(target_arch = "x86_64")]
    if FMA && is_f32::<T>() && m * n * k <= SMALL_PRODUCT {
        return small_product::<T, ACC>((m, n, k), (a.data, a_strides), b, c, ldc);
    }
    if packed::<T, f32, ACC>((m, n, k), (a.data, a_strides), b, c, ldc)
        || packed::<T, f64, ACC>((m, n, k), (a.data, a_strides), b, c, ldc)
    {
        return;
    }
    if !a_transposed {
        return gemm_blocked::<T, FMA, ACC, 4, 8>((m, n, k), a, b, c, ldc);
    }
    // Other `T` (dual numbers) with `a` transposed: `a` as rows first.
    let mut at = vec![T::zero(); m * k];
    transpose(None, (k, m), a.data, a.stride, &mut at, k);
    let at = Rows {
        data: &at,
        stride: k,
    };
    gemm_blocked::<T, FMA, ACC, 4, 8>((m, n, k), at, b, c, ldc)
}

/// [`gemm`] by the `gemm` crate when `T` is `F` (`false`, nothing done, otherwise).
#[inline(always)]
fn packed<T: Real, F: Real + 'static, const ACC: bool>(
    (m, n, k): (usize, usize, usize),
    (a, (a_row, a_col)): (&[T], (usize, usize)),
    b: Rows<'_, T>,
    c: &mut [T],
    ldc: usize,
) -> bool {
    if std::any::TypeId::of::<T>() != std::any::TypeId::of::<F>() {
        return false;
    }
    let stride = |s: usize| isize::try_from(s).expect("a slice's stride fits isize");
    // SAFETY: `T` is `F` (same type id), so the casts reinterpret the slices as what they
    // are; every element the product reads or writes is in bounds: `a[i, l]` at `i a_row +
    // l a_col` for `i < m`, `l < k`, rows `l < k` of `b` (`n` each) and rows `i < m` of `c`
    // (`ldc` apart, `n` each), which the caller asserted; `c` does not alias `a` or `b` (it
    // is borrowed mutably). The crate checks the CPU's features itself before using them.
    unsafe {
        gemm::gemm::<F>(
            m,
            n,
            k,
            c.as_mut_ptr() as *mut F,
            1,
            stride(ldc),
            ACC,
            a.as_ptr() as *const F,
            stride(a_col),
            stride(a_row),
            b.data.as_ptr() as *const F,
            1,
            stride(b.stride),
            F::one(),
            F::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    true
}

/// `c = a b`, or `c += a b` when `accumulate`, row-major: `a` `[m, k]`, `b` `[k, n]`, `c`
/// `[m, n]`, on [`InstructionSet::current`]: the register-blocked product the convolution
/// kernels run. Wrong lengths give [`Error::ShapeMismatch`](crate::Error::ShapeMismatch).
///
/// ```
/// use equivariant_core::kernels::matmul;
/// let (a, b) = ([1.0f64, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]);
/// let mut c = [1.0; 4];
/// matmul(&a, &b, &mut c, (2, 2, 2), false)?;
/// assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
/// matmul(&a, &b, &mut c, (2, 2, 2), true)?;
/// assert_eq!(c, [38.0, 44.0, 86.0, 100.0]);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn matmul<T: Real>(
    a: &[T],
    b: &[T],
    c: &mut [T],
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
) -> Result<()> {
    check_len("a [m, k]", m * k, a.len())?;
    matmul_entry((a, false), b, c, (m, n, k), accumulate)
}

/// [`matmul`] with `a` given transposed: `c = a^T b` (or `c += a^T b`), `a` `[k, m]`, `b`
/// `[k, n]`, `c` `[m, n]` row-major: the gradient of a product's right factor (`x^T g`),
/// without transposing `x`. Wrong lengths give
/// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch).
///
/// ```
/// use equivariant_core::kernels::matmul_tn;
/// // a = [[1, 2], [3, 4]] is a^T of [[1, 3], [2, 4]].
/// let (a, b) = ([1.0f64, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]);
/// let mut c = [0.0; 4];
/// matmul_tn(&a, &b, &mut c, (2, 2, 2), false)?;
/// assert_eq!(c, [26.0, 30.0, 38.0, 44.0]);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn matmul_tn<T: Real>(
    a: &[T],
    b: &[T],
    c: &mut [T],
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
) -> Result<()> {
    check_len("a [k, m]", k * m, a.len())?;
    matmul_entry((a, true), b, c, (m, n, k), accumulate)
}

/// The checks and the instruction set of [`matmul`] and [`matmul_tn`] (`a`'s length checked
/// by the caller).
fn matmul_entry<T: Real>(
    (a, a_transposed): (&[T], bool),
    b: &[T],
    c: &mut [T],
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
) -> Result<()> {
    check_len("b [k, n]", k * n, b.len())?;
    check_len("c [m, n]", m * n, c.len())?;
    let stride = if a_transposed { m } else { k };
    let (a, b) = (
        (Rows { data: a, stride }, a_transposed),
        Rows { data: b, stride: n },
    );
    #[cfg(target_arch = "x86_64")]
    if let Some(token) = Avx2Fma::detect() {
        // SAFETY: `token` proves the CPU has the AVX2 and FMA `matmul_avx2` is compiled for.
        unsafe { matmul_avx2(token, (m, n, k), a, b, c, accumulate) };
        return Ok(());
    }
    if accumulate {
        product::<T, false, true>(None, (m, n, k), a, b, c, n);
    } else {
        product::<T, false, false>(None, (m, n, k), a, b, c, n);
    }
    Ok(())
}

/// [`matmul_entry`]'s product compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn matmul_avx2<T: Real>(
    token: Avx2Fma,
    mnk: (usize, usize, usize),
    a: (Rows<'_, T>, bool),
    b: Rows<'_, T>,
    c: &mut [T],
    accumulate: bool,
) {
    let n = mnk.1;
    if accumulate {
        product::<T, true, true>(Some(token), mnk, a, b, c, n);
    } else {
        product::<T, true, false>(Some(token), mnk, a, b, c, n);
    }
}

/// Products of at most this many multiply-adds (`m n k`) run in [`small_product`]: the
/// per-node products of a small model's convolution (`16 x 24 x 16`, thousands per
/// training step), where the `gemm` crate's per-call costs (its thread-local packing
/// buffer, its dispatch) were a third of its time.
#[cfg(target_arch = "x86_64")]
const SMALL_PRODUCT: usize = 1 << 14;

/// `c (+)= a b` for a small product of `f32` inside an `avx2,fma` function (`FMA`): blocks
/// of 4 rows by 16, then 8, columns, their sums kept in registers (eight 256-bit
/// accumulators in the 4 x 16 block) while `l` runs, each `b` row loaded once per block;
/// the rows and columns left over one at a time. `a[i, l]` is at `i a_row + l a_col`, so
/// either layout of `a` is read in place. Each sum runs over `l` in order, one rounding per
/// multiply-add.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn small_product<T: Real, const ACC: bool>(
    (m, n, k): (usize, usize, usize),
    (a, a_strides): (&[T], (usize, usize)),
    b: Rows<'_, T>,
    c: &mut [T],
    ldc: usize,
) {
    let mut j = 0;
    while j + 16 <= n {
        small_columns::<T, ACC, 16>((m, j, k), (a, a_strides), b, c, ldc);
        j += 16;
    }
    while j + 8 <= n {
        small_columns::<T, ACC, 8>((m, j, k), (a, a_strides), b, c, ldc);
        j += 8;
    }
    while j < n {
        small_columns::<T, ACC, 1>((m, j, k), (a, a_strides), b, c, ldc);
        j += 1;
    }
}

/// Columns `j..j + C` of [`small_product`]: rows in blocks of 4, then one at a time.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn small_columns<T: Real, const ACC: bool, const C: usize>(
    (m, j, k): (usize, usize, usize),
    (a, a_strides): (&[T], (usize, usize)),
    b: Rows<'_, T>,
    c: &mut [T],
    ldc: usize,
) {
    let mut i = 0;
    while i + 4 <= m {
        small_block::<T, ACC, 4, C>((i, j, k), (a, a_strides), b, c, ldc);
        i += 4;
    }
    while i < m {
        small_block::<T, ACC, 1, C>((i, j, k), (a, a_strides), b, c, ldc);
        i += 1;
    }
}

/// The `R x C` block of `c` at `(i, j)` of [`small_product`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn small_block<T: Real, const ACC: bool, const R: usize, const C: usize>(
    (i, j, k): (usize, usize, usize),
    (a, (a_row, a_col)): (&[T], (usize, usize)),
    b: Rows<'_, T>,
    c: &mut [T],
    ldc: usize,
) {
    let mut acc = [[T::zero(); C]; R];
    for l in 0..k {
        let row: &[T; C] = b.data[l * b.stride + j..][..C]
            .try_into()
            .expect("C numbers");
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = a[(i + r) * a_row + l * a_col];
            for (x, &bv) in acc.iter_mut().zip(row) {
                *x = av.mul_add(bv, *x);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let out: &mut [T; C] = (&mut c[(i + r) * ldc + j..][..C])
            .try_into()
            .expect("C numbers");
        if ACC {
            out.iter_mut().zip(acc).for_each(|(y, &x)| *y += x);
        } else {
            *out = *acc;
        }
    }
}

/// The portable product: blocks of `R x C` sums kept in registers while `l` runs, each `b`
/// row loaded once per `R` rows of `a`.
#[inline(always)]
fn gemm_blocked<T: Real, const FMA: bool, const ACC: bool, const R: usize, const C: usize>(
    (m, n, k): (usize, usize, usize),
    a: Rows<'_, T>,
    b: Rows<'_, T>,
    c: &mut [T],
    ldc: usize,
) {
    let mut i = 0;
    while i < m {
        let nr = R.min(m - i);
        let ar: [&[T]; R] = std::array::from_fn(|r| {
            let row = (i + r.min(nr - 1)) * a.stride;
            &a.data[row..row + k]
        });
        let mut j = 0;
        while j < n {
            let nc = C.min(n - j);
            let mut acc = [[T::zero(); C]; R];
            for l in 0..k {
                let brow = &b.data[l * b.stride + j..l * b.stride + j + nc];
                for (acc, ar) in acc.iter_mut().zip(&ar).take(nr) {
                    let av = ar[l];
                    for (x, &bv) in acc.iter_mut().zip(brow) {
                        *x = madd::<T, FMA>(*x, av, bv);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate().take(nr) {
                let row = &mut c[(i + r) * ldc + j..(i + r) * ldc + j + nc];
                if ACC {
                    row.iter_mut().zip(acc).for_each(|(y, &x)| *y += x);
                } else {
                    row.copy_from_slice(&acc[..nc]);
                }
            }
            j += C;
        }
        i += R;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::real::dual::Dual;

    /// `gemm_tn` on `a` (`[k, m]`, row stride `m + 1`) equals `gemm` on `a` transposed
    /// (exactly: the same products summed in the same order on the portable path; within
    /// rounding on the packed one), overwriting and accumulating.
    fn check<T: Real>(tol: f64) {
        let value = |i: usize| T::from_f64(((i * 37 + 11) % 23) as f64 / 7.0 - 1.5);
        for (m, n, k) in [(1, 1, 1), (5, 3, 7), (48, 16, 72), (17, 9, 4)] {
            let stride = m + 1;
            let a: Vec<T> = (0..k * stride).map(value).collect();
            let b: Vec<T> = (0..k * n).map(|i| value(i + 5)).collect();
            let mut at = vec![T::zero(); m * k];
            for l in 0..k {
                for i in 0..m {
                    at[i * k + l] = a[l * stride + i];
                }
            }
            for acc in [false, true] {
                let start: Vec<T> = (0..m * n).map(|i| value(i + 9)).collect();
                let (mut want, mut got) = (start.clone(), start);
                let (a_rows, at_rows) = (
                    Rows { data: &a, stride },
                    Rows {
                        data: &at,
                        stride: k,
                    },
                );
                let b_rows = Rows {
                    data: &b,
                    stride: n,
                };
                if acc {
                    gemm::<T, false, true>(None, (m, n, k), at_rows, b_rows, &mut want, n);
                    gemm_tn::<T, false, true>(None, (m, n, k), a_rows, b_rows, &mut got, n);
                } else {
                    gemm::<T, false, false>(None, (m, n, k), at_rows, b_rows, &mut want, n);
                    gemm_tn::<T, false, false>(None, (m, n, k), a_rows, b_rows, &mut got, n);
                }
                for (w, g) in want.iter().zip(&got) {
                    let (w, g) = (Real::to_f64(*w), Real::to_f64(*g));
                    assert!(
                        (w - g).abs() <= tol * (1.0 + w.abs()),
                        "{m}x{n}x{k}: {g} != {w}"
                    );
                }
            }
        }
    }

    /// The small products (`m n k <= SMALL_PRODUCT`, f32 with `FMA`: [`small_product`]) equal
    /// the sums written out in f64, for every block shape (rows in fours and ones, columns
    /// in 16s, 8s and ones), `a` either way round, overwriting and accumulating.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn small_products_are_the_sums() {
        let value = |i: usize| ((i * 37 + 11) % 23) as f32 / 7.0 - 1.5;
        for (m, n, k) in [
            (1, 1, 1),
            (4, 16, 3),
            (5, 8, 7),
            (16, 24, 16),
            (7, 27, 5),
            (18, 16, 16),
        ] {
            assert!(m * n * k <= SMALL_PRODUCT);
            let (stride, ldc) = (m + 2, n + 1);
            let a: Vec<f32> = (0..k * stride.max(k + 1) * 2).map(value).collect();
            let b: Vec<f32> = (0..k * (n + 3)).map(|i| value(i + 5)).collect();
            let b_rows = Rows {
                data: &b,
                stride: n + 3,
            };
            for transposed in [false, true] {
                // `a[i, l]`: rows `k + 1` apart, or (transposed) `a[l, i]` rows `stride` apart.
                let a_rows = Rows {
                    data: &a,
                    stride: if transposed { stride } else { k + 1 },
                };
                let at = |i: usize, l: usize| {
                    if transposed {
                        l * a_rows.stride + i
                    } else {
                        i * a_rows.stride + l
                    }
                };
                for acc in [false, true] {
                    let start: Vec<f32> = (0..m * ldc).map(|i| value(i + 9)).collect();
                    let mut got = start.clone();
                    match (transposed, acc) {
                        (false, false) => {
                            gemm::<f32, true, false>(None, (m, n, k), a_rows, b_rows, &mut got, ldc)
                        }
                        (false, true) => {
                            gemm::<f32, true, true>(None, (m, n, k), a_rows, b_rows, &mut got, ldc)
                        }
                        (true, false) => gemm_tn::<f32, true, false>(
                            None,
                            (m, n, k),
                            a_rows,
                            b_rows,
                            &mut got,
                            ldc,
                        ),
                        (true, true) => gemm_tn::<f32, true, true>(
                            None,
                            (m, n, k),
                            a_rows,
                            b_rows,
                            &mut got,
                            ldc,
                        ),
                    }
                    for i in 0..m {
                        for j in 0..ldc {
                            let mut want = if acc || j >= n {
                                start[i * ldc + j] as f64
                            } else {
                                0.0
                            };
                            if j < n {
                                for l in 0..k {
                                    want += a[at(i, l)] as f64 * b[l * (n + 3) + j] as f64;
                                }
                            }
                            let g = got[i * ldc + j] as f64;
                            assert!(
                                (g - want).abs() <= 1e-5 * (1.0 + want.abs()),
                                "{m}x{n}x{k} {transposed} {acc} [{i}, {j}]: {g} != {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_tn_equals_gemm_of_the_transpose() {
        check::<f32>(1e-5);
        check::<f64>(1e-13);
        check::<Dual>(0.0);
    }
}
