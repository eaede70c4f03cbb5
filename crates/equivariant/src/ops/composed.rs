//! The fallback of every extension op, composed of burn tensor ops: it runs (and
//! differentiates, through burn's autodiff) on any backend, where the native ops need one
//! that implements their extension trait (Flex). The `Tensor`-level entry points of
//! [`ops`](crate::ops) route here when the device is not native ([`is_native`]).
//!
//! These follow the definitions, not the fast kernels: the tensor product contracts each
//! path's dense Wigner 3j block with matrix products, the harmonics recurse
//! `Y^l ∝ C(l-1, 1, l) : (Y^(l-1) ⊗ v)`, the radial bases are written out.

use std::collections::HashMap;
use std::f64::consts::{FRAC_PI_2, PI};
use std::sync::{Arc, Mutex, OnceLock};

use burn::backend::DispatchDevice;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use equivariant_core::graph::EdgeIndex;
use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
use equivariant_core::o3::tensor_product::{ConnectionMode, TensorProductPlan};
use equivariant_core::o3::{SphericalHarmonicsPlan, wigner_3j};

use super::scatter::{gather, index_tensor, scatter_sum};

/// Whether `device` runs the native kernels (Flex, with or without autodiff).
///
/// ```
/// use burn::tensor::Device;
/// assert!(equivariant::ops::composed::is_native(&Device::flex().autodiff()));
/// ```
pub fn is_native(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// A constant `[d0, d1]` tensor like `like` (device and dtype).
fn constant<const D: usize>(values: Vec<f64>, shape: [usize; D], like: &Tensor<2>) -> Tensor<D> {
    Tensor::<D>::from_data(TensorData::new(values, shape), (&like.device(), DType::F64))
        .cast(like.dtype())
}

/// The tensor product of each row, as [`tensor_product`](crate::ops::tensor_product()),
/// composed of burn ops: for each instruction, `t[z, u, v, k] = sum_ij C[i, j, k] x1[z, u, i]
/// x2[z, v, j]` with the path's Wigner 3j block `C` (two matrix products), then the
/// weights by connection mode, times the path's coefficient.
///
/// # Shapes
///
/// As [`tensor_product`](crate::ops::tensor_product()): `x1` `[batch, in1.dim]`, `x2`
/// `[batch, in2.dim]`, `weight` `[weight_numel]`/`[1, weight_numel]` (shared) or `[batch,
/// weight_numel]`; output `[batch, out.dim]`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::tensor_product::fully_connected_tensor_product;
/// use equivariant::ops::{composed, tensor_product};
/// use std::sync::Arc;
///
/// let device = Device::flex();
/// let (a, b) = ("2x0e + 1x1o".parse()?, "0e + 1o".parse()?);
/// let plan = Arc::new(fully_connected_tensor_product(&a, &b, &a, Default::default())?);
/// let x1 = Tensor::<2>::ones([3, 5], &device);
/// let x2 = Tensor::<2>::ones([3, 4], &device).cumsum(1);
/// let w = Tensor::<1>::ones([plan.weight_numel()], &device);
/// let native = tensor_product(&plan, x1.clone(), x2.clone(), w.clone());
/// let fallback = composed::tensor_product(&plan, x1, x2, w);
/// assert!(native.sub(fallback).abs().max().into_scalar::<f32>() < 1e-5);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn tensor_product<const W: usize>(
    plan: &TensorProductPlan,
    x1: Tensor<2>,
    x2: Tensor<2>,
    weight: Tensor<W>,
) -> Tensor<2> {
    let [z, _] = x1.dims();
    let shared = plan.shared_weights();
    let weight = weight.reshape([if shared { 1 } else { z }, plan.weight_numel()]);
    let (s1, s2, so) = (
        plan.irreps_in1().slices(),
        plan.irreps_in2().slices(),
        plan.irreps_out().slices(),
    );
    let mut blocks: Vec<Option<Tensor<2>>> = vec![None; so.len()];
    let mut offset = 0;
    for (ins, shape) in plan.instructions().iter().zip(plan.path_shapes()) {
        let (a, b, o) = (
            plan.irreps_in1()[ins.i_in1],
            plan.irreps_in2()[ins.i_in2],
            plan.irreps_out()[ins.i_out],
        );
        let (m1, m2, mo) = (a.mul, b.mul, o.mul);
        let (d1, d2, d3) = (a.ir.dim(), b.ir.dim(), o.ir.dim());
        let numel: usize = shape.iter().product();
        let w = ins.has_weight.then(|| {
            let w = weight.clone().narrow(1, offset, numel);
            offset += numel;
            w
        });
        if m1 == 0 || m2 == 0 || mo == 0 {
            continue;
        }
        let c = wigner_3j(a.ir.l, b.ir.l, o.ir.l).map(|c| c.values().to_vec());
        let Ok(c) = c else { continue };
        let c = constant(c, [d1, d2 * d3], &x1);
        let x1b = x1.clone().slice([0..z, s1[ins.i_in1].clone()]);
        let x2b = x2
            .clone()
            .slice([0..z, s2[ins.i_in2].clone()])
            .reshape([z, m2, d2]);
        // a[z, u, j, k] = sum_i x1[z, u, i] C[i, j, k]
        let a4 = x1b.reshape([z * m1, d1]).matmul(c).reshape([z, m1, d2, d3]);
        let rows = if shared { 1 } else { z };
        let paired = matches!(
            ins.connection_mode,
            ConnectionMode::Uuw | ConnectionMode::Uuu
        );
        let out = if paired {
            // t[z, u, k] = sum_j a[z, u, j, k] x2[z, u, j]
            let t = a4
                .mul(x2b.reshape([z, m1, d2, 1]))
                .sum_dim(2)
                .reshape([z, m1, d3]);
            match (ins.connection_mode, w) {
                (ConnectionMode::Uuu, Some(w)) => t.mul(w.reshape([rows, m1, 1])),
                (ConnectionMode::Uuu, None) => t,
                (_, w) => {
                    // out[z, w, k] = sum_u W[u, w] t[z, u, k]
                    let t = t.swap_dims(1, 2);
                    let w = w.unwrap_or_else(|| {
                        Tensor::ones([rows, m1 * mo], (&x1.device(), x1.dtype()))
                    });
                    batched_matmul(t, w.reshape([rows, m1, mo])).swap_dims(1, 2)
                }
            }
        } else {
            // t[z, u, k, v] = sum_j a[z, u, j, k] x2[z, v, j]
            let t = a4
                .swap_dims(2, 3)
                .reshape([z, m1 * d3, d2])
                .matmul(x2b.swap_dims(1, 2))
                .reshape([z, m1, d3, m2]);
            let ones = |n: usize| Tensor::<2>::ones([rows, n], (&x1.device(), x1.dtype()));
            match ins.connection_mode {
                ConnectionMode::Uvw => {
                    // out[z, w, k] = sum_uv W[u, v, w] t[z, u, k, v]
                    let w = w
                        .unwrap_or_else(|| ones(m1 * m2 * mo))
                        .reshape([rows, m1 * m2, mo]);
                    let t = t.swap_dims(1, 2).reshape([z, d3, m1 * m2]);
                    batched_matmul(t, w).swap_dims(1, 2)
                }
                ConnectionMode::Uvu => {
                    let w = w
                        .unwrap_or_else(|| ones(m1 * m2))
                        .reshape([rows, m1, 1, m2]);
                    t.mul(w).sum_dim(3).reshape([z, m1, d3])
                }
                ConnectionMode::Uvv => {
                    let w = w
                        .unwrap_or_else(|| ones(m1 * m2))
                        .reshape([rows, m1, 1, m2]);
                    t.mul(w).sum_dim(1).reshape([z, d3, m2]).swap_dims(1, 2)
                }
                ConnectionMode::Uvuv => {
                    // out[z, (u, v), k]
                    let t = t.swap_dims(2, 3);
                    let t = match w {
                        Some(w) => t.mul(w.reshape([rows, m1, m2, 1])),
                        None => t,
                    };
                    t.reshape([z, m1 * m2, d3])
                }
                _ => {
                    // The pairs u < v (row-major, as torch.triu_indices(m, m, 1)).
                    let pairs: Vec<i64> = (0..m1)
                        .flat_map(|u| (u + 1..m2).map(move |v| (u * m2 + v) as i64))
                        .collect();
                    let n = pairs.len();
                    let index =
                        Tensor::<1, Int>::from_data(TensorData::new(pairs, [n]), &x1.device());
                    let t = t.swap_dims(2, 3).reshape([z, m1 * m2, d3]).select(1, index);
                    if ins.connection_mode == ConnectionMode::UvuLtv {
                        match w {
                            Some(w) => t.mul(w.reshape([rows, n, 1])),
                            None => t,
                        }
                    } else {
                        // u<vw: out[z, w, k] = sum_{u<v} W[(u, v), w] t[z, (u, v), k]
                        let w = w.unwrap_or_else(|| ones(n * mo)).reshape([rows, n, mo]);
                        batched_matmul(t.swap_dims(1, 2), w).swap_dims(1, 2)
                    }
                }
            }
        };
        let out = out.reshape([z, mo * d3]).mul_scalar(ins.path_weight);
        let block = &mut blocks[ins.i_out];
        *block = Some(match block.take() {
            Some(sum) => sum.add(out),
            None => out,
        });
    }
    let parts: Vec<Tensor<2>> = blocks
        .into_iter()
        .zip(&so)
        .filter(|(_, range)| !range.is_empty())
        .map(|(block, range)| {
            block.unwrap_or_else(|| Tensor::zeros([z, range.len()], (&x1.device(), x1.dtype())))
        })
        .collect();
    match parts.len() {
        0 => Tensor::zeros([z, 0], (&x1.device(), x1.dtype())),
        _ => Tensor::cat(parts, 1),
    }
}

