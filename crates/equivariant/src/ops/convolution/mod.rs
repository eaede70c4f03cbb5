//! The fused convolution as a burn backend extension: [`ConvolutionBackend`] runs the core's
//! [`TensorProductPlan::conv_forward`] / [`TensorProductPlan::conv_backward`] on Flex (gather, tensor
//! product with per-edge weights `hidden W`, and scatter in one pass; `flex.rs`), and on
//! [`Autodiff`](burn::backend::Autodiff) wires the fused backward into burn's graph
//! (`autodiff.rs`). [`fused_convolution`] is the `Tensor`-level entry point; on other devices it
//! runs the unfused fallback composed of burn ops
//! ([`composed::fused_convolution`]).
//!
//! `out[i] = scale sum_{e : dst[e] = i} x1[src[e]] (x)_{w_e} x2[e]`, `w_e = hidden[e]
//! linear`: shapes `x1` `[N, irreps_in1.dim]`, `x2` `[E, irreps_in2.dim]`, `hidden` `[E,
//! width]`, `linear` `[width, weight_numel]`, output `[N, irreps_out.dim]`.

mod autodiff;
pub(super) mod composed;
mod flex;

use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use equivariant_core::graph::EdgeIndex;
use equivariant_core::o3::tensor_product::TensorProductPlan;

use super::composed::is_native;

/// Which gradients [`ConvolutionBackend::fused_convolution_backward`] computes, in the
/// order `[x1, x2, hidden, linear]`.
///
/// ```
/// use equivariant::ops::convolution::ConvolutionMask;
/// let features_only: ConvolutionMask = [true, false, false, false];
/// assert!(features_only[0]);
/// ```
pub type ConvolutionMask = [bool; 4];

/// Backends that run the fused convolution
/// `out[i] = scale sum_{e : dst[e] = i} x1[src[e]] (x)_{w_e} x2[e]`, `w_e = hidden[e] linear`,
/// natively: no per-edge message or weight is stored.
///
/// Implemented for [`Flex`](burn::backend::Flex) (f32 and f64) and for
/// [`Autodiff`](burn::backend::Autodiff) over any implementing backend.
///
/// ```
/// use std::sync::Arc;
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::o3::tensor_product::{fully_connected_tensor_product, TensorProductOptions};
/// use equivariant::ops::convolution::ConvolutionBackend;
///
/// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
/// let plan = Arc::new(fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?);
/// let edges = Arc::new(EdgeIndex::new(&[0], &[1], 2)?);
/// let d = Device::flex();
/// let x1 = Tensor::<2>::from_floats([[2.0], [0.0]], &d);
/// let x2 = Tensor::<2>::from_floats([[3.0]], &d);
/// let hidden = Tensor::<2>::from_floats([[1.0, 1.0]], &d);
/// let linear = Tensor::<2>::from_floats([[0.5], [0.25]], &d);
/// let out = <Dispatch as ConvolutionBackend>::fused_convolution(
///     plan, edges, x1.into_dispatch(), x2.into_dispatch(), hidden.into_dispatch(), linear.into_dispatch(), 1.0);
/// let out = Tensor::<2>::from_dispatch(out).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(out, [0.0, 2.0 * 3.0 * 0.75]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait ConvolutionBackend: Backend {
    /// The fused convolution.
    ///
    /// # Shapes
    ///
    /// - `x1`: `[N, irreps_in1.dim]` node features
    /// - `x2`: `[E, irreps_in2.dim]` edge attributes (harmonics)
    /// - `hidden`: `[E, width]`, `linear`: `[width, weight_numel]`
    /// - output: `[N, irreps_out.dim]`
    ///
    /// # Panics
    ///
    /// On shapes that do not match the plan and the edges, mixed dtypes, or a dtype other
    /// than f32/f64.
    fn fused_convolution(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        hidden: FloatTensor<Self>,
        linear: FloatTensor<Self>,
        scale: f64,
    ) -> FloatTensor<Self>;

    /// The gradients of `L` given `grad_out = dL/d out` for the inputs of a
    /// [`fused_convolution`](ConvolutionBackend::fused_convolution) call, those set in
    /// `mask` (`[x1, x2, hidden, linear]`), each of its input's shape. Not tracked.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn fused_convolution_backward(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        hidden: FloatTensor<Self>,
        linear: FloatTensor<Self>,
        scale: f64,
        grad_out: FloatTensor<Self>,
        mask: ConvolutionMask,
    ) -> (
        Option<FloatTensor<Self>>,
        Option<FloatTensor<Self>>,
        Option<FloatTensor<Self>>,
        Option<FloatTensor<Self>>,
    );

    /// The fused convolution and its tangent in one pass
    /// ([`TensorProductPlan::conv_tangent_forward`]), stacked: rows `0..N` the output, rows
    /// `N..2N` its tangent along `dx1`, `dx2`, `dhidden`. A constant input's tangent is any
    /// tensor (it is not read) and `false` in `moving` (`[x1, x2, hidden]`). With
    /// `keep_sums`, also the node sums the backward would otherwise form again (`[len]`,
    /// [`TensorProductPlan::conv_tangent_sums_len`]), for its `sums`; `None` where a backend
    /// keeps none (and on `Autodiff`, which keeps them itself when the op is tracked).
    ///
    /// # Panics
    ///
    /// As [`fused_convolution`](ConvolutionBackend::fused_convolution).
    #[allow(clippy::too_many_arguments)]
    fn fused_convolution_tangent(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FloatTensor<Self>,
        dx1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        dx2: FloatTensor<Self>,
        hidden: FloatTensor<Self>,
        dhidden: FloatTensor<Self>,
        linear: FloatTensor<Self>,
        moving: [bool; 3],
        keep_sums: bool,
        scale: f64,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>);

    /// The gradients of `L` given `grad = dL/d[out; d_out]` (`[2N, irreps_out.dim]`) for
    /// the inputs of a [`fused_convolution_tangent`](ConvolutionBackend::fused_convolution_tangent)
    /// call set in `mask` (`[x1, dx1, x2, dx2, hidden, dhidden, linear]`; a constant
    /// input's tangent is skipped), flattened and concatenated in that order into one
    /// vector (one buffer the kernel writes in place). `sums`: the sums that call kept
    /// when `kept_sums` (otherwise any tensor: it is not read). Not tracked.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn fused_convolution_tangent_backward(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FloatTensor<Self>,
        dx1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        dx2: FloatTensor<Self>,
        hidden: FloatTensor<Self>,
        dhidden: FloatTensor<Self>,
        linear: FloatTensor<Self>,
        moving: [bool; 3],
        scale: f64,
        sums: FloatTensor<Self>,
        kept_sums: bool,
        grad: FloatTensor<Self>,
        mask: [bool; 7],
    ) -> FloatTensor<Self>;
}

