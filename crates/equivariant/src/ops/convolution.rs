//! The fused convolution as a burn backend extension: [`ConvolutionBackend`] runs the core's
//! [`TensorProductPlan::conv_forward`] / [`TensorProductPlan::conv_backward`] on Flex (gather,
//! tensor product with per-edge weights `hidden W`, and scatter in one pass), and on
//! [`Autodiff`] wires the fused backward into burn's graph. [`fused_convolution`] is the
//! `Tensor`-level entry point.

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
use burn::tensor::{DType, Tensor};
use equivariant_core::graph::EdgeIndex;
use equivariant_core::o3::tensor_product::{ConvGradients, EdgeWeights, TensorProductPlan};

use super::flex::{FlexFloat, contiguous, data, float_dtype, from_vec};

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
/// Implemented for [`Flex`] (f32 and f64) and for [`Autodiff`] over any implementing
/// backend.
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
    if !super::composed::is_native(&x1.device()) {
        return super::composed::fused_convolution(plan, edges, x1, x2, hidden, linear, scale);
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

// ---------------------------------------------------------------------------------------
// Flex: the core kernels.

type Grads4<B> = (
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
);

impl ConvolutionBackend for Flex {
    fn fused_convolution(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FlexTensor,
        x2: FlexTensor,
        hidden: FlexTensor,
        linear: FlexTensor,
        scale: f64,
    ) -> FlexTensor {
        let inputs = [&x1, &x2, &hidden, &linear];
        match float_dtype("fused_convolution", &x1) {
            DType::F32 => flex_forward::<f32>(&plan, &edges, inputs, scale),
            _ => flex_forward::<f64>(&plan, &edges, inputs, scale),
        }
    }

    fn fused_convolution_backward(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FlexTensor,
        x2: FlexTensor,
        hidden: FlexTensor,
        linear: FlexTensor,
        scale: f64,
        grad_out: FlexTensor,
        mask: ConvolutionMask,
    ) -> Grads4<Self> {
        let inputs = [&x1, &x2, &hidden, &linear];
        match float_dtype("fused_convolution_backward", &x1) {
            DType::F32 => flex_backward::<f32>(&plan, &edges, inputs, scale, &grad_out, mask),
            _ => flex_backward::<f64>(&plan, &edges, inputs, scale, &grad_out, mask),
        }
    }
}

const NAMES: [&str; 4] = ["x1", "x2", "hidden", "linear"];

/// The inputs as contiguous tensors of dtype `T`.
fn contiguous_inputs<T: FlexFloat>(op: &str, inputs: [&FlexTensor; 4]) -> [FlexTensor; 4] {
    std::array::from_fn(|k| contiguous::<T>(op, NAMES[k], inputs[k]))
}

fn flex_forward<T: FlexFloat>(
    plan: &TensorProductPlan,
    edges: &EdgeIndex,
    inputs: [&FlexTensor; 4],
    scale: f64,
) -> FlexTensor {
    const OP: &str = "fused_convolution";
    let [x1, x2, hidden, linear] = contiguous_inputs::<T>(OP, inputs);
    let (n, d_out) = (edges.num_nodes(), plan.irreps_out().dim());
    let mut out = vec![T::zero(); n * d_out];
    plan.conv_forward(
        edges,
        data::<T>(&x1),
        data::<T>(&x2),
        EdgeWeights::Linear {
            hidden: data::<T>(&hidden),
            linear: data::<T>(&linear),
        },
        T::from_f64(scale),
        &mut out,
    )
    .unwrap_or_else(|e| panic!("{OP}: {e} (plan {plan})"));
    from_vec(out, [n, d_out])
}

fn flex_backward<T: FlexFloat>(
    plan: &TensorProductPlan,
    edges: &EdgeIndex,
    inputs: [&FlexTensor; 4],
    scale: f64,
    grad_out: &FlexTensor,
    mask: ConvolutionMask,
) -> Grads4<Flex> {
    const OP: &str = "fused_convolution_backward";
    let shapes = inputs.map(|t| t.shape());
    let [x1, x2, hidden, linear] = contiguous_inputs::<T>(OP, inputs);
    let grad_out = contiguous::<T>(OP, "grad_out", grad_out);
    let mut buffers: [Option<Vec<T>>; 4] =
        std::array::from_fn(|k| mask[k].then(|| vec![T::zero(); shapes[k].num_elements()]));
    if buffers.iter().any(Option::is_some) {
        let [g1, g2, gh, glin] = &mut buffers;
        plan.conv_backward(
            edges,
            data::<T>(&x1),
            data::<T>(&x2),
            EdgeWeights::Linear {
                hidden: data::<T>(&hidden),
                linear: data::<T>(&linear),
            },
            T::from_f64(scale),
            data::<T>(&grad_out),
            ConvGradients {
                x1: g1.as_deref_mut(),
                x2: g2.as_deref_mut(),
                weight: gh.as_deref_mut(),
                linear: glin.as_deref_mut(),
            },
        )
        .unwrap_or_else(|e| panic!("{OP}: {e} (plan {plan})"));
    }
    let [g1, g2, gh, glin] = buffers;
    let [s1, s2, sh, slin] = shapes;
    let wrap = |g: Option<Vec<T>>, shape| g.map(|g| from_vec(g, shape));
    (wrap(g1, s1), wrap(g2, s2), wrap(gh, sh), wrap(glin, slin))
}

// ---------------------------------------------------------------------------------------
// Autodiff: the custom backward.

/// The backward step: the fused backward kernel for the tracked parents only.
#[derive(Debug)]
struct FusedConvolutionBackward;

impl<B: ConvolutionBackend> Backward<B, 4> for FusedConvolutionBackward {
    /// The plan, the edges, the inputs `(x1, x2, hidden, linear)` and the scale.
    type State = (
        Arc<TensorProductPlan>,
        Arc<EdgeIndex>,
        [FloatTensor<B>; 4],
        f64,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 4>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad_out = grads.consume::<B>(&ops.node);
        let (plan, edges, [x1, x2, hidden, linear], scale) = ops.state;
        let mask = ops.parents.each_ref().map(Option::is_some);
        let (g1, g2, gh, glin) = B::fused_convolution_backward(
            plan, edges, x1, x2, hidden, linear, scale, grad_out, mask,
        );
        for (node, grad) in ops.parents.into_iter().zip([g1, g2, gh, glin]) {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: ConvolutionBackend, C: CheckpointStrategy> ConvolutionBackend for Autodiff<B, C> {
    fn fused_convolution(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        hidden: FloatTensor<Self>,
        linear: FloatTensor<Self>,
        scale: f64,
    ) -> FloatTensor<Self> {
        match FusedConvolutionBackward
            .prepare::<C>([x1.node(), x2.node(), hidden.node(), linear.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let inputs = [
                    x1.into_primitive(),
                    x2.into_primitive(),
                    hidden.into_primitive(),
                    linear.into_primitive(),
                ];
                let [a, b, c, d] = inputs.clone();
                let out =
                    B::fused_convolution(Arc::clone(&plan), Arc::clone(&edges), a, b, c, d, scale);
                prep.finish((plan, edges, inputs, scale), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_convolution(
                plan,
                edges,
                x1.into_primitive(),
                x2.into_primitive(),
                hidden.into_primitive(),
                linear.into_primitive(),
                scale,
            )),
        }
    }

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
    ) -> Grads4<Self> {
        let (g1, g2, gh, glin) = B::fused_convolution_backward(
            plan,
            edges,
            x1.into_primitive(),
            x2.into_primitive(),
            hidden.into_primitive(),
            linear.into_primitive(),
            scale,
            grad_out.into_primitive(),
            mask,
        );
        (
            g1.map(Self::from_inner),
            g2.map(Self::from_inner),
            gh.map(Self::from_inner),
            glin.map(Self::from_inner),
        )
    }
}