/// The convolution of [`fused_convolution`](crate::ops::fused_convolution()), unfused and
/// composed of burn ops: `out[i] = scale sum_{e: dst(e) = i} TP(x1[src(e)], x2[e],
/// hidden[e] linear)`, materializing the per-edge weights and messages.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::o3::tensor_product::fully_connected_tensor_product;
/// use equivariant::ops::{composed, fused_convolution};
///
/// let device = Device::flex();
/// let options = Default::default();
/// let plan = fully_connected_tensor_product(&"2x0e".parse()?, &"0e + 1o".parse()?, &"1x0e + 1x1o".parse()?, options)?;
/// let plan = Arc::new(plan.with_shared_weights(false));
/// let edges = Arc::new(EdgeIndex::new(&[0, 1, 1], &[1, 0, 2], 3)?);
/// let x1 = Tensor::<2>::ones([3, 2], &device).cumsum(0);
/// let x2 = Tensor::<2>::ones([3, 4], &device).cumsum(1);
/// let hidden = Tensor::<2>::ones([3, 2], &device).cumsum(0);
/// let linear = Tensor::<2>::ones([2, plan.weight_numel()], &device);
/// let fused = fused_convolution(&plan, &edges, x1.clone(), x2.clone(), hidden.clone(), linear.clone(), 0.5);
/// let fallback = composed::fused_convolution(&plan, &edges, x1, x2, hidden, linear, 0.5);
/// assert!(fused.sub(fallback).abs().max().into_scalar::<f32>() < 1e-4);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn fused_convolution(
    plan: &TensorProductPlan,
    edges: &EdgeIndex,
    x1: Tensor<2>,
    x2: Tensor<2>,
    hidden: Tensor<2>,
    linear: Tensor<2>,
    scale: f64,
) -> Tensor<2> {
    let (src, dst) = edge_index_tensors(edges, &x1.device());
    let messages = tensor_product(plan, gather(x1, src), x2, hidden.matmul(linear));
    scatter_sum(messages, dst, edges.num_nodes()).mul_scalar(scale)
}

