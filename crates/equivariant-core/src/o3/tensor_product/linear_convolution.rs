//! The fused convolution with weights from a linear layer, `w_e = h_e L`, factorized: the
//! tensor product is linear in its weights, so
//!
//! `out_i = scale sum_q L[k, q] S_i[k, q]`, `S_i[k, (u, v)] = sum_{e -> i} h_e[k] t_uv(e)`,
//!
//! where `t_uv(e)` is the Clebsch-Gordan product of `x1[src[e], u]` and `x2[e, v]` (one
//! `d3`-vector per multiplicity pair of each path). Per edge this costs
//! `width x pairs x d3` multiply-adds instead of `width x weight_numel` to form `w_e` plus the
//! product itself; the weights are applied once per node, not once per edge. For the guide
//! (`width` 16, 70 pair components, 400 weights) that is 1120 instead of 6400 + ~1000
//! per edge. No per-edge weight or message is ever formed.
//!
//! The backward runs in two passes. Per destination `i`: `G_i[k, (u, v)] =
//! sum_o L[k, q(o)] g_i[o]` (stored, `[N, width, pairs x d3]`) and the gradient of `L`,
//! `sum_i S_i[k, q] . g_i`. Per source `j`, over its outgoing edges: `dt_uv = sum_k h_e[k]
//! G_i[k, (u, v)]`, `dL/dh_e[k] = sum t_uv . G_i[k, (u, v)]`, and `dt` back through the
//! Clebsch-Gordan list to `x1[j]` and `x2[e]`.

use rayon::prelude::*;

use super::kernel::{contract, contract_x2, dispatch_dims, zeroed, Scratch};
use super::tensor_product::{PathPlan, Targets};
use super::TensorProduct;
use crate::graph::EdgeIndex;
use crate::Real;

/// Nodes per parallel task (fixed: sums in a fixed order for any thread count).
const NODE_CHUNK: usize = 8;

/// The layout of the per-node pair buffers: path `p`'s pair `r` starts at `starts[p] + r d3`.
struct PairLayout {
    starts: Vec<usize>,
    len: usize,
}

impl PairLayout {
    fn new(paths: &[PathPlan]) -> Self {
        let mut starts = Vec::with_capacity(paths.len());
        let mut len = 0;
        for p in paths {
            starts.push(len);
            len += p.pairs.len() * p.d3;
        }
        PairLayout { starts, len }
    }
}

/// The pair products `t_uv[k] = x1[u] . y_v[k]` of one path (`D1`, `D3` its irrep
/// dimensions as constants, so the small products unroll; `0` for run-time sizes), each
/// handed to `f(p, slot, target, t)`.
#[inline(always)]
fn pair_products<T: Real, const D1: usize, const D3: usize>(
    p: &PathPlan,
    start: usize,
    x1: &[T],
    y: &[T],
    t: &mut [T],
    f: &mut impl FnMut(&PathPlan, usize, Targets, &[T]),
) {
    let (d1, d3) = if D1 == 0 { (p.d1, p.d3) } else { (D1, D3) };
    let block = d1 * d3;
    for (r, &(u, v, target)) in p.pairs.iter().enumerate() {
        let (u, v) = (u as usize, v as usize);
        let a = &x1[p.in1 + u * d1..p.in1 + (u + 1) * d1];
        let yv = &y[v * block..(v + 1) * block];
        let t = &mut t[..d3];
        for (k, tk) in t.iter_mut().enumerate() {
            let row = &yv[k * d1..(k + 1) * d1];
            let mut acc = T::zero();
            for i in 0..d1 {
                acc += row[i] * a[i];
            }
            *tk = acc;
        }
        f(p, start + r * d3, target, t);
    }
}

/// Per-task buffers of [`TensorProduct::node_sums`].
struct NodeScratch<T> {
    /// One pair product.
    t: Vec<T>,
    /// The `x2`-contracted Clebsch-Gordan blocks of one edge.
    y: Vec<T>,
    /// The node's pair products, `[layout.len][edges]`.
    tt: Vec<T>,
    /// The node's hidden rows, `[edges][width]`.
    hh: Vec<T>,
}

impl<T: Real> NodeScratch<T> {
    fn new(tp: &TensorProduct) -> Self {
        NodeScratch {
            t: vec![T::zero(); Scratch::<T>::max_d3(tp)],
            y: vec![T::zero(); tp.pair_scratch_len()],
            tt: Vec::new(),
            hh: Vec::new(),
        }
    }
}

