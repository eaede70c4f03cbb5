//! [`ConvolutionBackend`] on [`Flex`]: the core's fused kernels
//! ([`TensorProductPlan::conv_forward`], [`TensorProductPlan::conv_backward`]), f32 and f64.

use std::sync::Arc;

use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};
use equivariant_core::graph::EdgeIndex;
use equivariant_core::o3::tensor_product::{
    ConvGradients, ConvTangentGradients, ConvTangentInputs, EdgeWeights, TensorProductPlan,
};

use super::{ConvolutionBackend, ConvolutionMask, Grads4, tangent_gradients_asked};
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

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
        dispatch_float!(
            "fused_convolution",
            &x1,
            flex_forward(&plan, &edges, inputs, scale)
        )
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
        dispatch_float!(
            "fused_convolution_backward",
            &x1,
            flex_backward(&plan, &edges, inputs, scale, &grad_out, mask)
        )
    }

    fn fused_convolution_tangent(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FlexTensor,
        dx1: FlexTensor,
        x2: FlexTensor,
        dx2: FlexTensor,
        hidden: FlexTensor,
        dhidden: FlexTensor,
        linear: FlexTensor,
        moving: [bool; 3],
        keep_sums: bool,
        scale: f64,
    ) -> (FlexTensor, Option<FlexTensor>) {
        let inputs = [&x1, &dx1, &x2, &dx2, &hidden, &dhidden, &linear];
        dispatch_float!(
            "fused_convolution_tangent",
            &x1,
            flex_tangent(&plan, &edges, inputs, moving, keep_sums, scale)
        )
    }

    fn fused_convolution_tangent_backward(
        plan: Arc<TensorProductPlan>,
        edges: Arc<EdgeIndex>,
        x1: FlexTensor,
        dx1: FlexTensor,
        x2: FlexTensor,
        dx2: FlexTensor,
        hidden: FlexTensor,
        dhidden: FlexTensor,
        linear: FlexTensor,
        moving: [bool; 3],
        scale: f64,
        sums: FlexTensor,
        kept_sums: bool,
        grad: FlexTensor,
        mask: [bool; 7],
    ) -> FlexTensor {
        let inputs = [&x1, &dx1, &x2, &dx2, &hidden, &dhidden, &linear];
        let saved = (moving, scale, kept_sums.then_some(&sums));
        dispatch_float!(
            "fused_convolution_tangent_backward",
            &x1,
            flex_tangent_backward(&plan, &edges, inputs, saved, &grad, mask)
        )
    }
}

const NAMES: [&str; 4] = ["x1", "x2", "hidden", "linear"];

/// An op's `N` inputs as contiguous tensors of one dtype.
struct Inputs<const N: usize>([FlexTensor; N]);

impl<const N: usize> Inputs<N> {
    /// The inputs (called `names`) made contiguous, of dtype `T`.
    fn new<T: FlexFloat>(op: &str, names: [&str; N], inputs: [&FlexTensor; N]) -> Self {
        Inputs(std::array::from_fn(|k| {
            contiguous::<T>(op, names[k], inputs[k])
        }))
    }
}

impl Inputs<4> {
    /// `x1`, `x2` and the weights, as the kernels take them.
    fn slices<T: FlexFloat>(&self) -> (&[T], &[T], EdgeWeights<'_, T>) {
        let [x1, x2, hidden, linear] = &self.0;
        let weights = EdgeWeights::Linear {
            hidden: data::<T>(hidden),
            linear: data::<T>(linear),
        };
        (data::<T>(x1), data::<T>(x2), weights)
    }
}

