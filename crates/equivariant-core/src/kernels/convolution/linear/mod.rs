//! The fused convolution with weights from a linear layer, `w_e = h_e L`, factorized: the
//! tensor product is linear in its weights, so
//!
//! `out_i = scale sum_q L[k, q] S_i[k, q]`, `S_i = T_i^T H_i`,
//!
//! where row `e` of `T_i` (`[edges, pairs x d3]`) holds the Clebsch-Gordan products `t_uv(e)`
//! of `x1[src[e], u]` and `x2[e, v]` (one `d3`-vector per multiplicity pair of each path) and
//! row `e` of `H_i` is `h_e`, for the edges `e` into node `i`. Per edge this costs `width x
//! pairs x d3` multiply-adds instead of `width x weight_numel` to form `w_e` plus the product
//! itself; the weights are applied once per node, not once per edge. For the guide (`width`
//! 16, 70 pair components, 400 weights) that is 1120 instead of 6400 + ~1000 per edge. No
//! per-edge weight or message is ever formed.
//!
//! That factorization pays where a pair feeds many weights (`uvw`: `mo` of them). A pair of
//! a `uvu`-like path has one weight, so there the node's per-edge weights `W_i = H_i L_one`
//! are formed in cache (`width` per pair and edge) and contracted with the pair's products
//! (`d3`), instead of `width d3` for `T^T H` (see [`OnePair`]).
//!
//! Everything per node is laid out edge-minor (`T_i` stored `[pairs x d3][edges]`, the
//! gathered `x1` rows `[d1][edges]`, edges padded to a multiple of [`LANES`]), so the
//! Clebsch-Gordan products run as vector operations across the node's edges and the three
//! per-node products (`T^T H`, the output contraction, and in the backward `G H^T`, `T^T
//! G`) are register-blocked matrix products ([`gemm`]).
//!
//! The backward also runs per destination `i`, recomputing `T_i`: `G_i = dL/dS_i` from
//! `grad_out[i]` and `L`; `dT_i = G_i H_i^T`; `dH_i = T_i G_i^T`; `dL += S_i . grad_out[i]`;
//! and `dT_i` back through the Clebsch-Gordan blocks to `x2[e]` and to one `x1` gradient row
//! per edge, which a second pass sums per source node in edge order (deterministic, no
//! atomics; the price is one `[E, d1]` buffer).

mod tangent;

use std::collections::BTreeMap;
use std::ops::Range;

use rayon::prelude::*;

use crate::Real;
use crate::graph::EdgeIndex;
use crate::kernels::buffers::{EdgeRows, Reused};
use crate::kernels::gemm::{LANES, Rows, axpy, gemm, gemm_tn, lane_sum, lane_sums8, mul_acc};
use crate::kernels::simd::{Avx2Fma, prefetch_line};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::{as_f32, as_f32_mut};
use crate::kernels::transpose::transpose;
#[cfg(target_arch = "x86_64")]
use crate::kernels::vec8::F32x8;
use crate::kernels::vec8::{Lanes8, Vec8};
use crate::o3::tensor_product::{PathPlan, Targets, TensorProductPlan};

pub(super) use tangent::TangentConv;

/// Nodes per parallel task of the forward, the tangent forward and the sums by source
/// (fixed: sums in a fixed order for any thread count); [`forward_chunk`] halves it for the
/// forward on small graphs.
const NODE_CHUNK: usize = 16;
/// Graphs of fewer nodes run the forward in tasks of half [`NODE_CHUNK`].
const SMALL_GRAPH: usize = 512;

/// Nodes per task of the forward on a graph of `nodes` nodes: [`NODE_CHUNK`], or half of it
/// below [`SMALL_GRAPH`] nodes, where the tasks were too few to keep the threads evenly
/// busy (100 nodes: 7 tasks on 2 threads) and the per-task products of a larger block did not
/// pay back. A function of the graph only, so a graph's results do not depend on the thread
/// count.
fn forward_chunk(nodes: usize) -> usize {
    if nodes < SMALL_GRAPH {
        NODE_CHUNK / 2
    } else {
        NODE_CHUNK
    }
}

/// Nodes per step of the backward's first pass.
const BACKWARD_CHUNK: usize = 16;
/// At most this many partial `dL/dL` in the backward (each a task over consecutive steps).
const MAX_PARTIALS: usize = 64;

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

/// One path's pair products, edge-vectorized.
///
/// `Y_v[k, i] = sum_j c x2[v, j]` is the path's Clebsch-Gordan block contracted with `x2`;
/// only its structural nonzeros `(k, i)` (`blocks`, sorted by `k`) are formed, and
/// `t_uv[k] = sum_i Y_v[k, i] x1[u, i]`.
struct PathCg<T> {
    /// Row of pair `r`, component `c`: `first + c npairs + r` (so the rows of component `c`
    /// are contiguous, as the output contraction reads them); `All` paths only.
    first: usize,
    npairs: usize,
    /// The structural nonzeros.
    blocks: Vec<Block<T>>,
    /// `blocks[by_k[k]]` are those of output component `k`.
    by_k: Vec<Range<usize>>,
    /// The blocks of each input component `i`: `(i, [(block, k)])`, for the `One` pairs'
    /// backward (one `dx` row per `i`).
    by_i: Vec<(usize, Vec<(usize, usize)>)>,
    /// First row of the path's `Y` blocks in the node's `z` buffer (`[m2][blocks]`).
    z_first: usize,
    /// Every pair goes to every output channel (`Targets::All`: uvw, weighted uuw, u<vw).
    all: bool,
    /// The output multiplicity rounded up to a multiple of 16 (whole register blocks).
    mo_pad: usize,
}

/// A structural nonzero `(k, i)` of `Y_v` and its terms `(j, c)`.
struct Block<T> {
    k: usize,
    i: usize,
    terms: Vec<(usize, T)>,
}

/// A pair of a `One` path (uvu, uuu, ...): one weight, one output channel.
///
/// These are not factorized: a pair has a single weight, so forming the node's per-edge
/// weights `W = H L_one` (`width` multiply-adds per pair and edge) and contracting them with
/// the pair's products (`d3` more) beats summing `t (x) h` (`width d3`). For mace-medium
/// (mean `d3` 3.25) that is a third of the work.
#[derive(Clone)]
struct OnePair {
    path: usize,
    u: usize,
    v: usize,
    /// Index in `out` of the pair's component 0 (`p.out + o d3`).
    out: usize,
    /// The pair's row of `W` (`None`: no weight).
    col: Option<usize>,
}

/// What the passes share: the per-path plans and `L` in the layouts the products read.
struct Plan<T> {
    cg: Vec<PathCg<T>>,
    /// Pair rows of the `All` paths (`sum pairs x d3`), the same rounded up to a multiple of
    /// 4 (zero rows, so the product `T H` runs in whole register blocks), and `Y` rows of a
    /// node.
    rows: usize,
    rows_pad: usize,
    z_rows: usize,
    width: usize,
    /// For `All` paths, `L_p[(r, k), o] = L[k, offset + w_base(r) + o]` (`[pairs width,
    /// mo_pad]`, zero columns past `mo`) and its transpose `[mo][pairs width]`; empty for
    /// the others.
    lp: Vec<Vec<T>>,
    lpt: Vec<Vec<T>>,
    /// The pairs of `One` paths; the weight index of each row of `W` (`nq` of them), and
    /// `L` restricted to those columns, transposed: `L_one^T` `[nq][width]`.
    ones: Vec<OnePair>,
    one_q: Vec<usize>,
    lone_t: Vec<T>,
    /// The `One` pairs with a weight (the only ones a weight's tangent moves).
    weighted_ones: Vec<OnePair>,
}

