//! The grid transforms (e3nn's `ToS2Grid` and `FromS2Grid` on the sphere, `SO3Grid`'s
//! `to_grid` and `from_grid` on SO(3)) as a burn backend extension: [`Flex`](burn::backend::Flex) runs the core's separable kernels (`flex.rs`);
//! on [`Autodiff`](burn::backend::Autodiff) the backward of a transform is its transpose,
//! the same kernel run the other way (`autodiff.rs`). On other devices [`grid_transform`] is a
//! product with the dense matrix of the map ([`composed::grid_transform`]).
//!
//! Shapes: `[z, in_len]` to `[z, out_len]`, the grid flattened (`res_beta * res_alpha`).

mod autodiff;
pub(super) mod composed;
mod flex;

use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use equivariant_core::o3::{FromS2GridPlan, SO3GridPlan, ToS2GridPlan};
use equivariant_core::{Real, Result};

use super::composed::is_native;

/// One of the linear maps between the coefficients of signals and their samples on a grid,
/// all of shape `[z, in_len]` to `[z, out_len]`.
///
/// ```
/// use equivariant::o3::{Normalization, ToS2GridPlan};
/// use equivariant::ops::grid_transform::GridTransform;
/// let t = GridTransform::ToS2(ToS2GridPlan::new(Some(2), None, None, Normalization::Component)?);
/// assert_eq!((t.in_len(), t.out_len()), (9, 6 * 5));
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug, Clone)]
pub enum GridTransform {
    /// Coefficients to samples.
    ToS2(ToS2GridPlan),
    /// Samples to coefficients.
    FromS2(FromS2GridPlan),
    /// Coefficients `[z, sum (2l+1)^2]` to samples on SO(3) `[z, res_alpha res_beta
    /// res_gamma]`.
    ToSO3(Arc<SO3GridPlan>),
    /// Samples on SO(3) to coefficients.
    FromSO3(Arc<SO3GridPlan>),
}

impl GridTransform {
    fn lens(&self) -> (usize, usize) {
        match self {
            GridTransform::ToS2(t) => (t.dim(), t.res_beta() * t.res_alpha()),
            GridTransform::FromS2(t) => (t.res_beta() * t.res_alpha(), t.dim()),
            GridTransform::ToSO3(t) => (t.dim(), t.cells()),
            GridTransform::FromSO3(t) => (t.cells(), t.dim()),
        }
    }

    /// The values per row of the input.
    ///
    /// ```
    /// use equivariant::o3::{FromS2GridPlan, Normalization};
    /// use equivariant::ops::grid_transform::GridTransform;
    /// let t = GridTransform::FromS2(FromS2GridPlan::new(Some(4), Some(3), Some(1), Normalization::Norm, None)?);
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
    /// use equivariant::ops::grid_transform::GridTransform;
    /// let t = GridTransform::FromS2(FromS2GridPlan::new(Some(4), Some(3), Some(1), Normalization::Norm, None)?);
    /// assert_eq!(t.out_len(), 4);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn out_len(&self) -> usize {
        self.lens().1
    }

    /// `out = map(x)`, or `out = map^T(x)` when `transpose`, on slices.
    fn apply<T: Real>(&self, x: &[T], out: &mut [T], transpose: bool) -> Result<()> {
        match (self, transpose) {
            (GridTransform::ToS2(t), false) => t.forward(x, out),
            (GridTransform::ToS2(t), true) => t.backward(x, out),
            (GridTransform::FromS2(t), false) => t.forward(x, out),
            (GridTransform::FromS2(t), true) => t.backward(x, out),
            (GridTransform::ToSO3(t), false) => t.to_grid(x, out),
            (GridTransform::ToSO3(t), true) => t.to_grid_backward(x, out),
            (GridTransform::FromSO3(t), false) => t.from_grid(x, out),
            (GridTransform::FromSO3(t), true) => t.from_grid_backward(x, out),
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
/// use equivariant::ops::grid_transform::{GridTransformBackend, GridTransform};
/// let t = Arc::new(GridTransform::ToS2(ToS2GridPlan::new(Some(0), None, None, Normalization::Integral)?));
/// let x = Tensor::<2>::from_floats([[1.0]], &Device::flex());
/// let grid = <Dispatch as GridTransformBackend>::grid_transform(t, x.into_dispatch(), false);
/// let grid = Tensor::<2>::from_dispatch(grid).into_data().try_into_vec::<f32>().unwrap();
/// assert!((grid[0] - 0.2820948).abs() < 1e-6); // 1 / sqrt(4 pi) everywhere
/// # Ok::<(), equivariant::Error>(())
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait GridTransformBackend: Backend {
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
    fn grid_transform(
        transform: Arc<GridTransform>,
        x: FloatTensor<Self>,
        transpose: bool,
    ) -> FloatTensor<Self>;
}

/// [`GridTransformBackend::grid_transform`] on any device, differentiable on an autodiff device.
///
/// # Shapes
///
/// - `x`: `[z, in_len]` (`[z, out_len]` when `transpose`)
/// - output: `[z, out_len]` (`[z, in_len]` when `transpose`)
///
/// # Panics
///
/// As [`GridTransformBackend::grid_transform`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{Normalization, ToS2GridPlan};
/// use equivariant::ops::grid_transform::{GridTransform, grid_transform};
/// let t = Arc::new(GridTransform::ToS2(ToS2GridPlan::new(Some(1), None, None, Normalization::Component)?));
/// let x = Tensor::<2>::from_floats([[1.0, 0.0, 0.0, 0.0]], &Device::flex());
/// assert_eq!(grid_transform(&t, x, false).dims(), [1, 4 * 3]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn grid_transform(transform: &Arc<GridTransform>, x: Tensor<2>, transpose: bool) -> Tensor<2> {
    if !is_native(&x.device()) {
        return composed::grid_transform(transform, x, transpose);
    }
    Tensor::from_dispatch(<Dispatch as GridTransformBackend>::grid_transform(
        Arc::clone(transform),
        x.into_dispatch(),
        transpose,
    ))
}
