//! The tensor product as a burn module, e3nn's `o3.TensorProduct` `nn.Module`: a core plan
//! plus its weights, internal (a [`Param`]) or given per call.

use std::sync::Arc;

use burn::module::{Content, DisplaySettings, Initializer, Module, ModuleDisplay, Param};
use burn::tensor::{Device, Tensor};
use equivariant_core::o3::Irreps;
use equivariant_core::o3::tensor_product::{
    TensorProductOptions, TensorProductPlan, elementwise_tensor_product, full_tensor_product,
    fully_connected_tensor_product, tensor_square,
};
use equivariant_core::{Error, Result};

use crate::ops::tensor_product::tensor_product;
use crate::shape::{
    check_dtype, check_rows, check_width, flatten_rows, flatten_rows_like, one_row, unflatten_rows,
};

/// e3nn's `o3.TensorProduct` module: `out = x1 (x) x2` row by row, with the paths, weight
/// layout and normalization of a core plan ([`TensorProductPlan`], whose docs give the
/// formula), on any device whose backend implements
/// [`TensorProductBackend`](crate::ops::TensorProductBackend) (Flex, with or without
/// autodiff).
///
/// Weights follow e3nn: with `shared_weights` (the default) the module owns one weight
/// vector ("internal weights"); with per-row weights (`shared_weights = false`, one vector
/// per edge in a convolution) they are passed to [`forward`](TensorProduct::forward).
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::FullyConnectedTensorProduct;
///
/// let device = Device::flex();
/// let tp = FullyConnectedTensorProduct::new(&"2x0e + 1x1o".parse()?, &"1o".parse()?, &"1x1o".parse()?)
///     .init(&device)?;
/// let x1 = Tensor::<2>::ones([8, 5], &device);
/// let x2 = Tensor::<2>::ones([8, 3], &device);
/// assert_eq!(tp.forward(x1, x2, None)?.dims(), [8, 3]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct TensorProduct {
    /// Internal weights, `[weight_numel]`, drawn from `N(0, 1)` as e3nn does (the path
    /// normalization lives in the plan's coefficients). `None` when the weights are external
    /// or the plan has none.
    pub weight: Option<Param<Tensor<1>>>,
    /// The plan: irreps, instructions, coefficients, kernels.
    #[module(skip)]
    plan: Arc<TensorProductPlan>,
}

