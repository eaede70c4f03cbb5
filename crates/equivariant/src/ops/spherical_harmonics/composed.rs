//! The fallback of [`spherical_harmonics`](super::spherical_harmonics()) on backends
//! without [`SphericalHarmonicsBackend`](super::SphericalHarmonicsBackend), composed of
//! burn ops: the recursion `Y^l ∝ C(l-1, 1, l) : (Y^(l-1) ⊗ v)`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use burn::tensor::Tensor;
use equivariant_core::o3::{SphericalHarmonicsPlan, wigner_3j};

use crate::ops::composed::constant;

/// The matrices of the harmonics recursion `Y^l = (Y^(l-1) ⊗ v) M_l`, `M_l = c_l C(l-1, 1,
/// l)` (`[(2l - 1) 3, 2l + 1]`, row-major) for `l = 1..=lmax`, each `c_l` fixed at a generic
/// point against the core table (component normalization). Built once per `lmax`.
fn recursion_matrices(lmax: u32) -> Arc<Vec<Vec<f64>>> {
    type Matrices = Arc<Vec<Vec<f64>>>;
    static CACHE: OnceLock<Mutex<HashMap<u32, Matrices>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(m) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&lmax) {
        return Arc::clone(m);
    }
    let point = [0.3f64, -0.5, 0.8];
    let reference = SphericalHarmonicsPlan::from_ls(
        &(0..=lmax).collect::<Vec<_>>(),
        false,
        equivariant_core::o3::Normalization::Component,
    )
    .expect("degrees 0..=lmax of a built table have harmonics");
    let mut reference_values = vec![0.0f64; ((lmax + 1) * (lmax + 1)) as usize];
    reference
        .compute(&point, &mut reference_values)
        .expect("one finite point");
    let mut matrices = Vec::new();
    let mut previous_at_point = vec![1.0f64];
    for l in 1..=lmax {
        let c = wigner_3j(l - 1, 1, l).expect("C(l - 1, 1, l) exists for every l >= 1");
        let c = c.values();
        let d = 2 * l as usize + 1;
        // The unscaled recursion at the reference point, to find c_l.
        let mut at_point = vec![0.0f64; d];
        for (i, p) in previous_at_point.iter().enumerate() {
            for (j, x) in point.iter().enumerate() {
                for (k, a) in at_point.iter_mut().enumerate() {
                    *a += c[(i * 3 + j) * d + k] * p * x;
                }
            }
        }
        let target = &reference_values[(l * l) as usize..((l + 1) * (l + 1)) as usize];
        let dot: f64 = at_point.iter().zip(target).map(|(a, t)| a * t).sum();
        let norm2: f64 = at_point.iter().map(|a| a * a).sum();
        let scale = dot / norm2;
        previous_at_point = at_point.iter().map(|a| a * scale).collect();
        matrices.push(c.iter().map(|x| x * scale).collect());
    }
    let matrices = Arc::new(matrices);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(lmax, Arc::clone(&matrices));
    matrices
}

/// The harmonics of each row, as
/// [`spherical_harmonics`](crate::ops::spherical_harmonics()), composed of burn ops:
/// `Y^0 = 1`, `Y^1 = sqrt(3) v`, and `Y^l = c_l C(l-1, 1, l) : (Y^(l-1) ⊗ v)`, with `c_l`
/// fixed once by matching the core table at one point (the contraction is an equivariant
/// polynomial of degree `l`, so proportional to `|v|^l Y^l`). With `normalize`, `v / |v|`
/// (`|v|` clamped at `1e-12`, as torch's `normalize`).
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{spherical_harmonics::SphericalHarmonicsPlan, Normalization};
/// use equivariant::ops::{composed, spherical_harmonics};
///
/// let sh = Arc::new(SphericalHarmonicsPlan::from_ls(&[0, 1, 2, 3], true, Normalization::Component)?);
/// let v = Tensor::<2>::from_floats([[0.3, -1.0, 2.0], [1.0, 0.5, -0.2]], &Device::flex());
/// let fallback = composed::spherical_harmonics(&sh, v.clone());
/// let native = spherical_harmonics(&sh, v);
/// assert!(native.sub(fallback).abs().max().into_scalar::<f32>() < 1e-5);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn spherical_harmonics(table: &SphericalHarmonicsPlan, vectors: Tensor<2>) -> Tensor<2> {
    recursion(table, vectors, None).0
}

