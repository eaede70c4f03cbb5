//! A convolution whose paths are all weighted `uvu` paths with one `x2` channel (NequIP's
//! and MACE's interactions, `x2` the harmonics), expanded, with the channels `u` in the
//! vector lanes: the forward here, the backward in [`backward`].
//!
//! `out[i][u, k] = scale sum_{e -> i} sum_p W_e[p, u] sum_a x1[src e][u, a] y_{p,e}[a, k]`,
//! `y_{p,e}[a, k] = sum_j C_p[a, j, k] x2[e][j]`.
//!
//! `x1` is transposed once per node, each irrep block `[mul][d]` to `[d][mul]`; each edge's
//! terms are added straight into its destination's sums, kept `[d3][mul]` per output block
//! and transposed back once per node. Every multiply-add then runs on contiguous channels,
//! and no edge's `x1` row or message is copied or stored: the batched product of the
//! expanded forward ([`super`]) reads a gathered `x1` row per edge and eight channels at a
//! time from strided rows. The weights `W = H L` are formed per block of edges, as there.
//! Each node sums its edges in edge order, its paths in plan order: the results are the
//! same for any number of threads.

mod backward;

use rayon::prelude::*;

use super::{NODE_CHUNK, edges_into};
use crate::Real;
use crate::kernels::buffers::Reused;
use crate::kernels::convolution::linear::{LinearConv, prefetch};
use crate::kernels::gemm::madd;
use crate::kernels::simd::Simd;
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::{Avx2Fma, Avx512};
use crate::kernels::tensor_product::rows::{Coefficients, contract_x2, dims};
use crate::kernels::transpose::transpose;
use crate::o3::Irreps;
use crate::o3::tensor_product::{PathKernel, PathPlan, TensorProductPlan};

/// The fewest channels of a path for the forward with the channels in the lanes: below,
/// a path's fixed costs per edge (its `y = C x2`, the call) outweigh its vector work, and
/// the batched product runs faster (an 8-channel NequIP potential's MD at 108 atoms: 1575
/// against 1436 steps/s with every path in the lanes; at 32 channels, nequip-water as a
/// convolution at 1000 nodes, the lanes ran the forward in 3.9-4.8 ms against 5.3-5.6).
const CHANNELS_MIN: usize = 16;

/// Edges whose weights are formed at a time (`W = H L`, `[EDGE_BLOCK, weight_numel]`).
const EDGE_BLOCK: usize = 32;

/// `f::<G.., D1, D3>(args)` with the path `p`'s dimensions `(d1, d3)` as constants where
/// they are among those instanced (`0, 0`: taken from `p` at run time).
macro_rules! by_dims {
    ($p:expr, $f:ident[$($g:tt)*]($($a:expr),*)) => {
        match ($p.d1, $p.d3) {
            (1, 1) => $f::<$($g)* 1, 1>($($a),*),
            (1, 3) => $f::<$($g)* 1, 3>($($a),*),
            (3, 1) => $f::<$($g)* 3, 1>($($a),*),
            (3, 3) => $f::<$($g)* 3, 3>($($a),*),
            (1, 5) => $f::<$($g)* 1, 5>($($a),*),
            (5, 1) => $f::<$($g)* 5, 1>($($a),*),
            (3, 5) => $f::<$($g)* 3, 5>($($a),*),
            (5, 3) => $f::<$($g)* 5, 3>($($a),*),
            (5, 5) => $f::<$($g)* 5, 5>($($a),*),
            _ => $f::<$($g)* 0, 0>($($a),*),
        }
    };
}
use by_dims;

/// A task's buffers, reused across calls on the same thread.
struct Work<T> {
    edges: Vec<u32>,
    /// `[m, width]`, `[m, weight_numel]`: a block's hidden rows and weights.
    h: Vec<T>,
    w: Vec<T>,
    /// One path's `y[k][a]`.
    y: Vec<T>,
    /// `[nodes, d_out]`: the chunk's sums, each output block `[d3][mul]`.
    sums: Vec<T>,
}

impl<T> Default for Work<T> {
    fn default() -> Self {
        Work {
            edges: Vec::new(),
            h: Vec::new(),
            w: Vec::new(),
            y: Vec::new(),
            sums: Vec::new(),
        }
    }
}