impl<T: Real> Plan<T> {
    fn new(tp: &TensorProductPlan, linear: &[T], width: usize) -> Self {
        let numel = tp.weight_numel;
        let coefs = tp.coefficients::<T>();
        let (mut rows, mut z_rows) = (0, 0);
        let (mut cg, mut lp, mut lpt) = (Vec::new(), Vec::new(), Vec::new());
        for (p, c) in tp.paths.iter().zip(&coefs) {
            let mut nonzeros: BTreeMap<(usize, usize), Vec<(usize, T)>> = BTreeMap::new();
            for (idx, &cv) in p.forward.idx.iter().zip(&c.forward) {
                let (i, j, k) = (idx[0] as usize, idx[1] as usize, idx[2] as usize);
                nonzeros.entry((k, i)).or_default().push((j, cv));
            }
            let blocks: Vec<_> = nonzeros
                .into_iter()
                .map(|((k, i), terms)| Block { k, i, terms })
                .collect();
            let by_k = (0..p.d3)
                .map(|k| {
                    let start = blocks.partition_point(|b| b.k < k);
                    start..blocks.partition_point(|b| b.k <= k)
                })
                .collect();
            let by_i = (0..p.d1)
                .map(|i| {
                    let of_i = blocks.iter().enumerate().filter(|(_, b)| b.i == i);
                    (i, of_i.map(|(n, b)| (n, b.k)).collect::<Vec<_>>())
                })
                .filter(|(_, of_i)| !of_i.is_empty())
                .collect();
            let all = targets_all(p);
            let mo_pad = p.mo.div_ceil(16) * 16;
            let (mut l, mut lt_p) = (Vec::new(), Vec::new());
            if all {
                let kd = p.pairs.len() * width;
                l = vec![T::zero(); kd * mo_pad];
                lt_p = vec![T::zero(); kd * p.mo];
                for (r, &(_, _, target)) in p.pairs.iter().enumerate() {
                    let Targets::All { w_base } = target else {
                        unreachable!("a path's pairs share their kind of target")
                    };
                    for k in 0..width {
                        for o in 0..p.mo {
                            let v = linear[k * numel + p.weight_offset + w_base as usize + o];
                            l[(r * width + k) * mo_pad + o] = v;
                            lt_p[o * kd + r * width + k] = v;
                        }
                    }
                }
            }
            lp.push(l);
            lpt.push(lt_p);
            z_rows += p.m2 * blocks.len();
            cg.push(PathCg {
                first: rows,
                npairs: p.pairs.len(),
                z_first: z_rows - p.m2 * blocks.len(),
                blocks,
                by_k,
                by_i,
                all,
                mo_pad,
            });
            if all {
                rows += p.pairs.len() * p.d3;
            }
        }
        let (mut ones, mut one_q) = (Vec::new(), Vec::new());
        for (path, p) in tp.paths.iter().enumerate() {
            for &(u, v, target) in &p.pairs {
                let Targets::One { o, .. } = target else {
                    continue;
                };
                let col = one_weight(p, target).map(|q| {
                    one_q.push(q);
                    one_q.len() - 1
                });
                ones.push(OnePair {
                    path,
                    u: u as usize,
                    v: v as usize,
                    out: p.out + o as usize * p.d3,
                    col,
                });
            }
        }
        let nq = one_q.len();
        let mut lone_t = vec![T::zero(); nq * width];
        for (j, &q) in one_q.iter().enumerate() {
            for k in 0..width {
                lone_t[j * width + k] = linear[k * numel + q];
            }
        }
        Plan {
            cg,
            rows,
            rows_pad: padded_rows(rows),
            z_rows,
            width,
            lp,
            lpt,
            weighted_ones: ones.iter().filter(|o| o.col.is_some()).cloned().collect(),
            ones,
            one_q,
            lone_t,
        }
    }
}

/// Whether every pair of `p` goes to every output channel (`Targets::All`: the pairs share
/// their kind of target).
fn targets_all(p: &PathPlan) -> bool {
    matches!(p.pairs.first(), Some((_, _, Targets::All { .. })))
}

/// A node's rows of `T` and `S` stored: `rows` (the `All` paths' pair components) rounded up
/// to a multiple of 4.
fn padded_rows(rows: usize) -> usize {
    rows.div_ceil(4) * 4
}

impl TensorProductPlan {
    /// The length of the node sums `[S; dS]` a tangent convolution with hidden `width` over
    /// `nodes` nodes saves for its backward: `2 nodes rows_pad width`; none when it runs
    /// expanded ([`TensorProductPlan::conv_tangent_expands`]).
    pub(in crate::kernels) fn tangent_sums_len(&self, nodes: usize, width: usize) -> usize {
        if self.conv_tangent_expands(width) {
            return 0;
        }
        let rows: usize = (self.paths.iter())
            .filter(|p| targets_all(p))
            .map(|p| p.pairs.len() * p.d3)
            .sum();
        2 * nodes * padded_rows(rows) * width
    }
}

/// The weight index of a `One` pair, `None` for a pair without weight.
fn one_weight(p: &PathPlan, target: Targets) -> Option<usize> {
    match target {
        Targets::One { w: Some(w), .. } if p.has_weight => Some(p.weight_offset + w as usize),
        _ => None,
    }
}

/// One node's gathered inputs and pair products (every entry a node reads is written
/// first).
#[derive(Default)]
struct NodeWork<T> {
    /// The node's edge count and its padded length.
    ne: usize,
    np: usize,
    /// Gathered `x1[src[e]]`, `[d1][np]`; `x2[e]`, `[d2][np]`; `Y` blocks, `[z_rows][np]`.
    x: Vec<T>,
    y: Vec<T>,
    z: Vec<T>,
    /// Pair products `[rows_pad][np]`; hidden rows `[np][width]` and transposed
    /// `[width][np]`.
    t: Vec<T>,
    h: Vec<T>,
    ht: Vec<T>,
    /// The per-edge weights of the `One` pairs, `W^T = L_one^T H^T`, `[nq][np]`.
    we: Vec<T>,
    /// The gathered `x2` rows, `[edges][d2]`, before their transpose into `y`.
    by_edge: Vec<T>,
}

impl<T> NodeWork<T> {
    /// What the `One` pairs read: the gathered `x`, the `Y` blocks, the per-edge weights.
    fn one_inputs(&self) -> [&[T]; 3] {
        [&self.x, &self.z, &self.we]
    }
}

/// Per-task buffers of a chunk of nodes.
#[derive(Default)]
struct ChunkWork<T> {
    /// One entry per node of the chunk (the forward uses the first only).
    nodes: Vec<NodeWork<T>>,
    /// `S = T H` of every node, `[nodes][rows_pad][width]`; `G = dL/dS`, the same shape.
    s: Vec<T>,
    g: Vec<T>,
    /// The scaled output gradients `[nodes][d_out]`, and a small block of them.
    gs: Vec<T>,
    tmp: Vec<T>,
    /// Backward per node: `dT` `[rows][np]`, `dx` `[d1][np]`, `dY` `[z_rows][np]`, `dx2`
    /// `[d2][np]`.
    dt: Vec<T>,
    dx: Vec<T>,
    dz: Vec<T>,
    dy: Vec<T>,
    /// `One` pairs: `dL/dW^T` `[nq][np]`; the chunk's `dL/dL_one^T` `[nq][width]`.
    dw: Vec<T>,
    dlone: Vec<T>,
    /// A node's edge gradients by edge, `[edges][width]`, on their way to the edges' rows.
    by_edge: Vec<T>,
}

/// `v` resized to `len` zeros.
fn zeros<T: Real>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    v.clear();
    v.resize(len, T::zero());
    v
}

/// The first `len` entries of `v` (grown if needed), holding whatever the last node left:
/// for buffers the caller writes in full (a per-node memset of every buffer cost ~10% of
/// the forward).
fn overwritten<T: Real>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::zero());
    }
    &mut v[..len]
}

/// Hidden activations below this magnitude (`2^-103` in f32, `2^-970` in f64) enter the
/// products as zero.
///
/// An edge at the cutoff of a smooth radial basis (e3nn's `smooth_finite`, `exp(-1/x)`
/// near `x = 0`) has hidden activations of `1e-40` to `1e-30` in f32, and its weights and
/// products fall below the smallest normal float: each multiply-add with a subnormal result
/// then takes a microcode assist of ~100 cycles, and one such edge in a node slowed the
/// node's products `W = H L` several times over (SimpleNetwork at 1000 nodes: 27 GFLOP/s
/// per core; 75 with the CPU's flush-to-zero set, as an experiment; the forward took
/// 1.3-1.4x as long). Flushed here, such an activation moves a weight by at most `|h| |L|`,
/// ~`1e-31` of the unit-scale activations of the other edges: some 24 orders of magnitude
/// below the f32 rounding of the result.
#[inline(always)]
pub(super) fn flush_below<T: Real>() -> T {
    T::min_positive_value() / T::epsilon()
}

/// A hidden activation as the products take it: zero below `tiny` ([`flush_below`]).
#[inline(always)]
pub(super) fn flushed<T: Real>(h: T, tiny: T) -> T {
    if h.abs() < tiny { T::zero() } else { h }
}

