//! The convolution with weights from a radial MLP, formed edge by edge inside it, sixteen
//! edges at a time in the vector lanes ([`RadialWeights`]):
//!
//! `out[i] = scale sum_{e : dst[e] = i} x1[src[e]] (x)_{w_e} x2[e]`, `w_e = mlp(b_e)`.
//!
//! A small potential's convolution (NequIP's at 8 to 32 channels, harmonics to degree 1 or
//! 2) does a few hundred multiply-adds per edge, spread over the MLP's layers, the weights
//! and the product, each a matrix of a few rows. Run as separate passes over the edges
//! (the MLP as dense products, the convolution as a batched product per chunk), each pass
//! is dominated by its fixed costs: per-pass dispatch, a small matrix product per chunk,
//! the `[E, width]` hidden activations and slopes written and read back. Here each block
//! of sixteen edges runs the whole chain with the edges in the lanes: every step is a
//! vector multiply-add with a broadcast coefficient (an MLP weight, a Clebsch-Gordan
//! coefficient), and the block's values stay in a few kilobytes of L1. The backward reads
//! each block's weights and slopes where the forward kept them ([`RadialSaved`], lane-major,
//! no transposes: a quarter of the backward's time saved while they stay in cache), or
//! forms the MLP again, and runs the product's and the MLP's gradients in the same block.
//!
//! It runs products whose paths are all `uvu` with one `x2` channel (a convolution of node
//! features with edge harmonics: NequIP's, MACE's) at any degree
//! ([`TensorProductPlan::conv_radial_applies`]). The forward and the backward take the
//! nodes in fixed chunks by destination, the edges into each in edge order, so the sums
//! are the same for any number of threads; `x1`'s gradient goes through per-edge rows
//! summed per source in edge order.

use rayon::prelude::*;

use super::expanded::edges_into;
use super::linear::{consecutive, sum_rows_by_source, write_rows};
use crate::error::check_len as mismatch;
use crate::graph::EdgeIndex;
use crate::kernels::activation;
use crate::kernels::buffers::{EdgeRows, Reused, as_uninit};
use crate::kernels::gemm::madd;
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::Avx512;
use crate::kernels::simd::{Avx2Fma, Simd};
use crate::kernels::transpose::{transpose, transpose_rows, transposed};
use crate::o3::tensor_product::{
    ConnectionMode, MlpLayer, RadialConvGradients, RadialSaved, RadialWeights, TensorProductPlan,
};
use crate::{Error, Real, Result};

/// Edges per block: one AVX-512 vector of `f32` (two of `f64`).
const EDGE_LANES: usize = 16;

/// A value per edge of a block.
type Lanes<T> = [T; EDGE_LANES];

/// The most values of `x1`'s per-edge gradient rows a thread keeps between calls (16 MiB
/// of `f32`: a small potential's 10000 atoms).
const KEPT_ROWS: usize = 1 << 22;

/// Nodes per chunk, the unit whose sums are fixed: each node sums its edges in edge order
/// within one chunk, so the results do not depend on how chunks go to threads (a rayon task
/// runs up to [`CHUNKS_PER_TASK`] of them). Eight rather than sixteen: at 108 atoms (~1900
/// edges, 2 threads) a layer's forward 0.085-0.091 -> 0.054-0.064 ms, backward 0.21-0.24 ->
/// 0.14-0.17 ms (more tasks to balance); at 1000 and 10000 atoms within noise.
const NODE_CHUNK: usize = 8;

/// At most this many chunks of nodes per rayon task (a leaf of its split). Left to itself,
/// rayon cuts a loop started on a worker of a two-thread pool (as under `on_pool`) into four
/// leaves and cuts further only what the other thread steals, so the thread done first can
/// wait out most of a quarter of the loop; leaves of two chunks leave it at most two chunks'
/// work. Measured on the 2-core AMD EPYC KVM guest, where separate runs differed by more
/// than the change, by a harness (not kept) that timed calls of a forward then a backward
/// in one process with the two settings alternated call by call: NequIP's 8-channel product
/// at 18 neighbours, 2 threads, the median over the pairs of the time with leaves of two
/// chunks over the time without (below 1: faster) 0.93-1.00 at 1000 atoms in six runs,
/// 0.96 and 1.00 at 108 atoms in two, 1.00 at 10000 in one.
const CHUNKS_PER_TASK: usize = 2;

/// One `uvu` path's terms: `out[u, k] += c w[u] x1[u, i] x2[j]` for each nonzero
/// `(i, j, k, c)` and channel `u`.
struct PathTerms<T> {
    in1: usize,
    in2: usize,
    out: usize,
    d1: usize,
    d3: usize,
    channels: usize,
    /// The offset of the path's weights (`u` at `offset + u`), or none for a path without.
    weight: Option<usize>,
    terms: Vec<(usize, usize, usize, T)>,
}

