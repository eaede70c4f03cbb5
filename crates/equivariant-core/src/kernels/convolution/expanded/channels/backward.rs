//! The backward of the forward with the channels in the lanes ([`super`]), by source: each
//! task takes a chunk of source nodes and their outgoing edges, so that a source's
//! `dL/dx1` sums in place (transposed, `[d1][mul]` per block) with no per-edge row; the
//! other gradients are per edge (`x2`, the hidden rows), or summed per group of chunks in a
//! fixed order (`L`).
//!
//! Per edge `e` (source `j`, destination `i`) and path `p`, with `g = scale dL/dout[i]`
//! (transposed once per node) and `y = C x2[e]`:
//! - `dW[p, u] = sum_k g[k][u] t[k][u]`, `t[k][u] = sum_a x1T[j][a][u] y[k][a]`;
//! - `dx1T[j][a][u] += sum_k s[k][u] y[k][a]`, `s[k][u] = W[p, u] g[k][u]`;
//! - `dx2[e][b] += sum_(a, b, k) C[a, b, k] dy[k][a]`, `dy[k][a] = sum_u s[k][u] x1T[j][a][u]`
//!   once per pair `(k, a)`, path and edge (sixteen partial sums in lanes, added in order);
//! - per block of edges, `dL/dH = dW L^T` and `dL/dL += H^T dW` (matrix products).
//!
//! Every sum runs in a fixed order (a source's edges in edge order, the paths in plan
//! order): the results are the same for any number of threads.

use super::super::{hidden_gradient, linear_gradient};
use super::{
    EDGE_BLOCK, by_dims, lanes, lanes_mut, multiply_add, splat_madd, transpose_blocks,
    transposed_rows,
};
use crate::Real;
use crate::kernels::buffers::EdgeRows;
use crate::kernels::convolution::linear::{
    LinearConv, LinearConvGradients, backward_chunks, prefetch,
};
use crate::kernels::gemm::madd;
use crate::kernels::simd::Simd;
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::{Avx2Fma, Avx512};
use crate::kernels::tensor_product::rows::{Coefficients, contract_x2, dims};
use crate::kernels::transpose::transposed;
use crate::o3::tensor_product::{PathPlan, TensorProductPlan};

/// A task's buffers, reused across calls on the same thread.
struct Work<T> {
    edges: Vec<u32>,
    /// `[m, width]`, `[m, weight_numel]`, `[m, weight_numel]`, `[m, width]`: a block's
    /// hidden rows, weights, and their gradients.
    h: Vec<T>,
    w: Vec<T>,
    gw: Vec<T>,
    gh: Vec<T>,
    /// One path's `y[k][a]`, `s[k][u]` and `dy[k][a]`.
    y: Vec<T>,
    s: Vec<T>,
    dy: Vec<T>,
    /// `[nodes, d1]`: the chunk's `dx1`, each block `[d1][mul]`.
    acc1: Vec<T>,
}

impl<T> Default for Work<T> {
    fn default() -> Self {
        Work {
            edges: Vec::new(),
            h: Vec::new(),
            w: Vec::new(),
            gw: Vec::new(),
            gh: Vec::new(),
            y: Vec::new(),
            s: Vec::new(),
            dy: Vec::new(),
            acc1: Vec::new(),
        }
    }
}

/// One edge's operands: its source's `x1` row and its destination's scaled output gradient
/// (both transposed), its `x2` row and its weights.
#[derive(Clone, Copy)]
struct EdgeOps<'a, T> {
    x1t: &'a [T],
    g: &'a [T],
    x2: &'a [T],
    w: &'a [T],
}

/// Where one edge's gradients go (`None`: not asked for): its source's `dx1` (transposed),
/// its `dW` row, its `dx2` row.
struct EdgeGrads<'a, T> {
    acc1: Option<&'a mut [T]>,
    gw: Option<&'a mut [T]>,
    x2: Option<&'a mut [T]>,
}

/// One path's operands on one edge: `y` (`[d3][d1]`), `x1T` (`[d1][m]`), `g` (`[d3][m]`),
/// the weights (`[m]`) and the path's nonzeros `(a, b, k)` with their coefficients.
struct PathOps<'a, T> {
    y: &'a [T],
    x1t: &'a [T],
    g: &'a [T],
    w: &'a [T],
    nonzeros: (&'a [[u16; 3]], &'a [T]),
}

