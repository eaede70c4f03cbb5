//! NequIP's edge-length embedding (its Bessel basis times its polynomial cutoff) as a burn
//! backend extension: [`BesselEdgeEncodingBackend`] runs the core [`BesselEdgeEncoding`] on
//! Flex (`flex.rs`), from the edge vectors in one pass; on
//! [`Autodiff`](burn::backend::Autodiff) the forward keeps the derivatives in the length it
//! computed with the values, and the tangent's backward runs the core's second derivatives
//! (`autodiff.rs`). On other devices both run composed of burn ops (`composed.rs`).
//!
//! `out[e, k] = f_k(|v_e|)` with `f_k(r) = (2 / r_max) sin(k pi r / r_max) / r u(r / r_max)`
//! and NequIP's envelope `u` (zero from `r_max` on, and for a zero-length edge); the
//! tangent is `f_k'(|v_e|) (v_e . t_e) / |v_e|`. Shapes: `vectors`, `tangents` `[E, 3]`,
//! outputs `[E, N]`.

mod autodiff;
pub(super) mod composed;
mod flex;

use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use equivariant_core::math::BesselEdgeEncoding;

use super::composed::is_native;

/// Backends that evaluate NequIP's edge embedding natively, as configured by a core
/// [`BesselEdgeEncoding`] (`r_max`, the number of Bessel functions, the envelope's `p`).
///
/// Implemented for [`Flex`](burn::backend::Flex) (f32 and f64) and for
/// [`Autodiff`](burn::backend::Autodiff) over any implementing backend.
///
/// ```
/// use std::sync::Arc;
/// use burn::backend::Dispatch;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::BesselEdgeEncoding;
/// use equivariant::ops::bessel_edge_encoding::BesselEdgeEncodingBackend;
///
/// let plan = Arc::new(BesselEdgeEncoding::new(4.0, 8, 6)?);
/// let v = Tensor::<2>::from_floats([[0.0, 0.0, 5.0]], &Device::flex());
/// let y = <Dispatch as BesselEdgeEncodingBackend>::bessel_edge_encoding(plan, v.into_dispatch());
/// let y = Tensor::<2>::from_dispatch(y).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(y, [0.0; 8]); // beyond the cutoff
/// # Ok::<(), equivariant::Error>(())
/// ```
#[backend_extension(Flex, Autodiff)]
pub trait BesselEdgeEncodingBackend: Backend {
    /// The embedding of each edge vector.
    ///
    /// # Shapes
    ///
    /// - `vectors`: `[E, 3]`
    /// - output: `[E, N]`
    ///
    /// # Panics
    ///
    /// On a shape other than `[E, 3]`, a dtype other than f32/f64, or a NaN or infinite
    /// coordinate.
    fn bessel_edge_encoding(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The embedding and its derivative in the length, `f_k'(|v_e|)`, computed together.
    /// Not tracked by autodiff.
    ///
    /// # Shapes
    ///
    /// - `vectors`: `[E, 3]`
    /// - output: `([E, N], [E, N])`
    ///
    /// # Panics
    ///
    /// As [`bessel_edge_encoding`](BesselEdgeEncodingBackend::bessel_edge_encoding).
    fn bessel_edge_encoding_with_derivative(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The backward of [`bessel_edge_encoding`](BesselEdgeEncodingBackend::bessel_edge_encoding)
    /// from the derivatives the forward kept: `dL/dv_e = (sum_k f_k'(|v_e|) grad_out[e, k])
    /// v_e / |v_e|`. Not tracked by autodiff.
    ///
    /// # Shapes
    ///
    /// - `vectors`: `[E, 3]`; `derivative`, `grad_out`: `[E, N]`
    /// - output: `[E, 3]`
    ///
    /// # Panics
    ///
    /// On other shapes, or a dtype other than f32/f64.
    fn bessel_edge_encoding_vector_jacobian_product(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FloatTensor<Self>,
        derivative: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The embedding's tangent along `tangents`, `f_k'(|v_e|) (v_e . t_e) / |v_e|`; on
    /// [`Autodiff`](burn::backend::Autodiff), differentiable with respect to both (through
    /// the second derivative).
    ///
    /// # Shapes
    ///
    /// - `vectors`, `tangents`: `[E, 3]`
    /// - output: `[E, N]`
    ///
    /// # Panics
    ///
    /// As [`bessel_edge_encoding`](BesselEdgeEncodingBackend::bessel_edge_encoding), for
    /// either input.
    fn bessel_edge_encoding_tangent(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FloatTensor<Self>,
        tangents: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The backward of
    /// [`bessel_edge_encoding_tangent`](BesselEdgeEncodingBackend::bessel_edge_encoding_tangent)
    /// for `grad_out = dL/d(tangent)`: `(dL/dv, dL/dt)`. Not tracked by autodiff.
    ///
    /// # Shapes
    ///
    /// - `vectors`, `tangents`: `[E, 3]`; `grad_out`: `[E, N]`
    /// - output: `([E, 3], [E, 3])`
    ///
    /// # Panics
    ///
    /// As [`bessel_edge_encoding_tangent`](BesselEdgeEncodingBackend::bessel_edge_encoding_tangent).
    fn bessel_edge_encoding_tangent_backward(
        plan: Arc<BesselEdgeEncoding>,
        vectors: FloatTensor<Self>,
        tangents: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// NequIP's edge embedding of `vectors`, differentiable with respect to them on an autodiff
/// device.
///
/// # Shapes
///
/// - `vectors`: `[E, 3]`
/// - output: `[E, N]`
///
/// # Panics
///
/// On a shape other than `[E, 3]`, a dtype other than f32/f64, a NaN or infinite
/// coordinate, or a device whose backend does not implement [`BesselEdgeEncodingBackend`].
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::BesselEdgeEncoding;
/// use equivariant::ops::bessel_edge_encoding;
///
/// let plan = Arc::new(BesselEdgeEncoding::new(4.0, 1, 6)?);
/// let v = Tensor::<2>::from_floats([[0.0, 2.0, 0.0]], &Device::flex().autodiff()).require_grad();
/// let y = bessel_edge_encoding(&plan, v.clone());
/// let grads = y.sum().backward();
/// let g = v.grad(&grads).unwrap().into_data().try_into_vec::<f32>().unwrap();
/// assert!(g[0] == 0.0 && g[2] == 0.0 && g[1] < 0.0); // falls along the edge
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn bessel_edge_encoding(plan: &Arc<BesselEdgeEncoding>, vectors: Tensor<2>) -> Tensor<2> {
    if !is_native(&vectors.device()) {
        return composed::bessel_edge_encoding(plan, vectors);
    }
    Tensor::from_dispatch(
        <Dispatch as BesselEdgeEncodingBackend>::bessel_edge_encoding(
            Arc::clone(plan),
            vectors.into_dispatch(),
        ),
    )
}

/// The tangent of [`bessel_edge_encoding()`] along `tangents`, `f_k'(|v_e|) (v_e . t_e) /
/// |v_e|`, differentiable with respect to the vectors and the tangents on an autodiff
/// device (the tangent pass of a potential, differentiated for training on forces).
///
/// # Shapes
///
/// - `vectors`, `tangents`: `[E, 3]`
/// - output: `[E, N]`
///
/// # Panics
///
/// As [`bessel_edge_encoding()`], for either input.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::BesselEdgeEncoding;
/// use equivariant::ops::bessel_edge_encoding_tangent;
///
/// let plan = Arc::new(BesselEdgeEncoding::new(4.0, 2, 6)?);
/// let v = Tensor::<2>::from_floats([[0.0, 2.0, 0.0]], &Device::flex());
/// // Across the edge its length does not change.
/// let t = Tensor::<2>::from_floats([[1.0, 0.0, 0.0]], &Device::flex());
/// let dy = bessel_edge_encoding_tangent(&plan, v, t).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(dy, [0.0, 0.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn bessel_edge_encoding_tangent(
    plan: &Arc<BesselEdgeEncoding>,
    vectors: Tensor<2>,
    tangents: Tensor<2>,
) -> Tensor<2> {
    if !is_native(&vectors.device()) {
        return composed::bessel_edge_encoding_tangent(plan, vectors, tangents);
    }
    Tensor::from_dispatch(
        <Dispatch as BesselEdgeEncodingBackend>::bessel_edge_encoding_tangent(
            Arc::clone(plan),
            vectors.into_dispatch(),
            tangents.into_dispatch(),
        ),
    )
}