/// A call's checked arguments.
pub(super) struct Radial<'a, T> {
    edges: &'a EdgeIndex,
    x1: &'a [T],
    x2: &'a [T],
    embedding: &'a [T],
    hidden: &'a [MlpLayer<'a, T>],
    last: &'a [T],
    /// Each hidden layer's `W^T` (`[outputs, inputs]`) and `last^T` (`[numel, width]`), for
    /// the backward (empty in the forward).
    hidden_t: Vec<Vec<T>>,
    last_t: Vec<T>,
    scale: T,
    num_basis: usize,
    width: usize,
    numel: usize,
    d1: usize,
    d2: usize,
    d_out: usize,
    paths: Vec<PathTerms<T>>,
    /// Where the forward keeps each block's weights and slopes ([`RadialSaved`]), or where
    /// the backward reads them; the first block of each chunk of nodes (and the total);
    /// the rows of a block.
    saved_out: Option<EdgeRows<'a, T>>,
    saved_in: Option<&'a [T]>,
    blocks: Vec<usize>,
    saved_rows: usize,
    /// Where each hidden layer's slopes start among a block's kept rows.
    slope_rows: Vec<usize>,
}

impl<T: Real> Radial<'_, T> {
    /// The rows a block keeps: the weights', then each activated hidden layer's slopes.
    /// Returns where each layer's slopes start (a layer without an activation keeps none)
    /// and the rows in all.
    fn kept_rows(&self) -> (Vec<usize>, usize) {
        let mut at = self.numel;
        let starts = (self.hidden.iter())
            .map(|layer| {
                let start = at;
                if layer.activation.is_some() {
                    at += layer.outputs;
                }
                start
            })
            .collect();
        (starts, at)
    }

    /// Hidden layer `l`'s slopes in a block's kept row (`[outputs][lanes]`).
    fn kept_slopes(&self, l: usize) -> std::ops::Range<usize> {
        let start = self.slope_rows[l] * EDGE_LANES;
        start..start + self.hidden[l].outputs * EDGE_LANES
    }

    /// Lays out the kept values (the first block of each chunk of nodes, the rows of a
    /// block): their length and the shape `RadialSaved` records.
    fn keep(&mut self) -> (usize, [usize; 3]) {
        (self.slope_rows, self.saved_rows) = self.kept_rows();
        self.blocks = self.block_offsets();
        let len = self.blocks[self.blocks.len() - 1] * self.saved_rows * EDGE_LANES;
        let shape = [
            self.edges.num_nodes(),
            self.edges.num_edges(),
            self.saved_rows,
        ];
        (len, shape)
    }

    /// The first block of each chunk of nodes in the kernels' order, and the total.
    fn block_offsets(&self) -> Vec<usize> {
        let n = self.edges.num_nodes();
        let mut offsets = vec![0];
        let mut total = 0;
        for chunk in 0..n.div_ceil(NODE_CHUNK) {
            let nodes = chunk * NODE_CHUNK..n.min((chunk + 1) * NODE_CHUNK);
            let edges: usize = nodes.map(|i| self.edges.by_dst(i).len()).sum();
            total += edges.div_ceil(EDGE_LANES);
            offsets.push(total);
        }
        offsets
    }
}

/// A task's buffers for one block of edges, `[rows][lanes]` each, reused across calls on
/// the same thread.
struct Work<T> {
    edges: Vec<u32>,
    /// The block's rows edge by edge, `[lanes][d]`, on their way to or from the lanes.
    stage: Vec<T>,
    /// `acts[0]` the embedding, `acts[l + 1]` hidden layer `l`'s outputs.
    acts: Vec<Vec<Lanes<T>>>,
    /// Hidden layer `l`'s slopes `c f'(z)` (unused without an activation).
    slopes: Vec<Vec<Lanes<T>>>,
    z: Vec<Lanes<T>>,
    w: Vec<Lanes<T>>,
    x1: Vec<Lanes<T>>,
    x2: Vec<Lanes<T>>,
    /// The messages, or the scaled output gradients.
    out: Vec<Lanes<T>>,
    dw: Vec<Lanes<T>>,
    dx1: Vec<Lanes<T>>,
    dx2: Vec<Lanes<T>>,
    /// The MLP's gradients, layer by layer (two, in turn).
    da: [Vec<Lanes<T>>; 2],
}

impl<T> Default for Work<T> {
    fn default() -> Self {
        Work {
            edges: Vec::new(),
            stage: Vec::new(),
            acts: Vec::new(),
            slopes: Vec::new(),
            z: Vec::new(),
            w: Vec::new(),
            x1: Vec::new(),
            x2: Vec::new(),
            out: Vec::new(),
            dw: Vec::new(),
            dx1: Vec::new(),
            dx2: Vec::new(),
            da: [Vec::new(), Vec::new()],
        }
    }
}

/// `v` as `rows` rows (new ones zero; the kernels write every row they read).
#[inline(always)]
fn lane_rows<T: Real>(v: &mut Vec<Lanes<T>>, rows: usize) -> &mut [Lanes<T>] {
    v.resize(rows, [T::zero(); EDGE_LANES]);
    v
}

