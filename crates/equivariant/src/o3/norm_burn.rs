//! e3nn's `o3.Norm`: the norm of each irrep instance of a direct sum.

use burn::module::Module;
use burn::tensor::Tensor;
use equivariant_core::Result;
use equivariant_core::o3::{Irrep, Irreps, MulIr};

use crate::ops::irreps::{norms, norms_squared};
use crate::shape::{check_width, flatten_rows, unflatten_rows};

/// The norm (or squared norm) of each irrep instance: `[batch, irreps_in.dim] -> [batch,
/// irreps_in.num_irreps]`, `out_u = |x_u|`, instances in layout order, as e3nn's
/// `o3.Norm(irreps_in, squared)` (its `uuu` tensor product of `x` with itself, then `relu`
/// and `sqrt`). The gradient of the norm at a zero instance is zero (e3nn's is NaN).
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::Norm;
/// let norm = Norm::new(&"1x0e + 1x1o".parse()?, false);
/// let x = Tensor::<2>::from_floats([[-2.0, 1.0, 2.0, 2.0]], &Device::flex());
/// assert_eq!(norm.forward(x)?.into_data().try_into_vec::<f32>().unwrap(), [2.0, 3.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Norm {
    #[module(skip)]
    irreps_in: Irreps,
    #[module(skip)]
    squared: bool,
}

impl Norm {
    /// The norms of the instances of `irreps_in` (simplified, as e3nn does), squared if
    /// `squared`.
    ///
    /// ```
    /// use equivariant::o3::Norm;
    /// let norm = Norm::new(&"1x1o + 2x1o + 1x0e".parse()?, true);
    /// assert_eq!(norm.irreps_in().to_string(), "3x1o+1x0e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(irreps_in: &Irreps, squared: bool) -> Self {
        Norm {
            irreps_in: irreps_in.simplify(),
            squared,
        }
    }

    /// The (simplified) input irreps.
    ///
    /// ```
    /// use equivariant::o3::Norm;
    /// assert_eq!(Norm::new(&"2x2e".parse()?, false).irreps_in().dim(), 10);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_in(&self) -> &Irreps {
        &self.irreps_in
    }

    /// The output irreps: one scalar `0e` per instance, simplified.
    ///
    /// ```
    /// use equivariant::o3::Norm;
    /// assert_eq!(Norm::new(&"2x1o + 3x0e".parse()?, false).irreps_out().to_string(), "5x0e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_out(&self) -> Irreps {
        let scalar: Irrep = Irrep::new(0, equivariant_core::o3::Parity::Even);
        Irreps::from_entries(
            self.irreps_in
                .iter()
                .map(|entry| MulIr::new(entry.mul, scalar))
                .collect(),
        )
        .simplify()
    }

    /// The norms. Errors: [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if `x` is
    /// not `[batch, irreps_in.dim]`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::Norm;
    /// let norm = Norm::new(&"1x1o".parse()?, true);
    /// let x = Tensor::<2>::from_floats([[1.0, 2.0, 2.0]], &Device::flex());
    /// assert_eq!(norm.forward(x.clone())?.into_scalar::<f32>(), 9.0);
    /// assert!(norm.forward(x.reshape([3, 1])).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let (x, dims) = flatten_rows("Norm x [..., irreps_in.dim]", x)?;
        Ok(unflatten_rows(self.forward_rows(x)?, dims))
    }

    /// [`forward`](Norm::forward) on rows, `[batch, irreps_in.dim]`.
    fn forward_rows(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        check_width("Norm x [batch, irreps_in.dim]", &x, self.irreps_in.dim())?;
        Ok(if self.squared {
            norms_squared(&x, &self.irreps_in)
        } else {
            norms(&x, &self.irreps_in)
        })
    }
}