/// `t[z] @ w[z]` for `t` `[batch, n, k]` and `w` `[1 or batch, k, m]`.
fn batched_matmul(t: Tensor<3>, w: Tensor<3>) -> Tensor<3> {
    let [z, n, k] = t.dims();
    let [rows, _, m] = w.dims();
    if rows == 1 && z != 1 {
        t.reshape([z * n, k])
            .matmul(w.reshape([k, m]))
            .reshape([z, n, m])
    } else {
        t.matmul(w)
    }
}

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
    let [n, _] = vectors.dims();
    let lmax = table.ls().iter().copied().max().unwrap_or(0);
    let v = if table.normalize() {
        let norm = vectors
            .clone()
            .mul(vectors.clone())
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        vectors.div(norm)
    } else {
        vectors
    };
    let mut degrees: Vec<Tensor<2>> = vec![Tensor::ones([n, 1], (&v.device(), v.dtype()))];
    for (l, c) in (1..=lmax).zip(recursion_matrices(lmax).iter()) {
        let (d_prev, d) = (2 * l as usize - 1, 2 * l as usize + 1);
        let outer = degrees[l as usize - 1]
            .clone()
            .reshape([n, d_prev, 1])
            .mul(v.clone().reshape([n, 1, 3]));
        let c = constant(c.clone(), [d_prev * 3, d], &v);
        degrees.push(outer.reshape([n, d_prev * 3]).matmul(c));
    }
    let norm = table.normalization();
    let parts: Vec<Tensor<2>> = table
        .ls()
        .iter()
        .map(|&l| degrees[l as usize].clone().mul_scalar(norm.factor(l)))
        .collect();
    Tensor::cat(parts, 1)
}