impl TensorProductPlan {
    /// Whether [`conv_forward_radial`](TensorProductPlan::conv_forward_radial) runs this
    /// product: per-edge weights, and every path `uvu` with one `x2` channel (node features
    /// with edge harmonics, as NequIP's and MACE's convolutions), at least one weighted.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::sorted_uvu_tensor_product;
    /// let tp = sorted_uvu_tensor_product(&"8x0e+8x1o".parse()?, &"0e+1o".parse()?, &"8x0e+8x1o".parse()?, false)?;
    /// assert!(tp.conv_radial_applies());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn conv_radial_applies(&self) -> bool {
        !self.shared_weights
            && self.weight_numel > 0
            && (self.paths.iter()).all(|p| p.mode == ConnectionMode::Uvu && p.m2 == 1)
    }

    /// Checks a radial convolution's arguments (`out_len`: the output's or its gradient's),
    /// with the transposed weights where `backward`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn radial_args<'a, T: Real>(
        &self,
        edges: &'a EdgeIndex,
        x1: &'a [T],
        x2: &'a [T],
        weights: RadialWeights<'a, T>,
        scale: T,
        out_len: usize,
        backward: bool,
    ) -> Result<Radial<'a, T>> {
        if !self.conv_radial_applies() {
            return Err(Error::InvalidArgument {
                name: "tensor product",
                reason: format!(
                    "a radial convolution runs per-edge weights on uvu paths of one x2 \
                     channel only, not {self}"
                ),
            });
        }
        let [_, e, d1, d2, d_out] = self.conv_io_shape(edges, x1, x2, out_len)?;
        let numel = self.weight_numel;
        let RadialWeights {
            embedding,
            hidden,
            last,
        } = weights;
        let width = last.len() / numel;
        mismatch("last [width, weight_numel]", width * numel, last.len())?;
        let num_basis = hidden.first().map_or(width, |l| l.inputs);
        let mut inputs = num_basis;
        for layer in hidden {
            mismatch(
                "hidden layer inputs (the outputs before)",
                inputs,
                layer.inputs,
            )?;
            mismatch(
                "hidden layer weight [inputs, outputs]",
                layer.inputs * layer.outputs,
                layer.weight.len(),
            )?;
            inputs = layer.outputs;
        }
        mismatch("last layer width (the last hidden outputs)", inputs, width)?;
        mismatch("embedding [E, num_basis]", e * num_basis, embedding.len())?;
        let paths = (self.paths.iter())
            .map(|p| PathTerms {
                in1: p.in1,
                in2: p.in2,
                out: p.out,
                d1: p.d1,
                d3: p.d3,
                channels: p.m1,
                weight: p.has_weight.then_some(p.weight_offset),
                terms: (p.forward.idx.iter().zip(&p.forward.coef))
                    .map(|(&[i, j, k], &c)| (i as usize, j as usize, k as usize, T::from_f64(c)))
                    .collect(),
            })
            .collect();
        Ok(Radial {
            edges,
            x1,
            x2,
            embedding,
            hidden,
            last,
            hidden_t: (hidden.iter())
                .filter(|_| backward)
                .map(|l| transposed(l.weight, l.inputs, l.outputs))
                .collect(),
            last_t: if backward {
                transposed(last, width, numel)
            } else {
                Vec::new()
            },
            scale,
            num_basis,
            width,
            numel,
            d1,
            d2,
            d_out,
            paths,
            saved_out: None,
            saved_in: None,
            blocks: Vec::new(),
            saved_rows: 0,
            slope_rows: Vec::new(),
        })
    }

    /// [`conv_forward_radial`](TensorProductPlan::conv_forward_radial)'s body.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::kernels) fn conv_forward_radial_kernel<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: RadialWeights<'_, T>,
        scale: T,
        out: &mut [T],
        saved: Option<&mut RadialSaved<T>>,
    ) -> Result<()> {
        let mut a = self.radial_args(edges, x1, x2, weights, scale, out.len(), false)?;
        if let Some(saved) = saved {
            let len;
            (len, saved.shape) = a.keep();
            saved.values.resize(len, T::zero());
            a.saved_out = EdgeRows::new(Some(&mut saved.values[..]));
        }
        let isa = Simd::detect();
        out.par_chunks_mut((NODE_CHUNK * a.d_out).max(1))
            .enumerate()
            .with_max_len(CHUNKS_PER_TASK)
            .for_each_init(Reused::<Work<T>>::take, |work, (chunk, out)| {
                forward_chunk_on(isa, &a, work, chunk * NODE_CHUNK, out);
            });
        Ok(())
    }

    /// [`conv_backward_radial`](TensorProductPlan::conv_backward_radial)'s body.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::kernels) fn conv_backward_radial_kernel<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: RadialWeights<'_, T>,
        scale: T,
        grad_out: &[T],
        grads: RadialConvGradients<'_, T>,
        saved: Option<&RadialSaved<T>>,
    ) -> Result<()> {
        let mut a = self.radial_args(edges, x1, x2, weights, scale, grad_out.len(), true)?;
        if let Some(saved) = saved {
            let (len, shape) = a.keep();
            if saved.shape != shape || saved.values.len() != len {
                return Err(Error::InvalidArgument {
                    name: "saved",
                    reason: format!(
                        "kept by a forward of a graph or radial MLP of another shape ([nodes, \
                         edges, rows] {:?} and {} values, not {shape:?} and {len})",
                        saved.shape,
                        saved.values.len()
                    ),
                });
            }
            a.saved_in = Some(&saved.values);
        }
        let RadialConvGradients {
            x1: g1,
            x2: g2,
            embedding: gb,
        } = grads;
        let (n, e) = (edges.num_nodes(), edges.num_edges());
        if let Some(g) = &g1 {
            mismatch("grad x1 [N, irreps_in1.dim]", n * a.d1, g.len())?;
        }
        if let Some(g) = &g2 {
            mismatch("grad x2 [E, irreps_in2.dim]", e * a.d2, g.len())?;
        }
        if let Some(g) = &gb {
            mismatch("grad embedding [E, num_basis]", e * a.num_basis, g.len())?;
        }
        // Every edge's row is written, so the buffer of the last call on this thread is
        // reused as it is (a fresh one cost page faults and zeroing: 2% of an MD step at
        // 1000 atoms), up to `KEPT_ROWS` values; a larger one is made and freed per call
        // rather than held by the thread. It only grows: cut to each call's length, it was
        // zeroed again whenever a layer of wider `x1` rows followed (1.3% of a step).
        let len = if g1.is_some() { e * a.d1 } else { 0 };
        let mut kept = Reused::<Vec<T>>::take();
        let mut fresh = Vec::new();
        let g1_edges = if len <= KEPT_ROWS {
            &mut *kept
        } else {
            &mut fresh
        };
        if g1_edges.len() < len {
            g1_edges.resize(len, T::zero());
        }
        let g1_edges = &mut g1_edges[..len];
        let out = Outputs {
            x1: EdgeRows::new(g1.is_some().then_some(&mut g1_edges[..])),
            x2: EdgeRows::new(g2),
            embedding: EdgeRows::new(gb),
        };
        let isa = Simd::detect();
        (0..n.div_ceil(NODE_CHUNK))
            .into_par_iter()
            .with_max_len(CHUNKS_PER_TASK)
            .for_each_init(Reused::<Work<T>>::take, |work, chunk| {
                let nodes = chunk * NODE_CHUNK..(n.min((chunk + 1) * NODE_CHUNK));
                backward_chunk_on(isa, &a, work, nodes, grad_out, &out);
            });
        if let Some(g1) = g1 {
            sum_rows_by_source(edges, g1_edges, g1);
        }
        Ok(())
    }
}

