//! Eight lanes held in registers, so a kernel is written once over the lane type: portable
//! arrays ([`Lanes8`], vectorized as well as the compiler manages) or, with an [`Avx2Fma`]
//! token and `f32`, one AVX2 register ([`F32x8`]).
//!
//! Kernels whose accumulators live across a loop of unknown length (a sum over a path's
//! Clebsch-Gordan blocks, then over a node's edges) are where the compiler keeps arrays in
//! memory or scalarizes them; the register type keeps them in registers.
//!
//! Values are made only through a token ([`Vec8::Token`]): for [`F32x8`] that is the proof
//! that the CPU has AVX2 and FMA, so no AVX2 instruction runs on a CPU without them.

use super::gemm::{LANES, madd};
#[cfg(target_arch = "x86_64")]
use super::simd::Avx2Fma;
use crate::Real;

/// Eight lanes of [`Vec8::Elem`].
pub(crate) trait Vec8: Copy {
    /// The lane type.
    type Elem: Real;
    /// What making a value needs (`()`, or the proof of the instruction set).
    type Token: Copy;
    /// All lanes zero.
    fn zero(token: Self::Token) -> Self;
    /// All lanes `v`.
    fn splat(token: Self::Token, v: Self::Elem) -> Self;
    /// `s[at..at + 8]` (panics past the end).
    fn load(token: Self::Token, s: &[Self::Elem], at: usize) -> Self;
    /// Writes the lanes to `s[at..at + 8]` (panics past the end).
    fn store(self, s: &mut [Self::Elem], at: usize);
    /// `self + a b` per lane (one rounding where the type fuses).
    fn madd(self, a: Self, b: Self) -> Self;
    /// `self b` per lane.
    fn mul(self, b: Self) -> Self;
    /// `self + b` per lane.
    fn add(self, b: Self) -> Self;
    /// The lanes as an array.
    fn to_array(self) -> [Self::Elem; LANES];
}

/// Portable lanes: an array, multiply-adds fused when `FMA` (compiled inside an
/// `avx2,fma` function).
#[derive(Clone, Copy)]
pub(crate) struct Lanes8<T, const FMA: bool>([T; LANES]);

impl<T: Real, const FMA: bool> Vec8 for Lanes8<T, FMA> {
    type Elem = T;
    type Token = ();

    #[inline(always)]
    fn zero(_: ()) -> Self {
        Lanes8([T::zero(); LANES])
    }

    #[inline(always)]
    fn splat(_: (), v: T) -> Self {
        Lanes8([v; LANES])
    }

    #[inline(always)]
    fn load(_: (), s: &[T], at: usize) -> Self {
        Lanes8(s[at..at + LANES].try_into().expect("eight lanes"))
    }

    #[inline(always)]
    fn store(self, s: &mut [T], at: usize) {
        s[at..at + LANES].copy_from_slice(&self.0);
    }

    #[inline(always)]
    fn madd(self, a: Self, b: Self) -> Self {
        Lanes8(std::array::from_fn(|l| {
            madd::<T, FMA>(self.0[l], a.0[l], b.0[l])
        }))
    }

    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        Lanes8(std::array::from_fn(|l| self.0[l] * b.0[l]))
    }

    #[inline(always)]
    fn add(self, b: Self) -> Self {
        Lanes8(std::array::from_fn(|l| self.0[l] + b.0[l]))
    }

    #[inline(always)]
    fn to_array(self) -> [T; LANES] {
        self.0
    }
}

/// Eight `f32` in one AVX2 register.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct F32x8(std::arch::x86_64::__m256);

// SAFETY (every `unsafe` block below): a value of `F32x8` exists only where an `Avx2Fma`
// token was given to make it (the constructors take one, the operations take a value), and
// the token exists only on a CPU with AVX2 and FMA; loads and stores go through slices
// checked to hold eight lanes.
#[cfg(target_arch = "x86_64")]
impl Vec8 for F32x8 {
    type Elem = f32;
    type Token = Avx2Fma;

    #[inline(always)]
    fn zero(_: Avx2Fma) -> Self {
        // SAFETY: see above the impl.
        F32x8(unsafe { std::arch::x86_64::_mm256_setzero_ps() })
    }

    #[inline(always)]
    fn splat(_: Avx2Fma, v: f32) -> Self {
        // SAFETY: see above the impl.
        F32x8(unsafe { std::arch::x86_64::_mm256_set1_ps(v) })
    }

    #[inline(always)]
    fn load(_: Avx2Fma, s: &[f32], at: usize) -> Self {
        let s = &s[at..at + LANES];
        // SAFETY: see above the impl (`s` holds eight `f32`).
        F32x8(unsafe { std::arch::x86_64::_mm256_loadu_ps(s.as_ptr()) })
    }

    #[inline(always)]
    fn store(self, s: &mut [f32], at: usize) {
        let s = &mut s[at..at + LANES];
        // SAFETY: see above the impl (`s` holds eight `f32`).
        unsafe { std::arch::x86_64::_mm256_storeu_ps(s.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn madd(self, a: Self, b: Self) -> Self {
        // SAFETY: see above the impl.
        F32x8(unsafe { std::arch::x86_64::_mm256_fmadd_ps(a.0, b.0, self.0) })
    }

    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        // SAFETY: see above the impl.
        F32x8(unsafe { std::arch::x86_64::_mm256_mul_ps(self.0, b.0) })
    }

    #[inline(always)]
    fn add(self, b: Self) -> Self {
        // SAFETY: see above the impl.
        F32x8(unsafe { std::arch::x86_64::_mm256_add_ps(self.0, b.0) })
    }

    #[inline(always)]
    fn to_array(self) -> [f32; LANES] {
        let mut out = [0.0; LANES];
        self.store(&mut out, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two lane types compute the same on the operations' edge cases (exact values).
    #[test]
    fn lane_types_agree() {
        let a: Vec<f32> = (0..10).map(|i| i as f32 - 3.5).collect();
        let b: Vec<f32> = (0..10).map(|i| 0.25 * i as f32).collect();
        let portable = |at| {
            let (x, y) = (
                Lanes8::<f32, false>::load((), &a, at),
                Lanes8::load((), &b, at),
            );
            Lanes8::splat((), 2.0).madd(x, y).mul(y).add(x).to_array()
        };
        assert_eq!(portable(1)[0], (2.0 + -2.5 * 0.25) * 0.25 - 2.5);
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = Avx2Fma::detect() {
            for at in [0, 2] {
                let (x, y) = (F32x8::load(t, &a, at), F32x8::load(t, &b, at));
                let avx = F32x8::splat(t, 2.0).madd(x, y).mul(y).add(x).to_array();
                assert_eq!(avx, portable(at));
                let mut s = vec![0.0; 9];
                F32x8::zero(t).add(x).store(&mut s, 1);
                assert_eq!(&s[1..], &a[at..at + 8]);
            }
        }
    }
}
