//! Instruction-set detection, and the proof of it the AVX2 paths take.
//!
//! Each kernel is compiled twice: once portable (SSE2 on x86-64), once inside a
//! `#[target_feature(enable = "avx2,fma")]` function. Running the second on a CPU without
//! those features is undefined behaviour, so it takes an [`Avx2Fma`] token, which only
//! [`Avx2Fma::detect`] makes, and only on a CPU that has them: no caller can enter an AVX2
//! path without having checked the CPU first.

/// Proof that this CPU runs AVX2 with fused multiply-add (x86-64 CPUs since 2013). The field
/// is private: the only way to get one is [`Avx2Fma::detect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx2Fma(());

impl Avx2Fma {
    /// The token, on a CPU with AVX2 and FMA; `None` elsewhere (and on other targets).
    pub(crate) fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(Avx2Fma(()));
        }
        None
    }
}

/// Asks for the cache line holding `p` (a hint: it reads nothing and never faults, so `p`
/// may point past the data; nothing on other targets).
#[inline(always)]
pub(crate) fn prefetch_line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no architectural effect, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Whether `T` is `f32` (the type the intrinsic paths are written for).
#[inline(always)]
pub(crate) fn is_f32<T: 'static>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
}