fn flex_forward<T: FlexFloat>(
    plan: &TensorProductPlan,
    edges: &EdgeIndex,
    inputs: [&FlexTensor; 4],
    scale: f64,
) -> FlexTensor {
    const OP: &str = "fused_convolution";
    let inputs = Inputs::new::<T>(OP, NAMES, inputs);
    let (x1, x2, weights) = inputs.slices::<T>();
    let (n, d_out) = (edges.num_nodes(), plan.irreps_out().dim());
    let mut out = vec![T::zero(); n * d_out];
    plan.conv_forward(edges, x1, x2, weights, T::from_f64(scale), &mut out)
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
    let inputs = Inputs::new::<T>(OP, NAMES, inputs);
    let grad_out = contiguous::<T>(OP, "grad_out", grad_out);
    let mut buffers: [Option<Vec<T>>; 4] =
        std::array::from_fn(|k| mask[k].then(|| vec![T::zero(); shapes[k].num_elements()]));
    if buffers.iter().any(Option::is_some) {
        let [g1, g2, gh, glin] = &mut buffers;
        let (x1, x2, weights) = inputs.slices::<T>();
        plan.conv_backward(
            edges,
            x1,
            x2,
            weights,
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

const TANGENT_NAMES: [&str; 7] = ["x1", "dx1", "x2", "dx2", "hidden", "dhidden", "linear"];

/// The tangent convolution's inputs `[x1, dx1, x2, dx2, hidden, dhidden, linear]`.
impl Inputs<7> {
    /// As the kernels take them: the tangents `moving` marks (`[x1, x2, hidden]`).
    fn tangent_slices<T: FlexFloat>(&self, moving: [bool; 3]) -> ConvTangentInputs<'_, T> {
        let [x1, dx1, x2, dx2, hidden, dhidden, linear] = &self.0;
        ConvTangentInputs {
            x1: data::<T>(x1),
            dx1: moving[0].then(|| data::<T>(dx1)),
            x2: data::<T>(x2),
            dx2: moving[1].then(|| data::<T>(dx2)),
            hidden: data::<T>(hidden),
            dhidden: moving[2].then(|| data::<T>(dhidden)),
            linear: data::<T>(linear),
        }
    }
}

fn flex_tangent<T: FlexFloat>(
    plan: &TensorProductPlan,
    edges: &EdgeIndex,
    inputs: [&FlexTensor; 7],
    moving: [bool; 3],
    keep_sums: bool,
    scale: f64,
) -> (FlexTensor, Option<FlexTensor>) {
    const OP: &str = "fused_convolution_tangent";
    let inputs = Inputs::new::<T>(OP, TANGENT_NAMES, inputs);
    let (n, d_out) = (edges.num_nodes(), plan.irreps_out().dim());
    let mut both = vec![T::zero(); 2 * n * d_out];
    let (out, d) = both.split_at_mut(n * d_out);
    let slices = inputs.tangent_slices::<T>(moving);
    let width = slices
        .linear
        .len()
        .checked_div(plan.weight_numel())
        .unwrap_or(0);
    let len = plan.conv_tangent_sums_len(n, width);
    let mut sums = keep_sums.then(|| vec![T::zero(); len]);
    plan.conv_tangent_forward(
        edges,
        slices,
        T::from_f64(scale),
        out,
        d,
        sums.as_deref_mut(),
    )
    .unwrap_or_else(|e| panic!("{OP}: {e} (plan {plan})"));
    let sums = sums.map(|sums| from_vec(sums, [len]));
    (from_vec(both, [2 * n, d_out]), sums)
}

/// `saved`: which tangents move, the scale, and the sums the forward kept (if it did).
fn flex_tangent_backward<T: FlexFloat>(
    plan: &TensorProductPlan,
    edges: &EdgeIndex,
    inputs: [&FlexTensor; 7],
    (moving, scale, sums): ([bool; 3], f64, Option<&FlexTensor>),
    grad: &FlexTensor,
    mask: [bool; 7],
) -> FlexTensor {
    const OP: &str = "fused_convolution_tangent_backward";
    let lens = inputs.map(|t| t.shape().num_elements());
    let inputs = Inputs::new::<T>(OP, TANGENT_NAMES, inputs);
    let grad = contiguous::<T>(OP, "grad", grad);
    let sums = sums.map(|s| contiguous::<T>(OP, "sums", s));
    let asked = tangent_gradients_asked(mask, moving);
    let total: usize = lens
        .iter()
        .zip(asked)
        .filter(|(_, a)| *a)
        .map(|(l, _)| l)
        .sum();
    let mut flat = vec![T::zero(); total];
    if total > 0 {
        // Each asked gradient a slice of `flat`, in order.
        let mut rest = &mut flat[..];
        let buffers: [Option<&mut [T]>; 7] = std::array::from_fn(|k| {
            if !asked[k] {
                return None;
            }
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(lens[k]);
            rest = tail;
            Some(head)
        });
        let half = edges.num_nodes() * plan.irreps_out().dim();
        let (g, dg) = data::<T>(&grad).split_at(half);
        let [g1, gd1, g2, gd2, gh, gdh, glin] = buffers;
        let grads = ConvTangentGradients {
            x1: g1,
            dx1: gd1,
            x2: g2,
            dx2: gd2,
            hidden: gh,
            dhidden: gdh,
            linear: glin,
        };
        let slices = inputs.tangent_slices::<T>(moving);
        let sums = sums.as_ref().map(data::<T>);
        plan.conv_tangent_backward(edges, slices, T::from_f64(scale), g, dg, sums, grads)
            .unwrap_or_else(|e| panic!("{OP}: {e} (plan {plan})"));
    }
    from_vec(flat, [total])
}