/// The backward's per-edge outputs: `x1`'s rows (written), `x2`'s and the embedding's
/// (added to).
struct Outputs<'a, T> {
    x1: Option<EdgeRows<'a, T>>,
    x2: Option<EdgeRows<'a, T>>,
    embedding: Option<EdgeRows<'a, T>>,
}

/// [`forward_chunk`] with the instances of `isa`.
fn forward_chunk_on<T: Real>(
    isa: Simd,
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    first: usize,
    out: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    match isa {
        Simd::Avx512(token) => {
            // SAFETY: the token proves the CPU has the features the function is compiled
            // for (only `Simd::detect` makes one, on such a CPU).
            return unsafe { forward_chunk_avx512(token, a, work, first, out) };
        }
        Simd::Avx2(token) => {
            // SAFETY: as above, for AVX2 and FMA.
            return unsafe { forward_chunk_avx2(token, a, work, first, out) };
        }
        Simd::Portable => {}
    }
    let _ = isa;
    forward_chunk::<T, false>(None, a, work, first, out)
}

/// [`forward_chunk`] compiled for AVX-512 (`token` proves the CPU has it): sixteen `f32`
/// edges to a vector.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn forward_chunk_avx512<T: Real>(
    token: Avx512,
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    first: usize,
    out: &mut [T],
) {
    forward_chunk::<T, true>(Some(token.avx2()), a, work, first, out)
}

/// [`forward_chunk`] compiled for AVX2 and FMA (`token` proves the CPU has them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_chunk_avx2<T: Real>(
    token: Avx2Fma,
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    first: usize,
    out: &mut [T],
) {
    forward_chunk::<T, true>(Some(token), a, work, first, out)
}

