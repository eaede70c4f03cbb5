//! The tensor product as a burn backend extension: [`TensorProductBackend`] declares the
//! forward and backward primitives, [`Flex`] runs them with the core CPU kernels, and
//! [`Autodiff`] wires the backward into burn's graph. [`tensor_product`] is the
//! `Tensor`-level entry point.
//!
//! The plan (irreps, instructions, Clebsch-Gordan lists) travels with every call as an
//! ordinary argument, an [`Arc`] of the core [`TensorProductPlan`]: the macro passes non-tensor
//! arguments through unchanged, and the autodiff step keeps a clone for the backward pass.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension,
};
use burn::tensor::{DType, Tensor, TensorData};
use equivariant_core::o3::tensor_product::TensorProductPlan;

use super::flex::{FlexFloat, contiguous, data, float_dtype};

/// Which gradients [`TensorProductBackend::tensor_product_backward`] computes, in the order
/// `[x1, x2, weight]`.
///
/// ```
/// use equivariant::ops::tensor_product::GradientMask;
/// let only_weight: GradientMask = [false, false, true];
/// assert!(only_weight[2]);
/// ```
pub type GradientMask = [bool; 3];

/// The gradients of a tensor product, `(x1, x2, weight)`; `None` where not requested.
///
/// ```
/// use burn::backend::Flex;
/// use equivariant::ops::tensor_product::TensorProductGrads;
/// let none: TensorProductGrads<Flex> = (None, None, None);
/// assert!(none.0.is_none());
/// ```
pub type TensorProductGrads<B> = (
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
);

/// Backends that run a Clebsch-Gordan tensor product natively: `out = x1 (x) x2` with
/// `weight`, for the plan `plan` (the core [`TensorProductPlan`]).
///
/// Implemented for [`Flex`] (the core CPU kernels, f32 and f64) and for [`Autodiff`] over
/// any implementing backend (custom backward through
/// [`tensor_product_backward`](TensorProductBackend::tensor_product_backward)). The
/// `#[backend_extension]` macro implements it for [`Dispatch`], routing by device; on a
/// backend not listed here the call panics ("Backend not supported for custom op").
///
/// ```
/// use std::sync::Arc;
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::tensor_product::fully_connected_tensor_product;
/// use equivariant::ops::tensor_product::TensorProductBackend;
///
/// let plan = Arc::new(fully_connected_tensor_product(
///     &"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?);
/// let device = Device::flex();
/// let x1 = Tensor::<2>::from_floats([[2.0], [3.0]], &device);
/// let x2 = Tensor::<2>::from_floats([[5.0], [7.0]], &device);
/// let w = Tensor::<1>::from_floats([0.5], &device);
/// let out = <Dispatch as TensorProductBackend>::tensor_product(
///     plan, x1.into_dispatch(), x2.into_dispatch(), w.into_dispatch());
/// let out = Tensor::<2>::from_dispatch(out).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(out, [5.0, 10.5]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait TensorProductBackend: Backend {
    /// The tensor product of each row.
    ///
    /// # Shapes
    ///
    /// - `x1`: `[batch, irreps_in1.dim]`
    /// - `x2`: `[batch, irreps_in2.dim]`
    /// - `weight`: `weight_numel` elements if the plan shares weights (any shape, e.g.
    ///   `[weight_numel]` or `[1, weight_numel]`), `[batch, weight_numel]` otherwise; `[0]`
    ///   for a plan without weights
    /// - output: `[batch, irreps_out.dim]`
    ///
    /// # Panics
    ///
    /// On shapes that do not match the plan, mixed dtypes, or a dtype other than f32/f64.
    fn tensor_product(
        plan: Arc<TensorProductPlan>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The gradients of `L` given `grad_out = dL/d out`, for the inputs of a
    /// [`tensor_product`](TensorProductBackend::tensor_product) call; only those set in
    /// `mask` (`[x1, x2, weight]`) are computed. Each gradient has its input's shape; for
    /// shared weights the weight gradient sums over the batch. First order only: on
    /// [`Autodiff`] the results are not tracked.
    ///
    /// # Shapes
    ///
    /// As [`tensor_product`](TensorProductBackend::tensor_product), with `grad_out` the
    /// output's shape.
    // Spelled out rather than `TensorProductGrads<Self>`: the macro reads output types
    // syntactically and would take the alias for a `#[derive(ExtensionType)]` struct.
    #[allow(clippy::type_complexity)]
    fn tensor_product_backward(
        plan: Arc<TensorProductPlan>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        mask: GradientMask,
    ) -> (
        Option<FloatTensor<Self>>,
        Option<FloatTensor<Self>>,
        Option<FloatTensor<Self>>,
    );
}