/// The tangent of the harmonics along `tangents`, as
/// [`spherical_harmonics_tangent`](crate::ops::spherical_harmonics_tangent()), composed of
/// burn ops: the recursion's own tangent, `dY^l = c_l C(l-1, 1, l) : (dY^(l-1) ⊗ v +
/// Y^(l-1) ⊗ dv)`, with `dv = (s - u (u . s)) / |v|` for `u = v / |v|` under `normalize`
/// (`s / 1e-12` below the clamp). burn differentiates it in both inputs.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{spherical_harmonics::SphericalHarmonicsPlan, Normalization};
/// use equivariant::ops::{composed, spherical_harmonics_tangent};
///
/// let sh = Arc::new(SphericalHarmonicsPlan::from_ls(&[0, 1, 2, 3], true, Normalization::Component)?);
/// let v = Tensor::<2>::from_floats([[0.3, -1.0, 2.0], [1.0, 0.5, -0.2]], &Device::flex());
/// let s = Tensor::<2>::from_floats([[1.0, 0.2, -0.4], [0.0, 0.7, 0.1]], &Device::flex());
/// let fallback = composed::spherical_harmonics_tangent(&sh, v.clone(), s.clone());
/// let native = spherical_harmonics_tangent(&sh, v, s);
/// assert!(native.sub(fallback).abs().max().into_scalar::<f32>() < 1e-5);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn spherical_harmonics_tangent(
    table: &SphericalHarmonicsPlan,
    vectors: Tensor<2>,
    tangents: Tensor<2>,
) -> Tensor<2> {
    recursion(table, vectors, Some(tangents))
        .1
        .expect("a tangent was given")
}

/// The harmonics of `vectors` and, given `tangents`, their tangent along them.
fn recursion(
    table: &SphericalHarmonicsPlan,
    vectors: Tensor<2>,
    tangents: Option<Tensor<2>>,
) -> (Tensor<2>, Option<Tensor<2>>) {
    let [n, _] = vectors.dims();
    let lmax = table.ls().iter().copied().max().unwrap_or(0);
    let (v, dv) = if table.normalize() {
        let norm = vectors
            .clone()
            .mul(vectors.clone())
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        let u = vectors.div(norm.clone());
        // Above the clamp d(v / |v|) = (s - u (u . s)) / |v|; below it |v| is the constant
        // 1e-12.
        let above = norm.clone().greater_elem(1e-12).float().cast(u.dtype());
        let du = tangents.map(|s| {
            let radial = u.clone().mul(s.clone()).sum_dim(1).mul(above);
            s.sub(u.clone().mul(radial)).div(norm)
        });
        (u, du)
    } else {
        (vectors, tangents)
    };
    let (device, dtype) = (v.device(), v.dtype());
    let mut degrees: Vec<Tensor<2>> = vec![Tensor::ones([n, 1], (&device, dtype))];
    let mut tangent_degrees: Vec<Tensor<2>> = vec![Tensor::zeros([n, 1], (&device, dtype))];
    for (l, c) in (1..=lmax).zip(recursion_matrices(lmax).iter()) {
        let (d_prev, d) = (2 * l as usize - 1, 2 * l as usize + 1);
        let c = constant(c.clone(), [d_prev * 3, d], &v);
        let outer = |y: Tensor<2>, x: Tensor<2>| {
            y.reshape([n, d_prev, 1])
                .mul(x.reshape([n, 1, 3]))
                .reshape([n, d_prev * 3])
        };
        let previous = degrees[l as usize - 1].clone();
        if let Some(dv) = &dv {
            let d_previous = tangent_degrees[l as usize - 1].clone();
            let d_outer = outer(d_previous, v.clone()).add(outer(previous.clone(), dv.clone()));
            tangent_degrees.push(d_outer.matmul(c.clone()));
        }
        degrees.push(outer(previous, v.clone()).matmul(c));
    }
    let norm = table.normalization();
    let gather = |degrees: &[Tensor<2>]| {
        let parts: Vec<Tensor<2>> = table
            .ls()
            .iter()
            .map(|&l| degrees[l as usize].clone().mul_scalar(norm.factor(l)))
            .collect();
        Tensor::cat(parts, 1)
    };
    let tangent = dv.is_some().then(|| gather(&tangent_degrees));
    (gather(&degrees), tangent)
}
