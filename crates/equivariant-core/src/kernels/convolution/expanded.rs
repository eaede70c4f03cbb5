//! The convolution with weights from a linear layer, `w_e = h_e L`, run expanded: the
//! weights formed for every edge (`W = H L`, `[E, weight_numel]`), the source features
//! gathered per edge (`[E, irreps_in1.dim]`), one batched tensor product over the edges
//! ([`TensorProductPlan::forward`]'s kernels, `[E, irreps_out.dim]`), and the messages
//! summed per destination in edge order. The backward gathers `scale dL/dout[dst_e]` per edge, runs
//! the batched backward, sums the `x1` rows per source in edge order, and contracts `dL/dW`
//! with `L` (`dL/dH = dW L^T`) and with `H` (`dL/dL = H^T dW`).
//!
//! The factorized kernel ([`linear`](super::linear)) never forms `W` or a message; it pays
//! where forming `w_e` costs more than the product (the guide: `width x weight_numel` = 6400
//! multiply-adds per edge against ~1000). Where `width x weight_numel` is small (a potential
//! of 8 channels and a radial MLP of 16: 256 per edge), both do about the same
//! multiply-adds, and the factorized kernel's per-node setup (gathering, transposes, one
//! small matrix product per node and path) outweighs them: at 108 atoms (~18 edges a node)
//! it executed about 1200 instructions per edge and layer forward.
//! [`TensorProductPlan::conv_expands`] chooses. The price is memory: per edge, the
//! backward holds the gathered rows, their gradients, the output gradients, the weights and
//! their gradients (`2 d1 + d_out + 2 weight_numel` values; for that potential's second layer
//! 104 floats, 75 MB at 180k edges).

use rayon::prelude::*;

use super::linear::{LinearConv, LinearConvGradients, flush_below};
use crate::kernels::gemm::{Rows, gemm, gemm_tn};
use crate::o3::tensor_product::{TensorProductGradients, TensorProductPlan};
use crate::{Real, Result};

/// Edges per parallel task of the weight products and gathers (fixed: `dL/dL` sums its
/// per-task parts in task order, so the result does not depend on the number of threads).
const EDGE_CHUNK: usize = 512;

/// Nodes per parallel task of the sums over a node's edges.
const NODE_CHUNK: usize = 16;

/// The largest `width x weight_numel` (multiply-adds per edge to form `w_e`) run expanded.
const EXPAND_MAX: usize = 512;