/// `out = x1 (x) x2` with `weight`, differentiable in all three on an autodiff device.
///
/// # Shapes
///
/// - `x1`: `[batch, irreps_in1.dim]`
/// - `x2`: `[batch, irreps_in2.dim]`
/// - `weight`: `[weight_numel]` (or `[1, weight_numel]`) for shared weights,
///   `[batch, weight_numel]` per row; `[0]` for a plan without weights
/// - output: `[batch, irreps_out.dim]`
///
/// # Panics
///
/// On shapes that do not match `plan`, mixed dtypes, a dtype other than f32/f64, or a device
/// whose backend does not implement [`TensorProductBackend`] (only Flex for now).
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::tensor_product::fully_connected_tensor_product;
/// use equivariant::ops::tensor_product::tensor_product;
///
/// let plan = Arc::new(fully_connected_tensor_product(
///     &"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?);
/// let device = Device::flex().autodiff();
/// let x1 = Tensor::<2>::from_floats([[2.0]], &device).require_grad();
/// let x2 = Tensor::<2>::from_floats([[5.0]], &device);
/// let w = Tensor::<1>::from_floats([0.5], &device).require_grad();
/// let out = tensor_product(&plan, x1.clone(), x2, w.clone());
/// let grads = out.sum().backward();
/// assert_eq!(x1.grad(&grads).unwrap().into_data().try_into_vec::<f32>().unwrap(), [2.5]);
/// assert_eq!(w.grad(&grads).unwrap().into_data().try_into_vec::<f32>().unwrap(), [10.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn tensor_product<const W: usize>(
    plan: &Arc<TensorProductPlan>,
    x1: Tensor<2>,
    x2: Tensor<2>,
    weight: Tensor<W>,
) -> Tensor<2> {
    if !super::composed::is_native(&x1.device()) {
        return super::composed::tensor_product(plan, x1, x2, weight);
    }
    Tensor::from_dispatch(<Dispatch as TensorProductBackend>::tensor_product(
        Arc::clone(plan),
        x1.into_dispatch(),
        x2.into_dispatch(),
        weight.into_dispatch(),
    ))
}

// ---------------------------------------------------------------------------------------
// Flex: the core kernels.

impl TensorProductBackend for Flex {
    fn tensor_product(
        plan: Arc<TensorProductPlan>,
        x1: FlexTensor,
        x2: FlexTensor,
        weight: FlexTensor,
    ) -> FlexTensor {
        match float_dtype("tensor_product", &x1) {
            DType::F32 => flex_forward::<f32>(&plan, &x1, &x2, &weight),
            _ => flex_forward::<f64>(&plan, &x1, &x2, &weight),
        }
    }

    fn tensor_product_backward(
        plan: Arc<TensorProductPlan>,
        x1: FlexTensor,
        x2: FlexTensor,
        weight: FlexTensor,
        grad_out: FlexTensor,
        mask: GradientMask,
    ) -> TensorProductGrads<Self> {
        match float_dtype("tensor_product_backward", &x1) {
            DType::F32 => flex_backward::<f32>(&plan, &x1, &x2, &weight, &grad_out, mask),
            _ => flex_backward::<f64>(&plan, &x1, &x2, &weight, &grad_out, mask),
        }
    }
}

/// The batch size, checking the ranks and row widths of the inputs against the plan.
fn check_shapes(op: &str, plan: &TensorProductPlan, x1: &FlexTensor, x2: &FlexTensor) -> usize {
    let (s1, s2) = (x1.shape(), x2.shape());
    let (d1, d2) = (plan.irreps_in1().dim(), plan.irreps_in2().dim());
    assert!(
        s1.num_dims() == 2 && s1[1] == d1,
        "{op}: x1 must be [batch, {d1}] (irreps_in1 {}), got {s1:?}",
        plan.irreps_in1()
    );
    assert!(
        s2.num_dims() == 2 && s2[1] == d2 && s2[0] == s1[0],
        "{op}: x2 must be [{}, {d2}] (irreps_in2 {}), got {s2:?}",
        s1[0],
        plan.irreps_in2()
    );
    s1[0]
}