/// [`ops::edge_vectors`](crate::ops::edge_vectors()): two gathers and a subtraction.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::ops::composed;
/// let edges = EdgeIndex::new(&[0], &[1], 2)?;
/// let pos = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], &Device::flex());
/// let v = composed::edge_vectors(&edges, pos).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(v, [1.0, 2.0, 3.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn edge_vectors(edges: &EdgeIndex, pos: Tensor<2>) -> Tensor<2> {
    let (src, dst) = edge_index_tensors(edges, &pos.device());
    gather(pos.clone(), dst).sub(gather(pos, src))
}

/// The sources and destinations of `edges` as index tensors.
fn edge_index_tensors(edges: &EdgeIndex, device: &Device) -> (Tensor<1, Int>, Tensor<1, Int>) {
    let index = |f: &dyn Fn(usize) -> usize| {
        let v: Vec<usize> = (0..edges.num_edges()).map(f).collect();
        index_tensor(&v, device)
    };
    (index(&|e| edges.src(e)), index(&|e| edges.dst(e)))
}

/// [`ops::radial_layer`](crate::ops::radial_layer::radial_layer): the edge lengths, the
/// basis ([`soft_one_hot_linspace`]), the matrix product and the activation as separate ops.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, RadialLayer, SoftOneHotLinspace};
/// use equivariant::ops::composed;
/// let basis = SoftOneHotLinspace::new(0.0, 2.0, 2, Basis::Cosine, true)?;
/// let layer = RadialLayer::new(basis, 1.0, 1.0, None);
/// let device = Device::flex();
/// let v = Tensor::<2>::from_floats([[0.0, 0.0, 2.0 / 3.0]], &device);
/// let h = composed::radial_layer(&layer, v, Tensor::<2>::from_floats([[1.0], [0.0]], &device));
/// assert!((h.into_scalar::<f32>() - 1.0).abs() < 1e-6);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn radial_layer(layer: &RadialLayer, vectors: Tensor<2>, weight: Tensor<2>) -> Tensor<2> {
    let [e, _] = vectors.dims();
    let length = vectors.powi_scalar(2).sum_dim(1).sqrt().reshape([e]);
    let emb = soft_one_hot_linspace(layer.basis(), length).mul_scalar(layer.basis_scale());
    let pre = emb.matmul(weight.mul_scalar(layer.weight_scale()));
    match layer.activation() {
        Some((act, c)) => crate::nn::activation::apply(act, pre).mul_scalar(c),
        None => pre,
    }
}

