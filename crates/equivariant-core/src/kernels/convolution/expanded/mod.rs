//! The convolution with weights from a linear layer, `w_e = h_e L`, run expanded: for a
//! chunk of nodes at a time, their edges' weights formed (`W = H L`), their source features
//! and harmonics gathered, one batched tensor product over those edges
//! ([`TensorProductPlan::forward`]'s kernels, on the task's thread with its buffers:
//! [`TensorProductPlan::forward_serial`]), and the messages summed per destination in edge
//! order. The backward takes the chunks by destination too: per chunk, `scale dL/dout[i]`
//! repeated for each edge into node `i`, the batched backward, the edges' `x2` and
//! `dL/dH = dW L^T` rows written, their `x1` rows kept per edge and summed per source in
//! edge order at the end, and `dL/dL = H^T dW` summed per group of chunks in a fixed order.
//! In a graph sorted by destination (a radius graph) a chunk's edge rows are then one block
//! each, read and written with one copy, where rows by source lie all over the graph. Every
//! buffer but the `x1` rows is a chunk's (a few hundred edges), kept per thread from call to
//! call.
//!
//! The factorized kernel ([`linear`](super::linear)) never forms `W` or a message; it pays
//! where forming `w_e` costs more than the product (the guide: `width x weight_numel` = 6400
//! multiply-adds per edge against ~1000). Where `width x weight_numel` is small (a potential
//! of 8 channels and a radial MLP of 16: 256 per edge), both do about the same
//! multiply-adds, and the factorized kernel's per-node setup (gathering, transposes, one
//! small matrix product per node and path) outweighs them: at 108 atoms (~18 edges a node)
//! it executed about 1200 instructions per edge and layer forward.
//! [`TensorProductPlan::conv_expands`] chooses, for the tangent convolution too
//! ([`tangent`]).
//!
//! A product whose paths are all `uvu` of one `x2` channel and at least 16 channels
//! (NequIP's and MACE's interactions at their usual widths) runs with the channels in the
//! vector lanes instead ([`channels`]): its forward, and its backward where `x2` goes to
//! degree 1 at most.

mod channels;
mod tangent;

use std::sync::Mutex;

use rayon::prelude::*;

use super::linear::{
    LinearConv, LinearConvGradients, backward_chunks, consecutive, edge_rows, flush_below, flushed,
    sum_rows_by_source, write_rows,
};
use crate::graph::EdgeIndex;
use crate::kernels::buffers::{EdgeRows, Reused};
use crate::kernels::gemm::{Rows, gemm, gemm_tn};
use crate::kernels::simd::Simd;
use crate::kernels::tensor_product::SerialWork;
use crate::kernels::transpose::transposed;
use crate::o3::tensor_product::{TensorProductGradients, TensorProductPlan};
use crate::{Error, Real, Result};

/// Nodes per parallel task of the forward (fixed: each node sums its edges in edge order).
const NODE_CHUNK: usize = 16;

/// The largest `width x weight_numel` (multiply-adds per edge to form `w_e`) run expanded.
const EXPAND_MAX: usize = 512;

/// A task's buffers (a chunk's edges), reused across calls on the same thread.
struct Work<T> {
    edges: Vec<u32>,
    /// `[m, width]`, `[m, weight_numel]`: the edges' hidden rows (flushed) and weights.
    h: Vec<T>,
    w: Vec<T>,
    /// `[m, d1]`, `[m, d2]`: the gathered inputs.
    x1: Vec<T>,
    x2: Vec<T>,
    /// `[m, d_out]`: the messages, or the scaled output gradients.
    out: Vec<T>,
    /// The backward's gradients of `x1`, `x2`, `w` and `h` rows.
    g1: Vec<T>,
    g2: Vec<T>,
    gw: Vec<T>,
    gh: Vec<T>,
    /// The batched product's buffers.
    product: SerialWork<T>,
}