/// How many edges ahead the gather prefetches its source rows (random in the node order).
const PREFETCH: usize = 4;

/// Asks for the cache lines of `row` (a hint; nothing on other targets).
#[inline(always)]
pub(super) fn prefetch<T>(row: &[T]) {
    let p = row.as_ptr() as *const u8;
    for offset in (0..std::mem::size_of_val(row)).step_by(64) {
        prefetch_line(p.wrapping_add(offset));
    }
}

/// Zeroes columns `ne..np` of each `np`-long row of `m`.
fn zero_padding<T: Real>(m: &mut [T], ne: usize, np: usize) {
    if ne < np {
        m.chunks_exact_mut(np)
            .for_each(|row| row[ne..].fill(T::zero()));
    }
}

/// Row `e` of `rows` (width `m.len() / np`) from column `n` of the edge-minor `m`
/// (`[width][np]`), for the `n`-th of `edges`: `m` transposed into `scratch` (AVX2 blocks
/// with `avx2`), then one contiguous copy per edge (element by element, the strided
/// stores had been the backward's largest cost after its products).
///
/// # Safety
///
/// No other task writes the rows of `edges` meanwhile (see [`EdgeRows::row`]).
#[inline(always)]
unsafe fn write_edge_rows<T: Real>(
    avx2: Option<Avx2Fma>,
    rows: &EdgeRows<'_, T>,
    edges: &[u32],
    m: &[T],
    np: usize,
    scratch: &mut Vec<T>,
) {
    let (width, ne) = (m.len() / np.max(1), edges.len());
    if width == 0 || ne == 0 {
        return;
    }
    if let Some(first) = consecutive(edges) {
        // SAFETY: by the caller's contract (the rows are those of `edges`).
        let block = unsafe { rows.rows(first, ne, width) };
        transpose(avx2, (width, ne), m, np, block, width);
        return;
    }
    let by_edge = overwritten(scratch, ne * width);
    transpose(avx2, (width, ne), m, np, by_edge, width);
    // SAFETY: by the caller's contract.
    unsafe { write_rows(rows, edges, by_edge) };
}

/// The first of `edges` if they are consecutive ids (a node's edges in a graph sorted by
/// destination, as radius graphs are): their rows then form one block, read or written
/// whole instead of row by row (a library call per row of a few numbers).
#[inline(always)]
pub(super) fn consecutive(edges: &[u32]) -> Option<usize> {
    let &first = edges.first()?;
    edges
        .windows(2)
        .all(|w| w[0].checked_add(1) == Some(w[1]))
        .then_some(first as usize)
}

/// Row `e` of `rows` from row `n` of `by_edge` (`[edges][width]`, `width = by_edge.len() /
/// edges.len()`), for the `n`-th of `edges`.
///
/// # Safety
///
/// As [`write_edge_rows`].
#[inline(always)]
pub(super) unsafe fn write_rows<T: Real>(rows: &EdgeRows<'_, T>, edges: &[u32], by_edge: &[T]) {
    let width = by_edge.len() / edges.len().max(1);
    if let Some(first) = consecutive(edges) {
        // SAFETY: by the caller's contract (the rows are those of `edges`).
        unsafe { rows.rows(first, edges.len(), width) }.copy_from_slice(by_edge);
        return;
    }
    for (&e, src) in edges.iter().zip(by_edge.chunks_exact(width.max(1))) {
        // SAFETY: by the caller's contract (the edges of a node are distinct).
        unsafe { rows.row(e as usize, width) }.copy_from_slice(src);
    }
}

/// Component `c` of pair `(u, v)` of a path for the node's edges: `row[e] = sum_(k = c, i)
/// Y_v[k, i][e] x[u, i][e]`, from the node's gathered `x` and `Y` blocks `z`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pair_component<T: Real, const FMA: bool>(
    p: &PathPlan,
    cg: &PathCg<T>,
    (u, v): (usize, usize),
    c: usize,
    x: &[T],
    z: &[T],
    np: usize,
    row: &mut [T],
) {
    let nb = cg.blocks.len();
    let range = cg.by_k[c].clone();
    if range.is_empty() {
        row.fill(T::zero());
        return;
    }
    let (zr, xr) = (cg.z_first + v * nb, p.in1 + u * p.d1);
    let (b0, zb) = (range.start, &z[(zr + range.start) * np..][..np]);
    let xi = &x[(xr + cg.blocks[b0].i) * np..][..np];
    for ((t, &a), &b) in row.iter_mut().zip(zb).zip(xi) {
        *t = a * b;
    }
    for b in range.start + 1..range.end {
        let zb = &z[(zr + b) * np..][..np];
        let xi = &x[(xr + cg.blocks[b].i) * np..][..np];
        mul_acc::<T, FMA>(row, zb, xi);
    }
}

/// `c (+)= a b` over a node's edges: `a` `[rows_pad][np]` (pair products), `b`
/// `[np][width]` (hidden rows), `c` `[rows_pad][width]`; `S = T H` with `a = T`, `b = H`.
#[inline(always)]
fn sums<T: Real, const FMA: bool, const ACC: bool>(
    avx2: Option<Avx2Fma>,
    plan: &Plan<T>,
    (a, b): (&[T], &[T]),
    np: usize,
    c: &mut [T],
) {
    let w = plan.width;
    gemm::<T, FMA, ACC>(
        avx2,
        (plan.rows_pad, w, np),
        Rows {
            data: a,
            stride: np,
        },
        Rows { data: b, stride: w },
        c,
        w,
    );
}

/// Path `p`'s `Y` blocks in `z` (see [`TensorProductPlan::node_z`]).
#[inline(always)]
fn path_z<T: Real, const FMA: bool>(p: &PathPlan, cg: &PathCg<T>, y: &[T], np: usize, z: &mut [T]) {
    let nb = cg.blocks.len();
    for v in 0..p.m2 {
        for (b, Block { terms, .. }) in cg.blocks.iter().enumerate() {
            let zb = &mut z[(cg.z_first + v * nb + b) * np..][..np];
            zb.fill(T::zero());
            for &(j, c) in terms {
                axpy::<T, FMA>(zb, c, &y[(p.in2 + v * p.d2 + j) * np..][..np]);
            }
        }
    }
}

/// Path `p`'s pair products in `t` if it is an `All` path (see
/// [`TensorProductPlan::node_t`]).
#[inline(always)]
fn path_t<T: Real, const FMA: bool>(
    p: &PathPlan,
    cg: &PathCg<T>,
    x: &[T],
    z: &[T],
    np: usize,
    t: &mut [T],
) {
    if !cg.all {
        return;
    }
    for (r, &(u, v, _)) in p.pairs.iter().enumerate() {
        for c in 0..p.d3 {
            let row = &mut t[(cg.first + c * cg.npairs + r) * np..][..np];
            pair_component::<T, FMA>(p, cg, (u as usize, v as usize), c, x, z, np, row);
        }
    }
}

/// Which of a node's inputs [`TensorProductPlan::gather_node`] gathers: the `x1`, `x2`
/// and hidden rows, and the hidden rows transposed (with `hidden` only).
#[derive(Clone, Copy)]
struct Gather {
    x1: bool,
    x2: bool,
    hidden: bool,
    transposed_h: bool,
}

impl Gather {
    /// Every input, and `H^T` if `transposed_h`.
    fn all(transposed_h: bool) -> Self {
        Gather {
            x1: true,
            x2: true,
            hidden: true,
            transposed_h,
        }
    }
}

