//! e3nn's `o3.SphericalHarmonics` as a burn module.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Tensor;
use equivariant_core::Result;
use equivariant_core::o3::{Irreps, Normalization, SphericalHarmonicsPlan};

use crate::ops::spherical_harmonics::{spherical_harmonics, spherical_harmonics_tangent};
use crate::shape::{
    check_dtype, check_finite, check_rows, check_width, flatten_rows, unflatten_rows,
};

/// e3nn's `o3.SphericalHarmonics(irreps_out, normalize, normalization)` module: the
/// harmonics `Y^l(v)` of each row `v` for the degrees of `irreps_out`, differentiable with
/// respect to `v` (the core [`SphericalHarmonicsPlan`] gives the conventions).
///
/// # Shapes
///
/// `[..., 3] -> [..., irreps_out.dim]`, any leading axes `...`, as e3nn.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{Normalization, SphericalHarmonics};
///
/// let sh = SphericalHarmonics::new(&"0e + 1o + 2e".parse()?, true, Normalization::Component)?;
/// let y = sh.forward(Tensor::<2>::from_floats([[0.0, 0.0, 2.0]], &Device::flex()))?;
/// assert_eq!(y.dims(), [1, 9]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct SphericalHarmonics {
    #[module(skip)]
    table: Arc<SphericalHarmonicsPlan>,
}

impl SphericalHarmonics {
    /// The harmonics of the degrees in `irreps_out` (each `1x{l}{p}` with `p = (-1)^l`, or
    /// all of `p = (-1)^(l+1)` for a pseudovector input, as e3nn).
    ///
    /// # Errors
    ///
    /// The core's, for irreps that are not harmonics.
    ///
    /// ```
    /// use equivariant::o3::{Normalization, SphericalHarmonics};
    /// // 0o is neither Y^0 of a vector nor of a pseudovector (both 0e).
    /// assert!(SphericalHarmonics::new(&"0o + 1o".parse()?, true, Normalization::Component).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(irreps_out: &Irreps, normalize: bool, normalization: Normalization) -> Result<Self> {
        Ok(SphericalHarmonics {
            table: Arc::new(SphericalHarmonicsPlan::new(
                irreps_out,
                normalize,
                normalization,
            )?),
        })
    }

    /// The core table (degrees, normalization, kernels).
    ///
    /// ```
    /// use equivariant::o3::{Normalization, SphericalHarmonics};
    /// let sh = SphericalHarmonics::new(&"1o + 3o".parse()?, false, Normalization::Norm)?;
    /// assert_eq!(sh.table().ls(), [1, 3]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn table(&self) -> &SphericalHarmonicsPlan {
        &self.table
    }

    /// The output irreps.
    ///
    /// ```
    /// use equivariant::o3::{Normalization, SphericalHarmonics};
    /// let sh = SphericalHarmonics::new(&"0e + 1o".parse()?, true, Normalization::Component)?;
    /// assert_eq!(sh.irreps_out().to_string(), "1x0e+1x1o");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_out(&self) -> &Irreps {
        self.table.irreps_out()
    }

    /// The harmonics of each row of `vectors`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if `vectors` is not `[n, 3]`; [`Error::NonFinite`](crate::Error::NonFinite) if it
    /// holds a NaN or infinite coordinate.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::{Normalization, SphericalHarmonics};
    /// let sh = SphericalHarmonics::new(&"1o".parse()?, false, Normalization::Component)?;
    /// // Unnormalized vectors: Y^1(v) = sqrt(3) v.
    /// let y = sh.forward(Tensor::<2>::from_floats([[0.0, 0.0, 2.0]], &Device::flex()))?;
    /// assert!((y.into_data().try_into_vec::<f32>().unwrap()[2] - 2.0 * 3f32.sqrt()).abs() < 1e-5);
    /// assert!(sh.forward(Tensor::<2>::from_floats([[f32::NAN, 0.0, 1.0]], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(&self, vectors: Tensor<D>) -> Result<Tensor<D>> {
        let (vectors, dims) = flatten_rows("SphericalHarmonics vectors [..., 3]", vectors)?;
        Ok(unflatten_rows(self.forward_rows(vectors)?, dims))
    }

    /// [`forward`](SphericalHarmonics::forward) on rows, `[batch, 3]`.
    fn forward_rows(&self, vectors: Tensor<2>) -> Result<Tensor<2>> {
        check_width("SphericalHarmonics vectors [n, 3]", &vectors, 3)?;
        check_finite("SphericalHarmonics vectors", &vectors)?;
        Ok(spherical_harmonics(&self.table, vectors))
    }

    /// [`forward`](SphericalHarmonics::forward) and its tangent along `tangents`,
    /// `(Y, dY)` with `dY_i = J_Y(v_i) s_i`, differentiable in both inputs (through the
    /// harmonics' Hessian): the module's part of a tangent pass (training on forces).
    ///
    /// # Errors
    ///
    /// As [`forward`](SphericalHarmonics::forward), for either input;
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if `tangents` has other rows,
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if another dtype.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::{Normalization, SphericalHarmonics};
    /// let sh = SphericalHarmonics::new(&"0e + 1o + 2e".parse()?, true, Normalization::Component)?;
    /// let device = Device::flex();
    /// let v = Tensor::<2>::from_floats([[0.3, -1.0, 2.0]], &device);
    /// // Along v itself the normalized harmonics do not change.
    /// let (_, dy) = sh.forward_tangent(v.clone(), v)?;
    /// assert!(dy.abs().max().into_scalar::<f32>() < 1e-6);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_tangent(
        &self,
        vectors: Tensor<2>,
        tangents: Tensor<2>,
    ) -> Result<(Tensor<2>, Tensor<2>)> {
        check_width("SphericalHarmonics tangents [n, 3]", &tangents, 3)?;
        check_rows(
            "SphericalHarmonics tangents (the rows of vectors)",
            &tangents,
            vectors.dims()[0],
        )?;
        check_finite("SphericalHarmonics tangents", &tangents)?;
        check_dtype("SphericalHarmonics tangents", &tangents, &vectors)?;
        let y = self.forward(vectors.clone())?;
        Ok((
            y,
            spherical_harmonics_tangent(&self.table, vectors, tangents),
        ))
    }
}
