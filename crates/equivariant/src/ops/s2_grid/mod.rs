//! The sphere-grid transforms (e3nn's `ToS2Grid` and `FromS2Grid`) as a burn backend
//! extension: [`Flex`](burn::backend::Flex) runs the core's separable kernels (`flex.rs`);
//! on [`Autodiff`](burn::backend::Autodiff) the backward of a transform is its transpose,
//! the same kernel run the other way (`autodiff.rs`). On other devices [`s2_transform`] is a
//! product with the dense matrix of the map ([`composed::s2_transform`]).
//!
//! Shapes: `[z, in_len]` to `[z, out_len]`, the grid flattened (`res_beta * res_alpha`).

mod autodiff;
pub(super) mod composed;
mod flex;

use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use equivariant_core::o3::{FromS2GridPlan, ToS2GridPlan};
use equivariant_core::{Real, Result};

use super::composed::is_native;

/// One of the two transforms: coefficients `[z, (lmax+1)^2]` to grids `[z, res_beta *
/// res_alpha]` (`To`) or back (`From`).
///
/// ```
/// use equivariant::o3::{Normalization, ToS2GridPlan};
/// use equivariant::ops::s2_grid::S2Transform;
/// let t = S2Transform::To(ToS2GridPlan::new(Some(2), None, None, Normalization::Component)?);
/// assert_eq!((t.in_len(), t.out_len()), (9, 6 * 5));
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug, Clone)]
pub enum S2Transform {
    /// Coefficients to samples.
    To(ToS2GridPlan),
    /// Samples to coefficients.
    From(FromS2GridPlan),
}

impl S2Transform {
    fn lens(&self) -> (usize, usize) {
        match self {
            S2Transform::To(t) => (t.dim(), t.res_beta() * t.res_alpha()),
            S2Transform::From(t) => (t.res_beta() * t.res_alpha(), t.dim()),
        }
    }

    /// The values per row of the input.
    ///
    /// ```
    /// use equivariant::o3::{FromS2GridPlan, Normalization};
    /// use equivariant::ops::s2_grid::S2Transform;
    /// let t = S2Transform::From(FromS2GridPlan::new(Some(4), Some(3), Some(1), Normalization::Norm, None)?);
    /// assert_eq!(t.in_len(), 12);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn in_len(&self) -> usize {
        self.lens().0
    }

    /// The values per row of the output.
    ///
    /// ```
    /// use equivariant::o3::{FromS2GridPlan, Normalization};
    /// use equivariant::ops::s2_grid::S2Transform;
    /// let t = S2Transform::From(FromS2GridPlan::new(Some(4), Some(3), Some(1), Normalization::Norm, None)?);
    /// assert_eq!(t.out_len(), 4);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn out_len(&self) -> usize {
        self.lens().1
    }

    /// `out = map(x)`, or `out = map^T(x)` when `transpose`, on slices.
    fn apply<T: Real>(&self, x: &[T], out: &mut [T], transpose: bool) -> Result<()> {
        match (self, transpose) {
            (S2Transform::To(t), false) => t.forward(x, out),
            (S2Transform::To(t), true) => t.backward(x, out),
            (S2Transform::From(t), false) => t.forward(x, out),
            (S2Transform::From(t), true) => t.backward(x, out),
        }
    }
}

/// Backends that run the sphere-grid transforms natively.
///
/// Implemented for [`Flex`](burn::backend::Flex) (f32 and f64) and for
/// [`Autodiff`](burn::backend::Autodiff) over any implementing backend.
///
/// ```
/// use std::sync::Arc;
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{Normalization, ToS2GridPlan};
/// use equivariant::ops::s2_grid::{S2GridBackend, S2Transform};
/// let t = Arc::new(S2Transform::To(ToS2GridPlan::new(Some(0), None, None, Normalization::Integral)?));
/// let x = Tensor::<2>::from_floats([[1.0]], &Device::flex());
/// let grid = <Dispatch as S2GridBackend>::s2_transform(t, x.into_dispatch(), false);
/// let grid = Tensor::<2>::from_dispatch(grid).into_data().try_into_vec::<f32>().unwrap();
/// assert!((grid[0] - 0.2820948).abs() < 1e-6); // 1 / sqrt(4 pi) everywhere
/// # Ok::<(), equivariant::Error>(())
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait S2GridBackend: Backend {
    /// `map(x)` row by row, or the transposed map when `transpose`.
    ///
    /// # Shapes
    ///
    /// - `x`: `[z, in_len]` (`[z, out_len]` when `transpose`)
    /// - output: `[z, out_len]` (`[z, in_len]` when `transpose`)
    ///
    /// # Panics
    ///
    /// On another shape or a dtype other than f32/f64.
    fn s2_transform(
        transform: Arc<S2Transform>,
        x: FloatTensor<Self>,
        transpose: bool,
    ) -> FloatTensor<Self>;
}

/// [`S2GridBackend::s2_transform`] on any device, differentiable on an autodiff device.
///
/// # Shapes
///
/// - `x`: `[z, in_len]` (`[z, out_len]` when `transpose`)
/// - output: `[z, out_len]` (`[z, in_len]` when `transpose`)
///
/// # Panics
///
/// As [`S2GridBackend::s2_transform`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{Normalization, ToS2GridPlan};
/// use equivariant::ops::s2_grid::{S2Transform, s2_transform};
/// let t = Arc::new(S2Transform::To(ToS2GridPlan::new(Some(1), None, None, Normalization::Component)?));
/// let x = Tensor::<2>::from_floats([[1.0, 0.0, 0.0, 0.0]], &Device::flex());
/// assert_eq!(s2_transform(&t, x, false).dims(), [1, 4 * 3]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn s2_transform(transform: &Arc<S2Transform>, x: Tensor<2>, transpose: bool) -> Tensor<2> {
    if !is_native(&x.device()) {
        return composed::s2_transform(transform, x, transpose);
    }
    Tensor::from_dispatch(<Dispatch as S2GridBackend>::s2_transform(
        Arc::clone(transform),
        x.into_dispatch(),
        transpose,
    ))
}