/// The fused convolution on tensors, differentiable in `x1`, `x2`, `hidden` and `linear`
/// on an autodiff device.
///
/// # Shapes
///
/// As [`ConvolutionBackend::fused_convolution`].
///
/// # Panics
///
/// As [`ConvolutionBackend::fused_convolution`], and on a device whose backend does not
/// implement [`ConvolutionBackend`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::o3::tensor_product::{fully_connected_tensor_product, TensorProductOptions};
/// use equivariant::ops::fused_convolution;
///
/// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
/// let plan = Arc::new(fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?);
/// let edges = Arc::new(EdgeIndex::new(&[0, 0], &[1, 1], 2)?);
/// let d = Device::flex().autodiff();
/// let x1 = Tensor::<2>::from_floats([[2.0], [0.0]], &d).require_grad();
/// let x2 = Tensor::<2>::from_floats([[3.0], [4.0]], &d);
/// let hidden = Tensor::<2>::from_floats([[1.0], [1.0]], &d);
/// let linear = Tensor::<2>::from_floats([[1.0]], &d).require_grad();
/// let out = fused_convolution(&plan, &edges, x1.clone(), x2, hidden, linear.clone(), 1.0);
/// let grads = out.sum().backward();
/// assert_eq!(x1.grad(&grads).unwrap().into_data().try_into_vec::<f32>().unwrap(), [7.0, 0.0]);
/// assert_eq!(linear.grad(&grads).unwrap().into_data().try_into_vec::<f32>().unwrap(), [14.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn fused_convolution(
    plan: &Arc<TensorProductPlan>,
    edges: &Arc<EdgeIndex>,
    x1: Tensor<2>,
    x2: Tensor<2>,
    hidden: Tensor<2>,
    linear: Tensor<2>,
    scale: f64,
) -> Tensor<2> {
    if !is_native(&x1.device()) {
        return composed::fused_convolution(plan, edges, x1, x2, hidden, linear, scale);
    }
    Tensor::from_dispatch(<Dispatch as ConvolutionBackend>::fused_convolution(
        Arc::clone(plan),
        Arc::clone(edges),
        x1.into_dispatch(),
        x2.into_dispatch(),
        hidden.into_dispatch(),
        linear.into_dispatch(),
        scale,
    ))
}

