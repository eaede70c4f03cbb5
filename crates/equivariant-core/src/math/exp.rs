//! The exponential of a nonpositive argument in f32 by a polynomial, branch-free so that a
//! loop of it vectorizes (libm's `expf` is a call per element): the sigmoid of the
//! activation kernels and the smooth_finite basis use it.

use crate::Real;
use crate::kernels::simd::is_f32;

/// `exp(a)` for `a <= 0`: [`exp_nonpositive_f32`] when `T` is `f32` (within 2 ulp), `T`'s
/// own `exp` otherwise.
#[inline(always)]
pub(crate) fn exp_nonpositive<T: Real>(a: T) -> T {
    if is_f32::<T>() {
        // Exact round trips: `a` is an f32, and so is the result.
        T::from_f64(exp_nonpositive_f32(a.to_f64() as f32) as f64)
    } else {
        a.exp()
    }
}

/// `exp(a)` for `a <= 0` in f32 (Cephes' `expf`: `2^n p(r)`, `r = a - n ln 2` with `ln 2`
/// split in two so `n ln2_hi` is exact, `p` of degree 7; within 2 ulp). Below `ln` of the
/// smallest normal float (`-87.3365`) the result is `0`: a subnormal would cost every
/// product that reads it a microcode assist.
#[inline(always)]
pub(crate) fn exp_nonpositive_f32(a: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 2^23: adding and subtracting it rounds to the nearest integer (|n| <= 126).
    const ROUND: f32 = 12_582_912.0;
    // Just above ln(f32::MIN_POSITIVE) = -87.336_544_75: from here up `2^n p(r)` is normal.
    const SMALLEST: f32 = -87.336_54;
    let underflow = a < SMALLEST;
    let a = if underflow { SMALLEST } else { a };
    let t = a * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (a - n * LN2_HI) - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let p = p * (r * r) + r + 1.0;
    // 2^n: n in [-126, 0], so the biased exponent n + 127 is a normal one.
    let scale = f32::from_bits(((rounded_integer(t, ROUND) + 127) as u32) << 23);
    if underflow { 0.0 } else { p * scale }
}

/// The integer `n` of `t = n + round`, for `t` and `round` in one binade of unit spacing
/// (`[2^23, 2^24)`), as the difference of their bits: there the bits count up by one per
/// unit. This reads `n` without a float-to-integer conversion, whose saturating `as` costs a
/// compare and a blend per vector on top of the conversion (3% of a training step's time).
#[inline(always)]
fn rounded_integer(t: f32, round: f32) -> i32 {
    t.to_bits().wrapping_sub(round.to_bits()) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rounded_integer` is the conversion `(t - round) as i32` over the exponential's range.
    #[test]
    fn rounded_integers_are_the_conversions() {
        const ROUND: f32 = 12_582_912.0;
        for n in -126..=0 {
            let t = n as f32 + ROUND;
            assert_eq!(rounded_integer(t, ROUND), (t - ROUND) as i32);
            assert_eq!(rounded_integer(t, ROUND), n);
        }
    }

    /// The f32 exponential against f64's over its range, and the underflow to zero.
    #[test]
    fn exp_nonpositive_f32_is_within_two_ulp() {
        let mut worst = 0.0f64;
        for i in 0..=873_365 {
            let a = -(i as f32) * 1e-4;
            let got = exp_nonpositive_f32(a) as f64;
            let exact = (a as f64).exp();
            let ulp = (exact as f32).abs() * f32::EPSILON;
            worst = worst.max((got - exact).abs() / ulp as f64);
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp_nonpositive_f32(-87.34), 0.0);
        assert!(exp_nonpositive_f32(-87.3365) >= f32::MIN_POSITIVE);
        assert_eq!(exp_nonpositive_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive_f32(0.0), 1.0);
    }

    /// The generic exponential is the polynomial for f32 only.
    #[test]
    fn exp_nonpositive_is_f32s_polynomial_and_f64s_exp() {
        assert_eq!(exp_nonpositive(-1.5f32), exp_nonpositive_f32(-1.5));
        assert_eq!(exp_nonpositive(-1.5f64), (-1.5f64).exp());
    }
}
