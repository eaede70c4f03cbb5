//! e3nn's `o3.wigner_D(l, alpha, beta, gamma)` on tensors: batches of angles to batches of
//! Wigner D matrices, differentiable with respect to the angles, composed of burn tensor
//! ops from the core's [`WignerDFactors`]:
//!
//! ```text
//! D^l(a, b, c) = Y(a) J Y(b) J^T Y(c),   Y(t) = fixed + sum_k cos(k t) cos_k + sin(k t) sin_k
//! ```
//!
//! (`2 l` sines and cosines per angle and four small batched products; autodiff
//! differentiates it as it does any tensor op.)

use burn::tensor::Tensor;
use equivariant_core::o3::{WignerDFactors, wigner_d_factors};
use equivariant_core::{Error, Result};

use super::composed::constant;

/// `D^l(alpha[i], beta[i], gamma[i])` for every `i`: `[n, 2l+1, 2l+1]` from angles `[n]`
/// (e3nn's `o3.wigner_D`, whose angles broadcast; here they are one batch).
///
/// # Errors
///
/// [`Error::ShapeMismatch`] when the three batches differ in length.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::angles_to_matrix;
/// use equivariant::ops::wigner_d;
/// let device = Device::flex();
/// let a = Tensor::<1>::from_floats([0.3, -1.0], &device);
/// let b = Tensor::<1>::from_floats([1.2, 0.5], &device);
/// let c = Tensor::<1>::from_floats([-0.7, 2.0], &device);
/// let d = wigner_d(1, a, b, c)?;
/// assert_eq!(d.dims(), [2, 3, 3]);
/// // D^1 is the rotation matrix.
/// let d: Vec<f32> = d.into_data().try_into_vec().unwrap();
/// let r = angles_to_matrix(0.3, 1.2, -0.7);
/// assert!((d[1] as f64 - r[0][1]).abs() < 1e-6);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn wigner_d(l: u32, alpha: Tensor<1>, beta: Tensor<1>, gamma: Tensor<1>) -> Result<Tensor<3>> {
    let n = alpha.dims()[0];
    for (what, t) in [("wigner_d beta [n]", &beta), ("wigner_d gamma [n]", &gamma)] {
        if t.dims()[0] != n {
            return Err(Error::ShapeMismatch {
                what,
                expected: n,
                got: t.dims()[0],
            });
        }
    }
    let d = 2 * l as usize + 1;
    let factors = wigner_d_factors(l);
    let like = alpha.clone().reshape([n, 1]);
    let j = constant(factors.j.clone(), [1, d, d], &like);
    let y = |t: Tensor<1>| rotation_y(&factors, l, t, &like);
    Ok(y(alpha)
        .matmul(j.clone())
        .matmul(y(beta))
        .matmul(j.swap_dims(1, 2))
        .matmul(y(gamma)))
}

/// `Y(t) = exp(t X_y)` for each angle of `t` `[n]`: `[n, d, d]`.
fn rotation_y(factors: &WignerDFactors, l: u32, t: Tensor<1>, like: &Tensor<2>) -> Tensor<3> {
    let n = t.dims()[0];
    let d = 2 * l as usize + 1;
    let fixed = constant(factors.fixed.clone(), [1, d * d], like);
    if l == 0 {
        return fixed.repeat_dim(0, n).reshape([n, d, d]);
    }
    let l = l as usize;
    let k = constant((1..=l).map(|k| k as f64).collect(), [1, l], like);
    let kt = t.reshape([n, 1]).mul(k);
    let stack = |m: &[Vec<f64>]| constant(m.concat(), [l, d * d], like);
    let y = kt
        .clone()
        .cos()
        .matmul(stack(&factors.cos))
        .add(kt.sin().matmul(stack(&factors.sin)))
        .add(fixed);
    y.reshape([n, d, d])
}
