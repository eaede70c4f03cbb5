//! Fused convolution kernels: gather, tensor product and scatter in one pass, so that no
//! per-edge message (`[E, irreps_out.dim]`) and, with [`EdgeWeights::Linear`], no per-edge
//! weight (`[E, weight_numel]`) is ever stored.
//!
//! `out[i] = scale sum_{e : dst[e] = i} x1[src[e]] (x)_{w_e} x2[e]`
//!
//! The forward walks each destination's incoming edges and accumulates the messages in a
//! node-sized buffer; the backward walks each source's outgoing edges, so the gradient of
//! `x1[src]` also accumulates in place. Both are parallel over fixed chunks of nodes and sum
//! in edge order, so results are bit-identical for any number of threads.
//!
//! Per-edge weights from a radial MLP are `w_e = h_e W` (its last, linear layer, `h_e` the
//! hidden activations): [`EdgeWeights::Linear`]. Chosen by measurement (guide, 1000 nodes,
//! 47k edges, 2 threads): recomputing `w_e` per edge into an L1 buffer cost
//! `width x weight_numel` = 6400 multiply-adds per edge, six times the product itself, and
//! ran at 61 ms forward (unfused: 75-92 ms); the factorized kernel of
//! `linear_convolution.rs` applies `W` once per node instead (see there).

use rayon::prelude::*;

use super::TensorProductPlan;
use super::kernel::{Scratch, zeroed};
use super::linear_convolution::{LinearConv, LinearConvGradients};
use crate::error::check_len as mismatch;
use crate::graph::EdgeIndex;
use crate::{Error, Real, Result};

/// Nodes per parallel task. Fixed, so the order of every sum is independent of the number
/// of threads.
const NODE_CHUNK: usize = 8;

/// Where the per-edge weights of a fused convolution come from.
///
/// ```
/// use equivariant_core::o3::tensor_product::EdgeWeights;
/// let hidden = [1.0f32, 2.0]; // one edge, width 2
/// let linear = [0.5f32, 0.25]; // [2, weight_numel = 1]
/// let w = EdgeWeights::Linear { hidden: &hidden, linear: &linear };
/// assert!(matches!(w, EdgeWeights::Linear { .. }));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum EdgeWeights<'a, T> {
    /// Precomputed weights, `[E, weight_numel]`.
    PerEdge(&'a [T]),
    /// `w_e = hidden[e] linear`: `hidden` `[E, width]`, `linear` `[width, weight_numel]`.
    Linear {
        /// The hidden activations, `[E, width]`.
        hidden: &'a [T],
        /// The last layer's matrix (scaling included), `[width, weight_numel]`.
        linear: &'a [T],
    },
}

/// Where [`TensorProductPlan::conv_backward`] writes the gradients; `None` skips one.
///
/// ```
/// use equivariant_core::o3::tensor_product::ConvGradients;
/// let mut g1 = vec![0.0f64; 4];
/// let grads = ConvGradients { x1: Some(&mut g1), x2: None, weight: None, linear: None };
/// assert!(grads.linear.is_none());
/// ```
pub struct ConvGradients<'a, T> {
    /// `dL/dx1`, `[N, irreps_in1.dim]`.
    pub x1: Option<&'a mut [T]>,
    /// `dL/dx2`, `[E, irreps_in2.dim]`.
    pub x2: Option<&'a mut [T]>,
    /// `dL/dw`, `[E, weight_numel]`, for [`EdgeWeights::PerEdge`]; `dL/dhidden`,
    /// `[E, width]`, for [`EdgeWeights::Linear`].
    pub weight: Option<&'a mut [T]>,
    /// `dL/dlinear`, `[width, weight_numel]` ([`EdgeWeights::Linear`] only).
    pub linear: Option<&'a mut [T]>,
}