/// The messages into the nodes from `first` on (`out`: their rows, overwritten), block by
/// block of their edges in edge order.
#[inline(always)]
fn forward_chunk<T: Real, const FMA: bool>(
    avx2: Option<Avx2Fma>,
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    first: usize,
    out: &mut [T],
) {
    let d_out = a.d_out;
    let nodes = first..first + out.len() / d_out.max(1);
    edges_into(&mut work.edges, nodes, a.edges);
    out.fill(T::zero());
    let edges = std::mem::take(&mut work.edges);
    let first_block = a.blocks.get(first / NODE_CHUNK).copied().unwrap_or(0);
    for (b, block) in edges.chunks(EDGE_LANES).enumerate() {
        gather(avx2, a, block, work);
        // The weights and slopes go straight into the block's kept row, if any.
        let mut kept = (a.saved_out.as_ref()).map(|saved| {
            // SAFETY: the chunk's blocks are this task's alone, each once.
            unsafe { saved.row(first_block + b, a.saved_rows * EDGE_LANES) }
        });
        mlp_forward::<T, FMA>(a, work, false, kept.as_deref_mut());
        product::<T, FMA>(a, work, kept.as_deref());
        let messages = from_lanes(avx2, &work.out, &mut work.stage);
        for (&e, m) in block.iter().zip(messages.chunks_exact(d_out)) {
            let i = a.edges.dst(e as usize) - first;
            let row = &mut out[i * d_out..(i + 1) * d_out];
            row.iter_mut().zip(m).for_each(|(y, &m)| *y += m);
        }
    }
    work.edges = edges;
    out.iter_mut().for_each(|y| *y *= a.scale);
}

/// [`backward_chunk`] with the instances of `isa`.
fn backward_chunk_on<T: Real>(
    isa: Simd,
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    nodes: std::ops::Range<usize>,
    grad_out: &[T],
    out: &Outputs<'_, T>,
) {
    #[cfg(target_arch = "x86_64")]
    match isa {
        Simd::Avx512(token) => {
            // SAFETY: as in `forward_chunk_on`.
            return unsafe { backward_chunk_avx512(token, a, work, nodes, grad_out, out) };
        }
        Simd::Avx2(token) => {
            // SAFETY: as in `forward_chunk_on`.
            return unsafe { backward_chunk_avx2(token, a, work, nodes, grad_out, out) };
        }
        Simd::Portable => {}
    }
    let _ = isa;
    backward_chunk::<T, false>(None, a, work, nodes, grad_out, out)
}

/// [`backward_chunk`] compiled for AVX-512 (`token` proves the CPU has it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn backward_chunk_avx512<T: Real>(
    token: Avx512,
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    nodes: std::ops::Range<usize>,
    grad_out: &[T],
    out: &Outputs<'_, T>,
) {
    backward_chunk::<T, true>(Some(token.avx2()), a, work, nodes, grad_out, out)
}

/// [`backward_chunk`] compiled for AVX2 and FMA (`token` proves the CPU has them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_chunk_avx2<T: Real>(
    token: Avx2Fma,
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    nodes: std::ops::Range<usize>,
    grad_out: &[T],
    out: &Outputs<'_, T>,
) {
    backward_chunk::<T, true>(Some(token), a, work, nodes, grad_out, out)
}

/// The gradients of the edges into `nodes`, block by block: the weights and slopes the
/// forward kept (or the MLP formed again), the product's gradients, then the MLP's, each
/// edge's rows written to `out`.
#[inline(always)]
fn backward_chunk<T: Real, const FMA: bool>(
    avx2: Option<Avx2Fma>,
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    nodes: std::ops::Range<usize>,
    grad_out: &[T],
    out: &Outputs<'_, T>,
) {
    let first_block = a.blocks.get(nodes.start / NODE_CHUNK).copied().unwrap_or(0);
    edges_into(&mut work.edges, nodes, a.edges);
    let edges = std::mem::take(&mut work.edges);
    let d_out = a.d_out;
    for (b, block) in edges.chunks(EDGE_LANES).enumerate() {
        gather(avx2, a, block, work);
        // Each edge's output gradient, scaled: its destination's row, scaled in the lanes
        // (a row of a few values scaled as it was copied ran one value at a time: a sixth
        // of the backward), over the values in order (per row of lanes, the compiler
        // vectorized across the rows: a gather and a scatter per lane).
        let g = lane_rows(&mut work.out, d_out);
        node_rows_to_lanes(avx2, grad_out, d_out, block, |e| a.edges.dst(e), g);
        g.as_flattened_mut().iter_mut().for_each(|g| *g *= a.scale);
        // The block's kept weights and slopes, read where they are (copied into the
        // block's buffers first, they cost a sixth of the backward's `memcpy`), or the MLP
        // formed again.
        let kept = match a.saved_in {
            Some(saved) => {
                let width = a.saved_rows * EDGE_LANES;
                Some(&saved[(first_block + b) * width..(first_block + b + 1) * width])
            }
            None => {
                mlp_forward::<T, FMA>(a, work, true, None);
                None
            }
        };
        product_backward::<T, FMA>(a, work, kept);
        let db = mlp_backward::<T, FMA>(a, work, kept);
        let m = block.len();
        // SAFETY: the edges into the chunk's nodes are this task's alone, each once.
        unsafe {
            if let Some(rows) = &out.x1 {
                let dx1 = from_lanes(avx2, &work.dx1, &mut work.stage);
                write_rows(rows, block, &dx1[..m * a.d1]);
            }
            if let Some(rows) = &out.x2 {
                add_rows(rows, block, from_lanes(avx2, &work.dx2, &mut work.stage));
            }
            if let Some(rows) = &out.embedding {
                add_rows(rows, block, from_lanes(avx2, &work.da[db], &mut work.stage));
            }
        }
    }
    work.edges = edges;
}

