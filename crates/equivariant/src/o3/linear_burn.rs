//! e3nn's `o3.Linear` as a burn module: the core map plus its weights and biases.

use std::sync::Arc;

use burn::module::{Initializer, Module, Param};
use burn::tensor::{Device, Tensor};
use equivariant_core::o3::tensor_product::{PathNormalization, TensorProductPlan};
use equivariant_core::o3::{Irreps, LinearPlan};
use equivariant_core::{Error, Result};

use crate::ops::tensor_product::tensor_product;
use crate::shape::{
    check_dtype, check_rows, check_width, flatten_rows, flatten_rows_like, one_row, unflatten_rows,
};

/// e3nn's `o3.Linear(irreps_in, irreps_out, ...)`: the equivariant linear map
/// `out[w] = sum_u W[u, w] x[u] / sqrt(fan_in) (+ b[w] on 0e outputs)` between every pair
/// of equal irreps (the core [`LinearPlan`] gives the formula and the weight layout).
///
/// With internal weights (the default) the module owns `weight` (`N(0, 1)`) and `bias`
/// (zeros); otherwise [`forward`](Linear::forward) takes the weights, one vector for all
/// rows (`[1, weight_numel]`) or, with `shared_weights = false`, one per row.
///
/// # Shapes
///
/// `[..., irreps_in.dim] -> [..., irreps_out.dim]`: any leading axes, as e3nn.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::LinearConfig;
///
/// let device = Device::flex();
/// let linear = LinearConfig::new(&"4x0e + 2x1o".parse()?, &"3x0e + 1x1o".parse()?).init(&device)?;
/// assert_eq!(linear.weight_numel(), 4 * 3 + 2 * 1);
/// let y = linear.forward(Tensor::<2>::ones([5, 10], &device), None)?;
/// assert_eq!(y.dims(), [5, 6]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Linear {
    /// The internal weights, `[weight_numel]` (e3nn's `weight`), `None` if external.
    pub weight: Option<Param<Tensor<1>>>,
    /// The biases of the `0e` outputs, `[bias_numel]` (e3nn's `bias`), `None` without.
    pub bias: Option<Param<Tensor<1>>>,
    #[module(skip)]
    map: Arc<LinearPlan>,
    #[module(skip)]
    plan: Arc<TensorProductPlan>,
}

/// The settings of e3nn's `o3.Linear`; [`init`](LinearConfig::init) builds the module.
///
/// ```
/// use equivariant::o3::LinearConfig;
/// let config = LinearConfig::new(&"2x0e".parse()?, &"2x0e".parse()?).with_biases(true);
/// assert!(config.biases && config.shared_weights);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinearConfig {
    /// The input irreps.
    pub irreps_in: Irreps,
    /// The output irreps.
    pub irreps_out: Irreps,
    /// Biases on the `0e` outputs (default `false`, as e3nn).
    pub biases: bool,
    /// `Element` (default) or `Path`.
    pub path_normalization: PathNormalization,
    /// One weight vector for all rows (default) or one per row.
    pub shared_weights: bool,
    /// Whether the module owns its weights; `None` means `shared_weights`, e3nn's default.
    pub internal_weights: Option<bool>,
    /// e3nn's `instructions=[(i_in, i_out), ...]`: the blocks that connect (`None`: every
    /// pair of equal irreps).
    pub instructions: Option<Vec<(usize, usize)>>,
    /// e3nn's `biases=[...]`: a flag per output block (`None`: `biases` on every `0e`
    /// output).
    pub output_biases: Option<Vec<bool>>,
}

