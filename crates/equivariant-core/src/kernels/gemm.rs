//! The small dense products inside the kernels, `C (+)= A B` over strided row-major slices,
//! and the vector helpers they share.
//!
//! Every function here is `#[inline(always)]` and generic over `FMA`, so it compiles into its
//! caller: inside a `#[target_feature(enable = "avx2,fma")]` function (`FMA = true`) the
//! loops become 256-bit fused multiply-adds, elsewhere portable SSE2 multiplies and adds.
//! `FMA` only chooses the arithmetic (`mul_add` is exact on any CPU); the explicit AVX2
//! intrinsics run only with an [`Avx2Fma`] token.

#[cfg(doc)]
use super::simd::InstructionSet;
use super::simd::{Avx2Fma, is_f32};
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

/// `y[n] += a[n] b[n]`.
#[inline(always)]
pub(crate) fn mul_acc<T: Real, const FMA: bool>(y: &mut [T], a: &[T], b: &[T]) {
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        *y = madd::<T, FMA>(*y, a, b);
    }
}

/// The vector width the kernels pad their edge loops to.
pub(crate) const LANES: usize = 8;

/// `a . b` with eight independent partial sums in a fixed order (deterministic, and
/// vectorizable: one running sum is a chain the compiler may not reorder).
#[inline(always)]
pub(crate) fn lane_dot<T: Real, const FMA: bool>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .fold(T::zero(), |s, (&x, &y)| madd::<T, FMA>(s, x, y));
    for (a, b) in ac.zip(bc) {
        for l in 0..LANES {
            acc[l] = madd::<T, FMA>(acc[l], a[l], b[l]);
        }
    }
    // A tree, so the eight partial sums reduce as vector halves, not as a serial chain.
    let h: [T; 4] = std::array::from_fn(|l| acc[l] + acc[l + 4]);
    let q = [h[0] + h[2], h[1] + h[3]];
    tail + (q[0] + q[1])
}

