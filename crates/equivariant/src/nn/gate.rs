//! e3nn's `nn.Gate`: the gated nonlinearity of equivariant networks.

use burn::module::Module;
use burn::tensor::Tensor;
use equivariant_core::math::ActivationFunction;
use equivariant_core::o3::Irreps;
use equivariant_core::o3::tensor_product::elementwise_tensor_product;
use equivariant_core::{Error, Result};

use super::{Activation, Extract};
use crate::ops::activation::ScalarFunction;
use crate::ops::irreps::scale_instances;
use crate::shape::{check_shape, flatten_rows, unflatten_rows};

/// e3nn's `nn.Gate(irreps_scalars, act_scalars, irreps_gates, act_gates, irreps_gated)`:
///
/// `(+)_i phi_i(x_i)  (+)  (+)_j phi_j(g_j) y_j`,
///
/// scalars `x_i` through their activations, and every gated irrep instance `y_j` times its
/// own gate `g_j` through the gates' activations (all normalized as in [`Activation`]).
/// There are as many gate scalars as gated instances, paired in order.
///
/// The input is the concatenation `scalars + gates + gated`, **sorted and simplified** as
/// e3nn does ([`irreps_in`](Gate::irreps_in)): build the layer that feeds the gate with
/// that irreps. The output is `act(scalars) + gated`, each gated irrep's parity times its
/// gate's.
///
/// # Shapes
///
/// `[..., irreps_in.dim] -> [..., irreps_out.dim]`, any leading axes `...`, as e3nn.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::ActivationFunction;
/// use equivariant::nn::Gate;
///
/// let gate = Gate::new(
///     &"16x0e".parse()?, &[Some(ActivationFunction::Relu)],
///     &"8x0e".parse()?, &[Some(ActivationFunction::Sigmoid)],
///     &"4x1o + 4x2e".parse()?)?;
/// assert_eq!(gate.irreps_in().to_string(), "24x0e+4x1o+4x2e");
/// assert_eq!(gate.irreps_out().to_string(), "16x0e+4x1o+4x2e");
/// let y = gate.forward(Tensor::<2>::ones([3, 24 + 12 + 20], &Device::flex()))?;
/// assert_eq!(y.dims(), [3, 16 + 12 + 20]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Gate {
    sc: Extract,
    act_scalars: Activation,
    act_gates: Activation,
    #[module(skip)]
    irreps_in: Irreps,
    #[module(skip)]
    irreps_gated: Irreps,
    #[module(skip)]
    irreps_out: Irreps,
}