/// Rows of a buffer written by the task owning each row's edge (each edge has exactly one
/// source node, and each source node one task).
pub(super) struct EdgeRows<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: tasks write disjoint rows (see `row`), so sharing the pointer is sound.
unsafe impl<T: Send> Send for EdgeRows<T> {}
// SAFETY: as for `Send`: `row` hands out disjoint rows only.
unsafe impl<T: Send> Sync for EdgeRows<T> {}

impl<T> EdgeRows<T> {
    pub(super) fn new(buffer: Option<&mut [T]>) -> Option<Self> {
        buffer.map(|b| EdgeRows {
            ptr: b.as_mut_ptr(),
            len: b.len(),
        })
    }

    /// Row `e` of width `width`.
    ///
    /// # Safety
    ///
    /// No two live references to the same row: only the task owning edge `e` calls this,
    /// once per edge.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn row(&self, e: usize, width: usize) -> &mut [T] {
        assert!((e + 1) * width <= self.len);
        // SAFETY: in bounds (checked above), disjoint by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(e * width), width) }
    }
}

/// Shapes of a fused convolution call.
struct ConvShape {
    n: usize,
    e: usize,
    d1: usize,
    d2: usize,
    d_out: usize,
    numel: usize,
    /// MLP width for [`EdgeWeights::Linear`], 0 otherwise.
    width: usize,
}

