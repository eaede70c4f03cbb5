//! e3nn's `o3.ToS2Grid` and `o3.FromS2Grid` as burn modules: signals on the sphere between
//! their coefficients `[z, (lmax+1)^2]` and their samples `[z, res_beta, res_alpha]` on
//! e3nn's grid (the core's [`ToS2GridPlan`] and [`FromS2GridPlan`] say how), differentiable
//! (the backward of each is the other direction of the same kernel).

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Tensor;
use equivariant_core::o3::{FromS2GridPlan, Normalization, ToS2GridPlan};
use equivariant_core::{Error, Result};

use crate::ops::grid_transform::{GridTransform, grid_transform};
use crate::shape::check_width;

/// e3nn's `o3.ToS2Grid(lmax, res, normalization)`: coefficients `[z, (lmax+1)^2]` to
/// samples `[z, res_beta, res_alpha]`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{Normalization, ToS2Grid};
/// let to_grid = ToS2Grid::new(Some(2), Some(6), Some(5), Normalization::Component)?;
/// let x = Tensor::<2>::zeros([3, 9], &Device::flex());
/// assert_eq!(to_grid.forward(x)?.dims(), [3, 6, 5]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct ToS2Grid {
    #[module(skip)]
    transform: Arc<GridTransform>,
    #[module(skip)]
    lmax: u32,
    #[module(skip)]
    res: [usize; 2],
}

impl ToS2Grid {
    /// The transform of degree `lmax` to a `res_beta x res_alpha` grid, the missing ones
    /// completed as e3nn does ([`complete_lmax_res`](crate::o3::complete_lmax_res), whose
    /// errors it returns).
    ///
    /// ```
    /// use equivariant::o3::{Normalization, ToS2Grid};
    /// assert_eq!(ToS2Grid::new(Some(3), None, None, Normalization::Norm)?.res(), [8, 7]);
    /// assert!(ToS2Grid::new(Some(3), Some(7), None, Normalization::Norm).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(
        lmax: Option<u32>,
        res_beta: Option<usize>,
        res_alpha: Option<usize>,
        normalization: Normalization,
    ) -> Result<Self> {
        let plan = ToS2GridPlan::new(lmax, res_beta, res_alpha, normalization)?;
        Ok(ToS2Grid {
            lmax: plan.lmax(),
            res: [plan.res_beta(), plan.res_alpha()],
            transform: Arc::new(GridTransform::ToS2(plan)),
        })
    }

    /// The degree of the coefficients.
    ///
    /// ```
    /// use equivariant::o3::{Normalization, ToS2Grid};
    /// assert_eq!(ToS2Grid::new(None, Some(10), None, Normalization::Norm)?.lmax(), 4);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn lmax(&self) -> u32 {
        self.lmax
    }

    /// `[res_beta, res_alpha]`.
    ///
    /// ```
    /// use equivariant::o3::{Normalization, ToS2Grid};
    /// assert_eq!(ToS2Grid::new(Some(1), Some(4), Some(6), Normalization::Norm)?.res(), [4, 6]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn res(&self) -> [usize; 2] {
        self.res
    }

    /// The samples `[z, res_beta, res_alpha]` of the signals `x` `[z, (lmax+1)^2]`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for another width.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::{Normalization, ToS2Grid};
    /// let to_grid = ToS2Grid::new(Some(1), None, None, Normalization::Component)?;
    /// assert!(to_grid.forward(Tensor::<2>::zeros([1, 3], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<3>> {
        let width = ((self.lmax + 1) * (self.lmax + 1)) as usize;
        check_width("ToS2Grid x [z, (lmax+1)^2]", &x, width)?;
        let z = x.dims()[0];
        Ok(grid_transform(&self.transform, x, false).reshape([z, self.res[0], self.res[1]]))
    }
}

/// e3nn's `o3.FromS2Grid(res, lmax, normalization, lmax_in)`: samples `[z, res_beta,
/// res_alpha]` to coefficients `[z, (lmax+1)^2]`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{FromS2Grid, Normalization, ToS2Grid};
/// let device = Device::flex();
/// let to_grid = ToS2Grid::new(Some(2), None, None, Normalization::Component)?;
/// let from_grid = FromS2Grid::new(None, None, Some(2), Normalization::Component, None)?;
/// let x = Tensor::<2>::from_floats([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]], &device);
/// let back = from_grid.forward(to_grid.forward(x.clone())?)?;
/// assert!(back.sub(x).abs().max().into_scalar::<f32>() < 1e-5);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct FromS2Grid {
    #[module(skip)]
    transform: Arc<GridTransform>,
    #[module(skip)]
    lmax: u32,
    #[module(skip)]
    res: [usize; 2],
}

impl FromS2Grid {
    /// The transform of a `res_beta x res_alpha` grid to degree `lmax`, the missing ones
    /// completed as e3nn does ([`complete_lmax_res`](crate::o3::complete_lmax_res), whose
    /// errors it returns); `lmax_in` (default `lmax`) is the degree of the signals sampled,
    /// which scales the component and norm normalizations.
    ///
    /// ```
    /// use equivariant::o3::{FromS2Grid, Normalization};
    /// assert_eq!(FromS2Grid::new(Some(12), Some(13), None, Normalization::Norm, None)?.lmax(), 5);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(
        res_beta: Option<usize>,
        res_alpha: Option<usize>,
        lmax: Option<u32>,
        normalization: Normalization,
        lmax_in: Option<u32>,
    ) -> Result<Self> {
        let plan = FromS2GridPlan::new(res_beta, res_alpha, lmax, normalization, lmax_in)?;
        Ok(FromS2Grid {
            lmax: plan.lmax(),
            res: [plan.res_beta(), plan.res_alpha()],
            transform: Arc::new(GridTransform::FromS2(plan)),
        })
    }

    /// The degree of the coefficients.
    ///
    /// ```
    /// use equivariant::o3::{FromS2Grid, Normalization};
    /// assert_eq!(FromS2Grid::new(Some(8), None, None, Normalization::Norm, None)?.lmax(), 3);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn lmax(&self) -> u32 {
        self.lmax
    }

    /// `[res_beta, res_alpha]`.
    ///
    /// ```
    /// use equivariant::o3::{FromS2Grid, Normalization};
    /// assert_eq!(FromS2Grid::new(Some(8), None, None, Normalization::Norm, None)?.res(), [8, 7]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn res(&self) -> [usize; 2] {
        self.res
    }

    /// The coefficients `[z, (lmax+1)^2]` of the samples `x` `[z, res_beta, res_alpha]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for another grid.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::{FromS2Grid, Normalization};
    /// let from_grid = FromS2Grid::new(Some(4), Some(3), None, Normalization::Norm, None)?;
    /// assert_eq!(from_grid.forward(Tensor::<3>::zeros([2, 4, 3], &Device::flex()))?.dims(), [2, 4]);
    /// assert!(from_grid.forward(Tensor::<3>::zeros([2, 3, 4], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(&self, x: Tensor<3>) -> Result<Tensor<2>> {
        let [z, rb, ra] = x.dims();
        if [rb, ra] != self.res {
            return Err(Error::InvalidArgument {
                name: "x",
                reason: format!(
                    "FromS2Grid samples [z, res_beta, res_alpha] must be [z, {}, {}], got {:?}",
                    self.res[0],
                    self.res[1],
                    x.dims()
                ),
            });
        }
        Ok(grid_transform(
            &self.transform,
            x.reshape([z, rb * ra]),
            false,
        ))
    }
}