/// One edge's operands: its source's `x1` row (transposed), its `x2` row and its weights.
type Edge<'a, T> = (&'a [T], &'a [T], &'a [T]);

impl TensorProductPlan {
    /// Whether a convolution with weights from a linear layer
    /// ([`EdgeWeights::Linear`](crate::o3::tensor_product::EdgeWeights::Linear)) runs its
    /// forward with the channels in the vector lanes: when every path is `uvu`, weighted,
    /// with one `x2` channel (the harmonics of NequIP's and MACE's interactions) and at
    /// least 16 channels in each path; its backward too, by source, where `x2` goes to
    /// degree 1 at most ([`Self::conv_channels_backward`]). The MLP's width does not enter:
    /// the weights `W = H L` are formed per edge at any width (measured at 16, the
    /// benchmarks' radial MLP).
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::sorted_uvu_tensor_product;
    /// let (x2, out) = ("0e+1o".parse()?, "32x0e+32x1o+32x1e".parse()?);
    /// let tp = sorted_uvu_tensor_product(&"32x0e+32x1o".parse()?, &x2, &out, false)?;
    /// assert!(tp.conv_channels());
    /// let (x2, out) = ("0e+1o".parse()?, "8x0e+8x1o+8x1e".parse()?);
    /// let tp = sorted_uvu_tensor_product(&"8x0e+8x1o".parse()?, &x2, &out, false)?;
    /// assert!(!tp.conv_channels());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn conv_channels(&self) -> bool {
        !self.paths.is_empty()
            && self.paths.iter().all(|p| {
                matches!(p.kernel, PathKernel::Uvu(_))
                    && p.has_weight
                    && p.m2 == 1
                    && p.m1 >= CHANNELS_MIN
            })
    }

    /// The forward with the channels in the lanes (see the module docs).
    pub(in crate::kernels::convolution) fn conv_forward_channels<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        out: &mut [T],
    ) {
        let (d1, d2, d_out) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
        );
        let (numel, y_len) = (self.weight_numel, self.path_max(|p| p.d1 * p.d3));
        let (coefs, isa) = (self.coefficients::<T>(), Simd::detect());
        let x1t = transposed_rows(&self.irreps_in1, a.x1, T::one());
        out.par_chunks_mut(NODE_CHUNK * d_out)
            .enumerate()
            .for_each_init(Reused::<Work<T>>::take, |work, (chunk, out)| {
                let Work {
                    edges,
                    h,
                    w,
                    y,
                    sums,
                } = &mut **work;
                let first = chunk * NODE_CHUNK;
                edges_into(edges, first..first + out.len() / d_out, a.edges);
                sums.clear();
                sums.resize(out.len(), T::zero());
                y.resize(y_len, T::zero());
                for (b, block) in edges.chunks(EDGE_BLOCK).enumerate() {
                    self.edge_weights(a, block, h, w);
                    for (r, &e) in block.iter().enumerate() {
                        // The next edge's source row, from anywhere in the graph.
                        if let Some(&next) = edges.get(b * EDGE_BLOCK + r + 1) {
                            prefetch(&x1t[a.edges.src(next as usize) * d1..][..d1]);
                        }
                        let e = e as usize;
                        let (j, local) = (a.edges.src(e), a.edges.dst(e) - first);
                        let ops = (
                            &x1t[j * d1..(j + 1) * d1],
                            &a.x2[e * d2..(e + 1) * d2],
                            &w[r * numel..(r + 1) * numel],
                        );
                        let sums = &mut sums[local * d_out..(local + 1) * d_out];
                        self.add_edge_on(isa, &coefs, ops, y, sums);
                    }
                }
                for (o, s) in out.chunks_exact_mut(d_out).zip(sums.chunks_exact(d_out)) {
                    transpose_blocks(&self.irreps_out, s, o, true);
                    o.iter_mut().for_each(|v| *v *= a.scale);
                }
            });
    }

    /// The largest `f(p)` over the plan's paths (`0` without paths): a scratch size.
    fn path_max(&self, f: impl Fn(&PathPlan) -> usize) -> usize {
        self.paths.iter().map(f).max().unwrap_or(0)
    }

    /// [`Self::add_edge`] with the instances of `isa`.
    #[inline]
    fn add_edge_on<T: Real>(
        &self,
        isa: Simd,
        coefs: &[Coefficients<T>],
        edge: Edge<'_, T>,
        y: &mut [T],
        sums: &mut [T],
    ) {
        match isa {
            // SAFETY: the CPU has the features `add_edge_avx2` is compiled for: `token` is an
            // `Avx2Fma`, which is made only on such a CPU.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2(token) => unsafe { self.add_edge_avx2(token, coefs, edge, y, sums) },
            // SAFETY: as above, with an `Avx512` and `add_edge_avx512`.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512(token) => unsafe { self.add_edge_avx512(token, coefs, edge, y, sums) },
            _ => self.add_edge::<T, false>(coefs, edge, y, sums),
        }
    }

    /// [`Self::add_edge`] compiled for AVX2 (the same arithmetic in the same order).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn add_edge_avx2<T: Real>(
        &self,
        _: Avx2Fma,
        coefs: &[Coefficients<T>],
        edge: Edge<'_, T>,
        y: &mut [T],
        sums: &mut [T],
    ) {
        self.add_edge::<T, true>(coefs, edge, y, sums)
    }

    /// [`Self::add_edge`] compiled for AVX-512 (vectors up to 512 bits; the same
    /// arithmetic in the same order as the AVX2 instance).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    fn add_edge_avx512<T: Real>(
        &self,
        _: Avx512,
        coefs: &[Coefficients<T>],
        edge: Edge<'_, T>,
        y: &mut [T],
        sums: &mut [T],
    ) {
        self.add_edge::<T, true>(coefs, edge, y, sums)
    }

    /// One edge's terms added to its destination's `sums` (each output block `[d3][mul]`),
    /// path by path: `y = C x2`, then `sums[k][u] += W[p, u] sum_a x1T[a][u] y[k][a]`.
    #[inline(always)]
    fn add_edge<T: Real, const FMA: bool>(
        &self,
        coefs: &[Coefficients<T>],
        (x1t, x2, w): Edge<'_, T>,
        y: &mut [T],
        sums: &mut [T],
    ) {
        for (p, c) in self.paths.iter().zip(coefs) {
            contract_x2(p, &c.forward, &x2[p.in2..p.in2 + p.d2], y);
            let m = p.m1;
            let x1t = &x1t[p.in1..p.in1 + p.d1 * m];
            let w = &w[p.weight_offset..p.weight_offset + m];
            let sums = &mut sums[p.out..p.out + p.d3 * m];
            let args = (&y[..p.d1 * p.d3], x1t, w);
            by_dims!(p, path_forward[T, FMA,](p, args, sums));
        }
    }
}

