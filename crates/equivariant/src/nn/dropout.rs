//! e3nn's `nn.Dropout`: equivariant dropout, whole irrep instances dropped together.

use burn::module::{Flag, Module, Param};
use burn::tensor::{Distribution, Tensor};
use equivariant_core::o3::Irreps;
use equivariant_core::{Error, Result};

use crate::ops::irreps::scale_instances;
use crate::shape::{check_width, flatten_rows, unflatten_rows};

/// Equivariant dropout (e3nn's `nn.Dropout(irreps, p)`): while training, each irrep instance
/// of each row is kept with probability `1 - p` and scaled by `1 / (1 - p)`, or zeroed as a
/// whole (`B_zi = x_zi / (1 - p) A_zi`, `x_zi ~ Bernoulli(1 - p)`), so a rotation commutes
/// with it. As burn's `Dropout`: it acts only when the `training` flag is on and the input
/// lives on an autodiff device; otherwise it is the identity. The random numbers come from
/// the device's generator (`device.seed(...)`).
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::nn::Dropout;
/// let dropout = Dropout::new(&"4x1o".parse()?, 0.5)?;
/// let x = Tensor::<2>::ones([2, 12], &Device::flex().autodiff());
/// let y = dropout.forward(x)?.into_data().try_into_vec::<f32>().unwrap();
/// // Each vector is kept whole (doubled) or dropped whole.
/// for v in y.chunks(3) {
///     assert!(v == [2.0; 3] || v == [0.0; 3]);
/// }
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Dropout {
    /// Whether the layer drops (on an autodiff device); off for evaluation.
    pub training: Param<Flag>,
    #[module(skip)]
    irreps: Irreps,
    #[module(skip)]
    p: f64,
}

impl Dropout {
    /// Dropout of the instances of `irreps` with probability `p`, training on. Errors:
    /// [`Error::InvalidArgument`] unless `0 <= p <= 1`.
    ///
    /// ```
    /// use equivariant::nn::Dropout;
    /// assert!(Dropout::new(&"1x0e".parse()?, 1.5).is_err());
    /// assert_eq!(Dropout::new(&"2x1o".parse()?, 0.1)?.p(), 0.1);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(irreps: &Irreps, p: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::InvalidArgument {
                name: "p",
                reason: format!("{p}: a probability is in [0, 1]"),
            });
        }
        Ok(Dropout {
            training: Param::from_bool(true),
            irreps: irreps.clone(),
            p,
        })
    }

    /// The dropout probability.
    ///
    /// ```
    /// use equivariant::nn::Dropout;
    /// assert_eq!(Dropout::new(&"1x0e".parse()?, 0.25)?.p(), 0.25);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The same layer with training on or off (e3nn's `train()` / `eval()`).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::Dropout;
    /// let dropout = Dropout::new(&"3x0e".parse()?, 0.9)?.training(false);
    /// let x = Tensor::<2>::ones([1, 3], &Device::flex().autodiff());
    /// assert_eq!(dropout.forward(x)?.into_data().try_into_vec::<f32>().unwrap(), [1.0; 3]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn training(self, on: bool) -> Self {
        Dropout {
            training: self.training.with_value(on),
            ..self
        }
    }

    /// `x` with whole irrep instances dropped (see [`Dropout`]). Errors:
    /// [`Error::ShapeMismatch`] if `x` is not `[batch, irreps.dim]`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::Dropout;
    /// let dropout = Dropout::new(&"1x1o".parse()?, 0.5)?;
    /// // Not an autodiff device: evaluation, the identity.
    /// let x = Tensor::<2>::ones([1, 3], &Device::flex());
    /// assert_eq!(dropout.forward(x)?.into_data().try_into_vec::<f32>().unwrap(), [1.0; 3]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let (x, dims) = flatten_rows("Dropout x [..., irreps.dim]", x)?;
        Ok(unflatten_rows(self.forward_rows(x)?, dims))
    }

    /// [`forward`](Dropout::forward) on rows, `[batch, irreps.dim]`.
    fn forward_rows(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        check_width("Dropout x [batch, irreps.dim]", &x, self.irreps.dim())?;
        if !self.training.is_enabled() || !x.device().is_autodiff() || self.p == 0.0 {
            return Ok(x);
        }
        if self.p >= 1.0 {
            return Ok(x.zeros_like());
        }
        let [batch, _] = x.dims();
        let keep = 1.0 - self.p;
        let noise = Tensor::<2>::random(
            [batch, self.irreps.num_irreps()],
            Distribution::Bernoulli(keep),
            (&x.device(), x.dtype()),
        )
        .mul_scalar(1.0 / keep);
        Ok(scale_instances(x, &self.irreps, noise))
    }
}
