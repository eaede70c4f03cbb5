//! The fused convolution with precomputed per-edge weights ([`EdgeWeights::PerEdge`]): the
//! row kernels once per edge, the forward per destination node, the backward per source
//! node.
//!
//! [`EdgeWeights::PerEdge`]: crate::o3::tensor_product::EdgeWeights::PerEdge

use rayon::prelude::*;

use crate::Real;
use crate::graph::EdgeIndex;
use crate::kernels::buffers::{EdgeRows, zeroed};
use crate::kernels::simd::Simd;
use crate::kernels::tensor_product::rows::Scratch;
use crate::o3::tensor_product::TensorProductPlan;

/// Nodes per parallel task. Fixed, so the order of every sum is independent of the number
/// of threads.
const NODE_CHUNK: usize = 8;

impl TensorProductPlan {
    /// `out[i] = scale sum_{e : dst[e] = i} x1[src[e]] (x)_{w[e]} x2[e]`, node by node, for
    /// checked shapes and `out` not empty.
    pub(super) fn conv_forward_per_edge<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        w: &[T],
        scale: T,
        out: &mut [T],
    ) {
        let (d1, d2, d_out, numel) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
            self.weight_numel,
        );
        let coefs = self.coefficients::<T>();
        out.par_chunks_mut(NODE_CHUNK * d_out)
            .enumerate()
            .for_each(|(chunk, out)| {
                let mut s = Scratch::new(self);
                for (r, acc) in out.chunks_exact_mut(d_out).enumerate() {
                    acc.fill(T::zero());
                    for &e in edges.by_dst(chunk * NODE_CHUNK + r) {
                        let e = e as usize;
                        let j = edges.src(e);
                        let w = &w[e * numel..(e + 1) * numel];
                        let (x1, x2) = (&x1[j * d1..(j + 1) * d1], &x2[e * d2..(e + 1) * d2]);
                        self.forward_row(Simd::Portable, &coefs, x1, x2, w, acc, &mut s);
                    }
                    acc.iter_mut().for_each(|y| *y *= scale);
                }
            });
    }

    /// The backward of [`Self::conv_forward_per_edge`] for checked shapes: `x1` gradients
    /// per source node, `x2` and weight gradients per edge, each overwritten.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conv_backward_per_edge<T: Real>(
        &self,
        edges: &EdgeIndex,
        (x1, x2, w): (&[T], &[T], &[T]),
        scale: T,
        grad_out: &[T],
        g1: Option<&mut [T]>,
        g2: Option<&mut [T]>,
        gw: Option<&mut [T]>,
    ) {
        let (n, d1, d2, d_out, numel) = (
            edges.num_nodes(),
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
            self.weight_numel,
        );
        let coefs = self.coefficients::<T>();
        let chunks = n.div_ceil(NODE_CHUNK);
        let mut g1_chunks: Vec<Option<&mut [T]>> = match g1 {
            Some(g) => g.chunks_mut(NODE_CHUNK * d1.max(1)).map(Some).collect(),
            None => (0..chunks).map(|_| None).collect(),
        };
        g1_chunks.resize_with(chunks, || None);
        let (g2_rows, gw_rows) = (EdgeRows::new(g2), EdgeRows::new(gw));
        g1_chunks
            .par_iter_mut()
            .enumerate()
            .for_each(|(chunk, g1)| {
                let mut s = Scratch::new(self);
                let mut g_buf = vec![T::zero(); d_out];
                let nodes = NODE_CHUNK.min(n - chunk * NODE_CHUNK);
                for r in 0..nodes {
                    let j = chunk * NODE_CHUNK + r;
                    let mut g1_row = g1
                        .as_deref_mut()
                        .map(|g| zeroed(&mut g[r * d1..(r + 1) * d1]));
                    let x1_row = &x1[j * d1..(j + 1) * d1];
                    for &e in edges.by_src(j) {
                        let e = e as usize;
                        let i = edges.dst(e);
                        g_buf
                            .iter_mut()
                            .zip(&grad_out[i * d_out..(i + 1) * d_out])
                            .for_each(|(g, &y)| *g = y * scale);
                        // SAFETY: edge `e` leaves node `j`, which only this task visits.
                        let g2_row = g2_rows.as_ref().map(|g| zeroed(unsafe { g.row(e, d2) }));
                        let gw_row = gw_rows.as_ref().map(|g| {
                            // SAFETY: as for `g2_row`.
                            zeroed(unsafe { g.row(e, numel) })
                        });
                        self.backward_row(
                            Simd::Portable,
                            &coefs,
                            x1_row,
                            &x2[e * d2..(e + 1) * d2],
                            &w[e * numel..(e + 1) * numel],
                            &g_buf,
                            g1_row.as_deref_mut(),
                            g2_row,
                            gw_row,
                            &mut s,
                        );
                    }
                }
            });
    }
}