impl TensorProductPlan {
    /// Gathers node `i`'s edges into `work`: of `x`, `y`, `h` and `ht`, those in `parts`.
    #[inline(always)]
    fn gather_node<T: Real>(
        &self,
        avx2: Option<Avx2Fma>,
        a: &LinearConv<'_, T>,
        i: usize,
        work: &mut NodeWork<T>,
        parts: Gather,
    ) {
        let (d1, d2, w) = (self.irreps_in1.dim(), self.irreps_in2.dim(), a.width);
        let edges = a.edges.by_dst(i);
        let (ne, np) = (edges.len(), edges.len().div_ceil(LANES) * LANES);
        work.ne = ne;
        work.np = np;
        if parts.x1 {
            // The source rows one after another (whole-row copies), then transposed in
            // blocks: one element at a time, each load read another edge's row and was
            // bounds-checked (4-5% of a training step went to this gather).
            let by_edge = overwritten(&mut work.by_edge, ne * d1);
            for (n, (row, &e)) in by_edge.chunks_exact_mut(d1.max(1)).zip(edges).enumerate() {
                if let Some(&ahead) = edges.get(n + PREFETCH) {
                    prefetch(&a.x1[a.edges.src(ahead as usize) * d1..][..d1]);
                }
                let j = a.edges.src(e as usize);
                row.copy_from_slice(&a.x1[j * d1..(j + 1) * d1]);
            }
            let x = overwritten(&mut work.x, d1 * np);
            zero_padding(x, ne, np);
            transpose(avx2, (ne, d1), by_edge, d1, x, np);
        }
        if parts.x2 {
            // The x2 rows one after another (already so for consecutive edges), then
            // transposed (element by element into `y`, the stores were strided).
            let rows: &[T] = match consecutive(edges) {
                Some(first) => &a.x2[first * d2..(first + ne) * d2],
                None => {
                    let by_edge = overwritten(&mut work.by_edge, ne * d2);
                    for (row, &e) in by_edge.chunks_exact_mut(d2.max(1)).zip(edges) {
                        let e = e as usize;
                        row.copy_from_slice(&a.x2[e * d2..(e + 1) * d2]);
                    }
                    by_edge
                }
            };
            let y = overwritten(&mut work.y, d2 * np);
            zero_padding(y, ne, np);
            transpose(avx2, (ne, d2), rows, d2, y, np);
        }
        if parts.hidden {
            let h = overwritten(&mut work.h, np * w);
            h[ne * w..].fill(T::zero());
            let tiny = flush_below::<T>();
            for (n, &e) in edges.iter().enumerate() {
                let e = e as usize;
                let src = &a.hidden[e * w..(e + 1) * w];
                for (y, &v) in h[n * w..(n + 1) * w].iter_mut().zip(src) {
                    *y = flushed(v, tiny);
                }
            }
            if parts.transposed_h {
                let ht = overwritten(&mut work.ht, w * np);
                zero_padding(ht, ne, np);
                transpose(avx2, (ne, w), h, w, ht, np);
            }
        }
    }

    /// The node's `Y` blocks (`z`) and pair products (`t`) from its gathered `x`, `y`.
    #[inline(always)]
    fn node_pair_products<T: Real, const FMA: bool>(&self, plan: &Plan<T>, work: &mut NodeWork<T>) {
        let np = work.np;
        let z = overwritten(&mut work.z, plan.z_rows * np);
        let t = overwritten(&mut work.t, plan.rows_pad * np);
        t[plan.rows * np..].fill(T::zero());
        // Path by path, so a path's `Y` blocks are still in cache for its products.
        for (p, cg) in self.paths.iter().zip(&plan.cg) {
            path_z::<T, FMA>(p, cg, &work.y, np, z);
            path_t::<T, FMA>(p, cg, &work.x, z, np, t);
        }
    }

    /// The `Y` blocks `z` (`[z_rows][np]`) of a node's gathered `x2` rows `y`
    /// (`[d2][np]`); every row written (the first term assigns, the others add).
    #[inline(always)]
    fn node_z<T: Real, const FMA: bool>(&self, plan: &Plan<T>, y: &[T], np: usize, z: &mut [T]) {
        for (p, cg) in self.paths.iter().zip(&plan.cg) {
            path_z::<T, FMA>(p, cg, y, np, z);
        }
    }

    /// The `All` paths' pair products `t` (`[rows_pad][np]`, the padding rows zero) of a
    /// node's gathered `x1` rows `x` and `Y` blocks `z`.
    #[inline(always)]
    fn node_t<T: Real, const FMA: bool>(
        &self,
        plan: &Plan<T>,
        x: &[T],
        z: &[T],
        np: usize,
        t: &mut [T],
    ) {
        t[plan.rows * np..].fill(T::zero());
        for (p, cg) in self.paths.iter().zip(&plan.cg) {
            path_t::<T, FMA>(p, cg, x, z, np, t);
        }
    }