impl TensorProductPlan {
    /// Whether the convolution's backward runs here, by source: with the forward in the
    /// lanes ([`Self::conv_channels`]), when `x2` (the harmonics) goes to degree 1 at most.
    /// Each edge then sums `d1 x d3` products over the channels per path for `dL/dx2`,
    /// which grow with the harmonics' degree. Measured (`bench conv`, 2 threads, forward
    /// and backward, against the kernels by destination): nequip-aspirin (`0e+1o`) 27-28
    /// against 31-33 ms at 1000 nodes, the same time at 10 000, with 2.4x less memory;
    /// nequip-water 16.9 against 18.7 ms; mace-medium (to `3o`) the same time at 1000
    /// nodes, 800-870 against 670-680 ms at 10 000.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::sorted_uvu_tensor_product;
    /// let (x1, out) = ("32x0e+32x1o".parse()?, "32x0e+32x1o+32x2e".parse()?);
    /// let tp = sorted_uvu_tensor_product(&x1, &"0e+1o".parse()?, &out, false)?;
    /// assert!(tp.conv_channels() && tp.conv_channels_backward());
    /// let tp = sorted_uvu_tensor_product(&x1, &"0e+1o+2e".parse()?, &out, false)?;
    /// assert!(tp.conv_channels() && !tp.conv_channels_backward());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn conv_channels_backward(&self) -> bool {
        self.conv_channels() && self.irreps_in2.iter().all(|mi| mi.ir.l <= 1)
    }

    /// The backward of [`Self::conv_forward_channels`] (see the module docs).
    pub(in crate::kernels::convolution) fn conv_backward_channels<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        grad_out: &[T],
        grads: LinearConvGradients<'_, T>,
    ) {
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
        let want_w = gh.is_some() || glin.is_some();
        // L^T as [numel, width] rows, for dH = dW L^T.
        let lt = if gh.is_some() {
            transposed(a.linear, width, numel)
        } else {
            Vec::new()
        };
        let (coefs, isa) = (self.coefficients::<T>(), Simd::detect());
        let x1t = transposed_rows(&self.irreps_in1, a.x1, T::one());
        let gt = transposed_rows(&self.irreps_out, grad_out, a.scale);
        let want1 = g1.is_some();
        let (g1, g2, gh) = (EdgeRows::new(g1), EdgeRows::new(g2), EdgeRows::new(gh));
        let (y_len, s_len) = (
            self.path_max(|p| p.d1 * p.d3),
            self.path_max(|p| p.d3 * p.m1),
        );
        let sum = backward_chunks(
            n,
            glin.is_some().then_some(width * numel),
            |work: &mut Work<T>, (first, count), mut dlin| {
                let Work {
                    edges,
                    h,
                    w,
                    gw,
                    gh: gh_rows,
                    y,
                    s,
                    dy,
                    acc1,
                } = work;
                edges.clear();
                for j in first..first + count {
                    edges.extend_from_slice(a.edges.by_src(j));
                }
                y.resize(y_len, T::zero());
                s.resize(s_len, T::zero());
                dy.resize(y_len, T::zero());
                acc1.clear();
                acc1.resize(if want1 { count * d1 } else { 0 }, T::zero());
                for (b, block) in edges.chunks(EDGE_BLOCK).enumerate() {
                    self.edge_weights(a, block, h, w);
                    gw.clear();
                    gw.resize(if want_w { block.len() * numel } else { 0 }, T::zero());
                    for (r, &e) in block.iter().enumerate() {
                        // The next edge's destination row, from anywhere in the graph.
                        if let Some(&next) = edges.get(b * EDGE_BLOCK + r + 1) {
                            prefetch(&gt[a.edges.dst(next as usize) * d_out..][..d_out]);
                        }
                        let e = e as usize;
                        let (j, i) = (a.edges.src(e), a.edges.dst(e));
                        let ops = EdgeOps {
                            x1t: &x1t[j * d1..(j + 1) * d1],
                            g: &gt[i * d_out..(i + 1) * d_out],
                            x2: &a.x2[e * d2..(e + 1) * d2],
                            w: &w[r * numel..(r + 1) * numel],
                        };
                        let local = j - first;
                        let g2 = g2.as_ref().map(|g2| {
                            // SAFETY: edge `e`'s row is written by the task of its source
                            // alone, this one.
                            let row = unsafe { g2.row(e, d2) };
                            row.fill(T::zero());
                            row
                        });
                        let out = EdgeGrads {
                            acc1: want1.then(|| &mut acc1[local * d1..(local + 1) * d1]),
                            gw: want_w.then(|| &mut gw[r * numel..(r + 1) * numel]),
                            x2: g2,
                        };
                        self.edge_backward_on(isa, &coefs, ops, (y, s, dy), out);
                    }
                    if let Some(gh) = &gh {
                        // SAFETY: as above, the block's edges leave this task's nodes.
                        unsafe { hidden_gradient(gh, gw, &lt, block, gh_rows, width) };
                    }
                    if let Some(dlin) = dlin.as_deref_mut() {
                        linear_gradient(dlin, h, gw, block.len(), width);
                    }
                }
                if let Some(g1) = &g1 {
                    // SAFETY: the chunk's nodes' rows are this task's alone.
                    let rows = unsafe { g1.rows(first, count, d1) };
                    for (row, acc) in rows.chunks_exact_mut(d1).zip(acc1.chunks_exact(d1)) {
                        transpose_blocks(&self.irreps_in1, acc, row, true);
                    }
                }
            },
        );
        if let (Some(glin), Some(sum)) = (glin, sum) {
            glin.copy_from_slice(&sum);
        }
    }

    /// [`Self::edge_backward`] with the instances of `isa`.
    #[inline]
    fn edge_backward_on<T: Real>(
        &self,
        isa: Simd,
        coefs: &[Coefficients<T>],
        ops: EdgeOps<'_, T>,
        scratch: (&mut [T], &mut [T], &mut [T]),
        out: EdgeGrads<'_, T>,
    ) {
        match isa {
            // SAFETY: the CPU has the features `edge_backward_avx2` is compiled for: `token`
            // is an `Avx2Fma`, which is made only on such a CPU.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2(token) => unsafe {
                self.edge_backward_avx2(token, coefs, ops, scratch, out)
            },
            // SAFETY: as above, with an `Avx512` and `edge_backward_avx512`.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512(token) => unsafe {
                self.edge_backward_avx512(token, coefs, ops, scratch, out)
            },
            _ => self.edge_backward::<T, false>(coefs, ops, scratch, out),
        }
    }

    /// [`Self::edge_backward`] compiled for AVX2 (the same arithmetic in the same order).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn edge_backward_avx2<T: Real>(
        &self,
        _: Avx2Fma,
        coefs: &[Coefficients<T>],
        ops: EdgeOps<'_, T>,
        scratch: (&mut [T], &mut [T], &mut [T]),
        out: EdgeGrads<'_, T>,
    ) {
        self.edge_backward::<T, true>(coefs, ops, scratch, out)
    }

    /// [`Self::edge_backward`] compiled for AVX-512 (vectors up to 512 bits; the same
    /// arithmetic in the same order as the AVX2 instance).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    fn edge_backward_avx512<T: Real>(
        &self,
        _: Avx512,
        coefs: &[Coefficients<T>],
        ops: EdgeOps<'_, T>,
        scratch: (&mut [T], &mut [T], &mut [T]),
        out: EdgeGrads<'_, T>,
    ) {
        self.edge_backward::<T, true>(coefs, ops, scratch, out)
    }

    /// One edge's gradients, path by path (see the module docs).
    #[inline(always)]
    fn edge_backward<T: Real, const FMA: bool>(
        &self,
        coefs: &[Coefficients<T>],
        ops: EdgeOps<'_, T>,
        (y, s, dy): (&mut [T], &mut [T], &mut [T]),
        mut out: EdgeGrads<'_, T>,
    ) {
        for (p, c) in self.paths.iter().zip(coefs) {
            contract_x2(p, &c.forward, &ops.x2[p.in2..p.in2 + p.d2], y);
            let m = p.m1;
            let path = PathOps {
                y: &y[..p.d1 * p.d3],
                x1t: &ops.x1t[p.in1..p.in1 + p.d1 * m],
                g: &ops.g[p.out..p.out + p.d3 * m],
                w: &ops.w[p.weight_offset..p.weight_offset + m],
                nonzeros: (&p.forward.idx, &c.forward),
            };
            let mut grads = EdgeGrads {
                acc1: out
                    .acc1
                    .as_deref_mut()
                    .map(|a| &mut a[p.in1..p.in1 + p.d1 * m]),
                gw: out
                    .gw
                    .as_deref_mut()
                    .map(|g| &mut g[p.weight_offset..p.weight_offset + m]),
                x2: out.x2.as_deref_mut().map(|g| &mut g[p.in2..p.in2 + p.d2]),
            };
            by_dims!(p, path_backward[T, FMA,](p, &path, (s, dy), &mut grads));
        }
    }
}