impl TensorProductPlan {
    /// Whether a convolution with weights from a linear layer of `width` inputs
    /// ([`EdgeWeights::Linear`](crate::o3::tensor_product::EdgeWeights::Linear)) runs
    /// expanded, forming every edge's weights, rather than factorized per node: when
    /// `width x weight_numel <= 512` (and neither is zero). Both give the same sums to
    /// rounding.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::{sorted_uvu_tensor_product};
    /// // NequIP's first layer at 8 channels: 16 weights, from a radial MLP of 16.
    /// let tp = sorted_uvu_tensor_product(&"8x0e".parse()?, &"0e+1o".parse()?, &"8x0e+8x1o".parse()?, false)?;
    /// assert_eq!(tp.weight_numel(), 16);
    /// assert!(tp.conv_expands(16) && !tp.conv_expands(64));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn conv_expands(&self, width: usize) -> bool {
        width > 0 && self.weight_numel > 0 && width * self.weight_numel <= EXPAND_MAX
    }

    /// The forward, expanded (see the module docs).
    pub(super) fn conv_forward_expanded<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        out: &mut [T],
    ) -> Result<()> {
        let d_out = self.irreps_out.dim();
        let w = self.expanded_weights(a);
        let x1 = gathered(a.x1, self.irreps_in1.dim(), a.edges.num_edges(), |e| {
            a.edges.src(e)
        });
        let messages = self.forward_vec(&x1, a.x2, &w)?;
        out.par_chunks_mut(NODE_CHUNK * d_out)
            .enumerate()
            .for_each(|(chunk, out)| {
                for (r, acc) in out.chunks_exact_mut(d_out).enumerate() {
                    acc.fill(T::zero());
                    for &e in a.edges.by_dst(chunk * NODE_CHUNK + r) {
                        let m = &messages[e as usize * d_out..(e as usize + 1) * d_out];
                        acc.iter_mut().zip(m).for_each(|(y, &m)| *y += m);
                    }
                    acc.iter_mut().for_each(|y| *y *= a.scale);
                }
            });
        Ok(())
    }

    /// The backward, expanded (see the module docs).
    pub(super) fn conv_backward_expanded<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        grad_out: &[T],
        grads: LinearConvGradients<'_, T>,
    ) -> Result<()> {
        let LinearConvGradients {
            x1: g1,
            x2: g2,
            hidden: gh,
            linear: glin,
        } = grads;
        let (e, numel, width) = (a.edges.num_edges(), self.weight_numel, a.width);
        let (d1, d_out) = (self.irreps_in1.dim(), self.irreps_out.dim());
        let w = self.expanded_weights(a);
        let x1 = gathered(a.x1, d1, e, |e| a.edges.src(e));
        let mut g = gathered(grad_out, d_out, e, |e| a.edges.dst(e));
        g.par_iter_mut().for_each(|g| *g *= a.scale);
        let mut g1_edges = g1.as_ref().map(|_| vec![T::zero(); e * d1]);
        let mut gw = (gh.is_some() || glin.is_some()).then(|| vec![T::zero(); e * numel]);
        let grads = TensorProductGradients {
            x1: g1_edges.as_deref_mut(),
            x2: g2,
            weight: gw.as_deref_mut(),
        };
        self.backward(&x1, a.x2, &w, &g, grads)?;
        if let (Some(g1), Some(g1_edges)) = (g1, &g1_edges) {
            g1.par_chunks_mut(NODE_CHUNK * d1.max(1))
                .enumerate()
                .for_each(|(chunk, g1)| {
                    for (r, acc) in g1.chunks_exact_mut(d1.max(1)).enumerate() {
                        acc.fill(T::zero());
                        for &e in a.edges.by_src(chunk * NODE_CHUNK + r) {
                            let row = &g1_edges[e as usize * d1..(e as usize + 1) * d1];
                            acc.iter_mut().zip(row).for_each(|(y, &x)| *y += x);
                        }
                    }
                });
        }
        let Some(gw) = gw else { return Ok(()) };
        if let Some(gh) = gh {
            // dH = dW L^T, L^T as [numel, width] rows.
            let mut lt = vec![T::zero(); numel * width];
            for (k, row) in a.linear.chunks_exact(numel).enumerate() {
                for (q, &x) in row.iter().enumerate() {
                    lt[q * width + k] = x;
                }
            }
            gh.par_chunks_mut(EDGE_CHUNK * width)
                .zip(gw.par_chunks(EDGE_CHUNK * numel))
                .for_each(|(gh, gw)| {
                    let rows = gh.len() / width;
                    let gw = Rows {
                        data: gw,
                        stride: numel,
                    };
                    let lt = Rows {
                        data: &lt,
                        stride: width,
                    };
                    gemm::<T, false, false>(None, (rows, width, numel), gw, lt, gh, width);
                });
        }
        if let Some(glin) = glin {
            // dL = H^T dW: one [width, numel] part per task, summed in task order.
            let parts: Vec<Vec<T>> = a
                .hidden
                .par_chunks(EDGE_CHUNK * width)
                .zip(gw.par_chunks(EDGE_CHUNK * numel))
                .map(|(h, gw)| {
                    let rows = gw.len() / numel;
                    let mut part = vec![T::zero(); width * numel];
                    let h = flushed(h);
                    let h = Rows {
                        data: &h,
                        stride: width,
                    };
                    let gw = Rows {
                        data: gw,
                        stride: numel,
                    };
                    gemm_tn::<T, false, false>(None, (width, numel, rows), h, gw, &mut part, numel);
                    part
                })
                .collect();
            glin.fill(T::zero());
            for part in parts {
                glin.iter_mut().zip(&part).for_each(|(g, &p)| *g += p);
            }
        }
        Ok(())
    }

    /// `W = H L` (`[E, width] x [width, weight_numel]`), in parallel over chunks of edges.
    fn expanded_weights<T: Real>(&self, a: &LinearConv<'_, T>) -> Vec<T> {
        let (e, numel, width) = (a.edges.num_edges(), self.weight_numel, a.width);
        let mut w = vec![T::zero(); e * numel];
        w.par_chunks_mut(EDGE_CHUNK * numel)
            .zip(a.hidden.par_chunks(EDGE_CHUNK * width))
            .for_each(|(w, h)| {
                let rows = w.len() / numel;
                let h = flushed(h);
                let h = Rows {
                    data: &h,
                    stride: width,
                };
                let l = Rows {
                    data: a.linear,
                    stride: numel,
                };
                gemm::<T, false, false>(None, (rows, numel, width), h, l, w, numel);
            });
        w
    }
}

/// Row `row(e)` of `x` (`[_, d]`) for every `e < e_count`: `[e_count, d]`.
fn gathered<T: Real>(
    x: &[T],
    d: usize,
    e_count: usize,
    row: impl Fn(usize) -> usize + Sync,
) -> Vec<T> {
    let mut out = vec![T::zero(); e_count * d];
    if d == 0 {
        return out;
    }
    out.par_chunks_mut(EDGE_CHUNK * d)
        .enumerate()
        .for_each(|(chunk, out)| {
            for (k, o) in out.chunks_exact_mut(d).enumerate() {
                let i = row(chunk * EDGE_CHUNK + k);
                o.copy_from_slice(&x[i * d..(i + 1) * d]);
            }
        });
    out
}

/// `hidden` with the activations the factorized kernel takes as zero ([`flush_below`]:
/// subnormal products) set to zero, so both kernels see the same weights.
fn flushed<T: Real>(hidden: &[T]) -> Vec<T> {
    let tiny = flush_below::<T>();
    hidden
        .iter()
        .map(|&h| if h.abs() < tiny { T::zero() } else { h })
        .collect()
}
