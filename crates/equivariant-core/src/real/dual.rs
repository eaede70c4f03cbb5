//! Dual numbers `a + b eps` (`eps^2 = 0`) over f64: forward-mode derivatives of the generic
//! [`Real`] code, exact to rounding. Running a function `f` on `x + s eps` gives
//! `f(x) + (f'(x) s) eps`; running a function that already returns derivatives (the
//! harmonics' gradient, a basis' first derivative) gives their directional derivatives, the
//! second derivatives the tangent passes' backward needs. Internal to the crate: the public
//! entry points take and return plain f64.

use std::cmp::Ordering;
use std::fmt;
use std::num::FpCategory;
use std::ops::{
    Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign,
};

use num_traits::{Float, FloatConst, Num, NumCast, One, ToPrimitive, Zero};

use super::{Real, sealed};

/// `re + eps * ε` with `ε^2 = 0`. Ordering (`<`, `>`, `max`, ...) looks at `re` only (a
/// branch taken at `x` is taken at `x + s ε`), so branchy code differentiates as its branch
/// does; equality (`==`, `is_zero`) compares both parts, so a test `x == 0` holds only for
/// a constant zero.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Dual {
    /// The value.
    pub re: f64,
    /// The derivative along the seed direction.
    pub eps: f64,
}

impl Dual {
    /// `re + eps ε`.
    pub(crate) fn new(re: f64, eps: f64) -> Self {
        Dual { re, eps }
    }

    /// `f(re) + f'(re) eps ε`, for `value = f(re)` and `slope = f'(re)`.
    #[inline(always)]
    fn chain(self, value: f64, slope: f64) -> Self {
        Dual::new(value, slope * self.eps)
    }

    /// A constant.
    fn constant(re: f64) -> Self {
        Dual::new(re, 0.0)
    }
}

impl sealed::Sealed for Dual {}

impl Real for Dual {
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        Dual::constant(x)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self.re
    }
}

impl fmt::Display for Dual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} + {}ε", self.re, self.eps)
    }
}

impl PartialOrd for Dual {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.re.partial_cmp(&other.re)
    }
}

impl Add for Dual {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Dual::new(self.re + o.re, self.eps + o.eps)
    }
}

impl Sub for Dual {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Dual::new(self.re - o.re, self.eps - o.eps)
    }
}

impl Mul for Dual {
    type Output = Self;
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Dual::new(self.re * o.re, self.eps * o.re + self.re * o.eps)
    }
}

impl Div for Dual {
    type Output = Self;
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        let q = self.re / o.re;
        Dual::new(q, (self.eps - q * o.eps) / o.re)
    }
}

impl Rem for Dual {
    type Output = Self;
    /// `x - trunc(x / y) y`: the quotient is piecewise constant.
    fn rem(self, o: Self) -> Self {
        let k = (self.re / o.re).trunc();
        Dual::new(self.re % o.re, self.eps - k * o.eps)
    }
}

impl Neg for Dual {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Dual::new(-self.re, -self.eps)
    }
}

macro_rules! assign_ops {
    ($($trait:ident $method:ident $op:tt),*) => {$(
        impl $trait for Dual {
            #[inline(always)]
            fn $method(&mut self, o: Self) {
                *self = *self $op o;
            }
        }
    )*};
}
assign_ops!(AddAssign add_assign +, SubAssign sub_assign -, MulAssign mul_assign *,
    DivAssign div_assign /, RemAssign rem_assign %);

impl Zero for Dual {
    fn zero() -> Self {
        Dual::constant(0.0)
    }
    fn is_zero(&self) -> bool {
        self.re == 0.0 && self.eps == 0.0
    }
}

impl One for Dual {
    fn one() -> Self {
        Dual::constant(1.0)
    }
}

impl Num for Dual {
    type FromStrRadixErr = <f64 as Num>::FromStrRadixErr;
    fn from_str_radix(s: &str, radix: u32) -> Result<Self, Self::FromStrRadixErr> {
        f64::from_str_radix(s, radix).map(Dual::constant)
    }
}

impl ToPrimitive for Dual {
    fn to_i64(&self) -> Option<i64> {
        self.re.to_i64()
    }
    fn to_u64(&self) -> Option<u64> {
        self.re.to_u64()
    }
    fn to_f64(&self) -> Option<f64> {
        Some(self.re)
    }
}

impl NumCast for Dual {
    fn from<T: ToPrimitive>(n: T) -> Option<Self> {
        n.to_f64().map(Dual::constant)
    }
}

macro_rules! constants {
    ($($name:ident),*) => {$(
        fn $name() -> Self {
            Dual::constant(f64::$name())
        }
    )*};
}

macro_rules! of_value {
    ($($name:ident -> $t:ty),*) => {$(
        fn $name(self) -> $t {
            self.re.$name()
        }
    )*};
}

/// Functions that are piecewise constant: derivative zero.
macro_rules! steps {
    ($($name:ident),*) => {$(
        fn $name(self) -> Self {
            Dual::constant(self.re.$name())
        }
    )*};
}

impl FloatConst for Dual {
    constants!(
        E,
        FRAC_1_PI,
        FRAC_1_SQRT_2,
        FRAC_2_PI,
        FRAC_2_SQRT_PI,
        FRAC_PI_2,
        FRAC_PI_3,
        FRAC_PI_4,
        FRAC_PI_6,
        FRAC_PI_8,
        LN_10,
        LN_2,
        LOG10_E,
        LOG2_E,
        PI,
        SQRT_2
    );
}