/// One path's gradients on one edge: `dW` and `dx1` sixteen channels at a time, then eight,
/// then one by one (`s = W g` kept, `[d3][m]`), then `dx2` from `dy[k][a] = sum_u s[k][u]
/// x1T[a][u]`; `D1`, `D3` the path's dimensions as constants (`0`: taken from `p` at run
/// time).
#[inline(always)]
fn path_backward<T: Real, const FMA: bool, const D1: usize, const D3: usize>(
    p: &PathPlan,
    path: &PathOps<'_, T>,
    (s, dy): (&mut [T], &mut [T]),
    grads: &mut EdgeGrads<'_, T>,
) {
    let mut u = 0;
    while u + 16 <= p.m1 {
        lanes_backward::<T, FMA, D1, D3, 16>(p, path, s, grads, u);
        u += 16;
    }
    if u + 8 <= p.m1 {
        lanes_backward::<T, FMA, D1, D3, 8>(p, path, s, grads, u);
        u += 8;
    }
    while u < p.m1 {
        lanes_backward::<T, FMA, D1, D3, 1>(p, path, s, grads, u);
        u += 1;
    }
    let Some(g2) = grads.x2.as_deref_mut() else {
        return;
    };
    // The sums over the channels once per pair `(k, a)` and edge, then `C` applied to them
    // (applied per channel group instead, it cost a load, a store and two operations per
    // nonzero and group: mace-medium's backward at 1000 nodes ran ~1.5x slower).
    let (d1, d3) = dims::<D1, D3>(p);
    let m = p.m1;
    for k in 0..d3 {
        for a in 0..d1 {
            dy[k * d1 + a] =
                lane_dot::<T, FMA>(&s[k * m..(k + 1) * m], &path.x1t[a * m..(a + 1) * m]);
        }
    }
    let (idx, coef) = path.nonzeros;
    for (&[a, b, k], &c) in idx.iter().zip(coef) {
        let (a, b, k) = (a as usize, b as usize, k as usize);
        g2[b] = madd::<T, FMA>(g2[b], c, dy[k * d1 + a]);
    }
}

