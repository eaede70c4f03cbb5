//! Instruction-set detection, and the proof of it the AVX2 and AVX-512 paths take.
//!
//! Each kernel is written once, generic over the float type, and compiled several times:
//! portable (SSE2 on x86-64), inside a `#[target_feature(enable = "avx2,fma")]` function,
//! and for the kernels where it measured faster, inside one that also enables AVX-512
//! (`"avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"`: the compiler's vectors may then be 512
//! bits wide; the hand-written AVX2 parts stay as they are, and so does the arithmetic:
//! the same operations in the same order, so the results are the AVX2 instance's).
//!
//! Running an instance on a CPU without its features is undefined behaviour, so it takes a
//! token, an [`Avx2Fma`] or an [`Avx512`], which only [`Simd::detect`] makes (and
//! [`Avx2Fma::detect`] through it), and only on a CPU that has them: no caller can enter
//! such a path without having checked the CPU first. [`Simd`] is whichever of them a call runs on.
//!
//! The entry points detect once per call, on the calling thread, and hand the token to
//! their workers. [`with_instruction_set`] caps what they detect for the calls a closure
//! makes on this thread (to run the portable kernels on a machine with AVX2, e.g. to compare
//! the two), [`limit_instruction_set`] for every thread of the process from then on (a
//! benchmark's `--isa`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction sets the kernels have paths for, from the least to the most capable.
///
/// ```
/// use equivariant_core::kernels::InstructionSet;
/// assert!(InstructionSet::Portable < InstructionSet::Avx2Fma);
/// assert!(InstructionSet::Avx2Fma < InstructionSet::Avx512);
/// assert!(InstructionSet::current() <= InstructionSet::detected());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstructionSet {
    /// The baseline of the target (SSE2 on x86-64; NEON on aarch64): runs everywhere.
    Portable,
    /// AVX2 with fused multiply-add (x86-64 CPUs since 2013).
    Avx2Fma,
    /// AVX-512 F, VL, BW and DQ, with AVX2 and FMA (x86-64-v4: Intel since Skylake-SP, AMD
    /// since Zen 4).
    Avx512,
}

impl InstructionSet {
    /// The most capable instruction set this CPU runs.
    pub fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                let avx512 = has!("avx512f") && has!("avx512vl");
                return if avx512 && has!("avx512bw") && has!("avx512dq") {
                    InstructionSet::Avx512
                } else {
                    InstructionSet::Avx2Fma
                };
            }
        }
        InstructionSet::Portable
    }

    /// The instruction set kernels called now on this thread run on: the detected one,
    /// capped by [`limit_instruction_set`] and an enclosing [`with_instruction_set`].
    pub fn current() -> Self {
        let process = Self::from_index(PROCESS_LIMIT.load(Ordering::Relaxed));
        Self::detected().min(process).min(LIMIT.with(Cell::get))
    }

    /// The instruction set of an index in the declaration order (the last for any larger).
    fn from_index(i: u8) -> Self {
        match i {
            0 => InstructionSet::Portable,
            1 => InstructionSet::Avx2Fma,
            _ => InstructionSet::Avx512,
        }
    }
}

thread_local! {
    /// This thread's cap on the instruction set ([`with_instruction_set`]).
    static LIMIT: Cell<InstructionSet> = const { Cell::new(InstructionSet::Avx512) };
}

/// The process's cap on the instruction set ([`limit_instruction_set`]), as an index.
static PROCESS_LIMIT: AtomicU8 = AtomicU8::new(InstructionSet::Avx512 as u8);

/// Limits the kernels of every thread, from now on, to `limit` (they still use no more
/// than the CPU has). For comparing the paths in a whole program, whose work runs on
/// threads [`with_instruction_set`] does not reach (a benchmark's `--isa`); results agree
/// to rounding, as there.
///
/// ```
/// use equivariant_core::kernels::{InstructionSet, limit_instruction_set};
/// limit_instruction_set(InstructionSet::Portable);
/// assert_eq!(InstructionSet::current(), InstructionSet::Portable);
/// limit_instruction_set(InstructionSet::Avx512);
/// assert_eq!(InstructionSet::current(), InstructionSet::detected());
/// ```
pub fn limit_instruction_set(limit: InstructionSet) {
    PROCESS_LIMIT.store(limit as u8, Ordering::Relaxed);
}

/// Runs `f` with the kernels it calls on this thread limited to `limit` (they still use
/// no more than the CPU has), then restores the previous limit, also when `f` panics.
///
/// The portable and AVX2 results agree to rounding (the AVX2 paths fuse multiply-adds,
/// which round once); AVX-512's are AVX2's. Calls that `f` makes on other threads (e.g.
/// inside its own rayon tasks) are not limited.
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
/// is private: the only ways to get one are [`Simd::detect`] and [`Avx512::avx2`] (which
/// [`Avx2Fma::detect`] calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx2Fma(());

impl Avx2Fma {
    /// The token, where [`InstructionSet::current`] is AVX2 or more (the CPU has AVX2 and
    /// FMA and the limits allow them); `None` elsewhere (and on other targets). For kernels
    /// with no AVX-512 instance: [`Simd::detect`]'s AVX2 token.
    pub(crate) fn detect() -> Option<Self> {
        Simd::detect().avx2()
    }
}

/// Proof that this CPU runs AVX-512 F, VL, BW and DQ, AVX2 and FMA.
/// The field is private: the only way to get one is [`Simd::detect`], where
/// [`InstructionSet::current`] is AVX-512.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// The AVX2 token the same CPU proves (AVX-512 comes with AVX2 and FMA here).
    pub(crate) fn avx2(self) -> Avx2Fma {
        Avx2Fma(())
    }
}

/// The instruction set a kernel call runs on, with the token that proves it: what the
/// entry points detect and hand to their workers, for kernels with an AVX-512 instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simd {
    /// The portable instances.
    Portable,
    /// The AVX2 and FMA instances.
    Avx2(Avx2Fma),
    /// The AVX-512 instances.
    Avx512(Avx512),
}

impl Simd {
    /// What [`InstructionSet::current`] allows on this thread.
    pub(crate) fn detect() -> Self {
        match InstructionSet::current() {
            InstructionSet::Portable => Simd::Portable,
            InstructionSet::Avx2Fma => Simd::Avx2(Avx2Fma(())),
            InstructionSet::Avx512 => Simd::Avx512(Avx512(())),
        }
    }

    /// The AVX2 token, where this runs AVX2 or more (for the hand-written AVX2 parts).
    #[inline(always)]
    pub(crate) fn avx2(self) -> Option<Avx2Fma> {
        match self {
            Simd::Portable => None,
            Simd::Avx2(t) => Some(t),
            Simd::Avx512(t) => Some(t.avx2()),
        }
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

/// [`as_f32_mut`] for a possibly uninitialized output.
#[inline(always)]
pub(crate) fn as_f32_uninit<T: 'static>(
    s: &mut [std::mem::MaybeUninit<T>],
) -> Option<&mut [std::mem::MaybeUninit<f32>]> {
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