/// The radial basis of each value, as
/// [`soft_one_hot_linspace`](crate::ops::soft_one_hot_linspace()), composed of burn ops
/// (the formulas of [`SoftOneHotLinspace`]).
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::math::{Basis, SoftOneHotLinspace};
/// use equivariant::ops::{composed, soft_one_hot_linspace};
///
/// let basis = Arc::new(SoftOneHotLinspace::new(0.0, 1.8, 10, Basis::SmoothFinite, false)?);
/// let x = Tensor::<1>::from_floats([0.1, 0.7, 1.5], &Device::flex());
/// let fallback = composed::soft_one_hot_linspace(&basis, x.clone());
/// let native = soft_one_hot_linspace(&basis, x);
/// assert!(native.sub(fallback).abs().max().into_scalar::<f32>() < 1e-5);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn soft_one_hot_linspace(basis: &SoftOneHotLinspace, x: Tensor<1>) -> Tensor<2> {
    let [n] = x.dims();
    let number = basis.number();
    let x = x.reshape([n, 1]);
    let row = |values: Vec<f64>| constant(values, [1, number], &x);
    let len = basis.end() - basis.start();
    match basis.basis() {
        Basis::Gaussian | Basis::Cosine | Basis::SmoothFinite => {
            let step = basis.step().unwrap_or(1.0);
            let d = x
                .clone()
                .sub(row(basis.centers().to_vec()))
                .mul_scalar(1.0 / step);
            match basis.basis() {
                Basis::Gaussian => d.clone().mul(d).neg().exp().mul_scalar(1.0 / 1.12),
                Basis::Cosine => {
                    let inside = d.clone().abs().lower_elem(1.0).float().cast(x.dtype());
                    d.mul_scalar(FRAC_PI_2).cos().mul(inside)
                }
                _ => soft_unit_step(d.clone().add_scalar(1.0))
                    .mul(soft_unit_step(d.neg().add_scalar(1.0)))
                    .mul_scalar(1.14136 * 2f64.exp()),
            }
        }
        Basis::Fourier => {
            let y = x.clone().sub_scalar(basis.start()).mul_scalar(1.0 / len);
            let coef = 1.0 / (0.25 + number as f64 / 2.0).sqrt();
            if basis.cutoff() {
                let freq = row((1..=number).map(|k| k as f64 * PI).collect());
                let inside = y
                    .clone()
                    .greater_elem(0.0)
                    .float()
                    .cast(x.dtype())
                    .mul(y.clone().lower_elem(1.0).float().cast(x.dtype()));
                y.mul(freq).sin().mul(inside).mul_scalar(coef)
            } else {
                let freq = row((0..number).map(|k| k as f64 * PI).collect());
                y.mul(freq).cos().mul_scalar(coef)
            }
        }
        Basis::Bessel => {
            let r = x.clone().sub_scalar(basis.start());
            let freq: Vec<f64> = (1..=number).map(|k| k as f64 * PI / len).collect();
            let coef = (2.0 / len).sqrt();
            // At r = 0, sin(f r) / r is its limit f.
            let at_zero = r.clone().equal_elem(0.0);
            let safe = r.clone().mask_fill(at_zero.clone(), 1.0);
            let zero = at_zero.float().cast(x.dtype());
            let values = safe
                .clone()
                .mul(row(freq.clone()))
                .sin()
                .div(safe)
                .mul(zero.clone().neg().add_scalar(1.0))
                .add(zero.mul(row(freq)))
                .mul_scalar(coef);
            if basis.cutoff() {
                let inside = r
                    .clone()
                    .greater_elem(0.0)
                    .float()
                    .cast(x.dtype())
                    .mul(r.lower_elem(len).float().cast(x.dtype()));
                values.mul(inside)
            } else {
                values
            }
        }
    }
}

/// e3nn's `soft_unit_step`: `exp(-1/x)` for `x > 0`, else 0 (the division kept off `x <= 0`).
fn soft_unit_step(x: Tensor<2>) -> Tensor<2> {
    let positive = x.clone().greater_elem(0.0);
    let safe = x.clone().mask_fill(positive.clone().bool_not(), 1.0);
    safe.recip()
        .neg()
        .exp()
        .mul(positive.float().cast(x.dtype()))
}
