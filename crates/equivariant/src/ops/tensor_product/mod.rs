//! The tensor product as a burn backend extension: [`TensorProductBackend`] declares the forward
//! and backward primitives, [`Flex`](burn::backend::Flex) runs them with the core CPU kernels
//! (`flex.rs`), and [`Autodiff`](burn::backend::Autodiff) wires the backward into burn's graph
//! (`autodiff.rs`). [`tensor_product`] is the `Tensor`-level entry point; on other devices it runs
//! the fallback composed of burn ops
//! ([`composed::tensor_product`]).
//!
//! For each instruction (path) `t[z, u, v, k] = sum_{i, j} C[i, j, k] x1[z, u, i] x2[z, v, j]`,
//! `C` the path's Wigner 3j block; the path's weights combine `u` and `v` into the output
//! multiplicity as its connection mode says (for `uvw`, `sum_{u, v} W[u, v, w] t[z, u, v,
//! k]`), times the path's coefficient, summed into its output block. Shapes: `x1` `[batch,
//! irreps_in1.dim]`, `x2` `[batch, irreps_in2.dim]`, output `[batch, irreps_out.dim]`.
//!
//! The plan (irreps, instructions, Clebsch-Gordan lists) travels with every call as an
//! ordinary argument, an [`Arc`] of the core [`TensorProductPlan`]: the macro passes non-tensor
//! arguments through unchanged, and the autodiff step keeps a clone for the backward pass.

mod autodiff;
pub(super) mod composed;
mod flex;

use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use equivariant_core::o3::tensor_product::TensorProductPlan;

use super::composed::is_native;

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
/// Implemented for [`Flex`](burn::backend::Flex) (the core CPU kernels, f32 and f64) and for
/// [`Autodiff`](burn::backend::Autodiff) over any implementing backend (custom backward through
/// [`tensor_product_backward`](TensorProductBackend::tensor_product_backward)). The
/// `#[backend_extension]` macro implements it for [`Dispatch`], routing by device; on a backend not
/// listed here the call panics ("Backend not supported for custom op").
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
    /// [`Autodiff`](burn::backend::Autodiff) the results are not tracked.
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
    if !is_native(&x1.device()) {
        return composed::tensor_product(plan, x1, x2, weight);
    }
    Tensor::from_dispatch(<Dispatch as TensorProductBackend>::tensor_product(
        Arc::clone(plan),
        x1.into_dispatch(),
        x2.into_dispatch(),
        weight.into_dispatch(),
    ))
}
