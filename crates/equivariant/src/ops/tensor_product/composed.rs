//! The fallback of [`tensor_product`](super::tensor_product()) on backends without
//! [`TensorProductBackend`](super::TensorProductBackend), composed of burn ops. It follows
//! the definition, not the fast kernels: each path's dense Wigner 3j block contracted with
//! matrix products.

use burn::tensor::{Int, Tensor, TensorData};
use equivariant_core::o3::tensor_product::{ConnectionMode, TensorProductPlan};
use equivariant_core::o3::wigner_3j;

use crate::ops::composed::constant;

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