impl TensorProduct {
    /// The module running `plan`, with internal weights (initialized `N(0, 1)` on `device`,
    /// in its default float dtype) if the plan shares its weights and has any, as e3nn's
    /// default `internal_weights = shared_weights`; otherwise the weights are external.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::o3::tensor_product::{fully_connected_tensor_product, TensorProductOptions};
    /// use equivariant::o3::TensorProduct;
    ///
    /// let (a, b) = ("4x0e + 2x1o".parse()?, "0e + 1o".parse()?);
    /// let plan = fully_connected_tensor_product(&a, &b, &a, Default::default())?;
    /// let tp = TensorProduct::new(plan, &Device::flex());
    /// assert_eq!(tp.weight.as_ref().unwrap().dims(), [tp.weight_numel()]);
    ///
    /// let per_row = TensorProductOptions { shared_weights: false, ..Default::default() };
    /// let plan = fully_connected_tensor_product(&a, &b, &a, per_row)?;
    /// assert!(TensorProduct::new(plan, &Device::flex()).weight.is_none());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(plan: impl Into<Arc<TensorProductPlan>>, device: &Device) -> Self {
        let plan = plan.into();
        let weight = (plan.shared_weights() && plan.weight_numel() > 0).then(|| {
            Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([plan.weight_numel()], device)
        });
        TensorProduct { weight, plan }
    }

    /// The module running `plan` with external weights (e3nn's `internal_weights=False`):
    /// every [`forward`](TensorProduct::forward) call passes them.
    ///
    /// ```
    /// use equivariant::o3::tensor_product::fully_connected_tensor_product;
    /// use equivariant::o3::TensorProduct;
    ///
    /// let plan = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?;
    /// assert!(TensorProduct::with_external_weights(plan).weight.is_none());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_external_weights(plan: impl Into<Arc<TensorProductPlan>>) -> Self {
        TensorProduct {
            weight: None,
            plan: plan.into(),
        }
    }

    /// e3nn's `FullTensorProduct(irreps_in1, irreps_in2, filter_ir_out)`: every path
    /// `x1_u (x) x2_v` into its own output block, no weights (core
    /// [`full_tensor_product`](crate::o3::tensor_product::full_tensor_product)).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::o3::TensorProduct;
    /// let tp = TensorProduct::full(&"2x1o".parse()?, &"1o".parse()?, None, Default::default(), &Device::flex())?;
    /// assert_eq!(tp.plan().irreps_out().to_string(), "2x0e+2x1e+2x2e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn full(
        irreps_in1: &Irreps,
        irreps_in2: &Irreps,
        filter_ir_out: Option<&Irreps>,
        options: TensorProductOptions,
        device: &Device,
    ) -> Result<Self> {
        let plan = full_tensor_product(irreps_in1, irreps_in2, filter_ir_out, options)?;
        Ok(TensorProduct::new(plan, device))
    }

    /// e3nn's `ElementwiseTensorProduct(irreps_in1, irreps_in2, filter_ir_out)`: channel
    /// `u` of one input with channel `u` of the other, no weights (core
    /// [`elementwise_tensor_product`](crate::o3::tensor_product::elementwise_tensor_product)).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::o3::TensorProduct;
    /// let tp = TensorProduct::elementwise(&"3x1o".parse()?, &"3x1o".parse()?,
    ///     Some(&"0e".parse()?), Default::default(), &Device::flex())?;
    /// assert_eq!(tp.plan().irreps_out().to_string(), "3x0e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn elementwise(
        irreps_in1: &Irreps,
        irreps_in2: &Irreps,
        filter_ir_out: Option<&Irreps>,
        options: TensorProductOptions,
        device: &Device,
    ) -> Result<Self> {
        let plan = elementwise_tensor_product(irreps_in1, irreps_in2, filter_ir_out, options)?;
        Ok(TensorProduct::new(plan, device))
    }

    /// e3nn's `TensorSquare(irreps_in, irreps_out, filter_ir_out)`: `x (x) x` without the
    /// redundant half, weighted (internal weights) when `irreps_out` is given (core
    /// [`tensor_square`](crate::o3::tensor_product::tensor_square)). Call
    /// [`forward`](TensorProduct::forward) with `x` as both inputs.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::TensorProduct;
    /// let device = Device::flex();
    /// let ts = TensorProduct::square(&"2x1o".parse()?, Some(&"3x0e".parse()?), None, Default::default(), &device)?;
    /// assert!(ts.weight.is_some());
    /// let x = Tensor::<2>::ones([4, 6], &device);
    /// assert_eq!(ts.forward(x.clone(), x, None)?.dims(), [4, 3]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn square(
        irreps_in: &Irreps,
        irreps_out: Option<&Irreps>,
        filter_ir_out: Option<&Irreps>,
        options: TensorProductOptions,
        device: &Device,
    ) -> Result<Self> {
        let plan = tensor_square(irreps_in, irreps_out, filter_ir_out, options)?;
        Ok(TensorProduct::new(plan, device))
    }

    /// The core plan this module runs.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::o3::FullyConnectedTensorProduct;
    ///
    /// let tp = FullyConnectedTensorProduct::new(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?)
    ///     .init(&Device::flex())?;
    /// assert_eq!(tp.plan().to_string(), "FullyConnectedTensorProduct(1x0e x 1x0e -> 1x0e | 1 paths | 1 weights)");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn plan(&self) -> &Arc<TensorProductPlan> {
        &self.plan
    }

    /// The number of weights per weight vector (internal or external).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::o3::FullyConnectedTensorProduct;
    ///
    /// let tp = FullyConnectedTensorProduct::new(&"2x0e".parse()?, &"3x0e".parse()?, &"4x0e".parse()?)
    ///     .init(&Device::flex())?;
    /// assert_eq!(tp.weight_numel(), 2 * 3 * 4);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn weight_numel(&self) -> usize {
        self.plan.weight_numel()
    }

    /// `out = x1 (x) x2`, row by row, with the internal weights or `weight`.
    ///
    /// # Shapes
    ///
    /// As in e3nn, any leading axes `[...]` (none, a batch, several) are rows:
    ///
    /// - `x1`: `[..., irreps_in1.dim]`
    /// - `x2`: `[..., irreps_in2.dim]`, the same leading axes
    /// - `weight`: `None` with internal weights or a plan without weights; otherwise
    ///   `[..., weight_numel]` (per-row weights) or `[1, ..., 1, weight_numel]` (shared
    ///   weights, or one row for every row), e3nn's flat layout; e3nn's 1-D
    ///   `(weight_numel,)` goes through [`forward_shared`](TensorProduct::forward_shared)
    /// - output: `[..., irreps_out.dim]`
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if a shape does not match the plan;
    /// [`Error::InvalidArgument`] if `weight` is given to a module with internal weights
    /// (or a plan with none), missing when needed, or of another dtype than `x1`, as is `x2`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::tensor_product::{fully_connected_tensor_product, TensorProductOptions};
    /// use equivariant::o3::TensorProduct;
    ///
    /// let device = Device::flex();
    /// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
    /// let plan = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?;
    /// let tp = TensorProduct::new(plan, &device);
    /// let x1 = Tensor::<2>::from_floats([[2.0], [3.0]], &device);
    /// let x2 = Tensor::<2>::from_floats([[5.0], [7.0]], &device);
    /// let w = Tensor::<2>::from_floats([[0.5], [1.0]], &device); // one weight per row
    /// let out = tp.forward(x1.clone(), x2.clone(), Some(w))?;
    /// assert_eq!(out.into_data().try_into_vec::<f32>().unwrap(), [5.0, 21.0]);
    /// assert!(tp.forward(x1, x2, None).is_err()); // per-row weights are needed
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(
        &self,
        x1: Tensor<D>,
        x2: Tensor<D>,
        weight: Option<Tensor<D>>,
    ) -> Result<Tensor<D>> {
        let (x1, dims) = flatten_rows("TensorProduct x1 [..., irreps_in1.dim]", x1)?;
        let x2 = flatten_rows_like("TensorProduct x2 [..., irreps_in2.dim]", x2, dims)?;
        let weight = weight
            .map(|w| flatten_rows_like("TensorProduct weight [..., weight_numel]", w, dims))
            .transpose()?;
        Ok(unflatten_rows(self.forward_rows(x1, x2, weight)?, dims))
    }

    /// [`forward`](TensorProduct::forward) with e3nn's 1-D weights `(weight_numel,)`: one
    /// weight vector for every row (the shared weights of a shared plan, broadcast over
    /// the rows of a per-row one).
    ///
    /// # Errors
    ///
    /// As [`forward`](TensorProduct::forward).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::FullyConnectedTensorProduct;
    /// let device = Device::flex();
    /// let tp = FullyConnectedTensorProduct::new(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?)
    ///     .with_internal_weights(false)
    ///     .init(&device)?;
    /// let x1 = Tensor::<2>::from_floats([[2.0], [3.0]], &device);
    /// let x2 = Tensor::<2>::from_floats([[5.0], [7.0]], &device);
    /// let w = Tensor::<1>::from_floats([0.5], &device);
    /// let out = tp.forward_shared(x1, x2, w)?;
    /// assert_eq!(out.into_data().try_into_vec::<f32>().unwrap(), [5.0, 10.5]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_shared<const D: usize>(
        &self,
        x1: Tensor<D>,
        x2: Tensor<D>,
        weight: Tensor<1>,
    ) -> Result<Tensor<D>> {
        let weight = one_row("TensorProduct weight (weight_numel,)", weight)?;
        self.forward(x1, x2, Some(weight))
    }

    /// [`forward`](TensorProduct::forward) on rows: `x1` `[batch, irreps_in1.dim]`, `x2`
    /// `[batch, irreps_in2.dim]`, `weight` `[batch or 1, weight_numel]`.
    fn forward_rows(
        &self,
        x1: Tensor<2>,
        x2: Tensor<2>,
        weight: Option<Tensor<2>>,
    ) -> Result<Tensor<2>> {
        let plan = &self.plan;
        let [batch, _] = x1.dims();
        check_width(
            "TensorProduct x1 [batch, irreps_in1.dim]",
            &x1,
            plan.irreps_in1().dim(),
        )?;
        check_width(
            "TensorProduct x2 [batch, irreps_in2.dim]",
            &x2,
            plan.irreps_in2().dim(),
        )?;
        check_rows("TensorProduct x2 [batch, irreps_in2.dim]", &x2, batch)?;
        check_dtype("TensorProduct x2", &x2, &x1)?;
        let numel = plan.weight_numel();
        let misuse = |reason: String| Error::InvalidArgument {
            name: "TensorProduct weight",
            reason: format!("{reason} ({plan})"),
        };
        let rows = if plan.shared_weights() { 1 } else { batch };
        match (&self.weight, weight) {
            (Some(internal), None) => {
                let internal = internal.val();
                check_dtype("TensorProduct internal weight", &internal, &x1)?;
                Ok(tensor_product(plan, x1, x2, internal))
            }
            (Some(_), Some(_)) => Err(misuse("this module has internal weights; pass None".into())),
            (None, None) if numel == 0 => {
                let empty = Tensor::<1>::zeros([0], (&x1.device(), x1.dtype()));
                Ok(tensor_product(plan, x1, x2, empty))
            }
            (None, Some(_)) if numel == 0 => {
                Err(misuse("the plan has no weights; pass None".into()))
            }
            (None, None) => Err(misuse(format!(
                "this module has external weights; pass [{rows}, {numel}]"
            ))),
            (None, Some(weight)) => {
                let what = if plan.shared_weights() {
                    "TensorProduct weight [1, weight_numel] (shared)"
                } else {
                    "TensorProduct weight [batch, weight_numel] (per row)"
                };
                check_width(what, &weight, numel)?;
                // One weight row for a per-row plan: e3nn broadcasts it over the batch.
                let weight = if weight.dims()[0] == 1 && rows != 1 {
                    weight.expand([rows, numel])
                } else {
                    weight
                };
                check_rows(what, &weight, rows)?;
                check_dtype("TensorProduct weight", &weight, &x1)?;
                Ok(tensor_product(plan, x1, x2, weight))
            }
        }
    }

    /// The tensor square `x (x) x`, as e3nn's `TensorSquare` is called: `forward(x, weight)`
    /// (for a plan from [`TensorProduct::square`], or any with equal inputs).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if the plan's two inputs differ; otherwise as
    /// [`forward`](TensorProduct::forward).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::TensorProduct;
    /// let device = Device::flex();
    /// let square = TensorProduct::square(&"1x1o".parse()?, Some(&"1x0e".parse()?), None, Default::default(), &device)?;
    /// let x = Tensor::<2>::from_floats([[1.0, 2.0, 2.0]], &device);
    /// let y = square.forward_square(x.clone(), None)?;
    /// assert_eq!(y.dims(), [1, 1]); // proportional to |x|^2
    /// assert_eq!(y.into_data().try_into_vec::<f32>(), square.forward(x.clone(), x, None)?.into_data().try_into_vec::<f32>());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_square<const D: usize>(
        &self,
        x: Tensor<D>,
        weight: Option<Tensor<D>>,
    ) -> Result<Tensor<D>> {
        if self.plan.irreps_in1() != self.plan.irreps_in2() {
            return Err(Error::InvalidArgument {
                name: "TensorProduct",
                reason: format!("not a square: its inputs differ ({})", self.plan),
            });
        }
        self.forward(x.clone(), x, weight)
    }

    /// [`forward`](TensorProduct::forward) and its tangent, `(out, d_out)`: the product is
    /// linear in each input, so
    ///
    /// `d_out = TP(dx1, x2, w) + TP(x1, dx2, w) + TP(x1, x2, dw)`,
    ///
    /// each term present when its tangent is given (`None`: a constant input; `dweight` only
    /// with external weights, shaped as `weight`; in a plan with unweighted paths the last
    /// term is `TP(x1, x2, dw) - TP(x1, x2, 0)`, those paths being constant in the weights). Three calls of the same op, so `d_out` is
    /// differentiable in every input and weight: the module's part of a tangent pass
    /// (training on forces). Without any tangent, `d_out` is zero.
    ///
    /// # Errors
    ///
    /// As [`forward`](TensorProduct::forward), for each term; [`Error::InvalidArgument`] for
    /// a `dweight` without external weights.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::o3::FullyConnectedTensorProduct;
    /// let device = Device::flex();
    /// let tp = FullyConnectedTensorProduct::new(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?)
    ///     .init(&device)?;
    /// let (x1, x2) = (Tensor::<2>::from_floats([[2.0]], &device), Tensor::<2>::from_floats([[3.0]], &device));
    /// let one = Tensor::<2>::from_floats([[1.0]], &device);
    /// // out = w x1 x2, so d out / d x1 = w x2 = out / x1.
    /// let (out, d_out) = tp.forward_tangent(x1, Some(one), x2, None, None, None)?;
    /// let (out, d_out) = (out.into_scalar::<f32>(), d_out.into_scalar::<f32>());
    /// assert!((d_out - out / 2.0).abs() < 1e-6);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_tangent(
        &self,
        x1: Tensor<2>,
        dx1: Option<Tensor<2>>,
        x2: Tensor<2>,
        dx2: Option<Tensor<2>>,
        weight: Option<Tensor<2>>,
        dweight: Option<Tensor<2>>,
    ) -> Result<(Tensor<2>, Tensor<2>)> {
        let out = self.forward(x1.clone(), x2.clone(), weight.clone())?;
        let mut terms = Vec::new();
        if let Some(dx1) = dx1 {
            check_rows("TensorProduct dx1 (the rows of x1)", &dx1, x1.dims()[0])?;
            terms.push(self.forward(dx1, x2.clone(), weight.clone())?);
        }
        if let Some(dx2) = dx2 {
            check_rows("TensorProduct dx2 (the rows of x2)", &dx2, x2.dims()[0])?;
            terms.push(self.forward(x1.clone(), dx2, weight.clone())?);
        }
        if let Some(dweight) = dweight {
            if self.weight.is_some() || weight.is_none() {
                return Err(Error::InvalidArgument {
                    name: "TensorProduct dweight",
                    reason: "a weight tangent needs external weights, given as weight".into(),
                });
            }
            if let Some(weight) = &weight {
                check_rows(
                    "TensorProduct dweight (the rows of weight)",
                    &dweight,
                    weight.dims()[0],
                )?;
            }
            // Paths without weights do not move with them: their part of TP(x1, x2, dw) is
            // TP(x1, x2, 0), taken away.
            let unweighted = self.plan.instructions().iter().any(|i| !i.has_weight);
            let constant = if unweighted {
                Some(self.forward(x1.clone(), x2.clone(), Some(dweight.zeros_like()))?)
            } else {
                None
            };
            let mut term = self.forward(x1, x2, Some(dweight))?;
            if let Some(constant) = constant {
                term = term.sub(constant);
            }
            terms.push(term);
        }
        let d_out = terms
            .into_iter()
            .reduce(|a, b| a.add(b))
            .unwrap_or_else(|| out.zeros_like());
        Ok((out, d_out))
    }

    /// e3nn's `right(y, weight)`: the operator `b[batch, i, k]` with
    /// `out[batch, k] = sum_i x1[batch, i] b[batch, i, k]`, the product evaluated on the
    /// rows of the identity, `[batch, irreps_in2.dim] -> [batch, irreps_in1.dim,
    /// irreps_out.dim]`; differentiable in `y` and the weights.
    ///
    /// # Errors
    ///
    /// As [`forward`](TensorProduct::forward), for `y` and `weight`.
    ///
    /// ```
    /// use burn::tensor::{Device, Distribution, Tensor};
    /// use equivariant::o3::FullyConnectedTensorProduct;
    /// let device = Device::flex();
    /// let tp = FullyConnectedTensorProduct::new(&"2x0e+1x1o".parse()?, &"1o".parse()?, &"1x1e+1x0e".parse()?)
    ///     .init(&device)?;
    /// let x = Tensor::<2>::random([3, 5], Distribution::Normal(0.0, 1.0), &device);
    /// let y = Tensor::<2>::random([3, 3], Distribution::Normal(0.0, 1.0), &device);
    /// let b = tp.right(y.clone(), None)?; // [3, 5, 4]
    /// let applied = x.clone().reshape([3, 1, 5]).matmul(b).reshape([3, 4]);
    /// let direct = tp.forward(x, y, None)?;
    /// assert!(applied.sub(direct).abs().max().into_scalar::<f32>() < 1e-5);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn right(&self, y: Tensor<2>, weight: Option<Tensor<2>>) -> Result<Tensor<3>> {
        let [batch, _] = y.dims();
        let (d1, d_out) = (self.plan.irreps_in1().dim(), self.plan.irreps_out().dim());
        let (device, dtype) = (y.device(), y.dtype());
        let identity = Tensor::<2>::eye(d1, &device).cast(dtype);
        let x1 = identity
            .reshape([1, d1, d1])
            .expand([batch, d1, d1])
            .reshape([batch * d1, d1]);
        let repeat = |t: Tensor<2>| {
            let [rows, cols] = t.dims();
            t.reshape([rows, 1, cols])
                .expand([rows, d1, cols])
                .reshape([rows * d1, cols])
        };
        let x2 = repeat(y);
        let weight = match weight {
            Some(w) if !self.plan.shared_weights() => {
                check_rows(
                    "TensorProduct weight [batch, weight_numel] (per row)",
                    &w,
                    batch,
                )?;
                Some(repeat(w))
            }
            w => w,
        };
        Ok(self.forward(x1, x2, weight)?.reshape([batch, d1, d_out]))
    }

    /// e3nn's `weight_views`: the block of the weights of each weighted instruction, in
    /// order, from the internal weights or `weight` (as [`forward`](TensorProduct::forward)
    /// takes it), differentiable. Each view is `[rows, prod(path_shape)]` with the
    /// instruction's `path_shape` (e.g. `[mul_in1, mul_in2, mul_out]` for `uvw`), row-major:
    /// reshape it to `[rows, path_shape...]` for e3nn's view.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a `weight` given to a module with internal weights or
    /// missing without them; [`Error::ShapeMismatch`] for a `weight` not `[_, weight_numel]`.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::o3::FullyConnectedTensorProduct;
    /// let tp = FullyConnectedTensorProduct::new(&"2x0e".parse()?, &"3x0e".parse()?, &"4x0e".parse()?)
    ///     .init(&Device::flex())?;
    /// let views = tp.weight_views(None)?;
    /// assert_eq!(views[0].path_shape, [2, 3, 4]);
    /// assert_eq!(views[0].weight.dims(), [1, 24]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn weight_views(&self, weight: Option<Tensor<2>>) -> Result<Vec<WeightView>> {
        let numel = self.plan.weight_numel();
        let weight = match (&self.weight, weight) {
            (Some(internal), None) => internal.val().reshape([1, numel]),
            (None, Some(weight)) => {
                check_width("TensorProduct weight [_, weight_numel]", &weight, numel)?;
                weight
            }
            (Some(_), Some(_)) => {
                return Err(Error::InvalidArgument {
                    name: "TensorProduct weight",
                    reason: "this module has internal weights; pass None".into(),
                });
            }
            (None, None) => {
                return Err(Error::InvalidArgument {
                    name: "TensorProduct weight",
                    reason: format!("this module has external weights; pass [_, {numel}]"),
                });
            }
        };
        let [rows, _] = weight.dims();
        let mut offset = 0;
        let mut views = Vec::new();
        for (instruction, (ins, shape)) in self
            .plan
            .instructions()
            .iter()
            .zip(self.plan.path_shapes())
            .enumerate()
        {
            if !ins.has_weight {
                continue;
            }
            let len: usize = shape.iter().product();
            views.push(WeightView {
                instruction,
                path_shape: shape.clone(),
                weight: weight.clone().slice([0..rows, offset..offset + len]),
            });
            offset += len;
        }
        Ok(views)
    }
}