impl Linear {
    /// The core map (irreps, instructions, kernels).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// let linear = equivariant::o3::LinearConfig::new(&"2x0e".parse()?, &"1x0e".parse()?).init(&Device::flex())?;
    /// assert_eq!(linear.map().instructions().len(), 1);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn map(&self) -> &LinearPlan {
        &self.map
    }

    /// The number of weights per weight vector.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// let linear = equivariant::o3::LinearConfig::new(&"2x0e".parse()?, &"3x0e".parse()?).init(&Device::flex())?;
    /// assert_eq!(linear.weight_numel(), 6);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn weight_numel(&self) -> usize {
        self.map.weight_numel()
    }

    /// The map applied to each row of `x` (`[..., irreps_in.dim]`, any leading axes), with
    /// the internal weights (`weight = None`) or the given ones (`[1, ..., 1, weight_numel]`
    /// shared, `[..., weight_numel]` per row; e3nn's 1-D `(weight_numel,)` goes through
    /// [`forward_shared`](Linear::forward_shared)).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` is not `[..., irreps_in.dim]` or the weights have
    /// the wrong shape; [`Error::InvalidArgument`] if weights are given to a module that has
    /// its own (or missing when it has none), or have another dtype than `x`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::LinearConfig;
    /// let device = Device::flex();
    /// let linear = LinearConfig::new(&"1x0e".parse()?, &"1x0e".parse()?)
    ///     .with_internal_weights(false)
    ///     .init(&device)?;
    /// let y = linear.forward(Tensor::<2>::from_floats([[3.0]], &device),
    ///     Some(Tensor::<2>::from_floats([[2.0]], &device)))?;
    /// assert_eq!(y.into_data().try_into_vec::<f32>().unwrap(), [6.0]);
    /// assert!(linear.forward(Tensor::<2>::ones([1, 2], &device), None).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(
        &self,
        x: Tensor<D>,
        weight: Option<Tensor<D>>,
    ) -> Result<Tensor<D>> {
        let (x, dims) = flatten_rows("Linear x [..., irreps_in.dim]", x)?;
        let weight = weight
            .map(|w| flatten_rows_like("Linear weight [..., weight_numel]", w, dims))
            .transpose()?;
        Ok(unflatten_rows(self.forward_rows(x, weight)?, dims))
    }

    /// [`forward`](Linear::forward) with e3nn's 1-D weights `(weight_numel,)`, one vector
    /// for every row.
    ///
    /// # Errors
    ///
    /// As [`forward`](Linear::forward).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::LinearConfig;
    /// let device = Device::flex();
    /// let linear = LinearConfig::new(&"1x0e".parse()?, &"1x0e".parse()?)
    ///     .with_internal_weights(false)
    ///     .init(&device)?;
    /// let x = Tensor::<3>::from_floats([[[3.0], [4.0]]], &device);
    /// let y = linear.forward_shared(x, Tensor::<1>::from_floats([2.0], &device))?;
    /// assert_eq!(y.dims(), [1, 2, 1]);
    /// assert_eq!(y.into_data().try_into_vec::<f32>().unwrap(), [6.0, 8.0]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_shared<const D: usize>(
        &self,
        x: Tensor<D>,
        weight: Tensor<1>,
    ) -> Result<Tensor<D>> {
        let weight = one_row("Linear weight (weight_numel,)", weight)?;
        self.forward(x, Some(weight))
    }

    /// [`forward`](Linear::forward) on rows: `x` `[batch, irreps_in.dim]`, `weight`
    /// `[batch or 1, weight_numel]`.
    fn forward_rows(&self, x: Tensor<2>, weight: Option<Tensor<2>>) -> Result<Tensor<2>> {
        let out = self.weighted(x, weight)?;
        Ok(match &self.bias {
            Some(bias) => {
                let bias = bias.val();
                check_dtype("Linear bias", &bias, &out)?;
                out.add(self.bias_row(bias))
            }
            None => out,
        })
    }

    /// [`forward`](Linear::forward) and its tangent along `dx`, `(y, dy)`: the map is
    /// linear, so `dy` is the map of `dx` without the biases. Differentiable in `x`, `dx` and
    /// the weights (for training on forces).
    ///
    /// Errors: as [`forward`](Linear::forward), for `x` and `dx`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::LinearConfig;
    /// let device = Device::flex();
    /// let linear = LinearConfig::new(&"2x0e".parse()?, &"1x0e".parse()?).with_biases(true).init(&device)?;
    /// let (x, dx) = (Tensor::<2>::ones([1, 2], &device), Tensor::<2>::ones([1, 2], &device));
    /// let (y, dy) = linear.forward_tangent(x, dx.clone(), None)?;
    /// let bias = linear.forward(Tensor::<2>::zeros([1, 2], &device), None)?;
    /// // y = W x + b with x = dx: y - dy is the bias.
    /// assert!(y.sub(dy).sub(bias).abs().max().into_scalar::<f32>() < 1e-6);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_tangent(
        &self,
        x: Tensor<2>,
        dx: Tensor<2>,
        weight: Option<Tensor<2>>,
    ) -> Result<(Tensor<2>, Tensor<2>)> {
        check_rows("Linear dx (the rows of x)", &dx, x.dims()[0])?;
        let dy = self.weighted(dx, weight.clone())?;
        Ok((self.forward_rows(x, weight)?, dy))
    }

    /// The weighted paths of [`forward`](Linear::forward), without the biases.
    fn weighted(&self, x: Tensor<2>, weight: Option<Tensor<2>>) -> Result<Tensor<2>> {
        let map = &self.map;
        check_width("Linear x [batch, irreps_in.dim]", &x, map.irreps_in().dim())?;
        let [batch, _] = x.dims();
        let numel = map.weight_numel();
        let misuse = |reason: String| Error::InvalidArgument {
            name: "Linear weight",
            reason,
        };
        let ones = Tensor::<2>::ones([batch, 1], (&x.device(), x.dtype()));
        let out = match (&self.weight, weight) {
            (_, None) if numel == 0 => {
                let empty = Tensor::<1>::zeros([0], (&x.device(), x.dtype()));
                tensor_product(&self.plan, x, ones, empty)
            }
            (Some(internal), None) => {
                let internal = internal.val();
                check_dtype("Linear internal weight", &internal, &x)?;
                tensor_product(&self.plan, x, ones, internal)
            }
            (Some(_), Some(_)) => {
                return Err(misuse("this module has internal weights; pass None".into()));
            }
            (None, None) => return Err(misuse(format!("this module needs weights [_, {numel}]"))),
            (None, Some(weight)) => {
                let (what, rows) = if map.shared_weights() {
                    ("Linear weight [1, weight_numel] (shared)", 1)
                } else {
                    ("Linear weight [batch, weight_numel] (per row)", batch)
                };
                check_width(what, &weight, numel)?;
                // One weight row for a per-row map: e3nn broadcasts it over the batch.
                let weight = if weight.dims()[0] == 1 && rows != 1 {
                    weight.expand([rows, numel])
                } else {
                    weight
                };
                check_rows(what, &weight, rows)?;
                check_dtype("Linear weight", &weight, &x)?;
                tensor_product(&self.plan, x, ones, weight)
            }
        };
        Ok(out)
    }

    /// The biases placed in a `[1, irreps_out.dim]` row, zero off the `0e` blocks.
    fn bias_row(&self, bias: Tensor<1>) -> Tensor<2> {
        let dim = self.map.irreps_out().dim();
        let (device, dtype) = (bias.device(), bias.dtype());
        let mut parts = Vec::new();
        let (mut at, mut taken) = (0, 0);
        for &(start, len) in self.map.bias_blocks() {
            if start > at {
                parts.push(Tensor::<1>::zeros([start - at], (&device, dtype)));
            }
            parts.push(bias.clone().narrow(0, taken, len));
            taken += len;
            at = start + len;
        }
        if dim > at {
            parts.push(Tensor::<1>::zeros([dim - at], (&device, dtype)));
        }
        Tensor::cat(parts, 0).reshape([1, dim])
    }
}

