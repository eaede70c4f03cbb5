//! e3nn's `nn.S2Activation`: a pointwise nonlinearity on the sphere. The coefficients of a
//! signal (`1x0 + 1x1 + ... + 1xlmax`) go to the grid ([`ToS2Grid`]), the normalized
//! function is applied to every sample, and the samples come back ([`FromS2Grid`]):
//!
//! ```text
//! A^l  ->  { integral phi(sum_l A^l . Y^l(x)) Y^j(x) dx }_j
//! ```
//!
//! equivariant because the sphere's points only permute under rotations (exactly so for
//! signals the grid resolves).

use burn::module::Module;
use burn::tensor::Tensor;
use equivariant_core::o3::{Irrep, Irreps, MulIr, Normalization, Parity};
use equivariant_core::{Error, Result};

use crate::o3::{FromS2Grid, ToS2Grid};
use crate::ops::activation::{ScalarFunction, normalized_function};
use crate::shape::check_width;

/// e3nn's `nn.S2Activation(irreps, act, res, normalization, lmax_out)`.
///
/// The input is a signal on the sphere, `irreps = 1x0 + 1x1 + ... + 1xlmax` with parities
/// `p_val p_arg^l` (`p_val`, `p_arg` = +-1: it transforms as `f(r) -> p_val f(p_arg r)`); the
/// output has degrees up to `lmax_out` and the parities that follow (an odd `p_val` needs
/// an even or odd function). e3nn's `random_rot` (a random rotation of the grid per call)
/// is left out: it makes the layer nondeterministic.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::ActivationFunction;
/// use equivariant::nn::S2Activation;
/// use equivariant::o3::Normalization;
/// let act = S2Activation::new(&"0e+1o+2e".parse()?, ActivationFunction::Silu, 20, None, Normalization::Component, None)?;
/// assert_eq!(act.irreps_out().to_string(), "1x0e+1x1o+1x2e");
/// let y = act.forward(Tensor::<2>::ones([4, 9], &Device::flex()))?;
/// assert_eq!(y.dims(), [4, 9]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct S2Activation {
    #[module(skip)]
    irreps_in: Irreps,
    #[module(skip)]
    irreps_out: Irreps,
    #[module(skip)]
    act: ScalarFunction,
    to_s2: ToS2Grid,
    from_s2: FromS2Grid,
}

impl S2Activation {
    /// The activation of the signals `irreps` by `act` on a grid of `res_beta` betas
    /// (`res_alpha` by default `res_beta - 1`, as e3nn completes it), back to degree
    /// `lmax_out` (default: the input's).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for irreps that are not one of each degree `0..=lmax` with
    /// a well-defined parity, an odd signal with a function neither even nor odd, or a
    /// grid that does not resolve the degrees (an odd `res_beta`, `lmax + 1 > res_beta / 2`).
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::S2Activation;
    /// use equivariant::o3::Normalization;
    /// let n = Normalization::Component;
    /// // tanh is odd: an odd signal stays odd.
    /// let odd = S2Activation::new(&"0o+1e+2o".parse()?, ActivationFunction::Tanh, 12, None, n, None)?;
    /// assert_eq!(odd.irreps_out().to_string(), "1x0o+1x1e+1x2o");
    /// assert!(S2Activation::new(&"0o+1e".parse()?, ActivationFunction::Silu, 12, None, n, None).is_err());
    /// assert!(S2Activation::new(&"0e+2e".parse()?, ActivationFunction::Silu, 12, None, n, None).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(
        irreps: &Irreps,
        act: impl Into<ScalarFunction>,
        res_beta: usize,
        res_alpha: Option<usize>,
        normalization: Normalization,
        lmax_out: Option<u32>,
    ) -> Result<Self> {
        let act = act.into();
        let irreps_in = irreps.simplify();
        let invalid = |reason: String| Error::InvalidArgument {
            name: "irreps",
            reason: format!("{irreps}: {reason}"),
        };
        let lmax = irreps_in.lmax().map_err(|_| invalid("no irreps".into()))?;
        let is_signal = irreps_in.len() == lmax as usize + 1
            && irreps_in
                .iter()
                .enumerate()
                .all(|(l, m)| m.mul == 1 && m.ir.l as usize == l);
        if !is_signal {
            return Err(invalid("not one irrep of each degree 0..=lmax".into()));
        }
        let p_val = irreps_in.entries()[0].ir.p;
        let p_arg = if irreps_in.iter().all(|m| m.ir.p == p_val) {
            Parity::Even
        } else if irreps_in
            .iter()
            .all(|m| m.ir.p == p_val * Parity::Odd.pow(m.ir.l))
        {
            Parity::Odd
        } else {
            return Err(invalid(
                "the parity of the signal is not well defined".into(),
            ));
        };
        // f(r) -> p_val f(p_arg r): phi(f) keeps p_val when p_val is even, and takes the
        // function's parity when it is odd.
        let p_out = match (p_val, act.parity()) {
            (Parity::Even, _) => Parity::Even,
            (Parity::Odd, Some(p)) => p,
            (Parity::Odd, None) => {
                return Err(invalid(format!(
                    "{act} is neither even nor odd, so it breaks the signal's parity"
                )));
            }
        };
        let lmax_out = lmax_out.unwrap_or(lmax);
        let irreps_out = Irreps::from_entries(
            (0..=lmax_out)
                .map(|l| MulIr::new(1, Irrep::new(l, p_out * p_arg.pow(l))))
                .collect(),
        );
        let to_s2 = ToS2Grid::new(Some(lmax), Some(res_beta), res_alpha, normalization)?;
        let [rb, ra] = to_s2.res();
        let from_s2 = FromS2Grid::new(
            Some(rb),
            Some(ra),
            Some(lmax_out),
            normalization,
            Some(lmax),
        )?;
        Ok(S2Activation {
            irreps_in,
            irreps_out,
            act,
            to_s2,
            from_s2,
        })
    }

    /// The input signals' irreps (simplified).
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::S2Activation;
    /// use equivariant::o3::Normalization;
    /// let act = S2Activation::new(&"0e+1e".parse()?, ActivationFunction::Relu, 8, None, Normalization::Norm, Some(2))?;
    /// assert_eq!(act.irreps_in().to_string(), "1x0e+1x1e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_in(&self) -> &Irreps {
        &self.irreps_in
    }

    /// The output signals' irreps.
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::S2Activation;
    /// use equivariant::o3::Normalization;
    /// let act = S2Activation::new(&"0e+1e".parse()?, ActivationFunction::Relu, 8, None, Normalization::Norm, Some(2))?;
    /// assert_eq!(act.irreps_out().to_string(), "1x0e+1x1e+1x2e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_out(&self) -> &Irreps {
        &self.irreps_out
    }

    /// `[z, irreps_in.dim]` to `[z, irreps_out.dim]`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for another width.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::S2Activation;
    /// use equivariant::o3::Normalization;
    /// let act = S2Activation::new(&"0e+1o".parse()?, ActivationFunction::Relu, 8, None, Normalization::Norm, None)?;
    /// assert!(act.forward(Tensor::<2>::ones([1, 3], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(&self, features: Tensor<2>) -> Result<Tensor<2>> {
        check_width(
            "S2Activation features [z, irreps_in.dim]",
            &features,
            self.irreps_in.dim(),
        )?;
        let grid = self.to_s2.forward(features)?;
        let [z, rb, ra] = grid.dims();
        let grid = normalized_function(&self.act, grid.reshape([z, rb * ra]));
        self.from_s2.forward(grid.reshape([z, rb, ra]))
    }
}
