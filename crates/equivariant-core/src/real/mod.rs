//! The floating-point types data kernels run in, and the dual numbers (`dual`) that
//! differentiate the generic code once more.

pub(crate) mod dual;

/// A float the data kernels accept: `f32` or `f64` (sealed: outside this crate the kernels
/// are compiled for these two only; inside it, dual numbers also run the generic
/// harmonics and bases). Tables are built in f64 and cast with [`Real::from_f64`] at use.
///
/// ```
/// use equivariant_core::Real;
/// assert_eq!(<f32 as Real>::from_f64(0.5), 0.5f32);
/// ```
pub trait Real:
    sealed::Sealed
    + num_traits::Float
    + num_traits::FloatConst
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::fmt::Debug
    + std::fmt::Display
    + Default
    + Send
    + Sync
    + 'static
{
    /// Converts an f64 table entry (rounding for f32).
    fn from_f64(x: f64) -> Self;
    /// Widens to f64.
    fn to_f64(self) -> f64;
}

mod sealed {
    /// Implemented for `f32` and `f64` only, so no other crate implements [`Real`](super::Real).
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Real for f32 {
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}