/// One path's terms of one edge, sixteen channels at a time, then eight, then one by one;
/// `D1`, `D3` the path's dimensions as constants (`0`: taken from `p` at run time).
#[inline(always)]
fn path_forward<T: Real, const FMA: bool, const D1: usize, const D3: usize>(
    p: &PathPlan,
    args: (&[T], &[T], &[T]),
    sums: &mut [T],
) {
    let mut u = 0;
    while u + 16 <= p.m1 {
        lanes_forward::<T, FMA, D1, D3, 16>(p, args, sums, u);
        u += 16;
    }
    if u + 8 <= p.m1 {
        lanes_forward::<T, FMA, D1, D3, 8>(p, args, sums, u);
        u += 8;
    }
    while u < p.m1 {
        lanes_forward::<T, FMA, D1, D3, 1>(p, args, sums, u);
        u += 1;
    }
}

/// Channels `u..u + L` of one path and edge: `t[k] = sum_a x1T[a][u..] y[k][a]`, then
/// `sums[k][u..] += W[u..] t[k]` (`x1T`: `[d1][m]`, `sums`: `[d3][m]`, `y`: `[d3][d1]`).
#[inline(always)]
fn lanes_forward<T: Real, const FMA: bool, const D1: usize, const D3: usize, const L: usize>(
    p: &PathPlan,
    (y, x1t, w): (&[T], &[T], &[T]),
    sums: &mut [T],
    u: usize,
) {
    let m = p.m1;
    let (d1, d3) = dims::<D1, D3>(p);
    let y = &y[..d1 * d3];
    let wu = lanes::<T, L>(w, u);
    if D1 != 0 && D3 <= 3 {
        // Every `t[k]` in registers while `x1T[a]` is read once.
        let mut t = [[T::zero(); L]; D3];
        for a in 0..D1 {
            let x = lanes::<T, L>(x1t, a * m + u);
            for (k, t) in t.iter_mut().enumerate() {
                splat_madd::<T, FMA, L>(t, x, y[k * D1 + a]);
            }
        }
        for (k, t) in t.iter().enumerate() {
            multiply_add::<T, FMA, L>(lanes_mut::<T, L>(sums, k * m + u), wu, t);
        }
        return;
    }
    // One `t[k]` at a time, `x1T[a]` reread from L1 for each: with five or more `t[k]`
    // live they were spilled (mace-medium at 1000 nodes, forward: 14.7 against 11.5 ms).
    for k in 0..d3 {
        let mut t = [T::zero(); L];
        for a in 0..d1 {
            let x = lanes::<T, L>(x1t, a * m + u);
            splat_madd::<T, FMA, L>(&mut t, x, y[k * d1 + a]);
        }
        multiply_add::<T, FMA, L>(lanes_mut::<T, L>(sums, k * m + u), wu, &t);
    }
}