impl<T: Real> Default for Work<T> {
    fn default() -> Self {
        Work {
            edges: Vec::new(),
            h: Vec::new(),
            w: Vec::new(),
            x1: Vec::new(),
            x2: Vec::new(),
            out: Vec::new(),
            g1: Vec::new(),
            g2: Vec::new(),
            gw: Vec::new(),
            gh: Vec::new(),
            product: SerialWork::default(),
        }
    }
}

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

    /// Whether a tangent convolution with hidden `width` runs expanded ([`tangent`]): as
    /// the convolution does ([`Self::conv_expands`]), when every path has weights (the
    /// expanded product rule takes `t(x1, x2, dW)` as the weights' term, which a path
    /// without weights would add to).
    pub(in crate::kernels) fn conv_tangent_expands(&self, width: usize) -> bool {
        self.conv_expands(width) && self.paths.iter().all(|p| p.has_weight)
    }

    /// The forward, expanded (see the module docs).
    pub(super) fn conv_forward_expanded<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        out: &mut [T],
    ) -> Result<()> {
        let d_out = self.irreps_out.dim();
        let (coefs, isa) = (self.coefficients::<T>(), Simd::detect());
        out.par_chunks_mut(NODE_CHUNK * d_out)
            .enumerate()
            .try_for_each_init(Reused::<Work<T>>::take, |work, (chunk, out)| {
                let work = &mut **work;
                let first = chunk * NODE_CHUNK;
                let nodes = first..first + out.len() / d_out;
                edges_into(&mut work.edges, nodes.clone(), a.edges);
                self.gather_edges(a, work);
                let m = work.edges.len();
                resize(&mut work.out, m * d_out);
                if m > 0 {
                    let (x1, x2, w) = (&work.x1, &work.x2, &work.w);
                    let product = &mut work.product;
                    self.forward_serial(&coefs, x1, x2, w, &mut work.out, product, isa)?;
                }
                let mut rows = work.out.chunks_exact(d_out);
                for (i, acc) in nodes.zip(out.chunks_exact_mut(d_out)) {
                    acc.fill(T::zero());
                    for m in rows.by_ref().take(a.edges.by_dst(i).len()) {
                        acc.iter_mut().zip(m).for_each(|(y, &m)| *y += m);
                    }
                    acc.iter_mut().for_each(|y| *y *= a.scale);
                }
                Ok(())
            })
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
        let (d1, d2, d_out) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
        );
        let (n, numel, width) = (a.edges.num_nodes(), self.weight_numel, a.width);
        // L^T as [numel, width] rows, for dH = dW L^T.
        let lt = transposed(a.linear, width, numel);
        let (want1, want2) = (g1.is_some(), g2.is_some());
        let want_w = gh.is_some() || glin.is_some();
        // Per-edge rows of the x1 gradient, summed per source at the end (as the factorized
        // kernel does): the chunks go by destination, so that a graph sorted by destination
        // reads and writes each chunk's edge rows as blocks.
        let mut g1_edges = edge_rows(want1, a.edges.num_edges(), d1);
        let g1e = EdgeRows::new(want1.then_some(&mut g1_edges[..]));
        let (g2, gh) = (EdgeRows::new(g2), EdgeRows::new(gh));
        let (coefs, isa) = (self.coefficients::<T>(), Simd::detect());
        let failed = Mutex::new(None::<Error>);
        let sum = backward_chunks(
            n,
            glin.is_some().then_some(width * numel),
            |work: &mut Work<T>, (first, count), dlin| {
                let nodes = first..first + count;
                edges_into(&mut work.edges, nodes.clone(), a.edges);
                self.gather_edges(a, work);
                let m = work.edges.len();
                destination_rows(&mut work.out, grad_out, nodes, a, d_out);
                resize(&mut work.g1, if want1 { m * d1 } else { 0 });
                resize(&mut work.g2, if want2 { m * d2 } else { 0 });
                resize(&mut work.gw, if want_w { m * numel } else { 0 });
                if m > 0 {
                    let grads = TensorProductGradients {
                        x1: want1.then_some(&mut work.g1[..]),
                        x2: want2.then_some(&mut work.g2[..]),
                        weight: want_w.then_some(&mut work.gw[..]),
                    };
                    let (x1, x2, w, g) = (&work.x1, &work.x2, &work.w, &work.out);
                    let product = &mut work.product;
                    if let Err(e) = self.backward_serial(&coefs, x1, x2, w, g, grads, product, isa)
                    {
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return;
                    }
                }
                // SAFETY: the edges into the chunk's nodes are this task's alone.
                unsafe {
                    if let Some(g1e) = &g1e {
                        write_rows(g1e, &work.edges, &work.g1);
                    }
                    if let Some(g2) = &g2 {
                        write_rows(g2, &work.edges, &work.g2);
                    }
                    if let Some(gh) = &gh {
                        hidden_gradient(gh, &work.gw, &lt, &work.edges, &mut work.gh, width);
                    }
                }
                if let Some(dlin) = dlin {
                    linear_gradient(dlin, &work.h, &work.gw, m, width);
                }
            },
        );
        if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        if let (Some(glin), Some(sum)) = (glin, sum) {
            glin.copy_from_slice(&sum);
        }
        if let Some(g1) = g1 {
            sum_rows_by_source(a.edges, &g1_edges, g1);
        }
        Ok(())
    }

    /// Fills `work`'s rows for `work.edges`: the hidden rows and weights
    /// ([`Self::edge_weights`]), the source rows of `x1` and the rows of `x2`.
    fn gather_edges<T: Real>(&self, a: &LinearConv<'_, T>, work: &mut Work<T>) {
        let (d1, d2) = (self.irreps_in1.dim(), self.irreps_in2.dim());
        let Work {
            edges,
            h,
            w,
            x1,
            x2,
            ..
        } = work;
        let edges = &edges[..];
        self.edge_weights(a, edges, h, w);
        x1.clear();
        x2.clear();
        if let Some(first) = consecutive(edges) {
            // The chunk's `x2` rows are one block (a graph sorted by destination).
            x2.extend_from_slice(&a.x2[first * d2..(first + edges.len()) * d2]);
        } else {
            for &e in edges {
                let e = e as usize;
                x2.extend_from_slice(&a.x2[e * d2..(e + 1) * d2]);
            }
        }
        for &e in edges {
            let j = a.edges.src(e as usize);
            x1.extend_from_slice(&a.x1[j * d1..(j + 1) * d1]);
        }
    }

    /// `h` set to the hidden rows of `edges` (flushed as the factorized kernel flushes them,
    /// [`flushed`]) and `w` to their weights `W = H L`: `[m, width]`, `[m, weight_numel]`.
    fn edge_weights<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        edges: &[u32],
        h: &mut Vec<T>,
        w: &mut Vec<T>,
    ) {
        let (m, numel, width) = (edges.len(), self.weight_numel, a.width);
        let tiny = flush_below::<T>();
        let flush = |&h: &T| flushed(h, tiny);
        h.clear();
        if let Some(first) = consecutive(edges) {
            h.extend(
                a.hidden[first * width..(first + m) * width]
                    .iter()
                    .map(flush),
            );
        } else {
            for &e in edges {
                let e = e as usize;
                h.extend(a.hidden[e * width..(e + 1) * width].iter().map(flush));
            }
        }
        resize(w, m * numel);
        if m > 0 {
            let h = Rows {
                data: h,
                stride: width,
            };
            let l = Rows {
                data: a.linear,
                stride: numel,
            };
            gemm::<T, false, false>(None, (m, numel, width), h, l, w, numel);
        }
    }
}

