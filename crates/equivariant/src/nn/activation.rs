//! e3nn's `nn.Activation`: scalar activations on the scalar blocks of a direct sum of irreps,
//! normalized to keep the second moment at one.

use burn::module::Module;
use burn::tensor::Tensor;
use equivariant_core::math::ActivationFunction;
use equivariant_core::o3::{Irrep, Irreps, MulIr, Parity};
use equivariant_core::{Error, Result};

use crate::ops::activation::{ScalarFunction, normalized_function, scaled_function_tangent};
use crate::ops::irreps::{columns, concat_columns};
use crate::shape::{check_rows, check_width, flatten_rows, unflatten_rows};

/// e3nn's `nn.Activation(irreps_in, acts)`: block `i` of the input goes through
/// `c_i f_i(x)`, with `c_i` e3nn's `normalize2mom` constant of `f_i`
/// ([`ActivationFunction::normalize2mom_constant`]), or through unchanged where `acts[i]` is `None`.
///
/// Only scalar blocks (`l = 0`) take an activation. An even scalar stays even; an odd
/// scalar needs an even or odd function ([`ActivationFunction::parity`]) and comes out with that
/// function's parity.
///
/// # Shapes
///
/// `[..., irreps_in.dim] -> [..., irreps_out.dim]` (the same dimension), any leading axes
/// `...` (none, a batch, several), as e3nn.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::ActivationFunction;
/// use equivariant::nn::Activation;
///
/// let act = Activation::new(&"2x0e + 1x0o + 1x1o".parse()?,
///     &[Some(ActivationFunction::Relu), Some(ActivationFunction::Tanh), None])?;
/// assert_eq!(act.irreps_out().to_string(), "2x0e+1x0o+1x1o");
/// let x = Tensor::<2>::from_floats([[-1.0, 2.0, 0.0, 1.0, 2.0, 3.0]], &Device::flex());
/// let y = act.forward(x)?.into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(y[0], 0.0);
/// assert!((y[1] - 2.0 * ActivationFunction::Relu.normalize2mom_constant() as f32).abs() < 1e-6);
/// assert_eq!(&y[3..], [1.0, 2.0, 3.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Activation {
    #[module(skip)]
    irreps_in: Irreps,
    #[module(skip)]
    irreps_out: Irreps,
    #[module(skip)]
    acts: Vec<Option<ScalarFunction>>,
}

