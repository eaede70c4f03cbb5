//! e3nn's `nn.SO3Activation`: a pointwise nonlinearity on SO(3), through the samples of an
//! [`SO3Grid`] (`to_grid`, the normalized function, `from_grid`).

use burn::module::Module;
use burn::tensor::Tensor;
use equivariant_core::Result;

use crate::o3::SO3Grid;
use crate::ops::activation::{ScalarFunction, normalized_function};

/// e3nn's `nn.SO3Activation(lmax_in, lmax_out, act, resolution, normalization="component",
/// aspect_ratio)`: `[z, sum_{l <= lmax_in} (2l+1)^2]` to `[z, sum_{l <= lmax_out}
/// (2l+1)^2]`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::ActivationFunction;
/// use equivariant::nn::SO3Activation;
/// let act = SO3Activation::new(2, 1, ActivationFunction::Silu, 3, 2.0)?;
/// let y = act.forward(Tensor::<2>::ones([4, 35], &Device::flex()))?;
/// assert_eq!(y.dims(), [4, 10]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct SO3Activation {
    grid_in: SO3Grid,
    grid_out: SO3Grid,
    #[module(skip)]
    act: ScalarFunction,
}

impl SO3Activation {
    /// The activation by `act` on the grid of `resolution` ([`SO3Grid::new`], whose errors
    /// it returns).
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::SO3Activation;
    /// assert!(SO3Activation::new(2, 1, ActivationFunction::Silu, 0, 2.0).is_err());
    /// ```
    pub fn new(
        lmax_in: u32,
        lmax_out: u32,
        act: impl Into<ScalarFunction>,
        resolution: usize,
        aspect_ratio: f64,
    ) -> Result<Self> {
        Ok(SO3Activation {
            grid_in: SO3Grid::new(lmax_in, resolution, aspect_ratio)?,
            grid_out: SO3Grid::new(lmax_out, resolution, aspect_ratio)?,
            act: act.into(),
        })
    }

    /// `[z, dim_in]` to `[z, dim_out]`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for another width.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::SO3Activation;
    /// let act = SO3Activation::new(1, 1, ActivationFunction::Tanh, 2, 2.0)?;
    /// assert!(act.forward(Tensor::<2>::ones([1, 9], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(&self, features: Tensor<2>) -> Result<Tensor<2>> {
        let grid = self.grid_in.to_grid(features)?;
        let [z, a, b, c] = grid.dims();
        let grid = normalized_function(&self.act, grid.reshape([z, a * b * c]));
        self.grid_out.from_grid(grid.reshape([z, a, b, c]))
    }
}
