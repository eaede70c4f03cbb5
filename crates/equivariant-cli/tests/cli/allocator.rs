//! The binary's allocator (`src/allocator.rs`, included here): a block keeps its bytes
//! through reallocations across the size at which it changes allocators, in both directions
//! and at a large alignment, and zeroed blocks are zero on both sides.

use std::alloc::{GlobalAlloc, Layout};

#[allow(dead_code)]
#[path = "../../src/allocator.rs"]
mod routed;

/// The byte at offset `i` of the test pattern.
fn byte(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

#[test]
fn blocks_keep_their_bytes_across_the_allocators() {
    let a = routed::SizeRouted;
    // Far below and far above the threshold (64 KiB), and a size just under it.
    let (small, large, below) = (1000, 3 << 20, (64 << 10) - 8);
    for align in [8, 64, 4096] {
        let layout = |size| Layout::from_size_align(size, align).unwrap();
        // SAFETY: every block is used within its size, freed once, with its layout.
        unsafe {
            let p = a.alloc(layout(small));
            assert!(!p.is_null() && (p as usize).is_multiple_of(align));
            for i in 0..small {
                *p.add(i) = byte(i);
            }
            // Small to large (mimalloc to glibc), then fill the rest.
            let q = a.realloc(p, layout(small), large);
            assert!(!q.is_null() && (q as usize).is_multiple_of(align));
            assert!(
                (0..small).all(|i| *q.add(i) == byte(i)),
                "align {align}: up"
            );
            for i in small..large {
                *q.add(i) = byte(i);
            }
            // Large to just below the threshold (glibc to mimalloc).
            let r = a.realloc(q, layout(large), below);
            assert!(!r.is_null() && (r as usize).is_multiple_of(align));
            assert!(
                (0..below).all(|i| *r.add(i) == byte(i)),
                "align {align}: down"
            );
            a.dealloc(r, layout(below));
            for size in [small, large] {
                let z = a.alloc_zeroed(layout(size));
                assert!(!z.is_null() && (0..size).all(|i| *z.add(i) == 0));
                a.dealloc(z, layout(size));
            }
        }
    }
}
