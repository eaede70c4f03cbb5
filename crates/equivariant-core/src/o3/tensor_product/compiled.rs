//! The tensor-product kernels, compiled once, in this crate, for each float type.
//!
//! The public entry points ([`TensorProductPlan::forward`], [`TensorProductPlan::backward`],
//! [`TensorProductPlan::conv_forward`], [`TensorProductPlan::conv_backward`], and the `_vec`
//! variants) are generic over [`Real`]. Were the kernels behind them generic too, every crate
//! that calls them (the burn crate, each test binary) would compile its own copy: a dozen
//! large functions per float type, one per instruction set, most of a CI build's time. The
//! entry points instead call through [`Real::kernels`], a table of function pointers filled
//! here, so only this crate compiles the kernels.

use std::mem::MaybeUninit;

use super::gemm::Isa;
use super::{ConvGradients, EdgeWeights, TensorProductPlan};
use crate::graph::EdgeIndex;
use crate::{Real, Result};

/// [`TensorProductPlan::forward`] into a possibly uninitialized output, for one instruction set.
type Forward<T> =
    fn(&TensorProductPlan, &[T], &[T], &[T], &mut [MaybeUninit<T>], Isa) -> Result<()>;

/// [`TensorProductPlan::backward`] into possibly uninitialized `[x1, x2, weight]` gradients.
type Backward<T> = fn(
    &TensorProductPlan,
    &[T],
    &[T],
    &[T],
    &[T],
    [Option<&mut [MaybeUninit<T>]>; 3],
    Isa,
) -> Result<()>;

/// [`TensorProductPlan::conv_forward`].
type ConvForward<T> =
    fn(&TensorProductPlan, &EdgeIndex, &[T], &[T], EdgeWeights<'_, T>, T, &mut [T]) -> Result<()>;

/// [`TensorProductPlan::conv_backward`].
type ConvBackward<T> = fn(
    &TensorProductPlan,
    &EdgeIndex,
    &[T],
    &[T],
    EdgeWeights<'_, T>,
    T,
    &[T],
    ConvGradients<'_, T>,
) -> Result<()>;

/// The kernels for float type `T`, as function pointers instantiated in this crate
/// ([`F32`], [`F64`]); reached through [`Real::kernels`]. Its fields
/// are private, so no other crate can implement [`Real`].
pub struct Kernels<T: 'static> {
    pub(super) forward: Forward<T>,
    pub(super) backward: Backward<T>,
    pub(super) conv_forward: ConvForward<T>,
    pub(super) conv_backward: ConvBackward<T>,
}

impl<T: Real> Kernels<T> {
    /// The table for `T`. Evaluated in this crate's statics ([`F32`], [`F64`]), so naming
    /// the generic functions at `T` here is what compiles them in this crate.
    const fn new() -> Self {
        Kernels {
            forward: TensorProductPlan::forward_uninit::<T>,
            backward: TensorProductPlan::backward_uninit::<T>,
            conv_forward: TensorProductPlan::conv_forward_kernel::<T>,
            conv_backward: TensorProductPlan::conv_backward_kernel::<T>,
        }
    }
}

/// The f32 kernels.
pub static F32: Kernels<f32> = Kernels::new();

/// The f64 kernels.
pub static F64: Kernels<f64> = Kernels::new();