fn flex_forward<T: FlexFloat>(
    plan: &TensorProductPlan,
    x1: &FlexTensor,
    x2: &FlexTensor,
    weight: &FlexTensor,
) -> FlexTensor {
    const OP: &str = "tensor_product";
    let batch = check_shapes(OP, plan, x1, x2);
    let (x1, x2, weight) = (
        contiguous::<T>(OP, "x1", x1),
        contiguous::<T>(OP, "x2", x2),
        contiguous::<T>(OP, "weight", weight),
    );
    let d_out = plan.irreps_out().dim();
    // A fresh, unzeroed buffer: the kernel writes each row once, while in cache.
    let out = plan
        .forward_vec(data::<T>(&x1), data::<T>(&x2), data::<T>(&weight))
        .unwrap_or_else(|e| panic!("{OP}: {e} (plan {plan})"));
    FlexTensor::from_data(TensorData::new(out, [batch, d_out]))
}

fn flex_backward<T: FlexFloat>(
    plan: &TensorProductPlan,
    x1: &FlexTensor,
    x2: &FlexTensor,
    weight: &FlexTensor,
    grad_out: &FlexTensor,
    [need_x1, need_x2, need_weight]: GradientMask,
) -> TensorProductGrads<Flex> {
    const OP: &str = "tensor_product_backward";
    let batch = check_shapes(OP, plan, x1, x2);
    let (x1_shape, x2_shape, weight_shape) = (x1.shape(), x2.shape(), weight.shape());
    let (x1, x2, weight, grad_out) = (
        contiguous::<T>(OP, "x1", x1),
        contiguous::<T>(OP, "x2", x2),
        contiguous::<T>(OP, "weight", weight),
        contiguous::<T>(OP, "grad_out", grad_out),
    );
    let [g1, g2, gw] = if need_x1 || need_x2 || need_weight {
        plan.backward_vec(
            data::<T>(&x1),
            data::<T>(&x2),
            data::<T>(&weight),
            data::<T>(&grad_out),
            [need_x1, need_x2, need_weight],
        )
        .unwrap_or_else(|e| panic!("{OP}: {e} (plan {plan}, batch {batch})"))
    } else {
        [None, None, None]
    };
    let wrap =
        |g: Option<Vec<T>>, shape| g.map(|g| FlexTensor::from_data(TensorData::new(g, shape)));
    (
        wrap(g1, x1_shape),
        wrap(g2, x2_shape),
        wrap(gw, weight_shape),
    )
}

// ---------------------------------------------------------------------------------------
// Autodiff: the custom backward.

/// The backward step of [`TensorProductBackend::tensor_product`] on [`Autodiff`]: calls the
/// inner backend's [`tensor_product_backward`](TensorProductBackend::tensor_product_backward)
/// for the tracked parents only.
#[derive(Debug)]
struct TensorProductBackward;

impl<B: TensorProductBackend> Backward<B, 3> for TensorProductBackward {
    /// The plan and the forward inputs `(x1, x2, weight)`.
    type State = (
        Arc<TensorProductPlan>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x1, node_x2, node_weight] = ops.parents;
        let grad_out = grads.consume::<B>(&ops.node);
        let (plan, x1, x2, weight) = ops.state;
        let mask = [node_x1.is_some(), node_x2.is_some(), node_weight.is_some()];
        let (g1, g2, gw) = B::tensor_product_backward(plan, x1, x2, weight, grad_out, mask);
        for (node, grad) in [(node_x1, g1), (node_x2, g2), (node_weight, gw)] {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: TensorProductBackend, C: CheckpointStrategy> TensorProductBackend for Autodiff<B, C> {
    fn tensor_product(
        plan: Arc<TensorProductPlan>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match TensorProductBackward
            .prepare::<C>([x1.node(), x2.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x1, x2, weight) = (
                    x1.into_primitive(),
                    x2.into_primitive(),
                    weight.into_primitive(),
                );
                let out =
                    B::tensor_product(Arc::clone(&plan), x1.clone(), x2.clone(), weight.clone());
                prep.finish((plan, x1, x2, weight), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::tensor_product(
                plan,
                x1.into_primitive(),
                x2.into_primitive(),
                weight.into_primitive(),
            )),
        }
    }

    fn tensor_product_backward(
        plan: Arc<TensorProductPlan>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        mask: GradientMask,
    ) -> TensorProductGrads<Self> {
        let (g1, g2, gw) = B::tensor_product_backward(
            plan,
            x1.into_primitive(),
            x2.into_primitive(),
            weight.into_primitive(),
            grad_out.into_primitive(),
            mask,
        );
        (
            g1.map(Self::from_inner),
            g2.map(Self::from_inner),
            gw.map(Self::from_inner),
        )
    }
}