/// A value and its tangent (directional derivative): `(x, dx)`, `dx = None` for a constant.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::ops::Dual;
/// let device = Device::flex();
/// let moving: Dual = (Tensor::ones([2, 3], &device), Some(Tensor::zeros([2, 3], &device)));
/// let constant: Dual = (Tensor::ones([2, 3], &device), None);
/// assert!(moving.1.is_some() && constant.1.is_none());
/// ```
pub type Dual = (Tensor<2>, Option<Tensor<2>>);

/// [`fused_convolution`] and its tangent: `(out, d_out)` for inputs moving along `dx1`,
/// `dx2` and `dhidden` (the linear layer fixed),
///
/// `d_out = conv(x1, dx2, h) + conv(x1, x2, dh) + conv(dx1, x2, h)`,
///
/// the product rule on the trilinear convolution. On Flex, one call of the fused tangent
/// kernel ([`TensorProductPlan::conv_tangent_forward`]) computes both (a node's edges
/// gathered once, the output and its tangent sharing the hidden activations), with a fused
/// backward; on other backends each term is a forward call of [`fused_convolution`]. Terms
/// whose tangent is `None` are left out; with none at all, `d_out` is zero.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::o3::tensor_product::{fully_connected_tensor_product, TensorProductOptions};
/// use equivariant::ops::fused_convolution_tangent;
///
/// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
/// let plan = Arc::new(fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?);
/// let edges = Arc::new(EdgeIndex::new(&[0], &[1], 2)?);
/// let d = Device::flex();
/// let t = |v: f32| Tensor::<2>::from_floats([[v]], &d);
/// let x1 = Tensor::<2>::from_floats([[2.0], [0.0]], &d);
/// // out_1 = x1_0 x2 h L = 2 * 3 * 5 * 1; moving x2 by 1: d out_1 = 2 * 5.
/// let (out, d_out) = fused_convolution_tangent(&plan, &edges, (x1, None), (t(3.0), Some(t(1.0))), (t(5.0), None), t(1.0), 1.0);
/// assert_eq!(out.into_data().try_into_vec::<f32>().unwrap(), [0.0, 30.0]);
/// assert_eq!(d_out.into_data().try_into_vec::<f32>().unwrap(), [0.0, 10.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn fused_convolution_tangent(
    plan: &Arc<TensorProductPlan>,
    edges: &Arc<EdgeIndex>,
    (x1, dx1): Dual,
    (x2, dx2): Dual,
    (hidden, dhidden): Dual,
    linear: Tensor<2>,
    scale: f64,
) -> (Tensor<2>, Tensor<2>) {
    if is_native(&x1.device()) {
        let n = edges.num_nodes();
        let moving = [dx1.is_some(), dx2.is_some(), dhidden.is_some()];
        // A constant input's tangent is not read: the input itself stands in.
        let dx1 = dx1.unwrap_or_else(|| x1.clone());
        let dx2 = dx2.unwrap_or_else(|| x2.clone());
        let dhidden = dhidden.unwrap_or_else(|| hidden.clone());
        // On an autodiff device the op keeps the sums for its backward itself.
        let (both, _) = <Dispatch as ConvolutionBackend>::fused_convolution_tangent(
            Arc::clone(plan),
            Arc::clone(edges),
            x1.into_dispatch(),
            dx1.into_dispatch(),
            x2.into_dispatch(),
            dx2.into_dispatch(),
            hidden.into_dispatch(),
            dhidden.into_dispatch(),
            linear.into_dispatch(),
            moving,
            false,
            scale,
        );
        let both = Tensor::from_dispatch(both);
        let d_out = both.clone().slice(n..2 * n);
        return (both.slice(0..n), d_out);
    }
    composed::fused_convolution_tangent(
        plan,
        edges,
        (x1, dx1),
        (x2, dx2),
        (hidden, dhidden),
        linear,
        scale,
    )
}

/// The gradients of a fused convolution, `(x1, x2, hidden, linear)`; `None` where not
/// requested.
type Grads4<B> = (
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
);

/// Which gradients a fused tangent convolution's backward computes: those in `mask`
/// (`[x1, dx1, x2, dx2, hidden, dhidden, linear]`) but not a constant input's tangent
/// (`moving`, `[x1, x2, hidden]`: not an input of the function).
fn tangent_gradients_asked(mask: [bool; 7], moving: [bool; 3]) -> [bool; 7] {
    let constant = [
        false, !moving[0], false, !moving[1], false, !moving[2], false,
    ];
    std::array::from_fn(|k| mask[k] && !constant[k])
}