    /// The node's per-edge weights of the `One` pairs, `W^T = L_one^T H^T` (`[nq][np]`).
    #[inline(always)]
    fn node_one_weights<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        work: &mut NodeWork<T>,
    ) {
        let (np, w, nq) = (work.np, plan.width, plan.one_q.len());
        let we = overwritten(&mut work.we, nq * np);
        gemm::<T, FMA, false>(
            avx2,
            (nq, np, w),
            Rows {
                data: &plan.lone_t,
                stride: w,
            },
            Rows {
                data: &work.ht,
                stride: np,
            },
            we,
            np,
        );
    }

    /// `acc[out + c] += sum_e t_c[e] W[e, col]` (or `sum_e t_c[e]` without weight) for every
    /// `One` pair, `t_c[e] = sum_(k = c, i) Y_v[k, i][e] x[u, i][e]` (see
    /// [`one_pairs_forward_lanes`]).
    #[inline(always)]
    fn one_pairs_forward<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        (plan, ones): (&Plan<T>, &[OnePair]),
        inputs: [&[T]; 3],
        np: usize,
        acc: &mut [T],
    ) {
        #[cfg(target_arch = "x86_64")]
        if FMA
            && let Some(token) = avx2
            && let (Some(x), Some(z), Some(we), Some(acc)) = (
                as_f32(inputs[0]),
                as_f32(inputs[1]),
                as_f32(inputs[2]),
                as_f32_mut(acc),
            )
        {
            return one_pairs_forward_lanes::<T, F32x8, FMA>(
                (token, avx2),
                &self.paths,
                plan,
                ones,
                [x, z, we],
                np,
                acc,
            );
        }
        one_pairs_forward_lanes::<T, Lanes8<T, FMA>, FMA>(
            ((), avx2),
            &self.paths,
            plan,
            ones,
            inputs,
            np,
            acc,
        )
    }

    /// The backward of [`Self::one_pairs_forward`] for one node with scaled output gradient
    /// `gs` (see [`one_pairs_backward_lanes`]): `dL/dW^T` into `dw` (if given) and the
    /// gradients of the gathered `x` and of the `Y` blocks added to `dxz` (if given).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn one_pairs_backward<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        (plan, ones): (&Plan<T>, &[OnePair]),
        inputs: [&[T]; 3],
        np: usize,
        gs: &[T],
        dw: Option<&mut [T]>,
        dxz: Option<(&mut [T], &mut [T])>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if FMA
            && let Some(token) = avx2
            && let (Some(x), Some(z), Some(we), Some(gs)) = (
                as_f32(inputs[0]),
                as_f32(inputs[1]),
                as_f32(inputs[2]),
                as_f32(gs),
            )
        {
            let dw = dw.map(|d| as_f32_mut(d).expect("T is f32"));
            let dxz = dxz.map(|(dx, dz)| {
                let f = |d| as_f32_mut(d).expect("T is f32");
                (f(dx), f(dz))
            });
            return one_pairs_backward_lanes::<T, F32x8>(
                token,
                &self.paths,
                plan,
                ones,
                [x, z, we],
                np,
                gs,
                dw,
                dxz,
            );
        }
        let _ = avx2;
        one_pairs_backward_lanes::<T, Lanes8<T, FMA>>(
            (),
            &self.paths,
            plan,
            ones,
            inputs,
            np,
            gs,
            dw,
            dxz,
        )
    }

    /// `dL_one^T += dW^T H` (`[nq][width]`) for one node's hidden rows `h` (`[np][width]`).
    #[inline(always)]
    fn one_linear_grad<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        (h, np): (&[T], usize),
        dw: &[T],
        dlone: &mut [T],
    ) {
        let w = plan.width;
        gemm::<T, FMA, true>(
            avx2,
            (plan.one_q.len(), w, np),
            Rows {
                data: dw,
                stride: np,
            },
            Rows { data: h, stride: w },
            dlone,
            w,
        );
    }

    /// Output rows `first..` of `out` (`[nodes, d_out]`): per node its sums `S`, then per
    /// `All` path and component one product over the chunk's nodes.
    #[inline(always)]
    fn forward_nodes<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        a: &LinearConv<'_, T>,
        first: usize,
        out: &mut [T],
        work: &mut ChunkWork<T>,
    ) {
        let (d_out, w) = (self.irreps_out.dim(), a.width);
        let nodes = out.len() / d_out.max(1);
        let srow = plan.rows_pad * w;
        if work.nodes.is_empty() {
            work.nodes.push(NodeWork::default());
        }
        let s_all = overwritten(&mut work.s, nodes * srow);
        let weighted_ones = !plan.one_q.is_empty();
        out.fill(T::zero());
        for (r, acc) in out.chunks_exact_mut(d_out).enumerate() {
            let nw = &mut work.nodes[0];
            self.gather_node(avx2, a, first + r, nw, Gather::all(weighted_ones));
            self.node_pair_products::<T, FMA>(plan, nw);
            let s = &mut s_all[r * srow..(r + 1) * srow];
            sums::<T, FMA, false>(avx2, plan, (&nw.t, &nw.h), nw.np, s);
            if weighted_ones {
                self.node_one_weights::<T, FMA>(avx2, plan, nw);
            }
            self.one_pairs_forward::<T, FMA>(avx2, (plan, &plan.ones), nw.one_inputs(), nw.np, acc);
        }
        self.contract_nodes::<T, FMA>(avx2, plan, s_all, out, &mut work.tmp);
        out.iter_mut().for_each(|y| *y *= a.scale);
    }

    /// `out[i, o, c] += sum_(r, k) S_i[(c, r), k] L_p[(r, k), o]` for the `All` paths, all
    /// the nodes of `out` (`[nodes, d_out]`) at once, from their sums `s_all` (`[nodes]
    /// [rows_pad][width]`).
    #[inline(always)]
    fn contract_nodes<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        s_all: &[T],
        out: &mut [T],
        tmp: &mut Vec<T>,
    ) {
        let (d_out, w) = (self.irreps_out.dim(), plan.width);
        let nodes = out.len() / d_out.max(1);
        let srow = plan.rows_pad * w;
        // out[i, o, c] += sum_(r, k) S_i[(c, r), k] L_p[(r, k), o], all nodes i at once.
        for ((p, cg), lp) in self.paths.iter().zip(&plan.cg).zip(&plan.lp) {
            if !cg.all {
                continue;
            }
            let kd = cg.npairs * w;
            for c in 0..p.d3 {
                let tmp = overwritten(tmp, nodes * cg.mo_pad);
                gemm::<T, FMA, false>(
                    avx2,
                    (nodes, cg.mo_pad, kd),
                    Rows {
                        data: &s_all[(cg.first + c * cg.npairs) * w..],
                        stride: srow,
                    },
                    Rows {
                        data: lp,
                        stride: cg.mo_pad,
                    },
                    tmp,
                    cg.mo_pad,
                );
                for (acc, row) in out.chunks_exact_mut(d_out).zip(tmp.chunks_exact(cg.mo_pad)) {
                    for (o, &v) in row[..p.mo].iter().enumerate() {
                        acc[p.out + o * p.d3 + c] += v;
                    }
                }
            }
        }
    }

    /// Phase 2 of the backward, per `All` path and component, over a chunk's `count` nodes
    /// with scaled output gradients `gs_all` (`[count][d_out]`): `dL_p^T[o, (r, k)] +=
    /// sum_i g_i[o, c] S_i[(c, r), k]` into `dlin` (with the nodes' sums `s_all`), and `G_i[(c,
    /// r), k] = sum_o g_i[o, c] L_p[(r, k), o]` into `g_all` (`[count][rows_pad][width]`;
    /// rows `< plan.rows` written).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn sum_gradients<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        gs_all: &[T],
        count: usize,
        (s_all, mut dlin): (&[T], Option<&mut [T]>),
        mut g_all: Option<&mut [T]>,
        tmp: &mut Vec<T>,
    ) {
        let (d_out, w) = (self.irreps_out.dim(), plan.width);
        let srow = plan.rows_pad * w;
        for ((p, cg), lpt) in self.paths.iter().zip(&plan.cg).zip(&plan.lpt) {
            if !cg.all {
                continue;
            }
            let kd = cg.npairs * w;
            for c in 0..p.d3 {
                let rows = cg.first + c * cg.npairs;
                if let Some(dlin) = dlin.as_deref_mut() {
                    let gt = overwritten(tmp, p.mo * count);
                    for r in 0..count {
                        for o in 0..p.mo {
                            gt[o * count + r] = gs_all[r * d_out + p.out + o * p.d3 + c];
                        }
                    }
                    gemm::<T, FMA, true>(
                        avx2,
                        (p.mo, kd, count),
                        Rows {
                            data: gt,
                            stride: count,
                        },
                        Rows {
                            data: &s_all[rows * w..],
                            stride: srow,
                        },
                        &mut dlin[p.weight_offset * w..],
                        kd,
                    );
                }
                if let Some(g_all) = g_all.as_deref_mut() {
                    let gc = overwritten(tmp, count * p.mo);
                    for r in 0..count {
                        for o in 0..p.mo {
                            gc[r * p.mo + o] = gs_all[r * d_out + p.out + o * p.d3 + c];
                        }
                    }
                    gemm::<T, FMA, false>(
                        avx2,
                        (count, kd, p.mo),
                        Rows {
                            data: gc,
                            stride: p.mo,
                        },
                        Rows {
                            data: lpt,
                            stride: kd,
                        },
                        &mut g_all[rows * w..],
                        srow,
                    );
                }
            }
        }
    }

    /// [`Self::forward_nodes`] compiled for AVX2, for a CPU that has it (`token`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn forward_nodes_avx2<T: Real>(
        &self,
        token: Avx2Fma,
        plan: &Plan<T>,
        a: &LinearConv<'_, T>,
        first: usize,
        out: &mut [T],
        work: &mut ChunkWork<T>,
    ) {
        self.forward_nodes::<T, true>(Some(token), plan, a, first, out, work)
    }

    /// The factorized forward (see the module docs); `out` `[N, irreps_out.dim]`.
    pub(super) fn conv_forward_linear<T: Real>(&self, a: &LinearConv<'_, T>, out: &mut [T]) {
        self.conv_forward_linear_on(a, out, Avx2Fma::detect())
    }

    fn conv_forward_linear_on<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        out: &mut [T],
        isa: Option<Avx2Fma>,
    ) {
        let d_out = self.irreps_out.dim();
        let plan = Plan::new(self, a.linear, a.width);
        let nodes_per_task = forward_chunk(a.edges.num_nodes());
        out.par_chunks_mut(nodes_per_task * d_out)
            .enumerate()
            .for_each_init(Reused::<ChunkWork<T>>::take, |work, (chunk, out)| {
                let work = &mut **work;
                let first = chunk * nodes_per_task;
                #[cfg(target_arch = "x86_64")]
                if let Some(token) = isa {
                    // SAFETY: the CPU has AVX2 and FMA, the features `forward_nodes_avx2` is
                    // compiled for: `token` is an `Avx2Fma`, which only `Avx2Fma::detect`
                    // makes, on such a CPU.
                    return unsafe { self.forward_nodes_avx2(token, &plan, a, first, out, work) };
                }
                let _ = isa;
                self.forward_nodes::<T, false>(None, &plan, a, first, out, work)
            });
    }

    /// The first backward pass over nodes `first..first + count`: the partial `dL/dL`
    /// (per-path layouts, see [`Self::linear_gradient`]) into `dlin`, and the edge gradients.
    ///
    /// Three phases: per node, the gathered inputs, `T` and `S`; per `All` path and
    /// component, `dL` and `G` as products over the chunk's nodes; per node again, `dT`,
    /// `dH` and the way back to `x1` and `x2`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn backward_nodes<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        a: &LinearConv<'_, T>,
        grad_out: &[T],
        (first, count): (usize, usize),
        dlin: Option<&mut [T]>,
        edge: &EdgeGrads<'_, T>,
        work: &mut ChunkWork<T>,
    ) {
        let (d1, d2, d_out, w) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
            a.width,
        );
        let srow = plan.rows_pad * w;
        let mut dlin = dlin;
        let (want_lin, need_edge) = (dlin.is_some(), edge.any());
        if work.nodes.len() < count {
            work.nodes.resize_with(count, NodeWork::default);
        }
        let gs_all = overwritten(&mut work.gs, count * d_out);
        gs_all
            .iter_mut()
            .zip(&grad_out[first * d_out..(first + count) * d_out])
            .for_each(|(y, &g)| *y = g * a.scale);
        let s_all = overwritten(&mut work.s, if want_lin { count * srow } else { 0 });
        let nq = plan.one_q.len();
        let dlone = zeros(&mut work.dlone, if want_lin { nq * w } else { 0 });

        // Phase 1, per node: inputs, T, S, and (without edge gradients) dL of `One` pairs.
        for r in 0..count {
            let nw = &mut work.nodes[r];
            self.gather_node(avx2, a, first + r, nw, Gather::all(need_edge));
            self.node_pair_products::<T, FMA>(plan, nw);
            if !want_lin {
                continue;
            }
            let s = &mut s_all[r * srow..(r + 1) * srow];
            sums::<T, FMA, false>(avx2, plan, (&nw.t, &nw.h), nw.np, s);
            if nq > 0 && !need_edge {
                let gs = &gs_all[r * d_out..(r + 1) * d_out];
                let dw = overwritten(&mut work.dw, nq * nw.np);
                let inputs = nw.one_inputs();
                let ones = (plan, &plan.ones[..]);
                self.one_pairs_backward::<T, FMA>(avx2, ones, inputs, nw.np, gs, Some(dw), None);
                self.one_linear_grad::<T, FMA>(avx2, plan, (&nw.h, nw.np), dw, dlone);
            }
        }

        // Phase 2 (see `sum_gradients`).
        let g_all = zeros(&mut work.g, if need_edge { count * srow } else { 0 });
        let g_all = need_edge.then_some(&mut *g_all);
        let s_all: &[T] = s_all;
        self.sum_gradients::<T, FMA>(
            avx2,
            plan,
            gs_all,
            count,
            (s_all, dlin.as_deref_mut()),
            g_all,
            &mut work.tmp,
        );
        let g_all: &[T] = &work.g;
        // Phase 3, per node: dT, dH, and back to x1, x2; the `One` pairs from their products
        // and weights.
        let want_dx = edge.x1.is_some() || edge.x2.is_some();
        let want_dw = nq > 0 && (want_lin || edge.hidden.is_some());
        // Without edge gradients there is nothing per node left to do.
        let edge_nodes = if need_edge { count } else { 0 };
        for r in 0..edge_nodes {
            let i = first + r;
            if nq > 0 && want_dx {
                self.node_one_weights::<T, FMA>(avx2, plan, &mut work.nodes[r]);
            }
            let nw = &work.nodes[r];
            let (x, z, np) = (&nw.x, &nw.z, nw.np);
            let gs = &gs_all[r * d_out..(r + 1) * d_out];
            let g = &g_all[r * srow..(r + 1) * srow];
            let dx = zeros(&mut work.dx, if want_dx { d1 * np } else { 0 });
            let dz = zeros(&mut work.dz, if want_dx { plan.z_rows * np } else { 0 });
            let dw = overwritten(&mut work.dw, if want_dw { nq * np } else { 0 });
            self.one_pairs_backward::<T, FMA>(
                avx2,
                (plan, &plan.ones),
                nw.one_inputs(),
                np,
                gs,
                want_dw.then_some(&mut *dw),
                want_dx.then_some((&mut *dx, &mut *dz)),
            );
            if want_lin && want_dw {
                self.one_linear_grad::<T, FMA>(avx2, plan, (&nw.h, np), dw, dlone);
            }
            let edges = a.edges.by_dst(i);
            if let Some(gh) = &edge.hidden {
                // dH = T^T G + dW^T L_one^T, [edges][w]: the edges as the products' long
                // side, and each edge's gradient a contiguous row.
                let ne = nw.ne;
                let dh = overwritten(&mut work.by_edge, ne * w);
                gemm_tn::<T, FMA, false>(
                    avx2,
                    (ne, w, plan.rows),
                    Rows {
                        data: &nw.t,
                        stride: np,
                    },
                    Rows { data: g, stride: w },
                    dh,
                    w,
                );
                if want_dw {
                    gemm_tn::<T, FMA, true>(
                        avx2,
                        (ne, w, nq),
                        Rows {
                            data: dw,
                            stride: np,
                        },
                        Rows {
                            data: &plan.lone_t,
                            stride: w,
                        },
                        dh,
                        w,
                    );
                }
                // SAFETY: these edges enter node `i`, which only this task visits.
                unsafe { write_rows(gh, edges, dh) };
            }
            if !want_dx {
                continue;
            }
            // dT = G H^T for the `All` rows, then back through t_uv[k] = sum_i Y_v[k, i]
            // x[u, i] and Y_v = sum_j c x2[v, j].
            let dt = overwritten(&mut work.dt, plan.rows_pad * np);
            gemm::<T, FMA, false>(
                avx2,
                (plan.rows_pad, np, w),
                Rows { data: g, stride: w },
                Rows {
                    data: &nw.ht,
                    stride: np,
                },
                dt,
                np,
            );
            // Each side only where its gradient is asked for (the `One` pairs form both: the
            // unused one is not read).
            let (want_x1, want_x2) = (edge.x1.is_some(), edge.x2.is_some());
            for (p, cg) in self.paths.iter().zip(&plan.cg).filter(|(_, cg)| cg.all) {
                let nb = cg.blocks.len();
                for (pr, &(u, v, _)) in p.pairs.iter().enumerate() {
                    let (u, v) = (u as usize, v as usize);
                    for (c, range) in cg.by_k.iter().enumerate() {
                        let drow = &dt[(cg.first + c * cg.npairs + pr) * np..][..np];
                        for b in range.clone() {
                            let xi = (p.in1 + u * p.d1 + cg.blocks[b].i) * np;
                            let zb = (cg.z_first + v * nb + b) * np;
                            if want_x1 {
                                mul_acc::<T, FMA>(&mut dx[xi..xi + np], &z[zb..zb + np], drow);
                            }
                            if want_x2 {
                                mul_acc::<T, FMA>(&mut dz[zb..zb + np], &x[xi..xi + np], drow);
                            }
                        }
                    }
                }
            }
            if let Some(g2) = &edge.x2 {
                let dy = zeros(&mut work.dy, d2 * np);
                self.node_dy::<T, FMA>(plan, dz, np, dy);
                // SAFETY: as above.
                unsafe { write_edge_rows(avx2, g2, edges, dy, np, &mut work.by_edge) };
            }
            if let Some(g1) = &edge.x1 {
                // SAFETY: as above.
                unsafe { write_edge_rows(avx2, g1, edges, dx, np, &mut work.by_edge) };
            }
        }
        if let Some(dlin) = dlin {
            add_one_linear_grad(plan, dlone, dlin);
        }
    }

    /// [`Self::backward_nodes`] compiled for AVX2, for a CPU that has it (`token`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn backward_nodes_avx2<T: Real>(
        &self,
        token: Avx2Fma,
        plan: &Plan<T>,
        a: &LinearConv<'_, T>,
        grad_out: &[T],
        nodes: (usize, usize),
        dlin: Option<&mut [T]>,
        edge: &EdgeGrads<'_, T>,
        work: &mut ChunkWork<T>,
    ) {
        self.backward_nodes::<T, true>(Some(token), plan, a, grad_out, nodes, dlin, edge, work)
    }

    /// `dL/dL` `[width, weight_numel]` from the per-path layouts the first pass accumulates:
    /// `All` paths `[mo][pairs width]` (`L_p^T`), the others `[weight][width]`, each at
    /// `weight_offset width`.
    fn linear_gradient<T: Real>(&self, plan: &Plan<T>, acc: &[T], glin: &mut [T]) {
        let (w, numel) = (plan.width, self.weight_numel);
        for (p, cg) in self.paths.iter().zip(&plan.cg) {
            if !p.has_weight {
                continue;
            }
            let base = &acc[p.weight_offset * w..];
            if cg.all {
                let kd = cg.npairs * w;
                for (r, &(_, _, target)) in p.pairs.iter().enumerate() {
                    let Targets::All { w_base } = target else {
                        unreachable!("a path's pairs share their kind of target")
                    };
                    for k in 0..w {
                        for o in 0..p.mo {
                            glin[k * numel + p.weight_offset + w_base as usize + o] =
                                base[o * kd + r * w + k];
                        }
                    }
                }
            } else {
                for &(_, _, target) in &p.pairs {
                    if let Some(q) = one_weight(p, target) {
                        for k in 0..w {
                            glin[k * numel + q] = acc[q * w + k];
                        }
                    }
                }
            }
        }
    }

    /// The factorized backward (see the module docs), given `grad_out` `[N, irreps_out.dim]`.
    pub(super) fn conv_backward_linear<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        grad_out: &[T],
        grads: LinearConvGradients<'_, T>,
    ) {
        self.conv_backward_linear_on(a, grad_out, grads, Avx2Fma::detect())
    }

    fn conv_backward_linear_on<T: Real>(
        &self,
        a: &LinearConv<'_, T>,
        grad_out: &[T],
        grads: LinearConvGradients<'_, T>,
        isa: Option<Avx2Fma>,
    ) {
        let (d1, numel, w) = (self.irreps_in1.dim(), self.weight_numel, a.width);
        let (n, e) = (a.edges.num_nodes(), a.edges.num_edges());
        let plan = Plan::new(self, a.linear, w);
        let LinearConvGradients {
            x1: g1,
            x2: g2,
            hidden: gh,
            linear: glin,
        } = grads;
        // Per-edge rows of the x1 gradient, summed per source below.
        let mut g1_edges = edge_rows(g1.is_some(), e, d1);
        let edge = EdgeGrads {
            x1: EdgeRows::new(g1.is_some().then_some(&mut g1_edges[..])),
            x2: EdgeRows::new(g2),
            hidden: EdgeRows::new(gh),
        };
        let want_lin = glin.is_some();
        let sum = backward_chunks(n, want_lin.then_some(w * numel), |work, nodes, dlin| {
            #[cfg(target_arch = "x86_64")]
            if let Some(token) = isa {
                // SAFETY: as in `conv_forward_linear_on`, `token` proves the CPU has the AVX2
                // and FMA `backward_nodes_avx2` is compiled for.
                return unsafe {
                    self.backward_nodes_avx2(token, &plan, a, grad_out, nodes, dlin, &edge, work)
                };
            }
            let _ = isa;
            self.backward_nodes::<T, false>(None, &plan, a, grad_out, nodes, dlin, &edge, work)
        });
        if let (Some(glin), Some(sum)) = (glin, sum) {
            self.linear_gradient(&plan, &sum, glin);
        }
        if let Some(g1) = g1 {
            sum_rows_by_source(a.edges, &g1_edges, g1);
        }
    }

    /// `dy += dY/dx2^T dz` for one node: the way back from the `Y` blocks' gradients `dz`
    /// (`[z_rows][np]`) to its gathered `x2` rows (`dy`, `[d2][np]`).
    #[inline(always)]
    fn node_dy<T: Real, const FMA: bool>(&self, plan: &Plan<T>, dz: &[T], np: usize, dy: &mut [T]) {
        for (p, cg) in self.paths.iter().zip(&plan.cg) {
            let nb = cg.blocks.len();
            for v in 0..p.m2 {
                for (b, Block { terms, .. }) in cg.blocks.iter().enumerate() {
                    let zb = (cg.z_first + v * nb + b) * np;
                    for &(j, c) in terms {
                        let yj = (p.in2 + v * p.d2 + j) * np;
                        axpy::<T, FMA>(&mut dy[yj..yj + np], c, &dz[zb..zb + np]);
                    }
                }
            }
        }
    }
}