/// `s[p][k] = sum_n tt[p][n] hh[n][k]` (`tt` `[rows][ne]`, `hh` `[ne][w]`, `s` `[rows][w]`),
/// blocked 4 rows x 8 columns so the 32 accumulators live in registers while `n` runs.
fn gemm_tn<T: Real>(tt: &[T], hh: &[T], ne: usize, w: usize, s: &mut [T]) {
    const R: usize = 4;
    const C: usize = 8;
    let rows = s.len().checked_div(w).unwrap_or(0);
    let mut p = 0;
    while p < rows {
        let nr = R.min(rows - p);
        let mut k0 = 0;
        while k0 < w {
            let nc = C.min(w - k0);
            let mut acc = [[T::zero(); C]; R];
            if nr == R && nc == C {
                for n in 0..ne {
                    let h: &[T; C] = hh[n * w + k0..n * w + k0 + C]
                        .try_into()
                        .expect("C columns");
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let tv = tt[(p + r) * ne + n];
                        for (a, &hk) in acc.iter_mut().zip(h) {
                            *a += tv * hk;
                        }
                    }
                }
            } else {
                for n in 0..ne {
                    let h = &hh[n * w + k0..n * w + k0 + nc];
                    for (r, acc) in acc.iter_mut().enumerate().take(nr) {
                        let tv = tt[(p + r) * ne + n];
                        for (a, &hk) in acc.iter_mut().zip(h) {
                            *a += tv * hk;
                        }
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate().take(nr) {
                s[(p + r) * w + k0..(p + r) * w + k0 + nc].copy_from_slice(&acc[..nc]);
            }
            k0 += C;
        }
        p += R;
    }
}

/// Arguments shared by the passes.
pub(super) struct LinearConv<'a, T> {
    pub edges: &'a EdgeIndex,
    pub x1: &'a [T],
    pub x2: &'a [T],
    pub hidden: &'a [T],
    pub linear: &'a [T],
    pub width: usize,
    pub scale: T,
}

/// Where the linear backward writes; `None` skips one. Buffers are overwritten.
pub(super) struct LinearConvGradients<'a, T> {
    pub x1: Option<&'a mut [T]>,
    pub x2: Option<&'a mut [T]>,
    pub hidden: Option<&'a mut [T]>,
    pub linear: Option<&'a mut [T]>,
}