impl TensorProductPlan {
    fn conv_shape<T>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: &EdgeWeights<'_, T>,
        out_len: usize,
    ) -> Result<ConvShape> {
        if self.shared_weights {
            return Err(Error::InvalidArgument {
                name: "shared_weights",
                reason: "a fused convolution takes per-edge weights (shared_weights = false)"
                    .into(),
            });
        }
        let (n, e) = (edges.num_nodes(), edges.num_edges());
        let (d1, d2, d_out) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
        );
        let numel = self.weight_numel;
        mismatch("x1 [N, irreps_in1.dim]", n * d1, x1.len())?;
        mismatch("x2 [E, irreps_in2.dim]", e * d2, x2.len())?;
        mismatch("out [N, irreps_out.dim]", n * d_out, out_len)?;
        let width = match weights {
            EdgeWeights::PerEdge(w) => {
                mismatch("weights [E, weight_numel]", e * numel, w.len())?;
                0
            }
            EdgeWeights::Linear { hidden, linear } => {
                let width = linear.len().checked_div(numel).unwrap_or(0);
                mismatch("linear [width, weight_numel]", width * numel, linear.len())?;
                mismatch("hidden [E, width]", e * width, hidden.len())?;
                width
            }
        };
        Ok(ConvShape {
            n,
            e,
            d1,
            d2,
            d_out,
            numel,
            width,
        })
    }

    /// The fused convolution: `out[i] = scale sum_{e : dst[e] = i} x1[src[e]] (x)_{w_e}
    /// x2[e]` for every node `i` (zero for a node without incoming edges), overwriting
    /// `out`.
    ///
    /// Shapes: `x1` `[N, irreps_in1.dim]` (node features), `x2` `[E, irreps_in2.dim]` (edge
    /// attributes, e.g. harmonics), `out` `[N, irreps_out.dim]`, weights as
    /// [`EdgeWeights`]. Errors: [`Error::ShapeMismatch`] for wrong lengths,
    /// [`Error::InvalidArgument`] for a plan with shared weights.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// use equivariant_core::o3::tensor_product::{fully_connected_tensor_product, EdgeWeights, TensorProductOptions};
    /// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?;
    /// // Edges 0 -> 1 and 2 -> 1; node 1 sums x1[0] x2[0] w0 + x1[2] x2[1] w1.
    /// let edges = EdgeIndex::new(&[0, 2], &[1, 1], 3)?;
    /// let mut out = [0.0f64; 3];
    /// tp.conv_forward(&edges, &[1.0, 5.0, 2.0], &[3.0, 4.0], EdgeWeights::PerEdge(&[1.0, 0.5]), 1.0, &mut out)?;
    /// assert_eq!(out, [0.0, 3.0 + 4.0, 0.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn conv_forward<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: EdgeWeights<'_, T>,
        scale: T,
        out: &mut [T],
    ) -> Result<()> {
        (T::kernels().conv_forward)(self, edges, x1, x2, weights, scale, out)
    }

    /// [`conv_forward`](TensorProductPlan::conv_forward)'s body, compiled in this crate for
    /// each float type ([`Kernels`](super::Kernels)).
    pub(super) fn conv_forward_kernel<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: EdgeWeights<'_, T>,
        scale: T,
        out: &mut [T],
    ) -> Result<()> {
        let sh = self.conv_shape(edges, x1, x2, &weights, out.len())?;
        if sh.n == 0 || sh.d_out == 0 {
            return Ok(());
        }
        let w = match weights {
            EdgeWeights::PerEdge(w) => w,
            EdgeWeights::Linear { hidden, linear } => {
                let a = LinearConv {
                    edges,
                    x1,
                    x2,
                    hidden,
                    linear,
                    width: sh.width,
                    scale,
                };
                self.conv_forward_linear(&a, out);
                return Ok(());
            }
        };
        let coefs = self.coefficients::<T>();
        out.par_chunks_mut(NODE_CHUNK * sh.d_out)
            .enumerate()
            .for_each(|(chunk, out)| {
                let mut s = Scratch::new(self);
                for (r, acc) in out.chunks_exact_mut(sh.d_out).enumerate() {
                    acc.fill(T::zero());
                    for &e in edges.by_dst(chunk * NODE_CHUNK + r) {
                        let e = e as usize;
                        let j = edges.src(e);
                        let w = &w[e * sh.numel..(e + 1) * sh.numel];
                        let (x1, x2) = (
                            &x1[j * sh.d1..(j + 1) * sh.d1],
                            &x2[e * sh.d2..(e + 1) * sh.d2],
                        );
                        self.forward_row(&coefs, x1, x2, w, acc, &mut s);
                    }
                    acc.iter_mut().for_each(|y| *y *= scale);
                }
            });
        Ok(())
    }

    /// Gradients of `L` given `grad_out = dL/d out` for the inputs of a
    /// [`conv_forward`](TensorProductPlan::conv_forward) call; each requested gradient is
    /// overwritten.
    ///
    /// Errors: as [`conv_forward`](TensorProductPlan::conv_forward), and
    /// [`Error::ShapeMismatch`] for a gradient buffer of the wrong length;
    /// [`Error::InvalidArgument`] for `linear` with [`EdgeWeights::PerEdge`].
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// use equivariant_core::o3::tensor_product::{fully_connected_tensor_product, ConvGradients, EdgeWeights, TensorProductOptions};
    /// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?;
    /// let edges = EdgeIndex::new(&[0, 0], &[1, 1], 2)?; // two edges 0 -> 1
    /// let (mut g1, mut g2) = (vec![0.0f64; 2], vec![0.0f64; 2]);
    /// let grads = ConvGradients { x1: Some(&mut g1), x2: Some(&mut g2), weight: None, linear: None };
    /// tp.conv_backward(&edges, &[2.0, 0.0], &[3.0, 4.0], EdgeWeights::PerEdge(&[1.0, 1.0]), 1.0, &[0.0, 1.0], grads)?;
    /// assert_eq!((g1, g2), (vec![7.0, 0.0], vec![2.0, 2.0]));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn conv_backward<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: EdgeWeights<'_, T>,
        scale: T,
        grad_out: &[T],
        grads: ConvGradients<'_, T>,
    ) -> Result<()> {
        (T::kernels().conv_backward)(self, edges, x1, x2, weights, scale, grad_out, grads)
    }

    /// [`conv_backward`](TensorProductPlan::conv_backward)'s body, compiled in this crate for
    /// each float type ([`Kernels`](super::Kernels)).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conv_backward_kernel<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: EdgeWeights<'_, T>,
        scale: T,
        grad_out: &[T],
        grads: ConvGradients<'_, T>,
    ) -> Result<()> {
        let sh = self.conv_shape(edges, x1, x2, &weights, grad_out.len())?;
        let ConvGradients {
            x1: g1,
            x2: g2,
            weight: gw,
            linear: glin,
        } = grads;
        let linear = matches!(weights, EdgeWeights::Linear { .. });
        if let Some(g) = &g1 {
            mismatch("grad x1 [N, irreps_in1.dim]", sh.n * sh.d1, g.len())?;
        }
        if let Some(g) = &g2 {
            mismatch("grad x2 [E, irreps_in2.dim]", sh.e * sh.d2, g.len())?;
        }
        let gw_width = if linear { sh.width } else { sh.numel };
        if let Some(g) = &gw {
            mismatch("grad weight (the weights' shape)", sh.e * gw_width, g.len())?;
        }
        match (&glin, linear) {
            (Some(g), true) => mismatch(
                "grad linear [width, weight_numel]",
                sh.width * sh.numel,
                g.len(),
            )?,
            (Some(_), false) => {
                return Err(Error::InvalidArgument {
                    name: "grads.linear",
                    reason: "only EdgeWeights::Linear has a linear matrix".into(),
                });
            }
            _ => {}
        }
        let w = match weights {
            EdgeWeights::PerEdge(w) => w,
            EdgeWeights::Linear { hidden, linear } => {
                let a = LinearConv {
                    edges,
                    x1,
                    x2,
                    hidden,
                    linear,
                    width: sh.width,
                    scale,
                };
                let grads = LinearConvGradients {
                    x1: g1,
                    x2: g2,
                    hidden: gw,
                    linear: glin,
                };
                self.conv_backward_linear(&a, grad_out, grads);
                return Ok(());
            }
        };
        let coefs = self.coefficients::<T>();
        let chunks = sh.n.div_ceil(NODE_CHUNK);
        let mut g1_chunks: Vec<Option<&mut [T]>> = match g1 {
            Some(g) => g.chunks_mut(NODE_CHUNK * sh.d1.max(1)).map(Some).collect(),
            None => (0..chunks).map(|_| None).collect(),
        };
        g1_chunks.resize_with(chunks, || None);
        let (g2_rows, gw_rows) = (EdgeRows::new(g2), EdgeRows::new(gw));
        g1_chunks
            .par_iter_mut()
            .enumerate()
            .for_each(|(chunk, g1)| {
                let mut s = Scratch::new(self);
                let mut g_buf = vec![T::zero(); sh.d_out];
                let nodes = NODE_CHUNK.min(sh.n - chunk * NODE_CHUNK);
                for r in 0..nodes {
                    let j = chunk * NODE_CHUNK + r;
                    let mut g1_row = g1
                        .as_deref_mut()
                        .map(|g| zeroed(&mut g[r * sh.d1..(r + 1) * sh.d1]));
                    let x1_row = &x1[j * sh.d1..(j + 1) * sh.d1];
                    for &e in edges.by_src(j) {
                        let e = e as usize;
                        let i = edges.dst(e);
                        g_buf
                            .iter_mut()
                            .zip(&grad_out[i * sh.d_out..(i + 1) * sh.d_out])
                            .for_each(|(g, &y)| *g = y * scale);
                        // SAFETY: edge `e` leaves node `j`, which only this task visits.
                        let g2_row = g2_rows.as_ref().map(|g| zeroed(unsafe { g.row(e, sh.d2) }));
                        let gw_row = gw_rows.as_ref().map(|g| {
                            // SAFETY: as for `g2_row`.
                            zeroed(unsafe { g.row(e, sh.numel) })
                        });
                        self.backward_row(
                            &coefs,
                            x1_row,
                            &x2[e * sh.d2..(e + 1) * sh.d2],
                            &w[e * sh.numel..(e + 1) * sh.numel],
                            &g_buf,
                            g1_row.as_deref_mut(),
                            g2_row,
                            gw_row,
                            &mut s,
                        );
                    }
                }
            });
        Ok(())
    }
}
