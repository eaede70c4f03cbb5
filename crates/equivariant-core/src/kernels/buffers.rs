//! Views of the buffers the kernels write: possibly uninitialized outputs, optional
//! gradients split per task, and rows shared between tasks that each write their own; and
//! the per-thread workspaces the kernels reuse from call to call ([`Reused`]).

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};

use crate::Real;
use crate::o3::tensor_product::TensorProductGradients;

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

/// A tensor product's requested gradients as `[x1, x2, weight]` views that may be treated as
/// uninitialized, for the kernels that write every element of each ([`as_uninit`]).
///
/// # Safety
///
/// As [`as_uninit`]: only initialized values may be stored through the views.
pub(crate) unsafe fn uninit_gradients<T>(
    grads: TensorProductGradients<'_, T>,
) -> [Option<&mut [MaybeUninit<T>]>; 3] {
    let TensorProductGradients {
        x1: g1,
        x2: g2,
        weight: gw,
    } = grads;
    // SAFETY: the caller stores only initialized values through these views.
    [g1, g2, gw].map(|g| g.map(|g| unsafe { as_uninit(g) }))
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
        // SAFETY: by the caller's contract, as `rows` asks.
        unsafe { self.rows(e, 1, width) }
    }

    /// Rows `first..first + count` of width `width`, one slice.
    ///
    /// # Safety
    ///
    /// As [`row`](EdgeRows::row), for each of the rows.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn rows(&self, first: usize, count: usize, width: usize) -> &mut [T] {
        assert!((first + count) * width <= self.len);
        // SAFETY: in bounds (checked above), disjoint by the caller's contract; the buffer
        // is borrowed for `'a`, which outlives `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(first * width), count * width) }
    }
}

thread_local! {
    /// This thread's idle workspaces, one per type at most in use (see [`Reused`]).
    static WORKSPACES: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// A workspace `W` taken from this thread's cache (or made, if it holds none) and put back
/// when dropped: a kernel's per-task buffers keep their allocations from one call to the
/// next on the same thread (a small graph's call is short enough for allocating and
/// freeing them to show). Each thread keeps at most as many of a type as it used at once,
/// at the largest size it used them.
pub(crate) struct Reused<W: Default + 'static>(Option<Box<W>>);

impl<W: Default + 'static> Reused<W> {
    /// A workspace from this thread's cache, or a new one.
    pub(crate) fn take() -> Self {
        let cached = WORKSPACES
            .try_with(|c| {
                let mut c = c.borrow_mut();
                let i = c.iter().position(|w| w.is::<W>())?;
                c.swap_remove(i).downcast::<W>().ok()
            })
            .ok()
            .flatten();
        Reused(Some(cached.unwrap_or_default()))
    }
}

impl<W: Default + 'static> Deref for Reused<W> {
    type Target = W;
    fn deref(&self) -> &W {
        self.0.as_deref().expect("present until dropped")
    }
}

impl<W: Default + 'static> DerefMut for Reused<W> {
    fn deref_mut(&mut self) -> &mut W {
        self.0.as_deref_mut().expect("present until dropped")
    }
}

impl<W: Default + 'static> Drop for Reused<W> {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            // A thread that is exiting has no cache left: the workspace is freed instead.
            let _ = WORKSPACES.try_with(|c| c.borrow_mut().push(w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace put back is the one the next take on the thread gets, allocation and
    /// contents included; two taken at once are two.
    #[test]
    fn a_workspace_is_reused_on_its_thread() {
        let ptr = {
            let mut w = Reused::<Vec<u64>>::take();
            w.extend([1, 2, 3]);
            w.as_ptr()
        };
        let again = Reused::<Vec<u64>>::take();
        assert_eq!((again.as_ptr(), &again[..]), (ptr, &[1, 2, 3][..]));
        let other = Reused::<Vec<u64>>::take();
        assert!(other.is_empty());
        let elsewhere = std::thread::spawn(|| Reused::<Vec<u64>>::take().len());
        assert_eq!(elsewhere.join().unwrap(), 0);
    }
}
