//! e3nn's `nn.Identity`: the features unchanged, between two equal direct sums of irreps.

use burn::module::Module;
use burn::tensor::Tensor;
use equivariant_core::o3::Irreps;
use equivariant_core::{Error, Result};

use crate::shape::{check_width, flatten_rows, unflatten_rows};

/// The identity on `irreps` (e3nn checks `irreps_in == irreps_out` after simplifying both,
/// as [`Identity::new`] does).
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::nn::Identity;
/// let id = Identity::new(&"1x0e+1x0e+1x1o".parse()?, &"2x0e+1x1o".parse()?)?;
/// let x = Tensor::<2>::ones([3, 5], &Device::flex());
/// assert_eq!(id.forward(x)?.dims(), [3, 5]);
/// assert!(Identity::new(&"1x0e".parse()?, &"1x0o".parse()?).is_err());
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Identity {
    #[module(skip)]
    irreps: Irreps,
}

impl Identity {
    /// The identity from `irreps_in` to `irreps_out`. Errors: [`Error::InvalidArgument`]
    /// unless the two are equal once simplified.
    ///
    /// ```
    /// use equivariant::nn::Identity;
    /// let id = Identity::new(&"2x1o".parse()?, &"1x1o+1x1o".parse()?)?;
    /// assert_eq!(id.irreps().to_string(), "2x1o");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(irreps_in: &Irreps, irreps_out: &Irreps) -> Result<Self> {
        let (a, b) = (irreps_in.simplify(), irreps_out.simplify());
        if a != b {
            return Err(Error::InvalidArgument {
                name: "irreps_out",
                reason: format!("an identity maps {a} to itself, not to {b}"),
            });
        }
        Ok(Identity { irreps: a })
    }

    /// The (simplified) irreps, in and out.
    ///
    /// ```
    /// use equivariant::nn::Identity;
    /// assert_eq!(Identity::new(&"0e".parse()?, &"0e".parse()?)?.irreps().dim(), 1);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps(&self) -> &Irreps {
        &self.irreps
    }

    /// `x` itself. Errors: [`Error::ShapeMismatch`] if `x` is not `[batch, irreps.dim]`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::Identity;
    /// let id = Identity::new(&"1x1o".parse()?, &"1x1o".parse()?)?;
    /// assert!(id.forward(Tensor::<2>::ones([3, 4], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let (x, dims) = flatten_rows("Identity x [..., irreps.dim]", x)?;
        Ok(unflatten_rows(self.forward_rows(x)?, dims))
    }

    /// [`forward`](Identity::forward) on rows, `[batch, irreps.dim]`.
    fn forward_rows(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        check_width("Identity x [batch, irreps.dim]", &x, self.irreps.dim())?;
        Ok(x)
    }
}
