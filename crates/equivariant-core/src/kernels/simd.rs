//! Instruction-set detection, and the proof of it the AVX2 paths take.
//!
//! Each kernel is compiled twice: once portable (SSE2 on x86-64), once inside a
//! `#[target_feature(enable = "avx2,fma")]` function. Running the second on a CPU without
//! those features is undefined behaviour, so it takes an [`Avx2Fma`] token, which only
//! [`Avx2Fma::detect`] makes, and only on a CPU that has them: no caller can enter an AVX2
//! path without having checked the CPU first.
//!
//! The entry points detect once per call, on the calling thread, and hand the token to
//! their workers; [`with_instruction_set`] caps what they detect for the calls a closure
//! makes on this thread (to run the portable kernels on a machine with AVX2, e.g. to compare
//! the two).

use std::cell::Cell;

/// The instruction sets the kernels have paths for, from the least to the most capable.
///
/// ```
/// use equivariant_core::kernels::InstructionSet;
/// assert!(InstructionSet::Portable < InstructionSet::Avx2Fma);
/// assert!(InstructionSet::current() <= InstructionSet::detected());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstructionSet {
    /// The baseline of the target (SSE2 on x86-64): runs everywhere.
    Portable,
    /// AVX2 with fused multiply-add (x86-64 CPUs since 2013).
    Avx2Fma,
}

impl InstructionSet {
    /// The most capable instruction set this CPU runs.
    pub fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return InstructionSet::Avx2Fma;
        }
        InstructionSet::Portable
    }

    /// The instruction set kernels called now on this thread run on: the detected one,
    /// capped by an enclosing [`with_instruction_set`].
    pub fn current() -> Self {
        Self::detected().min(LIMIT.with(Cell::get))
    }
}

thread_local! {
    /// This thread's cap on the instruction set ([`with_instruction_set`]).
    static LIMIT: Cell<InstructionSet> = const { Cell::new(InstructionSet::Avx2Fma) };
}

/// Runs `f` with the kernels it calls on this thread limited to `limit` (they still use
/// no more than the CPU has), then restores the previous limit, also when `f` panics.
///
/// The results of the two instruction sets agree to rounding: the AVX2 paths fuse
/// multiply-adds, which round once. Calls that `f` makes on other threads (e.g. inside
/// its own rayon tasks) are not limited.
///
/// ```
/// use equivariant_core::kernels::{with_instruction_set, InstructionSet};
/// let inside = with_instruction_set(InstructionSet::Portable, InstructionSet::current);
/// assert_eq!(inside, InstructionSet::Portable);
/// assert_eq!(InstructionSet::current(), InstructionSet::detected());
/// ```
pub fn with_instruction_set<R>(limit: InstructionSet, f: impl FnOnce() -> R) -> R {
    /// Puts the previous limit back when dropped (on return or unwind).
    struct Restore(InstructionSet);
    impl Drop for Restore {
        fn drop(&mut self) {
            LIMIT.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(LIMIT.with(|l| l.replace(limit)));
    f()
}

/// Proof that this CPU runs AVX2 with fused multiply-add (x86-64 CPUs since 2013). The field
/// is private: the only way to get one is [`Avx2Fma::detect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx2Fma(());

impl Avx2Fma {
    /// The token, where [`InstructionSet::current`] is AVX2 (the CPU has AVX2 and FMA and
    /// this thread's limit allows them); `None` elsewhere (and on other targets).
    pub(crate) fn detect() -> Option<Self> {
        (InstructionSet::current() == InstructionSet::Avx2Fma).then_some(Avx2Fma(()))
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
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn is_f32<T: 'static>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
}

/// `s` as `[U]`, where `T` is `U` (`None` otherwise).
#[inline(always)]
fn same_type<T: 'static, U: 'static>(s: &[T]) -> Option<&[U]> {
    let same = std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>();
    // SAFETY: `T` is `U` (same type id), so this reinterprets the slice as what it is.
    same.then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const U, s.len()) })
}

/// [`same_type`] for a mutable slice.
#[inline(always)]
fn same_type_mut<T: 'static, U: 'static>(s: &mut [T]) -> Option<&mut [U]> {
    let same = std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>();
    // SAFETY: as in `same_type`; the borrow is moved into the result.
    same.then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut U, s.len()) })
}

/// `s` as `f32`, where `T` is `f32` (`None` otherwise): for the `f32`-only paths of
/// kernels generic over the float type.
#[inline(always)]
pub(crate) fn as_f32<T: 'static>(s: &[T]) -> Option<&[f32]> {
    same_type(s)
}

/// [`as_f32`] for a mutable slice.
#[inline(always)]
pub(crate) fn as_f32_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f32]> {
    same_type_mut(s)
}

/// `s` as `f64`, where `T` is `f64` (`None` otherwise): for the `f64` paths of kernels
/// generic over the float type.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn as_f64<T: 'static>(s: &[T]) -> Option<&[f64]> {
    same_type(s)
}

/// [`as_f64`] for a mutable slice.
#[inline(always)]
pub(crate) fn as_f64_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f64]> {
    same_type_mut(s)
}