/// `edges` set to the edges into `nodes`, node by node, each node's in edge order.
pub(super) fn edges_into(edges: &mut Vec<u32>, nodes: std::ops::Range<usize>, index: &EdgeIndex) {
    edges.clear();
    for i in nodes {
        edges.extend_from_slice(index.by_dst(i));
    }
}

/// `rows` set to `scale grad[i]` for each edge into each of `nodes` (`grad`: `[N, d]`, every
/// node's row), the nodes' edges in order: the output gradient each edge's message takes.
fn destination_rows<T: Real>(
    rows: &mut Vec<T>,
    grad: &[T],
    nodes: std::ops::Range<usize>,
    a: &LinearConv<'_, T>,
    d: usize,
) {
    rows.clear();
    for i in nodes {
        let count = a.edges.by_dst(i).len();
        if count == 0 {
            continue;
        }
        // Scaled once per node, then copied for each further edge.
        let start = rows.len();
        rows.extend(grad[i * d..(i + 1) * d].iter().map(|&g| g * a.scale));
        for _ in 1..count {
            rows.extend_from_within(start..start + d);
        }
    }
}

/// `v` resized to `len` (new entries zero; the callers overwrite every entry they read).
fn resize<T: Real>(v: &mut Vec<T>, len: usize) {
    v.resize(len, T::zero());
}

/// `dL/dH = dL/dW L^T` of each edge of `edges` (`gw`: `[m, numel]`; `lt`: `L^T`, `[numel,
/// width]`), formed in `buf` and written to its row of `out`.
///
/// # Safety
///
/// As [`write_rows`].
unsafe fn hidden_gradient<T: Real>(
    out: &EdgeRows<'_, T>,
    gw: &[T],
    lt: &[T],
    edges: &[u32],
    buf: &mut Vec<T>,
    width: usize,
) {
    let m = edges.len();
    if m == 0 {
        return;
    }
    let numel = gw.len() / m;
    resize(buf, m * width);
    let (gw, lt) = (
        Rows {
            data: gw,
            stride: numel,
        },
        Rows {
            data: lt,
            stride: width,
        },
    );
    gemm::<T, false, false>(None, (m, width, numel), gw, lt, buf, width);
    // SAFETY: as the caller's.
    unsafe { write_rows(out, edges, buf) };
}

/// `dlin += H^T dL/dW` over `m` edges (`h`: `[m, width]`, `gw`: `[m, numel]`).
fn linear_gradient<T: Real>(dlin: &mut [T], h: &[T], gw: &[T], m: usize, width: usize) {
    if m == 0 {
        return;
    }
    let numel = gw.len() / m;
    let (h, gw) = (
        Rows {
            data: h,
            stride: width,
        },
        Rows {
            data: gw,
            stride: numel,
        },
    );
    gemm_tn::<T, false, true>(None, (width, numel, m), h, gw, dlin, numel);
}
