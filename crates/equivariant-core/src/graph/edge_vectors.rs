//! Edge vectors over an [`EdgeIndex`] and their backward: `v[e] = pos[dst[e]] - pos[src[e]]`
//! (the guide's `edge_vec`, without periodic shifts: see
//! [`Graph::edge_vec`](super::Graph::edge_vec) for those), and the gradient
//! `dL/dpos[i] = sum_{e : dst[e] = i} g[e] - sum_{e : src[e] = i} g[e]`, summed per node in
//! edge order (deterministic, no atomics).

use rayon::prelude::*;

use super::EdgeIndex;
use crate::error::check_len as check;
use crate::{Real, Result};

/// Edges per parallel task of the forward.
const CHUNK: usize = 4096;

/// Nodes per parallel task of the backward: each reads its nodes' edges both ways, a few
/// dozen rows a node in a potential's graph.
const NODE_CHUNK: usize = 512;

impl EdgeIndex {
    /// `out[e] = pos[dst[e]] - pos[src[e]]`: `pos` `[N, 3]`, `out` `[E, 3]`.
    ///
    /// Errors: [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for other lengths.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// let edges = EdgeIndex::new(&[0, 1], &[1, 0], 2)?;
    /// let mut v = [0.0f32; 6];
    /// edges.edge_vectors(&[0.0, 0.0, 0.0, 1.0, 2.0, 3.0], &mut v)?;
    /// assert_eq!(v, [1.0, 2.0, 3.0, -1.0, -2.0, -3.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn edge_vectors<T: Real>(&self, pos: &[T], out: &mut [T]) -> Result<()> {
        check("pos [N, 3]", self.num_nodes() * 3, pos.len())?;
        check("edge vectors [E, 3]", self.num_edges() * 3, out.len())?;
        out.par_chunks_mut(CHUNK * 3)
            .enumerate()
            .for_each(|(chunk, out)| {
                for (r, v) in out.chunks_exact_mut(3).enumerate() {
                    let e = chunk * CHUNK + r;
                    let (i, j) = (self.dst(e), self.src(e));
                    for c in 0..3 {
                        v[c] = pos[i * 3 + c] - pos[j * 3 + c];
                    }
                }
            });
        Ok(())
    }

    /// The gradient of [`edge_vectors`](EdgeIndex::edge_vectors) with respect to `pos`
    /// (`[N, 3]`, overwritten) given `grad` `[E, 3]`.
    ///
    /// Errors: [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for other lengths.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// let edges = EdgeIndex::new(&[0, 1], &[1, 0], 2)?;
    /// let mut g = [0.0f64; 6];
    /// edges.edge_vectors_backward(&[1.0, 0.0, 0.0, 0.0, 5.0, 0.0], &mut g)?;
    /// assert_eq!(g, [-1.0, 5.0, 0.0, 1.0, -5.0, 0.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn edge_vectors_backward<T: Real>(&self, grad: &[T], grad_pos: &mut [T]) -> Result<()> {
        check(
            "edge vector gradient [E, 3]",
            self.num_edges() * 3,
            grad.len(),
        )?;
        check("pos gradient [N, 3]", self.num_nodes() * 3, grad_pos.len())?;
        grad_pos
            .par_chunks_mut(NODE_CHUNK * 3)
            .enumerate()
            .for_each(|(chunk, out)| {
                for (r, g) in out.chunks_exact_mut(3).enumerate() {
                    let i = chunk * NODE_CHUNK + r;
                    // Summed in registers, not through `g`: a sum kept in memory waits on
                    // its own store at every edge.
                    let mut sum = [T::zero(); 3];
                    for &e in self.by_dst(i) {
                        let e = e as usize;
                        sum.iter_mut()
                            .zip(&grad[e * 3..e * 3 + 3])
                            .for_each(|(y, &x)| *y += x);
                    }
                    for &e in self.by_src(i) {
                        let e = e as usize;
                        sum.iter_mut()
                            .zip(&grad[e * 3..e * 3 + 3])
                            .for_each(|(y, &x)| *y -= x);
                    }
                    g.copy_from_slice(&sum);
                }
            });
        Ok(())
    }
}
