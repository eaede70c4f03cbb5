//! NequIP's edge-length embedding (`RadialBasisEdgeEncoding`): a Bessel basis times a
//! polynomial cutoff envelope, with its tangent for the tangent pass; both one op each
//! ([`ops::bessel_edge_encoding`](crate::ops::bessel_edge_encoding())).

use std::sync::Arc;

use burn::tensor::Tensor;
use equivariant_core::Result;
use equivariant_core::math::BesselEdgeEncoding;

use crate::ops::{bessel_edge_encoding, bessel_edge_encoding_tangent};

/// `emb_n(r) = B_n(r) u(r / r_max)` for `n = 1..=num_basis`: NequIP's `BesselBasis`
/// (its initial, untrained weights `n pi`) times its `PolynomialCutoff`,
///
/// - `B_n(r) = (2 / r_max) sin(n pi r / r_max) / r`,
/// - `u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)` for `x < 1`, else 0,
///
/// with `u(1) = u'(1) = u''(1) = 0`: energies and forces go to zero smoothly at `r_max`.
#[derive(Debug, Clone, PartialEq)]
pub struct RadialBasisEdgeEncoding {
    plan: Arc<BesselEdgeEncoding>,
}

impl RadialBasisEdgeEncoding {
    /// The encoding of `num_basis` Bessel functions on `[0, r_max]` under a cutoff of power
    /// `p`.
    ///
    /// Errors: [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a cutoff radius
    /// that is not finite and positive, no basis functions, or `p < 2`.
    ///
    /// ```
    /// use equivariant::nn::models::nequip::RadialBasisEdgeEncoding;
    /// assert!(RadialBasisEdgeEncoding::new(4.0, 8, 6).is_ok());
    /// assert!(RadialBasisEdgeEncoding::new(0.0, 8, 6).is_err());
    /// ```
    pub fn new(r_max: f64, num_basis: usize, p: u32) -> Result<Self> {
        Ok(RadialBasisEdgeEncoding {
            plan: Arc::new(BesselEdgeEncoding::new(r_max, num_basis, p)?),
        })
    }

    /// The cutoff radius `r_max`.
    ///
    /// ```
    /// use equivariant::nn::models::nequip::RadialBasisEdgeEncoding;
    /// assert_eq!(RadialBasisEdgeEncoding::new(4.0, 8, 6)?.r_max(), 4.0);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn r_max(&self) -> f64 {
        self.plan.r_max()
    }

    /// The number of basis functions.
    ///
    /// ```
    /// use equivariant::nn::models::nequip::RadialBasisEdgeEncoding;
    /// assert_eq!(RadialBasisEdgeEncoding::new(4.0, 8, 6)?.num_basis(), 8);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn num_basis(&self) -> usize {
        self.plan.num_basis()
    }

    /// The embedding of the edge vectors' lengths, `[E, 3] -> [E, num_basis]`; zero at and
    /// beyond `r_max`, and for a zero-length edge.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::models::nequip::RadialBasisEdgeEncoding;
    /// let encoding = RadialBasisEdgeEncoding::new(4.0, 8, 6)?;
    /// let r = Tensor::<2>::from_floats([[1.0, 0.0, 0.0], [0.0, 4.5, 0.0]], &Device::flex());
    /// let emb = encoding.forward(r).into_data().try_into_vec::<f32>().unwrap();
    /// assert!(emb[0] > 0.0); // B_1(1) u(1/4) > 0
    /// assert!(emb[8..].iter().all(|&x| x == 0.0)); // beyond the cutoff
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(&self, edge_vec: Tensor<2>) -> Tensor<2> {
        bessel_edge_encoding(&self.plan, edge_vec)
    }

    /// The core encoding this module runs.
    pub(crate) fn plan(&self) -> &BesselEdgeEncoding {
        &self.plan
    }

    /// [`forward`](RadialBasisEdgeEncoding::forward) and its tangent along `tangent`
    /// (`[E, 3]`): `d emb = emb'(|r|) (r . t) / |r|` (zero for a zero-length edge);
    /// differentiable in both.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::models::nequip::RadialBasisEdgeEncoding;
    /// let encoding = RadialBasisEdgeEncoding::new(4.0, 8, 6)?;
    /// let device = Device::flex();
    /// let r = Tensor::<2>::from_floats([[1.0, 1.0, 0.0]], &device);
    /// let t = Tensor::<2>::from_floats([[0.0, 0.0, 1.0]], &device); // across: |r| unchanged
    /// let (_, d_emb) = encoding.forward_tangent(r, t);
    /// assert_eq!(d_emb.abs().max().into_scalar::<f32>(), 0.0);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_tangent(
        &self,
        edge_vec: Tensor<2>,
        tangent: Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        (
            bessel_edge_encoding(&self.plan, edge_vec.clone()),
            bessel_edge_encoding_tangent(&self.plan, edge_vec, tangent),
        )
    }
}