impl Activation {
    /// The activation of each block of `irreps_in` (`acts[i]` for block `i`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `acts` and `irreps_in` differ in length, if a
    /// non-scalar block has an activation, or if an odd scalar block has a function that is
    /// neither even nor odd.
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::Activation;
    /// assert!(Activation::new(&"1x0o".parse()?, &[Some(ActivationFunction::Relu)]).is_err());
    /// assert!(Activation::new(&"1x1o".parse()?, &[Some(ActivationFunction::Tanh)]).is_err());
    /// let abs = Activation::new(&"1x0o".parse()?, &[Some(ActivationFunction::Abs)])?;
    /// assert_eq!(abs.irreps_out().to_string(), "1x0e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(irreps_in: &Irreps, acts: &[Option<ActivationFunction>]) -> Result<Self> {
        let acts: Vec<_> = acts.iter().map(|a| a.map(ScalarFunction::from)).collect();
        Self::from_functions(irreps_in, &acts)
    }

    /// [`new`](Activation::new) with any functions (closures as [`ScalarFunction`]s, each
    /// normalized by its own e3nn constant).
    ///
    /// # Errors
    ///
    /// As [`new`](Activation::new).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::{Activation, ScalarFunction};
    /// let sin = ScalarFunction::new("sin", |x| x.sin())?;
    /// let act = Activation::from_functions(&"1x0o".parse()?, &[Some(sin.clone())])?;
    /// assert_eq!(act.irreps_out().to_string(), "1x0o"); // sin is odd
    /// let y = act.forward(Tensor::<2>::from_floats([[0.5]], &Device::flex()))?;
    /// let expected = 0.5f64.sin() * sin.normalize2mom_constant();
    /// assert!((y.into_scalar::<f32>() as f64 - expected).abs() < 1e-6);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn from_functions(irreps_in: &Irreps, acts: &[Option<ScalarFunction>]) -> Result<Self> {
        if acts.len() != irreps_in.len() {
            return Err(Error::InvalidArgument {
                name: "acts",
                reason: format!(
                    "{} activations for the {} blocks of {irreps_in}",
                    acts.len(),
                    irreps_in.len()
                ),
            });
        }
        let mut out = Vec::with_capacity(acts.len());
        for (entry, act) in irreps_in.iter().zip(acts) {
            let Some(act) = act else {
                out.push(*entry);
                continue;
            };
            if entry.ir.l != 0 {
                return Err(Error::InvalidArgument {
                    name: "acts",
                    reason: format!("{act} on the non-scalar block {entry}"),
                });
            }
            let p = match (entry.ir.p, act.parity()) {
                (Parity::Even, _) => Parity::Even,
                (Parity::Odd, Some(p)) => p,
                (Parity::Odd, None) => {
                    return Err(Error::InvalidArgument {
                        name: "acts",
                        reason: format!(
                            "{act} is neither even nor odd: it breaks the parity of {entry}"
                        ),
                    });
                }
            };
            out.push(MulIr {
                mul: entry.mul,
                ir: Irrep { l: 0, p },
            });
        }
        Ok(Activation {
            irreps_in: irreps_in.clone(),
            irreps_out: Irreps::from_entries(out),
            acts: acts.to_vec(),
        })
    }

    /// The input irreps.
    ///
    /// ```
    /// let act = equivariant::nn::Activation::new(&"3x0e".parse()?, &[None])?;
    /// assert_eq!(act.irreps_in().to_string(), "3x0e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_in(&self) -> &Irreps {
        &self.irreps_in
    }

    /// The output irreps: the input's, with the parity of odd scalars set by their function.
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// let act = equivariant::nn::Activation::new(&"1x0o".parse()?, &[Some(ActivationFunction::Tanh)])?;
    /// assert_eq!(act.irreps_out().to_string(), "1x0o");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_out(&self) -> &Irreps {
        &self.irreps_out
    }

    /// Applies each block's normalized activation.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` is not `[batch, irreps_in.dim]`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::Activation;
    /// let act = Activation::new(&"1x1o".parse()?, &[None])?;
    /// let x = Tensor::<2>::ones([2, 3], &Device::flex());
    /// assert_eq!(act.forward(x)?.dims(), [2, 3]);
    /// assert!(act.forward(Tensor::<2>::ones([2, 4], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let (x, dims) = flatten_rows("Activation x [..., irreps_in.dim]", x)?;
        Ok(unflatten_rows(self.forward_rows(x)?, dims))
    }

    /// [`forward`](Activation::forward) on rows, `[batch, irreps_in.dim]`.
    fn forward_rows(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        check_width(
            "Activation x [batch, irreps_in.dim]",
            &x,
            self.irreps_in.dim(),
        )?;
        if self.acts.iter().all(Option::is_none) {
            return Ok(x);
        }
        let parts: Vec<Tensor<2>> = self
            .blocks()
            .map(|(range, act)| {
                let block = columns(&x, &[range]);
                match act {
                    Some(f) => normalized_function(f, block),
                    None => block,
                }
            })
            .collect();
        Ok(concat_columns(parts, x.dims()[0], &x))
    }

    /// [`forward`](Activation::forward) and its tangent along `dx`: `(y, dy)` with
    /// `dy = c f'(x) dx` on each activated block and `dx` elsewhere, `[batch,
    /// irreps_in.dim]` each, differentiable in `x` and `dx` (for training on forces).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` or `dx` is not `[batch, irreps_in.dim]`, or `dx` not
    /// the shape of `x`.
    /// [`Error::InvalidArgument`] for a [`ScalarFunction`] given without its derivative.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::Activation;
    /// let act = Activation::new(&"1x0e".parse()?, &[Some(ActivationFunction::Tanh)])?;
    /// let x = Tensor::<2>::zeros([1, 1], &Device::flex());
    /// let (_, dy) = act.forward_tangent(x, Tensor::<2>::ones([1, 1], &Device::flex()))?;
    /// // tanh'(0) = 1, times the normalize2mom constant.
    /// let c = ActivationFunction::Tanh.normalize2mom_constant() as f32;
    /// assert!((dy.into_scalar::<f32>() - c).abs() < 1e-6);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_tangent(&self, x: Tensor<2>, dx: Tensor<2>) -> Result<(Tensor<2>, Tensor<2>)> {
        let dim = self.irreps_in.dim();
        check_width("Activation x [batch, irreps_in.dim]", &x, dim)?;
        check_width("Activation dx [batch, irreps_in.dim]", &dx, dim)?;
        check_rows("Activation dx (the rows of x)", &dx, x.dims()[0])?;
        if self.acts.iter().all(Option::is_none) {
            return Ok((x, dx));
        }
        let mut values = Vec::new();
        let mut tangents = Vec::new();
        for (range, act) in self.blocks() {
            let block = columns(&x, std::slice::from_ref(&range));
            let d_block = columns(&dx, &[range]);
            let (value, tangent) = match act {
                Some(f) => scaled_function_tangent(f, f.normalize2mom_constant(), block, d_block)?,
                None => (block, d_block),
            };
            values.push(value);
            tangents.push(tangent);
        }
        let batch = x.dims()[0];
        Ok((
            concat_columns(values, batch, &x),
            concat_columns(tangents, batch, &dx),
        ))
    }

    /// The non-empty blocks of `irreps_in` (their column ranges) with their activations.
    pub(crate) fn blocks(
        &self,
    ) -> impl Iterator<Item = (std::ops::Range<usize>, &Option<ScalarFunction>)> {
        self.irreps_in
            .slices()
            .into_iter()
            .zip(&self.acts)
            .filter(|(range, _)| !range.is_empty())
    }
}
