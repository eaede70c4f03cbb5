//! The [`Autodiff`] side shared by the backend extensions, written once: an op states its
//! backward as a [`CustomBackward`] (what the forward saves, and the gradients of its
//! inputs from it), and its `Autodiff` forward is a call of
//! [`custom_forward`](CustomForward::custom_forward) (or
//! [`custom_forward_saving_inputs`](CustomForward::custom_forward_saving_inputs)), which
//! takes the inputs' node guards, prepares burn's step (`compute_bound().stateful()`) and
//! finishes it tracked or untracked.
//!
//! The backward step ([`BackwardStep`]) consumes the output's gradient, computes only the
//! gradients of the tracked parents (the others are masked out, and no work is done when
//! none is tracked) and registers each one with its parent. The gradients it registers are
//! first order: computed on the inner backend, they are not tracked themselves.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend};

/// The backward of an op with `N` tensor inputs on `Autodiff<B, _>`: the state its forward
/// saves, and the gradients of the inputs from that state.
pub(crate) trait CustomBackward<B: Backend, const N: usize>:
    Send + std::fmt::Debug + 'static
{
    /// What the forward saves for the backward (the op's plan, inputs or derivatives).
    type State: Clone + Send + std::fmt::Debug + 'static;

    /// The gradients of the inputs given `grad_out = dL/d out`, in the order of the
    /// forward's inputs; only those set in `mask` (the tracked parents, at least one) are
    /// needed, and only those are registered.
    fn gradients(
        state: Self::State,
        grad_out: FloatTensor<B>,
        mask: [bool; N],
    ) -> [Option<FloatTensor<B>>; N];
}

/// burn's backward step for a [`CustomBackward`]: registers the gradient of each tracked
/// parent.
#[derive(Debug)]
struct BackwardStep<G>(G);

impl<B: Backend, G: CustomBackward<B, N>, const N: usize> Backward<B, N> for BackwardStep<G> {
    type State = G::State;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad_out = grads.consume::<B>(&ops.node);
        let mask = ops.parents.each_ref().map(Option::is_some);
        if !mask.contains(&true) {
            return;
        }
        let computed = G::gradients(ops.state, grad_out, mask);
        for (node, grad) in ops.parents.into_iter().zip(computed) {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// The forward of a custom op, written once for `Autodiff<B, C>` (over the backend `B`) and every
/// checkpoint strategy `C` (a method of the backend type: the tensor types do not name `C`).
pub(crate) trait CustomForward<B: Backend>: Backend {
    /// The forward of an op with the tensor inputs `inputs` and the other arguments `args`:
    /// when a parent is tracked, `tracked` computes the output and the state that
    /// `backward` needs, otherwise `untracked` computes the output alone. Each receives
    /// `args` and the inner backend's primitives of `inputs`.
    fn custom_forward<G, A, const N: usize>(
        backward: G,
        args: A,
        inputs: [FloatTensor<Self>; N],
        tracked: impl FnOnce(A, [FloatTensor<B>; N]) -> (G::State, FloatTensor<B>),
        untracked: impl FnOnce(A, [FloatTensor<B>; N]) -> FloatTensor<B>,
    ) -> FloatTensor<Self>
    where
        G: CustomBackward<B, N>;

    /// [`custom_forward`](CustomForward::custom_forward) for an op whose backward needs its
    /// arguments and inputs, `op(args, inputs)`: when tracked, the state is `(args, inputs)`.
    fn custom_forward_saving_inputs<G, A, const N: usize>(
        backward: G,
        args: A,
        inputs: [FloatTensor<Self>; N],
        op: impl Fn(A, [FloatTensor<B>; N]) -> FloatTensor<B>,
    ) -> FloatTensor<Self>
    where
        A: Clone,
        G: CustomBackward<B, N, State = (A, [FloatTensor<B>; N])>,
    {
        Self::custom_forward(
            backward,
            args,
            inputs,
            |args, inputs| {
                let out = op(args.clone(), inputs.clone());
                ((args, inputs), out)
            },
            &op,
        )
    }
}

impl<B: Backend, C: CheckpointStrategy> CustomForward<B> for Autodiff<B, C> {
    fn custom_forward<G, A, const N: usize>(
        backward: G,
        args: A,
        inputs: [FloatTensor<Self>; N],
        tracked: impl FnOnce(A, [FloatTensor<B>; N]) -> (G::State, FloatTensor<B>),
        untracked: impl FnOnce(A, [FloatTensor<B>; N]) -> FloatTensor<B>,
    ) -> FloatTensor<Self>
    where
        G: CustomBackward<B, N>,
    {
        // The guards first, before the primitives are consumed.
        let nodes = inputs.each_ref().map(|x| x.node());
        let inputs = inputs.map(|x| x.into_primitive());
        match BackwardStep(backward)
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (state, out) = tracked(args, inputs);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(untracked(args, inputs)),
        }
    }
}
