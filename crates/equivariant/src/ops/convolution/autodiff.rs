//! [`ConvolutionBackend`] on [`Autodiff`]: the forward saves the plan, the edges, the scale
//! and its inputs, and the backward runs the fused backward kernel for the tracked parents
//! only.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, TensorMetadata};
use burn::tensor::Slice;
use equivariant_core::graph::EdgeIndex;
use equivariant_core::o3::tensor_product::TensorProductPlan;

use super::{ConvolutionBackend, ConvolutionMask, Grads4, tangent_gradients_asked};
use crate::ops::autodiff::{CustomBackward, CustomForward};

/// The backward step of [`ConvolutionBackend::fused_convolution`].
#[derive(Debug)]
struct FusedConvolutionBackward;

impl<B: ConvolutionBackend> CustomBackward<B, 4> for FusedConvolutionBackward {
    /// The plan, the edges and the scale, and the inputs `[x1, x2, hidden, linear]`.
    type State = (
        (Arc<TensorProductPlan>, Arc<EdgeIndex>, f64),
        [FloatTensor<B>; 4],
    );

    fn gradients(
        ((plan, edges, scale), [x1, x2, hidden, linear]): Self::State,
        grad_out: FloatTensor<B>,
        mask: ConvolutionMask,
    ) -> [Option<FloatTensor<B>>; 4] {
        let (g1, g2, gh, glin) = B::fused_convolution_backward(
            plan, edges, x1, x2, hidden, linear, scale, grad_out, mask,
        );
        [g1, g2, gh, glin]
    }
}

/// The largest node sums a tracked tangent convolution keeps for its backward. Kept, the
/// backward skips three of its per-node products; but a larger block came from `mmap` and
/// went back at its free, step after step, even in the CLI (which asks glibc to keep
/// freed memory: its arenas' 64 MiB heaps do not hold such a block), and faulting it in
/// cost more than the products: `bench train-step --case guide --nodes 10000 --threads 2`
/// (92 MB of sums, a `munmap` of it per step, 26 thousand more page faults per step), step
/// / energy-only 2.89 forming them again, 3.01 keeping them; at 1000 nodes (9 MB) 2.83 and
/// 2.79.
const KEEP_SUMS_MAX_BYTES: usize = 32 << 20;

/// The backward step of [`ConvolutionBackend::fused_convolution_tangent`].
#[derive(Debug)]
struct FusedConvolutionTangentBackward;

/// A tangent convolution's arguments other than tensors: the plan, the edges, which
/// tangents move and the scale.
type TangentArgs = (Arc<TensorProductPlan>, Arc<EdgeIndex>, [bool; 3], f64);

impl<B: ConvolutionBackend> CustomBackward<B, 7> for FusedConvolutionTangentBackward {
    /// The arguments, the inputs `[x1, dx1, x2, dx2, hidden, dhidden, linear]`, and the node
    /// sums the forward kept (`dL/dlinear` reads them).
    type State = (TangentArgs, [FloatTensor<B>; 7], Option<FloatTensor<B>>);

    fn gradients(
        ((plan, edges, moving, scale), inputs, sums): Self::State,
        grad: FloatTensor<B>,
        mask: [bool; 7],
    ) -> [Option<FloatTensor<B>>; 7] {
        let shapes = inputs.each_ref().map(|t| t.shape());
        let [x1, dx1, x2, dx2, hidden, dhidden, linear] = inputs;
        // Without kept sums, `grad` stands in (not read).
        let kept = sums.is_some();
        let sums = sums.unwrap_or_else(|| grad.clone());
        let flat = B::fused_convolution_tangent_backward(
            plan, edges, x1, dx1, x2, dx2, hidden, dhidden, linear, moving, scale, sums, kept,
            grad, mask,
        );
        // The asked gradients, back to back in `flat`: cut and shaped.
        let mut offset = 0;
        let asked = tangent_gradients_asked(mask, moving);
        std::array::from_fn(|k| {
            if !asked[k] {
                return None;
            }
            let len = shapes[k].num_elements();
            let range = Slice::new(offset as isize, Some((offset + len) as isize), 1);
            offset += len;
            let part = B::float_slice(flat.clone(), &[range]);
            Some(B::float_reshape(part, shapes[k].clone()))
        })
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
        Self::custom_forward_saving_inputs(
            FusedConvolutionBackward,
            (plan, edges, scale),
            [x1, x2, hidden, linear],
            |(plan, edges, scale), [x1, x2, hidden, linear]| {
                B::fused_convolution(plan, edges, x1, x2, hidden, linear, scale)
            },
        )
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
        _keep_sums: bool,
        scale: f64,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        // Tracked, the sums are kept for the backward (they serve `dL/dlinear`: a step that
        // trains on forces asks for it), up to `KEEP_SUMS_MAX_BYTES`.
        let width = (linear.shape().num_elements())
            .checked_div(plan.weight_numel())
            .unwrap_or(0);
        let bytes = plan.conv_tangent_sums_len(edges.num_nodes(), width) * linear.dtype().size();
        let keep = bytes <= KEEP_SUMS_MAX_BYTES;
        let forward = |(plan, edges, moving, scale): TangentArgs,
                       [x1, dx1, x2, dx2, hidden, dhidden, linear]: [FloatTensor<B>; 7],
                       keep: bool| {
            B::fused_convolution_tangent(
                plan, edges, x1, dx1, x2, dx2, hidden, dhidden, linear, moving, keep, scale,
            )
        };
        let out = Self::custom_forward(
            FusedConvolutionTangentBackward,
            (plan, edges, moving, scale),
            [x1, dx1, x2, dx2, hidden, dhidden, linear],
            |args, inputs| {
                let (out, sums) = forward(args.clone(), inputs.clone(), keep);
                ((args, inputs, sums), out)
            },
            |args, inputs| forward(args, inputs, false).0,
        );
        (out, None)
    }

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
    ) -> FloatTensor<Self> {
        Self::from_inner(B::fused_convolution_tangent_backward(
            plan,
            edges,
            x1.into_primitive(),
            dx1.into_primitive(),
            x2.into_primitive(),
            dx2.into_primitive(),
            hidden.into_primitive(),
            dhidden.into_primitive(),
            linear.into_primitive(),
            moving,
            scale,
            sums.into_primitive(),
            kept_sums,
            grad.into_primitive(),
            mask,
        ))
    }
}