/// The block's embedding, source features and `x2` rows into `work`'s lanes (past the
/// block, the embedding's and `x2`'s lanes zero, the features' the last edge's again).
#[inline(always)]
fn gather<T: Real>(avx2: Option<Avx2Fma>, a: &Radial<'_, T>, block: &[u32], work: &mut Work<T>) {
    let (nb, d1, d2) = (a.num_basis, a.d1, a.d2);
    if work.acts.len() != a.hidden.len() + 1 {
        work.acts.resize_with(a.hidden.len() + 1, Vec::new);
        work.slopes.resize_with(a.hidden.len(), Vec::new);
    }
    let stage = &mut work.stage;
    // The backward with kept weights and slopes reads no embedding.
    if a.saved_in.is_none() {
        edge_rows_to_lanes(
            avx2,
            a.embedding,
            nb,
            block,
            stage,
            lane_rows(&mut work.acts[0], nb),
        );
    }
    edge_rows_to_lanes(avx2, a.x2, d2, block, stage, lane_rows(&mut work.x2, d2));
    let x1 = lane_rows(&mut work.x1, d1);
    node_rows_to_lanes(avx2, a.x1, d1, block, |e| a.edges.src(e), x1);
}

/// `out[c][l] = data[node(e_l), c]` for the block's edges `e_l` (`data` `[N, d]`), each
/// node's row read where it is (copied into a block of rows first, each took a call to
/// `memcpy`). A block of fewer edges repeats its last one in the lanes past it, which
/// only ever meet themselves: every step is lane by lane, and no lane past the block is
/// read back.
#[inline(always)]
fn node_rows_to_lanes<T: Real>(
    avx2: Option<Avx2Fma>,
    data: &[T],
    d: usize,
    block: &[u32],
    node: impl Fn(usize) -> usize,
    out: &mut [Lanes<T>],
) {
    let last = block.len().saturating_sub(1);
    let starts: [usize; EDGE_LANES] =
        std::array::from_fn(|l| block.get(l.min(last)).map_or(0, |&e| node(e as usize) * d));
    transpose_rows(avx2, d, data, &starts, out.as_flattened_mut(), EDGE_LANES);
}

/// `out[c][l] = data[e_l, c]` for the block's edges `e_l` (`data` `[E, d]`): from one block
/// of `data` where they are consecutive, else through `stage`.
#[inline(always)]
fn edge_rows_to_lanes<T: Real>(
    avx2: Option<Avx2Fma>,
    data: &[T],
    d: usize,
    block: &[u32],
    stage: &mut Vec<T>,
    out: &mut [Lanes<T>],
) {
    if block.len() == EDGE_LANES
        && let Some(first) = consecutive(block)
    {
        let rows = &data[first * d..(first + EDGE_LANES) * d];
        transpose(
            avx2,
            (EDGE_LANES, d),
            rows,
            d,
            out.as_flattened_mut(),
            EDGE_LANES,
        );
        return;
    }
    stage.clear();
    for &e in block {
        let e = e as usize;
        stage.extend_from_slice(&data[e * d..(e + 1) * d]);
    }
    to_lanes(avx2, stage, d, out);
}

/// The rows of `stage` (`[m][d]`, `m <= 16`) into lanes (`out` `[d][lanes]`), lanes past
/// `m` zero; `stage` is padded on the way.
#[inline(always)]
fn to_lanes<T: Real>(avx2: Option<Avx2Fma>, stage: &mut Vec<T>, d: usize, out: &mut [Lanes<T>]) {
    stage.resize(EDGE_LANES * d, T::zero());
    transpose(
        avx2,
        (EDGE_LANES, d),
        stage,
        d,
        out.as_flattened_mut(),
        EDGE_LANES,
    );
}

/// The lanes `v` (`[d][lanes]`) as rows, `[lanes][d]`, in `stage`.
#[inline(always)]
fn from_lanes<'s, T: Real>(
    avx2: Option<Avx2Fma>,
    v: &[Lanes<T>],
    stage: &'s mut Vec<T>,
) -> &'s [T] {
    let d = v.len();
    stage.resize(EDGE_LANES * d, T::zero());
    transpose(
        avx2,
        (d, EDGE_LANES),
        v.as_flattened(),
        EDGE_LANES,
        stage,
        d,
    );
    stage
}