impl Gate {
    /// The gate; `act_scalars[i]` acts on block `i` of `irreps_scalars`, `act_gates[i]` on
    /// block `i` of `irreps_gates`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if scalars or gates are not scalars, if the gates do not
    /// number the gated instances, or for activations [`Activation::new`] refuses.
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::Gate;
    /// let too_few_gates = Gate::new(&"".parse()?, &[], &"1x0e".parse()?,
    ///     &[Some(ActivationFunction::Sigmoid)], &"2x1o".parse()?);
    /// assert!(too_few_gates.is_err());
    /// // An odd gate through an odd function flips the gated parity.
    /// let gate = Gate::new(&"".parse()?, &[], &"1x0o".parse()?,
    ///     &[Some(ActivationFunction::Tanh)], &"1x1o".parse()?)?;
    /// assert_eq!(gate.irreps_out().to_string(), "1x1e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(
        irreps_scalars: &Irreps,
        act_scalars: &[Option<ActivationFunction>],
        irreps_gates: &Irreps,
        act_gates: &[Option<ActivationFunction>],
        irreps_gated: &Irreps,
    ) -> Result<Self> {
        let functions = |acts: &[Option<ActivationFunction>]| -> Vec<Option<ScalarFunction>> {
            acts.iter().map(|a| a.map(ScalarFunction::from)).collect()
        };
        Self::from_functions(
            irreps_scalars,
            &functions(act_scalars),
            irreps_gates,
            &functions(act_gates),
            irreps_gated,
        )
    }

    /// [`new`](Gate::new) with any functions (closures as [`ScalarFunction`]s).
    ///
    /// # Errors
    ///
    /// As [`new`](Gate::new).
    ///
    /// ```
    /// use equivariant::nn::{Gate, ScalarFunction};
    /// let softsign = ScalarFunction::new("softsign", |x| x.clone().div(x.abs().add_scalar(1.0)))?;
    /// let gate = Gate::from_functions(&"".parse()?, &[], &"1x0o".parse()?,
    ///     &[Some(softsign)], &"1x1o".parse()?)?;
    /// assert_eq!(gate.irreps_out().to_string(), "1x1e"); // odd gate, odd function
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn from_functions(
        irreps_scalars: &Irreps,
        act_scalars: &[Option<ScalarFunction>],
        irreps_gates: &Irreps,
        act_gates: &[Option<ScalarFunction>],
        irreps_gated: &Irreps,
    ) -> Result<Self> {
        for (name, irreps) in [
            ("irreps_scalars", irreps_scalars),
            ("irreps_gates", irreps_gates),
        ] {
            if irreps.iter().any(|entry| entry.ir.l != 0) {
                return Err(Error::InvalidArgument {
                    name,
                    reason: format!("must be scalars, got {irreps}"),
                });
            }
        }
        if irreps_gates.num_irreps() != irreps_gated.num_irreps() {
            return Err(Error::InvalidArgument {
                name: "irreps_gates",
                reason: format!(
                    "{} gate scalars for the {} irreps of {irreps_gated}",
                    irreps_gates.num_irreps(),
                    irreps_gated.num_irreps()
                ),
            });
        }
        // e3nn's `_Sortcut`: the three parts concatenated, sorted by irrep, then cut out.
        let parts = [
            irreps_scalars.simplify(),
            irreps_gates.simplify(),
            irreps_gated.simplify(),
        ];
        let concatenated = parts[0].clone() + parts[1].clone() + parts[2].clone();
        let sorted = concatenated.sort();
        let mut start = 0;
        let instructions: Vec<Vec<usize>> = parts
            .iter()
            .map(|part| {
                let ins = (start..start + part.len()).map(|i| sorted.p[i]).collect();
                start += part.len();
                ins
            })
            .collect();
        let sc = Extract::new(&sorted.irreps, &parts, &instructions)?;
        let act_scalars = Activation::from_functions(irreps_scalars, act_scalars)?;
        let act_gates = Activation::from_functions(irreps_gates, act_gates)?;
        let [_, _, irreps_gated] = parts;
        let gated_out = if irreps_gated.is_empty() {
            Irreps::new()
        } else {
            elementwise_tensor_product(
                &irreps_gated,
                act_gates.irreps_out(),
                None,
                Default::default(),
            )?
            .irreps_out()
            .clone()
        };
        Ok(Gate {
            irreps_out: act_scalars.irreps_out().clone() + gated_out,
            irreps_in: sorted.irreps.simplify(),
            sc,
            act_scalars,
            act_gates,
            irreps_gated,
        })
    }

    /// The input irreps: scalars, gates and gated, sorted and simplified.
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// let gate = equivariant::nn::Gate::new(&"1x0e".parse()?, &[None], &"1x0e".parse()?,
    ///     &[Some(ActivationFunction::Sigmoid)], &"1x1o".parse()?)?;
    /// assert_eq!(gate.irreps_in().to_string(), "2x0e+1x1o");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_in(&self) -> &Irreps {
        &self.irreps_in
    }

    /// The output irreps: the activated scalars, then the gated irreps.
    ///
    /// ```
    /// use equivariant::math::ActivationFunction;
    /// let gate = equivariant::nn::Gate::new(&"1x0e".parse()?, &[None], &"1x0e".parse()?,
    ///     &[Some(ActivationFunction::Sigmoid)], &"1x1o".parse()?)?;
    /// assert_eq!(gate.irreps_out().to_string(), "1x0e+1x1o");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_out(&self) -> &Irreps {
        &self.irreps_out
    }

    /// The gated nonlinearity of each row.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` is not `[batch, irreps_in.dim]`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::Gate;
    /// // A gate of exactly 0 through relu silences its vector.
    /// let gate = Gate::new(&"".parse()?, &[], &"1x0e".parse()?, &[Some(ActivationFunction::Relu)], &"1x1o".parse()?)?;
    /// let x = Tensor::<2>::from_floats([[0.0, 1.0, 2.0, 3.0]], &Device::flex());
    /// assert_eq!(gate.forward(x)?.into_data().try_into_vec::<f32>().unwrap(), [0.0; 3]);
    /// assert!(gate.forward(Tensor::<2>::ones([1, 3], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let (x, dims) = flatten_rows("Gate x [..., irreps_in.dim]", x)?;
        Ok(unflatten_rows(self.forward_rows(x)?, dims))
    }

    /// What the gate is made of, for a backward written by hand: the extraction of the
    /// scalars, gates and gated parts, the activations of the scalars and of the gates,
    /// and the gated irreps.
    pub(crate) fn parts(&self) -> (&Extract, &Activation, &Activation, &Irreps) {
        (
            &self.sc,
            &self.act_scalars,
            &self.act_gates,
            &self.irreps_gated,
        )
    }

    /// [`forward`](Gate::forward) on rows, `[batch, irreps_in.dim]`.
    fn forward_rows(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        let [scalars, gates, gated] = self.split(x)?;
        let scalars = self.act_scalars.forward(scalars)?;
        if self.irreps_gated.dim() == 0 {
            return Ok(scalars);
        }
        let gates = self.act_gates.forward(gates)?;
        let gated = scale_instances(gated, &self.irreps_gated, gates);
        Ok(self.join(scalars, gated))
    }

    /// `x` split into its scalars, gates and gated parts.
    fn split(&self, x: Tensor<2>) -> Result<[Tensor<2>; 3]> {
        let parts: Vec<Tensor<2>> = self.sc.forward(x)?;
        Ok(parts
            .try_into()
            .unwrap_or_else(|_| unreachable!("the gate's Extract has three outputs")))
    }

    /// The activated scalars followed by the gated irreps (either may be empty).
    fn join(&self, scalars: Tensor<2>, gated: Tensor<2>) -> Tensor<2> {
        if self.act_scalars.irreps_out().dim() == 0 {
            return gated;
        }
        Tensor::cat(vec![scalars, gated], 1)
    }

    /// [`forward`](Gate::forward) and its tangent along `dx`, `(y, dy)`: the activations'
    /// tangents ([`Activation::forward_tangent`]) and, for the gated irreps (bilinear in the
    /// gate and the gated input), `d(g v) = dg v + g dv`. Differentiable in `x`, `dx` (for
    /// training on forces).
    ///
    /// Errors: as [`forward`](Gate::forward), for `x` and `dx`; [`Error::ShapeMismatch`] if
    /// `dx` is not the shape of `x`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::math::ActivationFunction;
    /// use equivariant::nn::Gate;
    /// let silu = Some(ActivationFunction::Silu);
    /// let gate = Gate::new(&"1x0e".parse()?, &[silu], &"1x0e".parse()?, &[silu], &"1x1o".parse()?)?;
    /// let device = Device::flex();
    /// let x = Tensor::<2>::from_floats([[0.3, -0.2, 0.5, 0.1, -0.4]], &device);
    /// let dx = Tensor::<2>::from_floats([[1.0, 0.5, -1.0, 2.0, 0.3]], &device);
    /// let (y, dy) = gate.forward_tangent(x.clone(), dx.clone())?;
    /// let step = 1e-2;
    /// let plus = gate.forward(x.clone().add(dx.clone().mul_scalar(step)))?;
    /// let minus = gate.forward(x.sub(dx.mul_scalar(step)))?;
    /// let slope = plus.sub(minus).mul_scalar(0.5 / step);
    /// assert!(dy.sub(slope).abs().max().into_scalar::<f32>() < 1e-3);
    /// assert_eq!(y.dims(), [1, 4]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_tangent(&self, x: Tensor<2>, dx: Tensor<2>) -> Result<(Tensor<2>, Tensor<2>)> {
        check_shape("Gate dx (the shape of x)", &dx, x.dims())?;
        let [scalars, gates, gated] = self.split(x)?;
        let [d_scalars, d_gates, d_gated] = self.split(dx)?;
        let (scalars, d_scalars) = self.act_scalars.forward_tangent(scalars, d_scalars)?;
        if self.irreps_gated.dim() == 0 {
            return Ok((scalars, d_scalars));
        }
        let (gates, d_gates) = self.act_gates.forward_tangent(gates, d_gates)?;
        let d_out = scale_instances(d_gated, &self.irreps_gated, gates.clone())
            .add(scale_instances(gated.clone(), &self.irreps_gated, d_gates));
        let out = scale_instances(gated, &self.irreps_gated, gates);
        Ok((self.join(scalars, out), self.join(d_scalars, d_out)))
    }
}
