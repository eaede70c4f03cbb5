//! e3nn's `o3.SO3Grid` as a burn module: signals on SO(3) between their coefficients `[z,
//! sum (2l+1)^2]` and their samples `[z, res_alpha, res_beta, res_gamma]` (the core's
//! [`SO3GridPlan`]), differentiable (each direction's backward is its transposed map).

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Tensor;
use equivariant_core::o3::SO3GridPlan;
use equivariant_core::{Error, Result};

use crate::ops::grid_transform::{GridTransform, grid_transform};
use crate::shape::check_width;

/// e3nn's `o3.SO3Grid(lmax, resolution, normalization="component", aspect_ratio)`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::SO3Grid;
/// let grid = SO3Grid::new(1, 2, 2.0)?;
/// let x = Tensor::<2>::ones([3, 10], &Device::flex());
/// let samples = grid.to_grid(x.clone())?;
/// assert_eq!(samples.dims(), [3, 8, 4, 8]);
/// let back = grid.from_grid(samples)?;
/// assert!(back.sub(x).abs().max().into_scalar::<f32>() < 1e-4);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct SO3Grid {
    #[module(skip)]
    to: Arc<GridTransform>,
    #[module(skip)]
    from: Arc<GridTransform>,
    #[module(skip)]
    plan: Arc<SO3GridPlan>,
}

impl SO3Grid {
    /// The grid of `2 resolution` betas and `round(2 aspect_ratio resolution)` alphas and
    /// gammas for signals of degree at most `lmax` ([`SO3GridPlan::new`], whose errors it
    /// returns; e3nn's default `aspect_ratio` is 2).
    ///
    /// ```
    /// assert!(equivariant::o3::SO3Grid::new(1, 0, 2.0).is_err());
    /// ```
    pub fn new(lmax: u32, resolution: usize, aspect_ratio: f64) -> Result<Self> {
        let plan = Arc::new(SO3GridPlan::new(lmax, resolution, aspect_ratio)?);
        Ok(SO3Grid {
            to: Arc::new(GridTransform::ToSO3(Arc::clone(&plan))),
            from: Arc::new(GridTransform::FromSO3(Arc::clone(&plan))),
            plan,
        })
    }

    /// The plan: degree, resolution and the maps on slices.
    ///
    /// ```
    /// let grid = equivariant::o3::SO3Grid::new(2, 3, 2.0)?;
    /// assert_eq!((grid.plan().dim(), grid.plan().res()), (35, [12, 6, 12]));
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn plan(&self) -> &SO3GridPlan {
        &self.plan
    }

    /// The samples `[z, res_alpha, res_beta, res_gamma]` of `x` `[z, dim]`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for another width.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// let grid = equivariant::o3::SO3Grid::new(1, 2, 2.0)?;
    /// assert!(grid.to_grid(Tensor::<2>::ones([3, 9], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn to_grid(&self, x: Tensor<2>) -> Result<Tensor<4>> {
        check_width("SO3Grid x [z, dim]", &x, self.plan.dim())?;
        let z = x.dims()[0];
        let [a, b, c] = self.plan.res();
        Ok(grid_transform(&self.to, x, false).reshape([z, a, b, c]))
    }

    /// The coefficients `[z, dim]` of the samples `x` `[z, res_alpha, res_beta, res_gamma]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for another grid.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// let grid = equivariant::o3::SO3Grid::new(1, 2, 2.0)?;
    /// assert!(grid.from_grid(Tensor::<4>::ones([1, 8, 4, 7], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn from_grid(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        let [z, a, b, c] = x.dims();
        if [a, b, c] != self.plan.res() {
            return Err(Error::InvalidArgument {
                name: "x",
                reason: format!(
                    "SO3Grid samples [z, res_alpha, res_beta, res_gamma] must be [z, {:?}], got {:?}",
                    self.plan.res(),
                    x.dims()
                ),
            });
        }
        Ok(grid_transform(&self.from, x.reshape([z, a * b * c]), false))
    }
}