/// `sum_n a[n] b[n]`, sixteen partial sums in lanes (then added in order), the rest one by
/// one.
#[inline(always)]
fn lane_dot<T: Real, const FMA: bool>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 16];
    let (mut ca, mut cb) = (a.chunks_exact(16), b.chunks_exact(16));
    for (x, y) in ca.by_ref().zip(cb.by_ref()) {
        multiply_add::<T, FMA, 16>(&mut acc, lanes::<T, 16>(x, 0), lanes::<T, 16>(y, 0));
    }
    let mut sum = acc.iter().fold(T::zero(), |s, &v| s + v);
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        sum = madd::<T, FMA>(sum, x, y);
    }
    sum
}

/// Channels `u..u + L` of one path's gradients on one edge (the module docs' formulas;
/// `grads.acc1` is the path's block, `grads.gw` its weights; `s[k][u..]` kept for `dx2`).
#[inline(always)]
fn lanes_backward<T: Real, const FMA: bool, const D1: usize, const D3: usize, const L: usize>(
    p: &PathPlan,
    path: &PathOps<'_, T>,
    s: &mut [T],
    grads: &mut EdgeGrads<'_, T>,
    u: usize,
) {
    let m = p.m1;
    let (d1, d3) = dims::<D1, D3>(p);
    let (y, x1t, g) = (&path.y[..d1 * d3], path.x1t, path.g);
    if let Some(gw) = grads.gw.as_deref_mut() {
        // dW[u] = sum_k g[k][u] t[k][u]
        let mut dw = [T::zero(); L];
        for k in 0..d3 {
            let mut t = [T::zero(); L];
            for a in 0..d1 {
                let x = lanes::<T, L>(x1t, a * m + u);
                splat_madd::<T, FMA, L>(&mut t, x, y[k * d1 + a]);
            }
            let gk = lanes::<T, L>(g, k * m + u);
            multiply_add::<T, FMA, L>(&mut dw, gk, &t);
        }
        gw[u..u + L].copy_from_slice(&dw);
    }
    if grads.acc1.is_none() && grads.x2.is_none() {
        return;
    }
    // s[k][u] = W[u] g[k][u], `[d3][m]`.
    let wu = lanes::<T, L>(path.w, u);
    for k in 0..d3 {
        let gk = lanes::<T, L>(g, k * m + u);
        let sk = lanes_mut::<T, L>(s, k * m + u);
        for l in 0..L {
            sk[l] = wu[l] * gk[l];
        }
    }
    if let Some(acc1) = grads.acc1.as_deref_mut() {
        // dx1T[a][u] += sum_k s[k] y[k][a]
        for a in 0..d1 {
            let mut t = [T::zero(); L];
            for k in 0..d3 {
                let sk = lanes::<T, L>(s, k * m + u);
                splat_madd::<T, FMA, L>(&mut t, sk, y[k * d1 + a]);
            }
            let acc = lanes_mut::<T, L>(acc1, a * m + u);
            let mut v = *acc;
            for l in 0..L {
                v[l] += t[l];
            }
            *acc = v;
        }
    }
}