/// `dlin += dL_one` in the `One` pairs' layout (`[weight][width]` at each weight's index)
/// from the chunk's `dlone` (`[nq][width]`).
fn add_one_linear_grad<T: Real>(plan: &Plan<T>, dlone: &[T], dlin: &mut [T]) {
    let w = plan.width;
    for (j, &q) in plan.one_q.iter().enumerate() {
        dlin[q * w..(q + 1) * w]
            .iter_mut()
            .zip(&dlone[j * w..(j + 1) * w])
            .for_each(|(y, &x)| *y += x);
    }
}

/// Runs `chunk(work, (first, count), dlin)` over the backward's chunks of
/// [`BACKWARD_CHUNK`] nodes in parallel, each task with its own `work`, and returns the sum
/// of the partial `dL/dL` (`len` long; none if `None`) the chunks added into.
///
/// One partial per group of chunks, not per chunk: a zeroed and summed partial per 16 nodes
/// cost as much as the product at 1000 nodes. The groups depend on `n` only, so the sums'
/// order does not depend on the threads.
pub(super) fn backward_chunks<T: Real, W: Default + Send + 'static>(
    n: usize,
    len: Option<usize>,
    chunk: impl Fn(&mut W, (usize, usize), Option<&mut [T]>) + Sync,
) -> Option<Vec<T>> {
    let chunks = n.div_ceil(BACKWARD_CHUNK);
    let per_group = chunks.div_ceil(MAX_PARTIALS).max(1);
    let partials: Vec<Vec<T>> = (0..chunks.div_ceil(per_group))
        .into_par_iter()
        .map_init(Reused::<W>::take, |work, group| {
            let work = &mut **work;
            let mut partial = vec![T::zero(); len.unwrap_or(0)];
            for c in group * per_group..((group + 1) * per_group).min(chunks) {
                let first = c * BACKWARD_CHUNK;
                let nodes = (first, BACKWARD_CHUNK.min(n - first));
                chunk(work, nodes, len.is_some().then_some(&mut partial[..]));
            }
            partial
        })
        .collect();
    len.map(|len| {
        let mut sum = vec![T::zero(); len];
        for p in partials {
            sum.iter_mut().zip(p).for_each(|(x, y)| *x += y);
        }
        sum
    })
}