impl TensorProduct {
    /// Calls `f(p, slot, target, t)` with the pair product `t = t_uv(e)` of edge `e` (from
    /// `x1[src[e]]` and `x2[e]`) for every pair of every path.
    ///
    /// `x2` is contracted first, once per path and `v` (`y_v[k, i] = sum_j c x2[v, j]`, into
    /// `y`, `[m2][d3][d1]`), so each pair costs a dense `d3 x d1` product instead of a walk
    /// over the Clebsch-Gordan list.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn for_each_pair<T: Real>(
        &self,
        coefs: &[Vec<T>],
        layout: &PairLayout,
        x1: &[T],
        x2: &[T],
        t: &mut [T],
        y: &mut [T],
        mut f: impl FnMut(&PathPlan, usize, Targets, &[T]),
    ) {
        for ((p, c), &start) in self.paths.iter().zip(coefs).zip(&layout.starts) {
            let (d1, d3) = (p.d1, p.d3);
            let block = d1 * d3;
            for v in 0..p.m2 {
                let x2v = &x2[p.in2 + v * p.d2..p.in2 + (v + 1) * p.d2];
                contract_x2(p, c, x2v, &mut y[v * block..(v + 1) * block]);
            }
            dispatch_dims!(d1, d3, pair_products, (p, start, x1, y, t, &mut f));
        }
    }

    /// The scratch length [`for_each_pair`](TensorProduct::for_each_pair) needs for `y`.
    fn pair_scratch_len(&self) -> usize {
        self.paths
            .iter()
            .map(|p| p.m2 * p.d1 * p.d3)
            .max()
            .unwrap_or(0)
    }

    /// `s[slot + c][k] = sum_{e -> i} h_e[k] t(e)[c]` for weighted pairs (`s` is
    /// `[layout.len, width]`) and `plain[slot + c] = sum_e t(e)[c]` for pairs without weight.
    ///
    /// The sums are one small matrix product per node, `S = T^T H` (`T` the node's pair
    /// products `[edges, layout.len]`, stored transposed, `H` its edges' hidden rows), so the
    /// accumulators stay in registers across the node's edges instead of `S` being read and
    /// written once per edge.
    #[allow(clippy::too_many_arguments)]
    fn node_sums<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        coefs: &[Vec<T>],
        layout: &PairLayout,
        i: usize,
        s: &mut [T],
        plain: &mut [T],
        scratch: &mut NodeScratch<T>,
    ) {
        plain.fill(T::zero());
        let (d1, d2, w) = (self.irreps_in1.dim(), self.irreps_in2.dim(), a.width);
        let edges = a.edges.by_dst(i);
        let ne = edges.len();
        let NodeScratch { t, y, tt, hh } = scratch;
        tt.clear();
        tt.resize(layout.len * ne, T::zero());
        hh.clear();
        for (n, &e) in edges.iter().enumerate() {
            let e = e as usize;
            let j = a.edges.src(e);
            hh.extend_from_slice(&a.hidden[e * w..(e + 1) * w]);
            let (x1, x2) = (&a.x1[j * d1..(j + 1) * d1], &a.x2[e * d2..(e + 1) * d2]);
            self.for_each_pair(coefs, layout, x1, x2, t, y, |p, slot, target, t| {
                if is_weighted(p, target) {
                    for (c, &tc) in t.iter().enumerate() {
                        tt[(slot + c) * ne + n] = tc;
                    }
                } else {
                    let row = &mut plain[slot..slot + p.d3];
                    row.iter_mut().zip(t).for_each(|(y, &x)| *y += x);
                }
            });
        }
        gemm_tn(tt, hh, ne, w, s);
    }

    /// Calls `f(slot, d3, out_block, q)` for every (pair, output channel) the pair reaches:
    /// `q` its weight index in `linear`'s columns, `None` for a pair without weight.
    fn for_each_target(
        &self,
        layout: &PairLayout,
        mut f: impl FnMut(usize, usize, usize, Option<usize>),
    ) {
        for (p, &start) in self.paths.iter().zip(&layout.starts) {
            for (r, &(_, _, target)) in p.pairs.iter().enumerate() {
                let slot = start + r * p.d3;
                match target {
                    Targets::One { o, w } => {
                        let q = w
                            .filter(|_| p.has_weight)
                            .map(|w| p.weight_offset + w as usize);
                        f(slot, p.d3, p.out + o as usize * p.d3, q);
                    }
                    Targets::All { w_base } => {
                        for o in 0..p.mo {
                            let q = p.weight_offset + w_base as usize + o;
                            f(slot, p.d3, p.out + o * p.d3, Some(q));
                        }
                    }
                }
            }
        }
    }

    fn cast_coefficients<T: Real>(&self) -> Vec<Vec<T>> {
        self.coefficients::<T>()
            .into_iter()
            .map(|c| c.forward)
            .collect()
    }

    /// `linear` transposed to `[weight_numel, width]`, so a weight's column is contiguous.
    fn transposed<T: Real>(linear: &[T], width: usize, numel: usize) -> Vec<T> {
        let mut lt = vec![T::zero(); linear.len()];
        for k in 0..width {
            for q in 0..numel {
                lt[q * width + k] = linear[k * numel + q];
            }
        }
        lt
    }

    /// The factorized forward (see the module docs); `out` `[N, irreps_out.dim]`.
    pub(super) fn conv_forward_linear<T: Real>(&self, a: &LinearConv<'_, T>, out: &mut [T]) {
        let (d_out, numel, w) = (self.irreps_out.dim(), self.weight_numel, a.width);
        let layout = PairLayout::new(&self.paths);
        let coefs = self.cast_coefficients::<T>();
        let lt = Self::transposed(a.linear, w, numel);
        out.par_chunks_mut(NODE_CHUNK * d_out)
            .enumerate()
            .for_each(|(chunk, out)| {
                let mut s = vec![T::zero(); layout.len * w];
                let mut plain = vec![T::zero(); layout.len];
                let mut scratch = NodeScratch::new(self);
                for (r, acc) in out.chunks_exact_mut(d_out).enumerate() {
                    let i = chunk * NODE_CHUNK + r;
                    self.node_sums(a, &coefs, &layout, i, &mut s, &mut plain, &mut scratch);
                    acc.fill(T::zero());
                    self.for_each_target(&layout, |slot, d3, at, q| {
                        for c in 0..d3 {
                            acc[at + c] += match q {
                                Some(q) => lane_dot(
                                    &lt[q * w..(q + 1) * w],
                                    &s[(slot + c) * w..(slot + c + 1) * w],
                                ),
                                None => plain[slot + c],
                            };
                        }
                    });
                    acc.iter_mut().for_each(|y| *y *= a.scale);
                }
            });
    }

    /// The factorized backward (see the module docs), given `grad_out` `[N, irreps_out.dim]`.
    pub(super) fn conv_backward_linear<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        grad_out: &[T],
        grads: LinearConvGradients<'_, T>,
    ) {
        let (d1, d2, d_out, numel, w) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
            self.weight_numel,
            a.width,
        );
        let n = a.edges.num_nodes();
        let layout = PairLayout::new(&self.paths);
        let coefs = self.cast_coefficients::<T>();
        let max_d3 = Scratch::<T>::max_d3(self);
        let LinearConvGradients {
            x1: g1,
            x2: g2,
            hidden: gh,
            linear: glin,
        } = grads;
        let need_g = g1.is_some() || g2.is_some() || gh.is_some();

        // Pass 1, per destination: G_i (`[layout.len, width]`), and the gradient of
        // `linear` (accumulated transposed, `[numel, width]`).
        let lt = Self::transposed(a.linear, w, numel);
        let g_len = if need_g { w * layout.len } else { 0 };
        let mut big_g = vec![T::zero(); n * g_len];
        let want_lin = glin.is_some();
        let node_chunks: Vec<(usize, &mut [T])> = if need_g {
            big_g
                .chunks_mut((NODE_CHUNK * g_len).max(1))
                .enumerate()
                .collect()
        } else {
            (0..n.div_ceil(NODE_CHUNK))
                .map(|c| (c, &mut [][..]))
                .collect()
        };
        let partials: Vec<Vec<T>> = node_chunks
            .into_par_iter()
            .map(|(chunk, gs)| {
                let mut partial = vec![T::zero(); if want_lin { w * numel } else { 0 }];
                let mut s = vec![T::zero(); if want_lin { layout.len * w } else { 0 }];
                let mut plain = vec![T::zero(); if want_lin { layout.len } else { 0 }];
                let mut scratch = NodeScratch::new(self);
                let first = chunk * NODE_CHUNK;
                for r in 0..NODE_CHUNK.min(n - first) {
                    let i = first + r;
                    let g = &grad_out[i * d_out..(i + 1) * d_out];
                    if want_lin {
                        self.node_sums(a, &coefs, &layout, i, &mut s, &mut plain, &mut scratch);
                    }
                    let mut gi = need_g.then(|| zeroed(&mut gs[r * g_len..(r + 1) * g_len]));
                    self.for_each_target(&layout, |slot, d3, at, q| {
                        let Some(q) = q else { return };
                        for c in 0..d3 {
                            let gc = g[at + c] * a.scale;
                            if let Some(gi) = gi.as_deref_mut() {
                                let row = &mut gi[(slot + c) * w..(slot + c + 1) * w];
                                row.iter_mut()
                                    .zip(&lt[q * w..(q + 1) * w])
                                    .for_each(|(y, &l)| *y += l * gc);
                            }
                            if want_lin {
                                let row = &mut partial[q * w..(q + 1) * w];
                                row.iter_mut()
                                    .zip(&s[(slot + c) * w..(slot + c + 1) * w])
                                    .for_each(|(y, &x)| *y += x * gc);
                            }
                        }
                    });
                }
                partial
            })
            .collect();
        if let Some(glin) = glin {
            let mut sum = vec![T::zero(); w * numel];
            for p in partials {
                sum.iter_mut().zip(p).for_each(|(x, y)| *x += y);
            }
            // Back from `[numel, width]`.
            for k in 0..w {
                for q in 0..numel {
                    glin[k * numel + q] = sum[q * w + k];
                }
            }
        }
        if !need_g {
            return;
        }

        // Pass 2, per source: the edge gradients.
        let chunks = n.div_ceil(NODE_CHUNK);
        let mut g1_chunks: Vec<Option<&mut [T]>> = match g1 {
            Some(g) => g.chunks_mut((NODE_CHUNK * d1).max(1)).map(Some).collect(),
            None => Vec::new(),
        };
        g1_chunks.resize_with(chunks, || None);
        let g2_rows = super::convolution::EdgeRows::new(g2);
        let gh_rows = super::convolution::EdgeRows::new(gh);
        g1_chunks
            .par_iter_mut()
            .enumerate()
            .for_each(|(chunk, g1)| {
                let mut t = vec![T::zero(); max_d3];
                let mut dt = vec![T::zero(); max_d3];
                let nodes = NODE_CHUNK.min(n - chunk * NODE_CHUNK);
                for r in 0..nodes {
                    let j = chunk * NODE_CHUNK + r;
                    let mut g1_row = g1.as_deref_mut().map(|g| {
                        let row = &mut g[r * d1..(r + 1) * d1];
                        row.fill(T::zero());
                        row
                    });
                    let x1 = &a.x1[j * d1..(j + 1) * d1];
                    for &e in a.edges.by_src(j) {
                        let e = e as usize;
                        let i = a.edges.dst(e);
                        let gi = &big_g[i * g_len..(i + 1) * g_len];
                        let go = &grad_out[i * d_out..(i + 1) * d_out];
                        let h = &a.hidden[e * w..(e + 1) * w];
                        let x2 = &a.x2[e * d2..(e + 1) * d2];
                        // SAFETY: edge `e` leaves node `j`, which only this task visits.
                        let mut g2_row = g2_rows.as_ref().map(|g| {
                            let row = unsafe { g.row(e, d2) };
                            row.fill(T::zero());
                            row
                        });
                        let mut gh_row = gh_rows.as_ref().map(|g| {
                            let row = unsafe { g.row(e, w) };
                            row.fill(T::zero());
                            row
                        });
                        for ((p, c), &start) in self.paths.iter().zip(&coefs).zip(&layout.starts) {
                            for (pr, &(u, v, target)) in p.pairs.iter().enumerate() {
                                let (u, v, d3) = (u as usize, v as usize, p.d3);
                                let slot = start + pr * d3;
                                let xa = &x1[p.in1 + u * p.d1..p.in1 + (u + 1) * p.d1];
                                let xb = &x2[p.in2 + v * p.d2..p.in2 + (v + 1) * p.d2];
                                let dt = &mut dt[..d3];
                                let weighted = is_weighted(p, target);
                                if weighted {
                                    for (cc, dtc) in dt.iter_mut().enumerate() {
                                        *dtc =
                                            lane_dot(h, &gi[(slot + cc) * w..(slot + cc + 1) * w]);
                                    }
                                    if let Some(gh) = gh_row.as_deref_mut() {
                                        let t = &mut t[..d3];
                                        t.fill(T::zero());
                                        contract(&p.forward, c, xa, xb, t);
                                        for (cc, &tc) in t.iter().enumerate() {
                                            let gk = &gi[(slot + cc) * w..(slot + cc + 1) * w];
                                            gh.iter_mut().zip(gk).for_each(|(y, &x)| *y += tc * x);
                                        }
                                    }
                                } else {
                                    let Targets::One { o, .. } = target else {
                                        unreachable!("All targets carry weights")
                                    };
                                    let at = p.out + o as usize * d3;
                                    dt.iter_mut()
                                        .zip(&go[at..at + d3])
                                        .for_each(|(y, &x)| *y = x * a.scale);
                                }
                                // t[r] = sum c xa[p] xb[q]: back to xa and xb.
                                for (idx, &cv) in p.forward.idx.iter().zip(c) {
                                    let (ip, iq, ir) =
                                        (idx[0] as usize, idx[1] as usize, idx[2] as usize);
                                    if let Some(g1) = g1_row.as_deref_mut() {
                                        g1[p.in1 + u * p.d1 + ip] += cv * xb[iq] * dt[ir];
                                    }
                                    if let Some(g2) = g2_row.as_deref_mut() {
                                        g2[p.in2 + v * p.d2 + iq] += cv * xa[ip] * dt[ir];
                                    }
                                }
                            }
                        }
                    }
                }
            });
    }
}

/// Whether a pair is scaled by a weight (and so goes through `linear`).
fn is_weighted(p: &PathPlan, target: Targets) -> bool {
    p.has_weight && !matches!(target, Targets::One { w: None, .. })
}

/// `a . b` with eight independent partial sums in a fixed order (deterministic, and
/// vectorizable: one running sum is a chain the compiler may not reorder).
#[inline]
fn lane_dot<T: Real>(a: &[T], b: &[T]) -> T {
    const LANES: usize = 8;
    let mut acc = [T::zero(); LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .fold(T::zero(), |s, (&x, &y)| s + x * y);
    for (a, b) in ac.zip(bc) {
        for l in 0..LANES {
            acc[l] += a[l] * b[l];
        }
    }
    acc.iter().fold(tail, |s, &x| s + x)
}