impl Float for Dual {
    constants!(
        nan,
        infinity,
        neg_infinity,
        neg_zero,
        min_value,
        min_positive_value,
        max_value,
        epsilon
    );
    of_value!(
        is_nan -> bool,
        is_infinite -> bool,
        is_finite -> bool,
        is_normal -> bool,
        classify -> FpCategory,
        is_sign_positive -> bool,
        is_sign_negative -> bool,
        integer_decode -> (u64, i16, i8)
    );
    steps!(floor, ceil, round, trunc, signum);

    fn fract(self) -> Self {
        Dual::new(self.re.fract(), self.eps)
    }
    fn abs(self) -> Self {
        if self.re < 0.0 { -self } else { self }
    }
    fn mul_add(self, a: Self, b: Self) -> Self {
        self * a + b
    }
    fn recip(self) -> Self {
        let r = self.re.recip();
        self.chain(r, -r * r)
    }
    fn powi(self, n: i32) -> Self {
        let slope = if n == 0 {
            0.0
        } else {
            n as f64 * self.re.powi(n - 1)
        };
        self.chain(self.re.powi(n), slope)
    }
    fn powf(self, n: Self) -> Self {
        // d(x^n) = n x^(n-1) dx + x^n ln(x) dn; the second term only when n moves (ln x
        // is NaN for x < 0).
        let value = self.re.powf(n.re);
        let mut eps = n.re * self.re.powf(n.re - 1.0) * self.eps;
        if n.eps != 0.0 {
            eps += value * self.re.ln() * n.eps;
        }
        Dual::new(value, eps)
    }
    fn sqrt(self) -> Self {
        let r = self.re.sqrt();
        self.chain(r, 0.5 / r)
    }
    fn cbrt(self) -> Self {
        let r = self.re.cbrt();
        self.chain(r, 1.0 / (3.0 * r * r))
    }
    fn exp(self) -> Self {
        let r = self.re.exp();
        self.chain(r, r)
    }
    fn exp2(self) -> Self {
        let r = self.re.exp2();
        self.chain(r, r * std::f64::consts::LN_2)
    }
    fn exp_m1(self) -> Self {
        self.chain(self.re.exp_m1(), self.re.exp())
    }
    fn ln(self) -> Self {
        self.chain(self.re.ln(), self.re.recip())
    }
    fn log(self, base: Self) -> Self {
        self.ln() / base.ln()
    }
    fn log2(self) -> Self {
        self.chain(self.re.log2(), 1.0 / (self.re * std::f64::consts::LN_2))
    }
    fn log10(self) -> Self {
        self.chain(self.re.log10(), 1.0 / (self.re * std::f64::consts::LN_10))
    }
    fn ln_1p(self) -> Self {
        self.chain(self.re.ln_1p(), 1.0 / (1.0 + self.re))
    }
    fn max(self, o: Self) -> Self {
        if o.re > self.re || self.re.is_nan() {
            o
        } else {
            self
        }
    }
    fn min(self, o: Self) -> Self {
        if o.re < self.re || self.re.is_nan() {
            o
        } else {
            self
        }
    }
    fn abs_sub(self, o: Self) -> Self {
        if self.re > o.re {
            self - o
        } else {
            Self::zero()
        }
    }
    fn hypot(self, o: Self) -> Self {
        (self * self + o * o).sqrt()
    }
    fn sin(self) -> Self {
        self.chain(self.re.sin(), self.re.cos())
    }
    fn cos(self) -> Self {
        self.chain(self.re.cos(), -self.re.sin())
    }
    fn sin_cos(self) -> (Self, Self) {
        let (s, c) = self.re.sin_cos();
        (self.chain(s, c), self.chain(c, -s))
    }
    fn tan(self) -> Self {
        let t = self.re.tan();
        self.chain(t, 1.0 + t * t)
    }
    fn asin(self) -> Self {
        self.chain(self.re.asin(), 1.0 / (1.0 - self.re * self.re).sqrt())
    }
    fn acos(self) -> Self {
        self.chain(self.re.acos(), -1.0 / (1.0 - self.re * self.re).sqrt())
    }
    fn atan(self) -> Self {
        self.chain(self.re.atan(), 1.0 / (1.0 + self.re * self.re))
    }
    fn atan2(self, x: Self) -> Self {
        // d atan2(y, x) = (x dy - y dx) / (x^2 + y^2).
        let d = x.re * x.re + self.re * self.re;
        Dual::new(self.re.atan2(x.re), (x.re * self.eps - self.re * x.eps) / d)
    }
    fn sinh(self) -> Self {
        self.chain(self.re.sinh(), self.re.cosh())
    }
    fn cosh(self) -> Self {
        self.chain(self.re.cosh(), self.re.sinh())
    }
    fn tanh(self) -> Self {
        let t = self.re.tanh();
        self.chain(t, 1.0 - t * t)
    }
    fn asinh(self) -> Self {
        self.chain(self.re.asinh(), 1.0 / (self.re * self.re + 1.0).sqrt())
    }
    fn acosh(self) -> Self {
        self.chain(self.re.acosh(), 1.0 / (self.re * self.re - 1.0).sqrt())
    }
    fn atanh(self) -> Self {
        self.chain(self.re.atanh(), 1.0 / (1.0 - self.re * self.re))
    }
}