impl LinearConfig {
    /// The settings for `irreps_in -> irreps_out` with e3nn's defaults.
    ///
    /// ```
    /// let config = equivariant::o3::LinearConfig::new(&"1x1o".parse()?, &"2x1o".parse()?);
    /// assert!(!config.biases);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(irreps_in: &Irreps, irreps_out: &Irreps) -> Self {
        LinearConfig {
            irreps_in: irreps_in.clone(),
            irreps_out: irreps_out.clone(),
            biases: false,
            path_normalization: PathNormalization::Element,
            shared_weights: true,
            internal_weights: None,
            instructions: None,
            output_biases: None,
        }
    }

    /// Only the blocks `(i_in, i_out)` connect, in this order (e3nn's `instructions=`).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// let linear = equivariant::o3::LinearConfig::new(&"2x0e+1x1o".parse()?, &"1x0e+1x1o".parse()?)
    ///     .with_instructions(vec![(1, 1)])
    ///     .init(&Device::flex())?;
    /// assert_eq!(linear.weight_numel(), 1);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_instructions(mut self, instructions: Vec<(usize, usize)>) -> Self {
        self.instructions = Some(instructions);
        self
    }

    /// A bias flag per output block (e3nn's `biases=[...]`; only `0e` blocks may have one).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// let linear = equivariant::o3::LinearConfig::new(&"1x0e".parse()?, &"2x0e+3x0e".parse()?)
    ///     .with_output_biases(vec![false, true])
    ///     .init(&Device::flex())?;
    /// assert_eq!(linear.map().bias_numel(), 3);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_output_biases(mut self, output_biases: Vec<bool>) -> Self {
        self.output_biases = Some(output_biases);
        self
    }

    /// Biases on the `0e` outputs.
    ///
    /// ```
    /// let config = equivariant::o3::LinearConfig::new(&"0e".parse()?, &"0e".parse()?).with_biases(true);
    /// assert!(config.biases);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_biases(mut self, biases: bool) -> Self {
        self.biases = biases;
        self
    }

    /// `Element` or `Path` normalization of the fan-in.
    ///
    /// ```
    /// use equivariant::o3::tensor_product::PathNormalization;
    /// let config = equivariant::o3::LinearConfig::new(&"0e".parse()?, &"0e".parse()?)
    ///     .with_path_normalization(PathNormalization::Path);
    /// assert_eq!(config.path_normalization, PathNormalization::Path);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_path_normalization(mut self, path_normalization: PathNormalization) -> Self {
        self.path_normalization = path_normalization;
        self
    }

    /// One weight vector for all rows (`true`) or one per row.
    ///
    /// ```
    /// let config = equivariant::o3::LinearConfig::new(&"0e".parse()?, &"0e".parse()?).with_shared_weights(false);
    /// assert!(!config.shared_weights);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_shared_weights(mut self, shared_weights: bool) -> Self {
        self.shared_weights = shared_weights;
        self
    }

    /// Whether the module owns its weights (default: `shared_weights`).
    ///
    /// ```
    /// let config = equivariant::o3::LinearConfig::new(&"0e".parse()?, &"0e".parse()?).with_internal_weights(false);
    /// assert_eq!(config.internal_weights, Some(false));
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_internal_weights(mut self, internal_weights: bool) -> Self {
        self.internal_weights = Some(internal_weights);
        self
    }

    /// The module on `device`: internal weights from `N(0, 1)`, biases zero (e3nn's init).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for internal weights that are not shared, biases with
    /// per-row weights, or `PathNormalization::None`; the errors of
    /// [`LinearPlan::with_instructions`] for bad instructions or bias flags.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// let bad = equivariant::o3::LinearConfig::new(&"0e".parse()?, &"0e".parse()?)
    ///     .with_shared_weights(false).with_internal_weights(true).init(&Device::flex());
    /// assert!(bad.is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn init(&self, device: &Device) -> Result<Linear> {
        let internal = self.internal_weights.unwrap_or(self.shared_weights);
        if internal && !self.shared_weights {
            return Err(Error::InvalidArgument {
                name: "internal_weights",
                reason: "internal weights must be shared (shared_weights = true), as in e3nn"
                    .into(),
            });
        }
        let instructions = self
            .instructions
            .clone()
            .unwrap_or_else(|| LinearPlan::all_instructions(&self.irreps_in, &self.irreps_out));
        let flags = self
            .output_biases
            .clone()
            .unwrap_or_else(|| LinearPlan::scalar_biases(&self.irreps_out, self.biases));
        let map = LinearPlan::with_instructions(
            &self.irreps_in,
            &self.irreps_out,
            &instructions,
            &flags,
            self.path_normalization,
            self.shared_weights,
        )?;
        let weight = (internal && map.weight_numel() > 0).then(|| {
            Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([map.weight_numel()], device)
        });
        let bias =
            (map.bias_numel() > 0).then(|| Initializer::Zeros.init([map.bias_numel()], device));
        Ok(Linear {
            weight,
            bias,
            plan: Arc::new(map.tensor_product().clone()),
            map: Arc::new(map),
        })
    }
}