/// The weights of one weighted instruction ([`TensorProduct::weight_views`]).
#[derive(Debug, Clone)]
pub struct WeightView {
    /// The instruction's index in the plan.
    pub instruction: usize,
    /// The instruction's weight shape (`[mul_in1, mul_in2, mul_out]` for `uvw`, ...).
    pub path_shape: Vec<usize>,
    /// The weights, `[rows, prod(path_shape)]`, row-major in `path_shape`.
    pub weight: Tensor<2>,
}

/// Prints the plan as e3nn does and where the weights live.
///
/// ```
/// use burn::tensor::Device;
/// use equivariant::o3::FullyConnectedTensorProduct;
/// let tp = FullyConnectedTensorProduct::new(&"2x0e+1x1o".parse()?, &"1o".parse()?, &"1o".parse()?)
///     .init(&Device::flex())?;
/// assert_eq!(
///     tp.to_string(),
///     "TensorProduct {plan: FullyConnectedTensorProduct(2x0e+1x1o x 1x1o -> 1x1o \
///      | 2 paths | 2 weights), weights: internal, params: 2}"
/// );
/// # Ok::<(), equivariant::Error>(())
/// ```
impl ModuleDisplay for TensorProduct {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        let weights = match (&self.weight, self.plan.weight_numel()) {
            (_, 0) => "none",
            (Some(_), _) => "internal",
            (None, _) if self.plan.shared_weights() => "external, shared",
            (None, _) => "external, per row",
        };
        content
            .add("plan", &self.plan.to_string())
            .add("weights", &weights.to_string())
            .optional()
    }
}