/// Zeroed rows of `d` per edge for [`sum_rows_by_source`] where `wanted`, else none.
pub(super) fn edge_rows<T: Real>(wanted: bool, edges: usize, d: usize) -> Vec<T> {
    vec![T::zero(); if wanted { edges * d } else { 0 }]
}

/// `g1[j] = sum_(e: src[e] = j) g1_edges[e]` (rows of width `g1.len() / num_nodes`), in edge
/// order whatever the thread count.
pub(super) fn sum_rows_by_source<T: Real>(edges: &EdgeIndex, g1_edges: &[T], g1: &mut [T]) {
    let d1 = g1.len() / edges.num_nodes().max(1);
    g1.par_chunks_mut((NODE_CHUNK * d1).max(1))
        .enumerate()
        .for_each(|(chunk, g1)| {
            for (r, row) in g1.chunks_exact_mut(d1.max(1)).enumerate() {
                row.fill(T::zero());
                for &e in edges.by_src(chunk * NODE_CHUNK + r) {
                    let e = e as usize;
                    row.iter_mut()
                        .zip(&g1_edges[e * d1..(e + 1) * d1])
                        .for_each(|(y, &x)| *y += x);
                }
            }
        });
}

/// The `One` pairs' forward on a node, over lanes `V`: for each pair `(u, v)` of a path and
/// output component `c`,
///
/// `acc[out + c] += sum_e W[e] sum_(b: k_b = c) Y_b[e] x[u, i_b][e]`
///
/// from the node's gathered `x` (`[d1][np]`), `Y` blocks `z` (`[z_rows][np]`) and per-edge
/// weights `we` (`[nq][np]`; `W = 1` for a pair without weight). Fused per eight edges:
/// the products, the weighting and the sum stay in registers (a stored row of products cost
/// a load, a store and a second pass per term), four sums in flight (a multiply-add's
/// latency is longer than a short path's terms), reduced eight at a time ([`lane_sums8`],
/// with `avx2` and `FMA` as the caller's).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn one_pairs_forward_lanes<T: Real, V: Vec8, const FMA: bool>(
    (token, avx2): (V::Token, Option<Avx2Fma>),
    paths: &[PathPlan],
    plan: &Plan<T>,
    ones: &[OnePair],
    [x, z, we]: [&[V::Elem]; 3],
    np: usize,
    acc: &mut [V::Elem],
) {
    let mut sums = [V::zero(token).to_array(); 8];
    let mut outs = [0; 8];
    let mut n = 0;
    for op in ones {
        let (p, cg) = (&paths[op.path], &plan.cg[op.path]);
        let nb = cg.blocks.len();
        let (zr, xr) = (cg.z_first + op.v * nb, p.in1 + op.u * p.d1);
        for c in 0..p.d3 {
            let range = cg.by_k[c].clone();
            if range.is_empty() {
                continue;
            }
            let rows = PairRows {
                first: zr + range.start,
                blocks: &cg.blocks[range],
                xr,
                w: op.col,
                np,
            };
            let mut s4 = [V::zero(token); 4];
            let mut e = 0;
            while e + 4 * LANES <= np {
                s4 = rows.weighted_sum_step(token, [x, z, we], s4, e);
                e += 4 * LANES;
            }
            let mut s1 = [V::zero(token)];
            while e < np {
                s1 = rows.weighted_sum_step(token, [x, z, we], s1, e);
                e += LANES;
            }
            sums[n] = s4[0].add(s4[1]).add(s4[2].add(s4[3])).add(s1[0]).to_array();
            outs[n] = op.out + c;
            n += 1;
            if n == 8 {
                outs.iter()
                    .zip(lane_sums8::<V::Elem, FMA>(avx2, &sums))
                    .for_each(|(&o, v)| acc[o] += v);
                n = 0;
            }
        }
    }
    for (&o, sum) in outs.iter().zip(&sums).take(n) {
        acc[o] += lane_sum(sum);
    }
}

