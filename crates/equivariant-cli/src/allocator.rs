//! The binary's memory allocator: small and medium blocks from mimalloc, large ones from
//! glibc's heap, tuned to keep what is freed ([`keep_freed_memory`]). Shared with the
//! examples that time kernels (they include this file with `#[path]`), so that they
//! allocate as the binary does.
//!
//! Why two: an MD step or a training step on a few hundred atoms allocates and frees
//! hundreds of tensors of a few kB to a few hundred kB (burn's eager ops make a fresh output
//! per op), and glibc's bins, coalescing and per-thread arenas cost ~10% of such a step
//! (`perf`, `equivariant md` at 108 atoms: `_int_malloc`, `_int_free`,
//! `malloc_consolidate`, ...); mimalloc's thread-local free lists serve them for less. But
//! mimalloc gives its largest blocks (tens of MB and more: a per-edge tensor of the guide at
//! 10 000 nodes is 868 MB) back to the system when they are freed, and the next op faults
//! every page in again: `equivariant guide --nodes 10000` spent over half its time zeroing
//! fresh pages (`clear_page_erms`) under mimalloc alone, 5.6-6.8 s against 3.9-5.0 s under
//! glibc. The size of a block decides; [`GlobalAlloc`] frees and reallocates with the size it
//! allocated with, so every block returns to the allocator it came from.
//!
//! Measured (2 threads, medians of five alternated rounds; the 8-channel potential of
//! `examples/potential`), glibc alone against blocks from [`LARGE`] = 256 KiB or 64 KiB up
//! from glibc:
//! - `equivariant md`, steps/s: 1137 / 1204 / 1260 at 108 atoms, 213.5 / 214.6 / 222.2 at
//!   1000;
//! - peak resident memory of 30 steps at 10 000 atoms: 251-254 MB for glibc alone (its
//!   per-thread arenas), 172-174 / 158-160 MB with glibc's large blocks in one arena;
//! - `equivariant train` (the NequIP side-by-side configuration), median epoch: 0.191 ->
//!   0.180 s at 64 KiB.
//!
//! The cost: `equivariant bench conv --nodes 10000` peaked at 394-398 MiB instead of 296
//! (and its forward + backward took 107-109 ms instead of 127-130); the guide at 10 000
//! nodes took the same time and 1.84-1.85 GB either way.

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks of at least this many bytes come from glibc ([`System`]), smaller ones from
/// mimalloc.
const LARGE: usize = 64 << 10;

/// The binary's global allocator: mimalloc below [`LARGE`] bytes, [`System`] (glibc, as
/// [`keep_freed_memory`] tunes it) from there up.
pub struct SizeRouted;

/// Whether a block of `size` bytes comes from [`System`].
#[inline(always)]
fn large(size: usize) -> bool {
    size >= LARGE
}

// SAFETY: each call is passed to one of two allocators that uphold `GlobalAlloc`'s contract
// themselves, chosen by the block's size; the caller frees and reallocates a block with the
// layout it was allocated (or last reallocated) with, so the same allocator gets it back.
// A reallocation across `LARGE` allocates from the other allocator, copies and frees.
unsafe impl GlobalAlloc for SizeRouted {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` has a nonzero size, as `alloc` requires.
        unsafe {
            if large(layout.size()) {
                System.alloc(layout)
            } else {
                MiMalloc.alloc(layout)
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if large(layout.size()) {
                System.alloc_zeroed(layout)
            } else {
                MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` (or `realloc`) with this `layout`, so from the
        // allocator its size routes to.
        unsafe {
            if large(layout.size()) {
                System.dealloc(ptr, layout)
            } else {
                MiMalloc.dealloc(ptr, layout)
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (from, to) = (large(layout.size()), large(new_size));
        // SAFETY: `ptr` came from the allocator `from` routes to, with `layout`; a move to
        // the other allocator copies the bytes both blocks hold before freeing the old one.
        unsafe {
            match (from, to) {
                (true, true) => System.realloc(ptr, layout, new_size),
                (false, false) => MiMalloc.realloc(ptr, layout, new_size),
                _ => {
                    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

/// Keeps what glibc frees in the process: the large blocks ([`SizeRouted`]) are a
/// convolution's per-edge tensors, and glibc serves large blocks straight from `mmap` and
/// unmaps them on free, so each op of a large convolution page-faults its output in again
/// (measured here: relu over 19M floats 89 ms with the defaults, 14 ms with this).
/// `M_MMAP_MAX = 0` serves every block from the heap and `M_TRIM_THRESHOLD = -1` never gives
/// the heap back. The earlier settings (`M_MMAP_THRESHOLD` and `M_TRIM_THRESHOLD` at
/// `i32::MAX`) still left a tensor-product module's forward + backward with ~30% of its time
/// in page faults (mace-medium 261 ms, 242 ms with these; nequip-benzene 3505 ms, 1782 ms).
///
/// The worker threads allocate from their own arenas, heaps of 64 MiB that glibc deletes
/// (unmaps) whenever the newest one empties, whatever the trim threshold; refilled, each
/// page faults in again. Whether that happens step after step depends on where the blocks
/// fall, so it came and went from process to process: the three-layer model's force
/// training step at 2 threads took 142-147 ms in some runs (26 thousand page faults) and
/// 151-161 ms in others (104-148 thousand). A top pad above the heap size keeps every heap
/// (glibc deletes one only while the arena's free top exceeds the pad): 146-152 ms and
/// 26 thousand faults in every run. The pad is address space; pages are touched only when
/// used. (Those measurements predate [`SizeRouted`], when glibc served every block.)
///
/// Now that glibc serves only the large blocks, a few per op, one arena serves them all
/// (`M_ARENA_MAX = 1`): per-thread arenas held 251-254 MB at the peak of MD on 10 000 atoms,
/// one arena 149-160 MB, at the same speed. (With glibc serving every block, one arena had
/// cost 108-atom MD ~15%, its threads waiting on each other for the small blocks.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, -1);
        libc::mallopt(libc::M_TOP_PAD, 128 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}
