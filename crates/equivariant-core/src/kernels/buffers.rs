//! Views of the buffers the kernels write: possibly uninitialized outputs, optional
//! gradients split per task, and rows shared between tasks that each write their own.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use crate::Real;

/// `g`, zeroed.
#[inline(always)]
pub(crate) fn zeroed<T: Real>(g: &mut [T]) -> &mut [T] {
    g.fill(T::zero());
    g
}

/// `g` zeroed, as an initialized slice.
pub(crate) fn zeroed_uninit<T: Real>(g: &mut [MaybeUninit<T>]) -> &mut [T] {
    g.fill(MaybeUninit::new(T::zero()));
    // SAFETY: every element was just written.
    unsafe { &mut *(g as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// An initialized buffer viewed as possibly uninitialized, for the kernels that write every
/// element before reading it.
///
/// # Safety
///
/// Only initialized values may be stored through the returned view (never
/// `MaybeUninit::uninit()`), or `g` would hold uninitialized data once the view ends.
pub(crate) unsafe fn as_uninit<T>(g: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout; the caller stores only initialized values
    // through this view, so `g` stays initialized.
    unsafe { &mut *(g as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// A buffer of `len` uninitialized elements.
pub(crate) fn uninit_vec<T>(len: usize) -> Vec<MaybeUninit<T>> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit` needs no initialization; the capacity is `len`.
    unsafe { v.set_len(len) };
    v
}

/// The buffer as initialized values.
///
/// # Safety
///
/// Every element of `v` must have been written.
pub(crate) unsafe fn assume_init_vec<T>(v: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: same layout, length and capacity; the caller guarantees initialization.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut T, v.len(), v.capacity()) }
}

/// Splits an optional buffer into `chunks` consecutive pieces of `size` (the last shorter).
pub(crate) fn split<T>(
    buffer: Option<&mut [T]>,
    size: usize,
    chunks: usize,
) -> Vec<Option<&mut [T]>> {
    match buffer {
        Some(b) if size > 0 => b.chunks_mut(size).map(Some).collect(),
        _ => (0..chunks).map(|_| None).collect(),
    }
}

/// Rows of a buffer written by the task owning each row's edge (each edge has exactly one
/// source node, and each source node one task). Borrows the buffer for `'a`, so no row
/// outlives it.
pub(crate) struct EdgeRows<'a, T> {
    ptr: *mut T,
    len: usize,
    _buffer: PhantomData<&'a mut [T]>,
}

// SAFETY: tasks write disjoint rows (see `row`), so sharing the pointer is sound.
unsafe impl<T: Send> Send for EdgeRows<'_, T> {}
// SAFETY: as for `Send`: `row` hands out disjoint rows only.
unsafe impl<T: Send> Sync for EdgeRows<'_, T> {}

impl<'a, T> EdgeRows<'a, T> {
    pub(crate) fn new(buffer: Option<&'a mut [T]>) -> Option<Self> {
        buffer.map(|b| EdgeRows {
            ptr: b.as_mut_ptr(),
            len: b.len(),
            _buffer: PhantomData,
        })
    }

    /// Row `e` of width `width`.
    ///
    /// # Safety
    ///
    /// No two live references to the same row: only the task owning edge `e` calls this,
    /// once per edge.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn row(&self, e: usize, width: usize) -> &mut [T] {
        assert!((e + 1) * width <= self.len);
        // SAFETY: in bounds (checked above), disjoint by the caller's contract; the buffer
        // is borrowed for `'a`, which outlives `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(e * width), width) }
    }
}
