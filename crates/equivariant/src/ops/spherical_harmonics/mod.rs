//! Spherical harmonics as a burn backend extension: [`SphericalHarmonicsBackend`] runs the core
//! [`SphericalHarmonicsPlan`] on Flex (`flex.rs`), and on [`Autodiff`](burn::backend::Autodiff) its
//! backward contracts the gradient table `dY/dv` (computed with the values, in one pass) with the
//! upstream gradient (`autodiff.rs`). [`spherical_harmonics`] is the `Tensor`-level entry point; on
//! other devices it runs the recursion composed of burn ops
//! ([`composed::spherical_harmonics`]).
//!
//! `out[i]` is `Y^l(v_i)` for each of the table's degrees `l`, concatenated in order, with
//! `Y^l_m` (`m = -l..l`, e3nn's real basis) at offset `l + m` of its block; with
//! `normalize`, of `v_i / |v_i|`. Shapes: `vectors` `[n, 3]`, output `[n, sh.dim()]`.

mod autodiff;
pub(super) mod composed;
mod flex;

use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use equivariant_core::o3::SphericalHarmonicsPlan;

use super::composed::is_native;

/// Backends that evaluate spherical harmonics natively: `Y(v)` for each row `v` of a
/// `[n, 3]` tensor, as configured by a core [`SphericalHarmonicsPlan`] (degrees, `normalize`,
/// normalization).
///
/// Implemented for [`Flex`](burn::backend::Flex) (f32 and f64) and for
/// [`Autodiff`](burn::backend::Autodiff) over any implementing backend.
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

    /// The harmonics' tangent along `tangents`, `dY_i = J_Y(v_i) s_i`; on
    /// [`Autodiff`](burn::backend::Autodiff), differentiable with respect to both (the
    /// vectors' gradient is the harmonics' Hessian along `s`).
    ///
    /// # Shapes
    ///
    /// - `vectors`, `tangents`: `[n, 3]`
    /// - output: `[n, sh.dim()]`
    ///
    /// # Panics
    ///
    /// As [`spherical_harmonics`](SphericalHarmonicsBackend::spherical_harmonics), for
    /// either input.
    fn spherical_harmonics_tangent(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FloatTensor<Self>,
        tangents: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The backward of
    /// [`spherical_harmonics_tangent`](SphericalHarmonicsBackend::spherical_harmonics_tangent)
    /// for `grad_out = dL/d(dY)`: `(dL/dv, dL/ds)`. Not tracked by autodiff.
    ///
    /// # Shapes
    ///
    /// - `vectors`, `tangents`: `[n, 3]`; `grad_out`: `[n, sh.dim()]`
    /// - output: `([n, 3], [n, 3])`
    ///
    /// # Panics
    ///
    /// As [`spherical_harmonics_tangent`](SphericalHarmonicsBackend::spherical_harmonics_tangent).
    fn spherical_harmonics_tangent_backward(
        sh: Arc<SphericalHarmonicsPlan>,
        vectors: FloatTensor<Self>,
        tangents: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The backward of [`spherical_harmonics`](SphericalHarmonicsBackend::spherical_harmonics)
    /// from the gradients the forward kept: `dL/dv[i, a] = sum_k grad[i, a, k]
    /// grad_out[i, k]`. Not tracked by autodiff.
    ///
    /// # Shapes
    ///
    /// - `grad`: `[n, 3, sh.dim()]`; `grad_out`: `[n, sh.dim()]`
    /// - output: `[n, 3]`
    ///
    /// # Panics
    ///
    /// On other shapes, or a dtype other than f32/f64.
    fn spherical_harmonics_vector_jacobian_product(
        sh: Arc<SphericalHarmonicsPlan>,
        grad: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
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
    if !is_native(&vectors.device()) {
        return composed::spherical_harmonics(sh, vectors);
    }
    Tensor::from_dispatch(
        <Dispatch as SphericalHarmonicsBackend>::spherical_harmonics(
            Arc::clone(sh),
            vectors.into_dispatch(),
        ),
    )
}

/// The tangent of [`spherical_harmonics`] along `tangents`: `dY_i = J_Y(v_i) s_i`, the
/// derivative of `Y(v_i + h s_i)` at `h = 0`, differentiable with respect to the vectors
/// (through the harmonics' Hessian) and the tangents on an autodiff device: the tangent
/// pass of a potential ([`Convolution::forward_edges_tangent`](crate::nn::Convolution::forward_edges_tangent))
/// differentiated in the positions.
///
/// # Shapes
///
/// - `vectors`, `tangents`: `[n, 3]`
/// - output: `[n, sh.dim()]`
///
/// # Panics
///
/// As [`spherical_harmonics`], for either input.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{spherical_harmonics::SphericalHarmonicsPlan, Normalization};
/// use equivariant::ops::spherical_harmonics_tangent;
///
/// let sh = Arc::new(SphericalHarmonicsPlan::from_ls(&[1], false, Normalization::Component)?);
/// let v = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &Device::flex());
/// let s = Tensor::<2>::from_floats([[0.0, 1.0, 0.0]], &Device::flex());
/// // Y^1 = sqrt(3) v is linear: its tangent along y is sqrt(3) at m = 0 (y is the polar axis).
/// let dy = spherical_harmonics_tangent(&sh, v, s).into_data().try_into_vec::<f32>().unwrap();
/// assert!((dy[1] - 3f32.sqrt()).abs() < 1e-6 && dy[0] == 0.0 && dy[2] == 0.0);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn spherical_harmonics_tangent(
    sh: &Arc<SphericalHarmonicsPlan>,
    vectors: Tensor<2>,
    tangents: Tensor<2>,
) -> Tensor<2> {
    if !is_native(&vectors.device()) {
        return composed::spherical_harmonics_tangent(sh, vectors, tangents);
    }
    Tensor::from_dispatch(
        <Dispatch as SphericalHarmonicsBackend>::spherical_harmonics_tangent(
            Arc::clone(sh),
            vectors.into_dispatch(),
            tangents.into_dispatch(),
        ),
    )
}