/// e3nn's `FullyConnectedTensorProduct`: a [`TensorProduct`] with every allowed path
/// `(i1, i2) -> i_out` in mode `uvw`, all weighted (core
/// [`fully_connected_tensor_product`](crate::o3::tensor_product::fully_connected_tensor_product)).
///
/// A builder: set the options, then [`init`](FullyConnectedTensorProduct::init) on a device.
///
/// ```
/// use burn::tensor::Device;
/// use equivariant::o3::FullyConnectedTensorProduct;
///
/// // The convolution guide's tensor product, with one weight vector per edge.
/// let tp = FullyConnectedTensorProduct::new(
///     &"10x0e + 10x1e".parse()?, &"0e + 1o + 2e".parse()?, &"20x0e + 10x1e".parse()?)
///     .with_shared_weights(false)
///     .init(&Device::flex())?;
/// assert_eq!(tp.weight_numel(), 400);
/// assert!(tp.weight.is_none());
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FullyConnectedTensorProduct {
    /// The first input's irreps.
    pub irreps_in1: Irreps,
    /// The second input's irreps.
    pub irreps_in2: Irreps,
    /// The output irreps.
    pub irreps_out: Irreps,
    /// e3nn's keyword arguments (variances, normalizations, `shared_weights`).
    pub options: TensorProductOptions,
    /// Whether the module owns its weights; `None` means e3nn's default, `shared_weights`.
    pub internal_weights: Option<bool>,
}