/// Where one component of a `One` pair reads: its blocks (those of output component `k`,
/// the first at `z` row `first`), the pair's `x` rows from `xr`, its row of `W`.
struct PairRows<'a, T> {
    blocks: &'a [Block<T>],
    first: usize,
    xr: usize,
    w: Option<usize>,
    np: usize,
}

impl<T> PairRows<'_, T> {
    /// `s[g] + W[e_g..] t[e_g..]` (`W = 1` without weight: exactly `s[g] + t`) on the eight
    /// edges from each `e_g = e + 8 g`, `t = sum_b Y_b x[i_b]`: `G` independent chains of
    /// multiply-adds (one chain waits on each multiply-add's latency). A function, not a
    /// closure: it must inline into the caller's instruction set for the lane operations to.
    #[inline(always)]
    fn weighted_sum_step<E: Real, V: Vec8<Elem = E>, const G: usize>(
        &self,
        token: V::Token,
        [x, z, we]: [&[E]; 3],
        mut s: [V; G],
        e: usize,
    ) -> [V; G] {
        let np = self.np;
        let mut t = [V::zero(token); G];
        for (n, b) in self.blocks.iter().enumerate() {
            let (zb, xi) = ((self.first + n) * np + e, (self.xr + b.i) * np + e);
            let zb = load_group::<V, G>(token, &z[zb..zb + G * LANES]);
            let xi = load_group::<V, G>(token, &x[xi..xi + G * LANES]);
            for g in 0..G {
                t[g] = t[g].madd(zb[g], xi[g]);
            }
        }
        let w = match self.w {
            Some(j) => load_group::<V, G>(token, &we[j * np + e..j * np + e + G * LANES]),
            None => [V::splat(token, E::one()); G],
        };
        for g in 0..G {
            s[g] = s[g].madd(t[g], w[g]);
        }
        s
    }
}

/// The backward of [`one_pairs_forward_lanes`] with scaled output gradient `gs`, per pair:
///
/// `dW^T[col][e] = sum_i x[u, i][e] sum_(b: i_b = i) gs[out + k_b] Y_b[e]` into `dw` (if
/// given), and, if `dxz = (dx, dz)` is given, `dx[u, i] += W sum_(b: i_b = i) gs[out + k_b]
/// Y_b` and `dz_b += gs[out + k_b] W x[u, i_b]` (added; `W = 1` for a pair without
/// weight). Per eight edges `dW` and each `dx` row's sum stay in registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn one_pairs_backward_lanes<T: Real, V: Vec8>(
    token: V::Token,
    paths: &[PathPlan],
    plan: &Plan<T>,
    ones: &[OnePair],
    [x, z, we]: [&[V::Elem]; 3],
    np: usize,
    gs: &[V::Elem],
    mut dw: Option<&mut [V::Elem]>,
    mut dxz: Option<RowsPair<'_, V::Elem>>,
) {
    for op in ones {
        let (p, cg) = (&paths[op.path], &plan.cg[op.path]);
        let want_dw = dw.is_some() && op.col.is_some();
        if !want_dw && dxz.is_none() {
            continue;
        }
        let rows = PairGradRows {
            by_i: &cg.by_i,
            zr: cg.z_first + op.v * cg.blocks.len(),
            xr: p.in1 + op.u * p.d1,
            w: op.col,
            np,
            g: &gs[op.out..op.out + p.d3],
        };
        let mut e = 0;
        while e + 4 * LANES <= np {
            rows.step::<V, 4>(token, [x, z, we], e, dw.as_deref_mut(), dxz.as_mut());
            e += 4 * LANES;
        }
        while e < np {
            rows.step::<V, 1>(token, [x, z, we], e, dw.as_deref_mut(), dxz.as_mut());
            e += LANES;
        }
    }
}

/// `G` lane vectors from `s` (`8 G` long). A function: it must inline into the caller's
/// instruction set (a closure around the loads did not).
#[inline(always)]
fn load_group<V: Vec8, const G: usize>(token: V::Token, s: &[V::Elem]) -> [V; G] {
    let mut out = [V::zero(token); G];
    for (g, v) in out.iter_mut().enumerate() {
        *v = V::load(token, s, g * LANES);
    }
    out
}

/// Two mutable edge-minor buffers (`dx`, `dz`).
type RowsPair<'a, E> = (&'a mut [E], &'a mut [E]);

/// Where the backward of one `One` pair reads and writes: its blocks by input component,
/// its `z` rows from `zr` and `x` rows from `xr`, its row of `W`, its scaled output
/// gradient `g` (`[d3]`).
struct PairGradRows<'a, E> {
    by_i: &'a [(usize, Vec<(usize, usize)>)],
    zr: usize,
    xr: usize,
    w: Option<usize>,
    np: usize,
    g: &'a [E],
}

impl<E: Real> PairGradRows<'_, E> {
    /// [`one_pairs_backward_lanes`] for this pair on the eight edges from each `e + 8 g`,
    /// `g < G` (`G` independent chains).
    #[inline(always)]
    fn step<V: Vec8<Elem = E>, const G: usize>(
        &self,
        token: V::Token,
        [x, z, we]: [&[E]; 3],
        e: usize,
        dw: Option<&mut [E]>,
        dxz: Option<&mut RowsPair<'_, E>>,
    ) {
        let (np, span) = (self.np, G * LANES);
        // `W` is read only on the way to `x` and `Y` (without them it may not be formed).
        let w = match self.w {
            Some(j) if dxz.is_some() => {
                load_group::<V, G>(token, &we[j * np + e..j * np + e + span])
            }
            _ => [V::splat(token, E::one()); G],
        };
        let mut dxz = dxz;
        let mut dwe = [V::zero(token); G];
        for (i, of_i) in self.by_i {
            let xo = (self.xr + i) * np + e;
            let xi = load_group::<V, G>(token, &x[xo..xo + span]);
            let mut gz = [V::zero(token); G];
            for &(b, k) in of_i {
                let zo = (self.zr + b) * np + e;
                let (zb, gk) = (
                    load_group::<V, G>(token, &z[zo..zo + span]),
                    V::splat(token, self.g[k]),
                );
                for g in 0..G {
                    gz[g] = gz[g].madd(gk, zb[g]);
                }
            }
            for g in 0..G {
                dwe[g] = dwe[g].madd(gz[g], xi[g]);
            }
            let Some((dx, dz)) = dxz.as_deref_mut() else {
                continue;
            };
            let dxi = &mut dx[xo..xo + span];
            for g in 0..G {
                V::load(token, dxi, g * LANES)
                    .madd(gz[g], w[g])
                    .store(dxi, g * LANES);
            }
            let mut wx = w;
            for g in 0..G {
                wx[g] = wx[g].mul(xi[g]);
            }
            for &(b, k) in of_i {
                let zo = (self.zr + b) * np + e;
                let (dzb, gk) = (&mut dz[zo..zo + span], V::splat(token, self.g[k]));
                for (g, wx) in wx.iter().enumerate() {
                    V::load(token, dzb, g * LANES)
                        .madd(gk, *wx)
                        .store(dzb, g * LANES);
                }
            }
        }
        if let (Some(dw), Some(j)) = (dw, self.w) {
            for (g, d) in dwe.iter().enumerate() {
                d.store(dw, j * np + e + g * LANES);
            }
        }
    }
}
/// The per-edge gradient rows the first backward pass writes (each edge by the task of its
/// destination).
struct EdgeGrads<'a, T> {
    x1: Option<EdgeRows<'a, T>>,
    x2: Option<EdgeRows<'a, T>>,
    hidden: Option<EdgeRows<'a, T>>,
}

impl<T> EdgeGrads<'_, T> {
    fn any(&self) -> bool {
        self.x1.is_some() || self.x2.is_some() || self.hidden.is_some()
    }
}