/// `t[l] += x[l] c` for `l < L`: `gemm::axpy` on arrays, whose length the compiler then
/// knows (through the slices, the forward at 1000 nodes ran 2.5x slower).
#[inline(always)]
fn splat_madd<T: Real, const FMA: bool, const L: usize>(t: &mut [T; L], x: &[T; L], c: T) {
    for l in 0..L {
        t[l] = madd::<T, FMA>(t[l], x[l], c);
    }
}

/// `acc[l] += a[l] b[l]` for `l < L`: `gemm::mul_acc` on arrays (see [`splat_madd`]).
#[inline(always)]
fn multiply_add<T: Real, const FMA: bool, const L: usize>(
    acc: &mut [T; L],
    a: &[T; L],
    b: &[T; L],
) {
    for l in 0..L {
        acc[l] = madd::<T, FMA>(acc[l], a[l], b[l]);
    }
}

/// `v[at..at + L]` as an array.
#[inline(always)]
fn lanes<T, const L: usize>(v: &[T], at: usize) -> &[T; L] {
    v[at..at + L].try_into().expect("L lanes")
}

/// `v[at..at + L]` as an array, to write.
#[inline(always)]
fn lanes_mut<T, const L: usize>(v: &mut [T], at: usize) -> &mut [T; L] {
    (&mut v[at..at + L]).try_into().expect("L lanes")
}

/// `scale rows` with each row's irrep blocks transposed ([`transpose_blocks`]), in a buffer
/// kept on the calling thread from call to call (fresh pages cost ~5% of a forward at 1000
/// nodes).
fn transposed_rows<T: Real>(irreps: &Irreps, rows: &[T], scale: T) -> Reused<Vec<T>> {
    let d = irreps.dim();
    let mut t = Reused::<Vec<T>>::take();
    t.resize(rows.len(), T::zero());
    t.par_chunks_mut(NODE_CHUNK * d.max(1))
        .zip(rows.par_chunks(NODE_CHUNK * d.max(1)))
        .for_each(|(t, x)| {
            for (t, x) in t.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                transpose_blocks(irreps, x, t, false);
                if scale != T::one() {
                    t.iter_mut().for_each(|v| *v *= scale);
                }
            }
        });
    t
}

/// `to` set to `from` with each irrep block of `irreps` transposed: `[mul][d]` to `[d][mul]`,
/// or back when `back`.
fn transpose_blocks<T: Real>(irreps: &Irreps, from: &[T], to: &mut [T], back: bool) {
    let avx2 = Simd::detect().avx2();
    let mut at = 0;
    for mi in irreps {
        let (mul, d) = (mi.mul, mi.ir.dim());
        let (from, to) = (&from[at..at + mul * d], &mut to[at..at + mul * d]);
        if back {
            transpose(avx2, (d, mul), from, mul, to, d);
        } else {
            transpose(avx2, (mul, d), from, d, to, mul);
        }
        at += mul * d;
    }
}