/// `[a_s . b_s for s in 0..8]` for the eight rows `a_s = a[s n..(s + 1) n]`, `n` a multiple
/// of [`LANES`]: with AVX2 and f32, eight vector sums reduced together by horizontal adds
/// (about one instruction per result instead of a chain of seven); else [`lane_dot`] each.
/// The intrinsics run with `avx2` only (and `FMA`, the instantiation inside an `avx2,fma`
/// function).
#[inline(always)]
pub(crate) fn dots8<T: Real, const FMA: bool>(
    avx2: Option<Avx2Fma>,
    a: &[T],
    b: [&[T]; 8],
    n: usize,
) -> [T; 8] {
    #[cfg(target_arch = "x86_64")]
    if FMA
        && let Some(_token) = avx2
        && is_f32::<T>()
    {
        assert!(n.is_multiple_of(LANES) && a.len() >= 8 * n && b.iter().all(|r| r.len() >= n));
        // SAFETY: the CPU has AVX2 and FMA (`_token`, an `Avx2Fma`, exists only there); `T`
        // is `f32` (same type id); every read is in bounds (asserted above).
        unsafe {
            use std::arch::x86_64::*;
            let ap = a.as_ptr() as *const f32;
            let bp: [*const f32; 8] = std::array::from_fn(|s| b[s].as_ptr() as *const f32);
            let mut acc = [_mm256_setzero_ps(); 8];
            for e in (0..n).step_by(LANES) {
                for (s, acc) in acc.iter_mut().enumerate() {
                    let (x, y) = (
                        _mm256_loadu_ps(ap.add(s * n + e)),
                        _mm256_loadu_ps(bp[s].add(e)),
                    );
                    *acc = _mm256_fmadd_ps(x, y, *acc);
                }
            }
            // [s0 half sums, s1, s2, s3 | the other halves], then [s4..s7 | ...].
            let t = [
                _mm256_hadd_ps(acc[0], acc[1]),
                _mm256_hadd_ps(acc[2], acc[3]),
                _mm256_hadd_ps(acc[4], acc[5]),
                _mm256_hadd_ps(acc[6], acc[7]),
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
    std::array::from_fn(|s| lane_dot::<T, FMA>(&a[s * n..(s + 1) * n], &b[s][..n]))
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
/// Blocked `4 x 16` (FMA, eight 256-bit accumulators in f32) or `4 x 8` (portable, eight
/// 128-bit), so a block's sums stay in registers while `l` runs and each `b` row is loaded
/// once per four rows of `a`. With `avx2` (and `FMA`), f32 blocks run on explicit
/// AVX2 intrinsics.
#[inline(always)]
pub(crate) fn gemm<T: Real, const FMA: bool, const ACC: bool>(
    avx2: Option<Avx2Fma>,
    (m, n, k): (usize, usize, usize),
    a: Rows<'_, T>,
    b: Rows<'_, T>,
    c: &mut [T],
    ldc: usize,
) {
    if FMA {
        gemm_blocked::<T, FMA, ACC, 4, 16>(avx2, (m, n, k), a, b, c, ldc)
    } else {
        gemm_blocked::<T, FMA, ACC, 4, 8>(avx2, (m, n, k), a, b, c, ldc)
    }
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
    check_len("b [k, n]", k * n, b.len())?;
    check_len("c [m, n]", m * n, c.len())?;
    let (a, b) = (Rows { data: a, stride: k }, Rows { data: b, stride: n });
    #[cfg(target_arch = "x86_64")]
    if let Some(token) = Avx2Fma::detect() {
        // SAFETY: `token` proves the CPU has the AVX2 and FMA `matmul_avx2` is compiled for.
        unsafe { matmul_avx2(token, (m, n, k), a, b, c, accumulate) };
        return Ok(());
    }
    if accumulate {
        gemm::<T, false, true>(None, (m, n, k), a, b, c, n);
    } else {
        gemm::<T, false, false>(None, (m, n, k), a, b, c, n);
    }
    Ok(())
}

/// [`matmul`]'s product compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn matmul_avx2<T: Real>(
    token: Avx2Fma,
    mnk: (usize, usize, usize),
    a: Rows<'_, T>,
    b: Rows<'_, T>,
    c: &mut [T],
    accumulate: bool,
) {
    let n = mnk.1;
    if accumulate {
        gemm::<T, true, true>(Some(token), mnk, a, b, c, n);
    } else {
        gemm::<T, true, false>(Some(token), mnk, a, b, c, n);
    }
}

#[inline(always)]
fn gemm_blocked<T: Real, const FMA: bool, const ACC: bool, const R: usize, const C: usize>(
    avx2: Option<Avx2Fma>,
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
            if FMA
                && let Some(token) = avx2
                && nr == R
                && (nc == C || nc == 8)
                && block_f32_avx2(token, k, &ar, b, j, nc, &mut acc)
            {
                // done by the intrinsic kernel
            } else if nr == R && nc == C {
                for l in 0..k {
                    let brow: &[T; C] = b.data[l * b.stride + j..l * b.stride + j + C]
                        .try_into()
                        .expect("C columns");
                    for (acc, ar) in acc.iter_mut().zip(&ar) {
                        let av = ar[l];
                        for (x, &bv) in acc.iter_mut().zip(brow) {
                            *x = madd::<T, FMA>(*x, av, bv);
                        }
                    }
                }
            } else {
                for l in 0..k {
                    let brow = &b.data[l * b.stride + j..l * b.stride + j + nc];
                    for (acc, ar) in acc.iter_mut().zip(&ar).take(nr) {
                        let av = ar[l];
                        for (x, &bv) in acc.iter_mut().zip(brow) {
                            *x = madd::<T, FMA>(*x, av, bv);
                        }
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

/// A `4 x 16` or `4 x 8` (`nc`) f32 block with explicit AVX2 fused multiply-adds (LLVM
/// does not keep the generic block's 64 sums in vector registers); `false` (nothing done)
/// for other `T`, block shapes or targets. `_token`: the CPU has AVX2 and FMA.
#[inline(always)]
fn block_f32_avx2<T: Real, const R: usize, const C: usize>(
    _token: Avx2Fma,
    k: usize,
    a: &[&[T]; R],
    b: Rows<'_, T>,
    j: usize,
    nc: usize,
    acc: &mut [[T; C]; R],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if R == 4 && C == 16 && is_f32::<T>() {
        assert!(a.iter().all(|r| r.len() >= k));
        assert!(k == 0 || b.data.len() >= (k - 1) * b.stride + j + nc);
        if nc == 8 {
            // SAFETY: as below, with 8 columns read.
            unsafe {
                use std::arch::x86_64::*;
                let a: [*const f32; 4] = std::array::from_fn(|r| a[r].as_ptr() as *const f32);
                let bp = b.data.as_ptr() as *const f32;
                let mut c = [_mm256_setzero_ps(); 4];
                for l in 0..k {
                    let b0 = _mm256_loadu_ps(bp.add(l * b.stride + j));
                    for r in 0..4 {
                        c[r] = _mm256_fmadd_ps(_mm256_set1_ps(*a[r].add(l)), b0, c[r]);
                    }
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    _mm256_storeu_ps(acc.as_mut_ptr() as *mut f32, c[r]);
                }
            }
            return true;
        }
        // SAFETY: the CPU has AVX2 and FMA (`_token`, an `Avx2Fma`, exists only there); `T`
        // is `f32` (same type id); the reads are in bounds (asserted above).
        unsafe {
            use std::arch::x86_64::*;
            let a: [*const f32; 4] = std::array::from_fn(|r| a[r].as_ptr() as *const f32);
            let bp = b.data.as_ptr() as *const f32;
            let mut c = [_mm256_setzero_ps(); 8];
            for l in 0..k {
                let row = bp.add(l * b.stride + j);
                let (b0, b1) = (_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8)));
                for r in 0..4 {
                    let av = _mm256_set1_ps(*a[r].add(l));
                    c[2 * r] = _mm256_fmadd_ps(av, b0, c[2 * r]);
                    c[2 * r + 1] = _mm256_fmadd_ps(av, b1, c[2 * r + 1]);
                }
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let out = acc.as_mut_ptr() as *mut f32;
                _mm256_storeu_ps(out, c[2 * r]);
                _mm256_storeu_ps(out.add(8), c[2 * r + 1]);
            }
        }
        return true;
    }
    let _ = (k, a, b, j, nc, acc);
    false
}