/// Row `e` of `rows` added to from row `n` of `by_edge` (`[lanes][width]`), for the `n`-th
/// of `edges`.
///
/// # Safety
///
/// As [`write_rows`]: no other task touches the rows of `edges`.
#[inline(always)]
unsafe fn add_rows<T: Real>(rows: &EdgeRows<'_, T>, edges: &[u32], by_edge: &[T]) {
    let width = by_edge.len() / EDGE_LANES;
    // Consecutive edges (those into a chunk of a graph listed by destination) as one run:
    // rows of a few values added one at a time ran one value at a time.
    if let Some(first) = consecutive(edges) {
        // SAFETY: by the caller's contract (the rows are those of `edges`).
        let run = unsafe { rows.rows(first, edges.len(), width) };
        run.iter_mut().zip(by_edge).for_each(|(y, &a)| *y += a);
        return;
    }
    for (&e, add) in edges.iter().zip(by_edge.chunks_exact(width.max(1))) {
        // SAFETY: by the caller's contract.
        let row = unsafe { rows.row(e as usize, width) };
        row.iter_mut().zip(add).for_each(|(y, &a)| *y += a);
    }
}

/// `out[n] = sum_k x[k] m[k, n]` for each lane (`x` `[k][lanes]`, `m` `[k, cols]`), four
/// columns at a time (four sums in flight, each row of `x` read once per four), then one.
/// (Eight at a time ran at a quarter of the speed: the sums left the registers.)
#[inline(always)]
fn times_matrix<T: Real, const FMA: bool>(
    x: &[Lanes<T>],
    m: &[T],
    cols: usize,
    out: &mut [Lanes<T>],
) {
    let mut n = 0;
    n = columns::<T, FMA, 4>(x, m, cols, out, n);
    columns::<T, FMA, 1>(x, m, cols, out, n);
}

/// [`times_matrix`]'s columns from `n` on, `B` at a time while `B` remain: where it
/// stopped.
#[inline(always)]
fn columns<T: Real, const FMA: bool, const B: usize>(
    x: &[Lanes<T>],
    m: &[T],
    cols: usize,
    out: &mut [Lanes<T>],
    mut n: usize,
) -> usize {
    while n + B <= cols {
        let mut acc = [[T::zero(); EDGE_LANES]; B];
        for (xk, row) in x.iter().zip(m.chunks_exact(cols)) {
            for (acc, &c) in acc.iter_mut().zip(&row[n..n + B]) {
                for l in 0..EDGE_LANES {
                    acc[l] = madd::<T, FMA>(acc[l], c, xk[l]);
                }
            }
        }
        out[n..n + B].copy_from_slice(&acc);
        n += B;
    }
    n
}

/// The MLP on the block's embedding: each hidden layer's outputs and the weights, with
/// the slopes and weights written to the block's row of [`RadialSaved`] if `kept` is
/// given, else to `work.slopes` (if `slopes`) and `work.w`.
#[inline(always)]
fn mlp_forward<T: Real, const FMA: bool>(
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    slopes: bool,
    mut kept: Option<&mut [T]>,
) {
    for (l, layer) in a.hidden.iter().enumerate() {
        let (before, after) = work.acts.split_at_mut(l + 1);
        let z = lane_rows(&mut work.z, layer.outputs);
        times_matrix::<T, FMA>(&before[l], layer.weight, layer.outputs, z);
        let next = lane_rows(&mut after[0], layer.outputs);
        let slope = lane_rows(&mut work.slopes[l], if slopes { layer.outputs } else { 0 });
        match layer.activation {
            Some((f, c)) => {
                // SAFETY: the activation writes every element of its outputs, with
                // initialized values only.
                let y = unsafe { as_uninit(next.as_flattened_mut()) };
                let slope = match kept.as_deref_mut() {
                    Some(kept) => Some(&mut kept[a.kept_slopes(l)]),
                    None => slopes.then_some(slope.as_flattened_mut()),
                };
                if let Some(s) = slope {
                    // SAFETY: as above.
                    let s = unsafe { as_uninit(s) };
                    activation::with_derivative(f, c, z.as_flattened(), y, s);
                } else {
                    activation::forward(f, c, z.as_flattened(), y);
                }
            }
            // No slopes: the backward skips a layer without an activation.
            None => next.copy_from_slice(z),
        }
    }
    let h = &work.acts[a.hidden.len()];
    let w = match kept {
        Some(kept) => kept[..a.numel * EDGE_LANES].as_chunks_mut::<EDGE_LANES>().0,
        None => lane_rows(&mut work.w, a.numel),
    };
    times_matrix::<T, FMA>(h, a.last, a.numel, w);
}

/// `acc + a b` per lane (one rounding with `FMA`).
#[inline(always)]
fn madd_lanes<T: Real, const FMA: bool>(acc: Lanes<T>, a: Lanes<T>, b: Lanes<T>) -> Lanes<T> {
    std::array::from_fn(|l| madd::<T, FMA>(acc[l], a[l], b[l]))
}

/// `a b` per lane.
#[inline(always)]
fn mul_lanes<T: Real>(a: Lanes<T>, b: Lanes<T>) -> Lanes<T> {
    std::array::from_fn(|l| a[l] * b[l])
}

/// `c a` per lane.
#[inline(always)]
fn scale_lanes<T: Real>(c: T, a: Lanes<T>) -> Lanes<T> {
    a.map(|a| c * a)
}

