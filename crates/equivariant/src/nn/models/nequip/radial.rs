//! NequIP's edge-length embedding (`RadialBasisEdgeEncoding`): a Bessel basis times a
//! polynomial cutoff envelope, with its derivative in the length for the tangent pass.

use std::sync::Arc;

use burn::tensor::Tensor;
use equivariant_core::math::{Basis, SoftOneHotLinspace};
use equivariant_core::{Error, Result};

use crate::ops::edge_vectors::edge_lengths;
use crate::ops::{soft_one_hot_linspace, soft_one_hot_linspace_derivative};

/// `emb_n(r) = B_n(r) u(r / r_max)` for `n = 1..=num_basis`: NequIP's `BesselBasis`
/// (its initial, untrained weights `n pi`) times its `PolynomialCutoff`,
///
/// - `B_n(r) = (2 / r_max) sin(n pi r / r_max) / r`,
/// - `u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)` for `x < 1`, else 0,
///
/// with `u(1) = u'(1) = u''(1) = 0`: energies and forces go to zero smoothly at `r_max`.
#[derive(Debug, Clone, PartialEq)]
pub struct RadialBasisEdgeEncoding {
    r_max: f64,
    p: u32,
    /// e3nn's Bessel basis on `[0, r_max]` without cutoff (the envelope is the cutoff).
    bessel: Arc<SoftOneHotLinspace>,
}

/// The embedding and, when asked for, its derivative in the length, `[E, num_basis]` each.
struct Parts {
    embedding: Tensor<2>,
    derivative: Option<Tensor<2>>,
}

impl RadialBasisEdgeEncoding {
    /// The encoding of `num_basis` Bessel functions on `[0, r_max]` under a cutoff of power
    /// `p`.
    ///
    /// Errors: [`Error::InvalidArgument`] for a cutoff radius that is not finite and
    /// positive, no basis functions, or `p < 2`.
    ///
    /// ```
    /// use equivariant::nn::models::nequip::RadialBasisEdgeEncoding;
    /// assert!(RadialBasisEdgeEncoding::new(4.0, 8, 6).is_ok());
    /// assert!(RadialBasisEdgeEncoding::new(0.0, 8, 6).is_err());
    /// ```
    pub fn new(r_max: f64, num_basis: usize, p: u32) -> Result<Self> {
        let bad = |name, reason: String| Err(Error::InvalidArgument { name, reason });
        if !(r_max.is_finite() && r_max > 0.0) {
            return bad("r_max", format!("must be finite and positive, got {r_max}"));
        }
        if num_basis == 0 {
            return bad("num_basis", "needs at least one basis function".into());
        }
        if p < 2 {
            return bad(
                "PolynomialCutoff_p",
                format!("must be at least 2 (a smooth envelope), got {p}"),
            );
        }
        Ok(RadialBasisEdgeEncoding {
            r_max,
            p,
            bessel: Arc::new(SoftOneHotLinspace::new(
                0.0,
                r_max,
                num_basis,
                Basis::Bessel,
                false,
            )?),
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
        self.r_max
    }

    /// The number of basis functions.
    ///
    /// ```
    /// use equivariant::nn::models::nequip::RadialBasisEdgeEncoding;
    /// assert_eq!(RadialBasisEdgeEncoding::new(4.0, 8, 6)?.num_basis(), 8);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn num_basis(&self) -> usize {
        self.bessel.number()
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
        let (length, nonzero) = edge_lengths(edge_vec);
        self.parts(length, nonzero, false).embedding
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
        let (length, nonzero) = edge_lengths(edge_vec.clone());
        // d|r| = (r . t) / |r|, on a safe divisor (the length is 0 only with r = 0).
        let divisor = length.clone().add(nonzero.clone().neg().add_scalar(1.0));
        let rate = edge_vec
            .mul(tangent)
            .sum_dim(1)
            .div(divisor)
            .mul(nonzero.clone());
        let parts = self.parts(length, nonzero, true);
        let derivative = parts.derivative.expect("asked for");
        (parts.embedding, derivative.mul(rate))
    }

    /// The embedding of lengths `[E, 1]` and, if `derivative`, its derivative in them.
    ///
    /// `B_n(r) = sqrt(2 / r_max) b_n(r)` with `b_n` e3nn's Bessel basis on `[0, r_max]`
    /// (`sqrt(2 / r_max) sin(n pi r / r_max) / r`, no cutoff), evaluated with its
    /// derivatives by the fused [`soft_one_hot_linspace`] op, in one pass over `[E,
    /// num_basis]`; the envelope and its derivative are `[E, 1]`, one value per edge.
    fn parts(&self, length: Tensor<2>, nonzero: Tensor<2>, derivative: bool) -> Parts {
        let dtype = length.dtype();
        let e = length.dims()[0];
        let (r_max, p) = (self.r_max, self.p as i32);
        // A length of 1 at a zero-length edge keeps the basis finite on every backend; the
        // envelope is zero there, so is the embedding.
        let r = length
            .clone()
            .add(nonzero.clone().neg().add_scalar(1.0))
            .reshape([e]);
        let bessel = soft_one_hot_linspace(&self.bessel, r.clone());
        // sqrt(2 / r_max) u(x), zero from r_max on (a constant mask: its derivative is zero
        // there) and at a zero-length edge.
        let x = length.mul_scalar(1.0 / r_max);
        let inside = x.clone().lower_elem(1.0).float().cast(dtype).mul(nonzero);
        let (pf, a, b, c) = (
            p as f64,
            ((p + 1) * (p + 2)) as f64 / 2.0,
            (p * (p + 2)) as f64,
            (p * (p + 1)) as f64 / 2.0,
        );
        let scale = (2.0 / r_max).sqrt();
        // u = 1 + x^p (-a + x (b - c x)), one power (burn's powi is a powf) and Horner.
        let x_pm1 = x.clone().powi_scalar(p - 1);
        let x_p = x_pm1.clone().mul(x.clone());
        let envelope = x
            .clone()
            .mul_scalar(-c)
            .add_scalar(b)
            .mul(x.clone())
            .add_scalar(-a)
            .mul(x_p)
            .add_scalar(1.0)
            .mul(inside.clone())
            .mul_scalar(scale);
        let embedding = bessel.clone().mul(envelope.clone());
        if !derivative {
            return Parts {
                embedding,
                derivative: None,
            };
        }
        let d_bessel = soft_one_hot_linspace_derivative(&self.bessel, r);
        // u'(r) = (1 / r_max) x^(p-1) (-a p + x (b (p+1) - c (p+2) x)).
        let d_envelope = x
            .clone()
            .mul_scalar(-c * (pf + 2.0))
            .add_scalar(b * (pf + 1.0))
            .mul(x)
            .add_scalar(-a * pf)
            .mul(x_pm1)
            .mul(inside)
            .mul_scalar(scale / r_max);
        let derivative = d_bessel.mul(envelope).add(bessel.mul(d_envelope));
        Parts {
            embedding,
            derivative: Some(derivative),
        }
    }
}
