//! Spherical harmonics as a burn backend extension: [`SphericalHarmonicsBackend`] runs the
//! core [`SphericalHarmonicsPlan`] on Flex, and on [`Autodiff`] its backward contracts the
//! gradient table `dY/dv` (computed with the values, in one pass) with the upstream
//! gradient. [`spherical_harmonics`] is the `Tensor`-level entry point.

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
use equivariant_core::o3::SphericalHarmonicsPlan;

use super::flex::{FlexFloat, contiguous, data, float_dtype, from_vec};

/// Backends that evaluate spherical harmonics natively: `Y(v)` for each row `v` of a
/// `[n, 3]` tensor, as configured by a core [`SphericalHarmonicsPlan`] (degrees, `normalize`,
/// normalization).
///
/// Implemented for [`Flex`] (f32 and f64) and for [`Autodiff`] over any implementing
/// backend.
///
/// ```
/// use std::sync::Arc;
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{spherical_harmonics::SphericalHarmonicsPlan, Normalization};
/// use equivariant::ops::spherical_harmonics::SphericalHarmonicsBackend;
///
/// let sh = Arc::new(SphericalHarmonicsPlan::from_ls(&[1], true, Normalization::Component)?);
/// let v = Tensor::<2>::from_floats([[0.0, 0.0, 2.0]], &Device::flex());
/// let y = <Dispatch as SphericalHarmonicsBackend>::spherical_harmonics(sh, v.into_dispatch());
/// let y = Tensor::<2>::from_dispatch(y).into_data().try_into_vec::<f32>().unwrap();
/// // Normalized to (0, 0, 1); Y^1 = sqrt(3) (x, y, z).
/// assert!((y[2] - 3f32.sqrt()).abs() < 1e-6 && y[0] == 0.0 && y[1] == 0.0);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait SphericalHarmonicsBackend: Backend {
    /// The harmonics of each vector.
    ///
    /// # Shapes
    ///
    /// - `vectors`: `[n, 3]`
    /// - output: `[n, sh.dim()]`
    ///
    /// # Panics
    ///
    /// On a shape other than `[n, 3]`, a dtype other than f32/f64, or a NaN or infinite
    /// coordinate.
    fn spherical_harmonics(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The harmonics and their gradients with respect to the vectors, computed together.
    /// Not tracked by autodiff.
    ///
    /// # Shapes
    ///
    /// - `vectors`: `[n, 3]`
    /// - output: `([n, sh.dim()], [n, 3, sh.dim()])`, the second `dY_k / dv_a` at `[i, a, k]`
    ///
    /// # Panics
    ///
    /// As [`spherical_harmonics`](SphericalHarmonicsBackend::spherical_harmonics).
    fn spherical_harmonics_with_gradient(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// e3nn's `o3.spherical_harmonics` on a tensor of vectors, differentiable with respect to
/// the vectors on an autodiff device.
///
/// # Shapes
///
/// - `vectors`: `[n, 3]`
/// - output: `[n, sh.dim()]`
///
/// # Panics
///
/// On a shape other than `[n, 3]`, a dtype other than f32/f64, a NaN or infinite coordinate,
/// or a device whose backend does not implement [`SphericalHarmonicsBackend`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{spherical_harmonics::SphericalHarmonicsPlan, Normalization};
/// use equivariant::ops::spherical_harmonics;
///
/// let sh = Arc::new(SphericalHarmonicsPlan::from_ls(&[0, 1], false, Normalization::Component)?);
/// let v = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &Device::flex().autodiff()).require_grad();
/// let y = spherical_harmonics(&sh, v.clone());
/// assert_eq!(y.dims(), [1, 4]);
/// // Y^1 = sqrt(3) (x, y, z): d(sum Y)/dv = sqrt(3) (1, 1, 1).
/// let grads = y.sum().backward();
/// let g = v.grad(&grads).unwrap().into_data().try_into_vec::<f32>().unwrap();
/// assert!(g.iter().all(|g| (g - 3f32.sqrt()).abs() < 1e-6));
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn spherical_harmonics(sh: &Arc<SphericalHarmonicsPlan>, vectors: Tensor<2>) -> Tensor<2> {
    if !super::composed::is_native(&vectors.device()) {
        return super::composed::spherical_harmonics(sh, vectors);
    }
    Tensor::from_dispatch(
        <Dispatch as SphericalHarmonicsBackend>::spherical_harmonics(
            Arc::clone(sh),
            vectors.into_dispatch(),
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Flex: the core kernels.

impl SphericalHarmonicsBackend for Flex {
    fn spherical_harmonics(sh: Arc<SphericalHarmonicsPlan>, vectors: FlexTensor) -> FlexTensor {
        match float_dtype("spherical_harmonics", &vectors) {
            DType::F32 => flex_forward::<f32>(&sh, &vectors, false).0,
            _ => flex_forward::<f64>(&sh, &vectors, false).0,
        }
    }

    fn spherical_harmonics_with_gradient(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let (y, grad) = match float_dtype("spherical_harmonics", &vectors) {
            DType::F32 => flex_forward::<f32>(&sh, &vectors, true),
            _ => flex_forward::<f64>(&sh, &vectors, true),
        };
        (y, grad.expect("requested"))
    }
}

fn flex_forward<T: FlexFloat>(
    sh: &SphericalHarmonicsPlan,
    vectors: &FlexTensor,
    with_gradient: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    const OP: &str = "spherical_harmonics";
    let shape = vectors.shape();
    assert!(
        shape.num_dims() == 2 && shape[1] == 3,
        "{OP}: vectors must be [n, 3], got {shape:?}"
    );
    let n = shape[0];
    let dim = sh.dim();
    let vectors = contiguous::<T>(OP, "vectors", vectors);
    let v = data::<T>(&vectors);
    let mut y = vec![T::zero(); n * dim];
    if with_gradient {
        let mut grad = vec![T::zero(); n * 3 * dim];
        sh.compute_with_gradients(v, &mut y, &mut grad)
            .unwrap_or_else(|e| panic!("{OP}: {e}"));
        (from_vec(y, [n, dim]), Some(from_vec(grad, [n, 3, dim])))
    } else {
        sh.compute(v, &mut y)
            .unwrap_or_else(|e| panic!("{OP}: {e}"));
        (from_vec(y, [n, dim]), None)
    }
}

// ---------------------------------------------------------------------------------------
// Autodiff: the custom backward.

/// The backward step: `dL/dv[i, a] = sum_k dY_k/dv_a[i] dL/dY[i, k]`, a batched
/// `[3, dim] x [dim, 1]` product per vector.
#[derive(Debug)]
struct SphericalHarmonicsBackward;

impl<B: SphericalHarmonicsBackend> Backward<B, 1> for SphericalHarmonicsBackward {
    /// The gradient table `[n, 3, dim]`.
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
        let table = ops.state;
        let shape = table.shape();
        let (n, dim) = (shape[0], shape[2]);
        let grad_out = B::float_reshape(grad_out, Shape::new([n, dim, 1]));
        let grad = B::float_matmul(table, grad_out);
        grads.register::<B>(node.id, B::float_reshape(grad, Shape::new([n, 3])));
    }
}

impl<B: SphericalHarmonicsBackend, C: CheckpointStrategy> SphericalHarmonicsBackend
    for Autodiff<B, C>
{
    fn spherical_harmonics(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match SphericalHarmonicsBackward
            .prepare::<C>([vectors.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, table) = B::spherical_harmonics_with_gradient(sh, vectors.into_primitive());
                prep.finish(table, y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::spherical_harmonics(sh, vectors.into_primitive()))
            }
        }
    }

    fn spherical_harmonics_with_gradient(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (y, grad) = B::spherical_harmonics_with_gradient(sh, vectors.into_primitive());
        (Self::from_inner(y), Self::from_inner(grad))
    }
}
