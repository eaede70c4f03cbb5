//! The radial bases of `e3nn.math.soft_one_hot_linspace` as a burn backend extension:
//! [`SoftOneHotLinspaceBackend`] runs the core [`SoftOneHotLinspace`] on Flex, and on
//! [`Autodiff`] its backward multiplies the derivatives (computed with the values, in one
//! pass) by the upstream gradient. [`soft_one_hot_linspace`] is the `Tensor`-level entry
//! point.

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
use burn::tensor::{DType, Shape, Tensor};
use equivariant_core::math::SoftOneHotLinspace;

use super::flex::{FlexFloat, contiguous, data, float_dtype, from_vec};

/// Backends that evaluate a [`SoftOneHotLinspace`] basis natively: `out[i, k] = f_k(x[i])`.
///
/// Implemented for [`Flex`] (f32 and f64) and for [`Autodiff`] over any implementing
/// backend.
///
/// ```
/// use std::sync::Arc;
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, SoftOneHotLinspace};
/// use equivariant::ops::soft_one_hot_linspace::SoftOneHotLinspaceBackend;
///
/// let basis = Arc::new(SoftOneHotLinspace::new(0.0, 3.0, 2, Basis::Cosine, true)?);
/// let x = Tensor::<1>::from_floats([1.0], &Device::flex());
/// let y = <Dispatch as SoftOneHotLinspaceBackend>::soft_one_hot_linspace(basis, x.into_dispatch());
/// let y = Tensor::<2>::from_dispatch(y).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(y[0], 1.0); // cos(0) at the first center
/// # Ok::<(), equivariant::Error>(())
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait SoftOneHotLinspaceBackend: Backend {
    /// The basis at every `x[i]`.
    ///
    /// # Shapes
    ///
    /// - `x`: `[n]`
    /// - output: `[n, basis.number()]`
    ///
    /// # Panics
    ///
    /// On a rank other than 1, a dtype other than f32/f64, or a NaN or infinite input.
    fn soft_one_hot_linspace(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The basis and its derivative at every `x[i]`, computed together. Not tracked by
    /// autodiff.
    ///
    /// # Shapes
    ///
    /// - `x`: `[n]`
    /// - output: `([n, number], [n, number])`, values and `d f_k / dx` at `x[i]`
    ///
    /// # Panics
    ///
    /// As [`soft_one_hot_linspace`](SoftOneHotLinspaceBackend::soft_one_hot_linspace).
    fn soft_one_hot_linspace_with_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// e3nn's `soft_one_hot_linspace(x, start, end, number, basis, cutoff)` on a tensor,
/// differentiable with respect to `x` on an autodiff device.
///
/// # Shapes
///
/// - `x`: `[n]`
/// - output: `[n, basis.number()]`
///
/// # Panics
///
/// On a dtype other than f32/f64, a NaN or infinite input, or a device whose backend does
/// not implement [`SoftOneHotLinspaceBackend`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, SoftOneHotLinspace};
/// use equivariant::ops::soft_one_hot_linspace;
///
/// let basis = Arc::new(SoftOneHotLinspace::new(0.0, 1.0, 3, Basis::Gaussian, false)?);
/// let x = Tensor::<1>::from_floats([0.25, 0.5], &Device::flex().autodiff()).require_grad();
/// let y = soft_one_hot_linspace(&basis, x.clone());
/// assert_eq!(y.dims(), [2, 3]);
/// let grads = y.sum().backward();
/// assert_eq!(x.grad(&grads).unwrap().dims(), [2]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn soft_one_hot_linspace(basis: &Arc<SoftOneHotLinspace>, x: Tensor<1>) -> Tensor<2> {
    if !super::composed::is_native(&x.device()) {
        return super::composed::soft_one_hot_linspace(basis, x);
    }
    Tensor::from_dispatch(
        <Dispatch as SoftOneHotLinspaceBackend>::soft_one_hot_linspace(
            Arc::clone(basis),
            x.into_dispatch(),
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Flex: the core kernels.

impl SoftOneHotLinspaceBackend for Flex {
    fn soft_one_hot_linspace(basis: Arc<SoftOneHotLinspace>, x: FlexTensor) -> FlexTensor {
        match float_dtype("soft_one_hot_linspace", &x) {
            DType::F32 => flex_forward::<f32>(&basis, &x, false).0,
            _ => flex_forward::<f64>(&basis, &x, false).0,
        }
    }

    fn soft_one_hot_linspace_with_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let (y, dy) = match float_dtype("soft_one_hot_linspace", &x) {
            DType::F32 => flex_forward::<f32>(&basis, &x, true),
            _ => flex_forward::<f64>(&basis, &x, true),
        };
        (y, dy.expect("requested"))
    }
}

fn flex_forward<T: FlexFloat>(
    basis: &SoftOneHotLinspace,
    x: &FlexTensor,
    with_derivative: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    const OP: &str = "soft_one_hot_linspace";
    let shape = x.shape();
    assert!(shape.num_dims() == 1, "{OP}: x must be [n], got {shape:?}");
    let (n, number) = (shape[0], basis.number());
    let x = contiguous::<T>(OP, "x", x);
    let x = data::<T>(&x);
    let mut y = vec![T::zero(); n * number];
    if with_derivative {
        let mut dy = vec![T::zero(); n * number];
        basis
            .compute_with_derivative(x, &mut y, &mut dy)
            .unwrap_or_else(|e| panic!("{OP}: {e}"));
        (from_vec(y, [n, number]), Some(from_vec(dy, [n, number])))
    } else {
        basis
            .compute(x, &mut y)
            .unwrap_or_else(|e| panic!("{OP}: {e}"));
        (from_vec(y, [n, number]), None)
    }
}

// ---------------------------------------------------------------------------------------
// Autodiff: the custom backward.

/// The backward step: `dL/dx[i] = sum_k f_k'(x[i]) dL/dout[i, k]` (the Jacobian is
/// diagonal in `i`).
#[derive(Debug)]
struct SoftOneHotLinspaceBackward;

impl<B: SoftOneHotLinspaceBackend> Backward<B, 1> for SoftOneHotLinspaceBackward {
    /// The derivatives `[n, number]`.
    type State = FloatTensor<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad_out = grads.consume::<B>(&ops.node);
        let Some(node) = node else { return };
        let dy = ops.state;
        let n = dy.shape()[0];
        let grad = B::float_sum_dim(B::float_mul(dy, grad_out), 1);
        grads.register::<B>(node.id, B::float_reshape(grad, Shape::new([n])));
    }
}

impl<B: SoftOneHotLinspaceBackend, C: CheckpointStrategy> SoftOneHotLinspaceBackend
    for Autodiff<B, C>
{
    fn soft_one_hot_linspace(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match SoftOneHotLinspaceBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, dy) = B::soft_one_hot_linspace_with_derivative(basis, x.into_primitive());
                prep.finish(dy, y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::soft_one_hot_linspace(basis, x.into_primitive()))
            }
        }
    }

    fn soft_one_hot_linspace_with_derivative(
        basis: Arc<SoftOneHotLinspace>,
        x: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (y, dy) = B::soft_one_hot_linspace_with_derivative(basis, x.into_primitive());
        (Self::from_inner(y), Self::from_inner(dy))
    }
}