/// The block's weights: those `kept` by the forward (the first rows of the block's row of
/// [`RadialSaved`]), or those the MLP formed in `formed`.
#[inline(always)]
fn weights<'w, T: Real>(
    a: &Radial<'_, T>,
    kept: Option<&'w [T]>,
    formed: &'w [Lanes<T>],
) -> &'w [Lanes<T>] {
    match kept {
        Some(kept) => kept[..a.numel * EDGE_LANES].as_chunks::<EDGE_LANES>().0,
        None => formed,
    }
}

/// The block's messages `work.out` from its `x1`, `x2` and weights (those in `kept`, or
/// `work.w`). (The lanes are copied into values, which the compiler keeps in registers:
/// through references into the buffers it cannot tell the stores from the loads and runs
/// the lanes one by one.)
#[inline(always)]
fn product<T: Real, const FMA: bool>(a: &Radial<'_, T>, work: &mut Work<T>, kept: Option<&[T]>) {
    let out = lane_rows(&mut work.out, a.d_out);
    out.fill([T::zero(); EDGE_LANES]);
    let w = weights(a, kept, &work.w);
    let (x1, x2) = (&work.x1, &work.x2);
    let ones = [T::one(); EDGE_LANES];
    for p in &a.paths {
        for u in 0..p.channels {
            let wu = p.weight.map_or(ones, |o| w[o + u]);
            for &(i, j, k, c) in &p.terms {
                let (x, y) = (x1[p.in1 + u * p.d1 + i], x2[p.in2 + j]);
                let o = &mut out[p.out + u * p.d3 + k];
                *o = madd_lanes::<T, FMA>(*o, mul_lanes(scale_lanes(c, x), y), wu);
            }
        }
    }
}

/// The product's gradients in the block from the scaled output gradients `work.out`:
/// `work.dw`, `work.dx1`, `work.dx2`; the weights those `kept` by the forward (the block's
/// row of [`RadialSaved`]), or `work.w`.
#[inline(always)]
fn product_backward<T: Real, const FMA: bool>(
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    kept: Option<&[T]>,
) {
    let zero = [T::zero(); EDGE_LANES];
    lane_rows(&mut work.dw, a.numel).fill(zero);
    lane_rows(&mut work.dx1, a.d1).fill(zero);
    lane_rows(&mut work.dx2, a.d2).fill(zero);
    let w = weights(a, kept, &work.w);
    let (x1, x2, g) = (&work.x1, &work.x2, &work.out);
    let (dw, dx1, dx2) = (&mut work.dw, &mut work.dx1, &mut work.dx2);
    let ones = [T::one(); EDGE_LANES];
    for p in &a.paths {
        for u in 0..p.channels {
            let wu = p.weight.map_or(ones, |o| w[o + u]);
            let mut dwu = zero;
            for &(i, j, k, c) in &p.terms {
                let (x, y) = (x1[p.in1 + u * p.d1 + i], x2[p.in2 + j]);
                let cg = scale_lanes(c, g[p.out + u * p.d3 + k]);
                dwu = madd_lanes::<T, FMA>(dwu, mul_lanes(cg, x), y);
                let cgw = mul_lanes(cg, wu);
                let d1 = &mut dx1[p.in1 + u * p.d1 + i];
                *d1 = madd_lanes::<T, FMA>(*d1, cgw, y);
                let d2 = &mut dx2[p.in2 + j];
                *d2 = madd_lanes::<T, FMA>(*d2, cgw, x);
            }
            if let Some(o) = p.weight {
                dw[o + u] = dwu;
            }
        }
    }
}

/// The MLP's gradients in the block from `work.dw`, back to the embedding's: which of
/// `work.da` holds it. The slopes are those `kept` by the forward, or `work.slopes`.
#[inline(always)]
fn mlp_backward<T: Real, const FMA: bool>(
    a: &Radial<'_, T>,
    work: &mut Work<T>,
    kept: Option<&[T]>,
) -> usize {
    let [da, prev] = &mut work.da;
    times_matrix::<T, FMA>(&work.dw, &a.last_t, a.width, lane_rows(da, a.width));
    let mut at = 0;
    for (l, layer) in a.hidden.iter().enumerate().rev() {
        let (cur, next) = if at == 0 {
            (&mut *da, &mut *prev)
        } else {
            (&mut *prev, &mut *da)
        };
        // Over the values in order (per row of lanes, the compiler vectorized across the
        // rows: a gather and a scatter per lane).
        if layer.activation.is_some() {
            let slopes = match kept {
                Some(kept) => &kept[a.kept_slopes(l)],
                None => work.slopes[l].as_flattened(),
            };
            (cur.as_flattened_mut().iter_mut())
                .zip(slopes)
                .for_each(|(g, &s)| *g *= s);
        }
        times_matrix::<T, FMA>(
            cur,
            &a.hidden_t[l],
            layer.inputs,
            lane_rows(next, layer.inputs),
        );
        at = 1 - at;
    }
    at
}