impl FullyConnectedTensorProduct {
    /// The builder with e3nn's defaults: component irrep normalization, element path
    /// normalization, shared internal weights.
    ///
    /// ```
    /// use equivariant::o3::FullyConnectedTensorProduct;
    /// let builder = FullyConnectedTensorProduct::new(&"0e".parse()?, &"1o".parse()?, &"1o".parse()?);
    /// assert!(builder.options.shared_weights);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(irreps_in1: &Irreps, irreps_in2: &Irreps, irreps_out: &Irreps) -> Self {
        FullyConnectedTensorProduct {
            irreps_in1: irreps_in1.clone(),
            irreps_in2: irreps_in2.clone(),
            irreps_out: irreps_out.clone(),
            options: TensorProductOptions::default(),
            internal_weights: None,
        }
    }

    /// Replaces all the plan's options.
    ///
    /// ```
    /// use equivariant::o3::tensor_product::{PathNormalization, TensorProductOptions};
    /// use equivariant::o3::FullyConnectedTensorProduct;
    /// let options = TensorProductOptions { path_normalization: PathNormalization::Path, ..Default::default() };
    /// let builder = FullyConnectedTensorProduct::new(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?)
    ///     .with_options(options);
    /// assert_eq!(builder.options.path_normalization, PathNormalization::Path);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_options(mut self, options: TensorProductOptions) -> Self {
        self.options = options;
        self
    }

    /// One weight vector for all rows (`true`, the default) or one per row (`false`).
    ///
    /// ```
    /// use equivariant::o3::FullyConnectedTensorProduct;
    /// let builder = FullyConnectedTensorProduct::new(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?)
    ///     .with_shared_weights(false);
    /// assert!(!builder.options.shared_weights);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_shared_weights(mut self, shared_weights: bool) -> Self {
        self.options.shared_weights = shared_weights;
        self
    }

    /// Whether the module owns its weights (default: `shared_weights`). Internal weights
    /// must be shared.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::o3::FullyConnectedTensorProduct;
    /// let tp = FullyConnectedTensorProduct::new(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?)
    ///     .with_internal_weights(false)
    ///     .init(&Device::flex())?;
    /// assert!(tp.weight.is_none() && tp.plan().shared_weights());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_internal_weights(mut self, internal_weights: bool) -> Self {
        self.internal_weights = Some(internal_weights);
        self
    }

    /// Builds the plan and the module, with internal weights initialized on `device`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for internal weights that are not shared; the core's
    /// errors for invalid options (e.g. variances of the wrong length).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::o3::FullyConnectedTensorProduct;
    /// let bad = FullyConnectedTensorProduct::new(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?)
    ///     .with_shared_weights(false)
    ///     .with_internal_weights(true)
    ///     .init(&Device::flex());
    /// assert!(bad.is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn init(&self, device: &Device) -> Result<TensorProduct> {
        let internal = self.internal_weights.unwrap_or(self.options.shared_weights);
        if internal && !self.options.shared_weights {
            return Err(Error::InvalidArgument {
                name: "internal_weights",
                reason: "internal weights must be shared (shared_weights = true), as in e3nn"
                    .into(),
            });
        }
        let plan = fully_connected_tensor_product(
            &self.irreps_in1,
            &self.irreps_in2,
            &self.irreps_out,
            self.options.clone(),
        )?;
        Ok(if internal {
            TensorProduct::new(plan, device)
        } else {
            TensorProduct::with_external_weights(plan)
        })
    }
}
