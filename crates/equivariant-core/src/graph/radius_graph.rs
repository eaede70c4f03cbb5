//! Radius graphs (torch_cluster's `radius_graph`) with a cell list, optionally periodic.
//!
//! # Algorithm
//! 1. Grid: atoms are binned on a grid of their fractional coordinates (Cartesian when there
//!    is no cell) whose bins are at least `r` thick, measured perpendicular to the lattice
//!    planes; along periodic axes positions are wrapped into the cell first. The grid spans
//!    the bounding box of the atoms along open axes and the cell along periodic ones.
//! 2. Sort: atoms are ordered by bin (counting sort into a dense offset table when the grid
//!    has at most `8 N + 4096` bins; otherwise a sort of the occupied bin keys, looked up by
//!    binary search, so a far outlier or a tiny cutoff allocates nothing per empty bin).
//! 3. Search: for each occupied destination bin, the 3x3 rows of neighbouring bins along axes
//!    1 and 2 (more when `r` exceeds the cell, one per periodic image) are each a contiguous
//!    run of sorted atoms; every destination of the bin tests every atom of those runs. At a
//!    fixed density this is `O(N)` work (about `27 / (4 pi / 3) = 6.4` tests per edge).
//! 4. Assemble: each destination's list is selected (`max_num_neighbors`) and sorted on its
//!    own, then the lists are concatenated in destination order.
//!
//! Steps 3 and 4 run in parallel (rayon) over bins and atoms; no result depends on the number
//! of threads or the order in which work is done.

use rayon::prelude::*;

use super::cell::Cell;
use crate::error::first_non_finite;
use crate::{Error, Real, Result};

/// Bins per cutoff: bins are at least `r / SUBDIVISION` thick, and a sphere reaches
/// `SUBDIVISION` bins on each side. 2 tests ~40% fewer pairs than 1 but gathers 125 instead of
/// 27 bins per bin; at the guide's density 1 is ~1.5x faster overall.
const SUBDIVISION: f64 = 1.0;
/// At most this many bins along one axis (keys pack three 21-bit bin indices into a `u64`).
const MAX_BINS_PER_AXIS: i64 = 1 << 20;
/// Refuse cutoffs that need more than this many (bin, periodic image) pairs per bin.
const MAX_OFFSETS: f64 = (1u64 << 24) as f64;
/// Refuse positions more than this many cells away from the cell along a periodic axis
/// (the shifts must fit in `i32`).
const MAX_WRAP: f64 = (1u64 << 29) as f64;
/// Dense bin tables hold at most this many bins per atom (plus 4096); sparser grids (a far
/// outlier, a tiny cutoff) keep occupied bins only.
const DENSE_BINS_PER_ATOM: u64 = 8;
/// Occupied bins per parallel task.
const BINS_PER_TASK: usize = 64;
/// Atoms per block when copying the per-bin lists into the final, destination-ordered arrays.
const ATOMS_PER_BLOCK: usize = 4096;

/// Edges per parallel task of [`Graph::edge_vec`] and [`Graph::within`].
const EDGE_BLOCK: usize = 4096;

/// A directed graph given as a list of edges `src[e] -> dst[e]`, `e = 0..E`, as torch_cluster
/// returns it (`edge_index = [src; dst]`, flow `source_to_target`).
///
/// For periodic systems `shift[e]` is the lattice translation of the source: edge `e` goes from
/// the image `pos[src[e]] + shift[e]·L` of the source atom to `pos[dst[e]]`
/// (see [`Cell::shift_vector`]). `shift` is `None` when the graph was built without a cell.
///
/// ```
/// use equivariant_core::graph::Graph;
/// let g = Graph { src: vec![1, 0], dst: vec![0, 1], shift: None };
/// assert_eq!(g.num_edges(), 2);
/// let pos = [0.0f64, 0.0, 0.0, 1.0, 2.0, 3.0];
/// assert_eq!(g.edge_vec(&pos, None)?, vec![-1.0, -2.0, -3.0, 1.0, 2.0, 3.0]);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graph {
    /// Source node of each edge, `[E]`.
    pub src: Vec<usize>,
    /// Destination node of each edge, `[E]`.
    pub dst: Vec<usize>,
    /// Periodic image of the source of each edge, `[E]` integer lattice coordinates, or `None`
    /// for a graph built without a cell.
    pub shift: Option<Vec<[i32; 3]>>,
}

impl Graph {
    /// The number of edges `E`.
    ///
    /// ```
    /// use equivariant_core::graph::Graph;
    /// assert_eq!(Graph::default().num_edges(), 0);
    /// ```
    pub fn num_edges(&self) -> usize {
        self.src.len()
    }

    /// Edge vectors, `[E, 3]` row-major:
    /// `edge_vec[e] = pos[dst[e]] - (pos[src[e]] + shift[e]·L)`, the guide's
    /// `edge_vec = pos[edge_dst] - pos[edge_src]` with periodic images. Computed in f64 and
    /// rounded to `T` (for f32 without shifts this equals the f32 subtraction exactly).
    ///
    /// `pos` is `[n, 3]` row-major. `cell` is required when the graph has shifts; it is
    /// ignored when it has none.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `pos.len()` is not a multiple of 3, or `src`, `dst` and
    /// `shift` have different lengths; [`Error::InvalidArgument`] if a node index is `>= n` or
    /// the graph has shifts and `cell` is `None`.
    ///
    /// ```
    /// use equivariant_core::graph::{radius_graph, Cell};
    /// // One atom in a periodic 1x1x1 box sees its own six nearest images within r = 1.2.
    /// let cell = Cell::orthorhombic([1.0, 1.0, 1.0], [true; 3])?;
    /// let pos = [0.5f64, 0.5, 0.5];
    /// let g = radius_graph(&pos, 1.2, None, Some(&cell))?;
    /// assert_eq!(g.num_edges(), 6);
    /// let v = g.edge_vec(&pos, Some(&cell))?;
    /// // Sorted by shift: the first edge comes from the image at shift (-1, 0, 0).
    /// assert_eq!(g.shift.as_ref().unwrap()[0], [-1, 0, 0]);
    /// assert_eq!(&v[..3], &[1.0, 0.0, 0.0]); // pos - (pos - a_0)
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn edge_vec<T: Real>(&self, pos: &[T], cell: Option<&Cell>) -> Result<Vec<T>> {
        self.edge_vectors(pos, cell.map(Cells::One))
    }

    /// [`edge_vec`](Graph::edge_vec) of a batch of structures with a cell each (the graph of
    /// [`radius_graph_batched`](super::radius_graph_batched)): edge `e` is shifted by
    /// `shift[e]·L` of the cell of its graph, `cells[batch[dst[e]]]`.
    ///
    /// # Errors
    /// As [`edge_vec`](Graph::edge_vec); [`Error::ShapeMismatch`] if `batch` does not have one
    /// entry per node; [`Error::InvalidArgument`] for a graph index without a cell.
    ///
    /// ```
    /// use equivariant_core::graph::{radius_graph_batched, Cell};
    /// // One atom in each of two periodic boxes, of sides 1 and 2: each sees its images.
    /// let cells = [Cell::orthorhombic([1.0; 3], [true; 3])?, Cell::orthorhombic([2.0; 3], [true; 3])?];
    /// let pos = [0.5f64, 0.5, 0.5, 0.5, 0.5, 0.5];
    /// let g = radius_graph_batched(&pos, &[0, 1], 2.1, None, Some(&cells))?;
    /// let v = g.edge_vec_batched(&pos, &[0, 1], &cells)?;
    /// let longest = v.chunks(3).map(|v| v.iter().map(|x| x * x).sum::<f64>().sqrt()).fold(0.0, f64::max);
    /// assert!((longest - 2.0).abs() < 1e-12); // the second box's nearest images
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn edge_vec_batched<T: Real>(
        &self,
        pos: &[T],
        batch: &[usize],
        cells: &[Cell],
    ) -> Result<Vec<T>> {
        let n = num_atoms(pos)?;
        if batch.len() != n {
            return Err(Error::ShapeMismatch {
                what: "batch (one graph index per node of pos)",
                expected: n,
                got: batch.len(),
            });
        }
        if let Some(i) = batch.iter().position(|&b| b >= cells.len()) {
            return Err(Error::InvalidArgument {
                name: "cells",
                reason: format!(
                    "node {i} is in graph {}, but there are {} cells",
                    batch[i],
                    cells.len()
                ),
            });
        }
        self.edge_vectors(pos, Some(Cells::PerGraph { batch, cells }))
    }

    /// The edges shorter than `r_max` (`|v_e|^2 < r_max^2`, in `T`) of this graph, given
    /// their vectors `edge_vec` (`[E * 3]`, as [`edge_vec`](Graph::edge_vec) makes them):
    /// the graph of those edges, in this graph's order, and their vectors. What an MD step
    /// keeps of a neighbour list built with a skin; the blocks of edges are filtered in
    /// parallel (counted, then written at their offsets), so the result does not depend on
    /// the threads.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for `edge_vec` not of three values per edge, or `dst` (or
    /// `shift`) not one per edge of `src`; [`Error::InvalidArgument`] for an `r_max` that is
    /// not finite and positive.
    ///
    /// ```
    /// use equivariant_core::graph::Graph;
    /// let g = Graph { src: vec![0, 1, 2], dst: vec![1, 2, 0], shift: None };
    /// let v = [1.0f64, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, -0.5];
    /// let (near, kept) = g.within(&v, 2.0)?;
    /// assert_eq!((near.src, near.dst), (vec![0, 2], vec![1, 0]));
    /// assert_eq!(kept, [1.0, 0.0, 0.0, 0.0, 0.0, -0.5]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn within<T: Real>(&self, edge_vec: &[T], r_max: T) -> Result<(Graph, Vec<T>)> {
        let e = self.num_edges();
        if edge_vec.len() != 3 * e {
            return Err(Error::ShapeMismatch {
                what: "edge_vec [E * 3] (three per edge of src)",
                expected: 3 * e,
                got: edge_vec.len(),
            });
        }
        self.check_lengths()?;
        if !(r_max.is_finite() && r_max > T::zero()) {
            return Err(Error::InvalidArgument {
                name: "r_max",
                reason: format!("must be finite and positive, got {}", r_max.to_f64()),
            });
        }
        let r2 = r_max * r_max;
        let near = |v: &[T]| v[0] * v[0] + v[1] * v[1] + v[2] * v[2] < r2;
        let counts: Vec<usize> = (edge_vec.par_chunks(3 * EDGE_BLOCK))
            .map(|block| block.chunks_exact(3).filter(|v| near(v)).count())
            .collect();
        let kept: usize = counts.iter().sum();
        // Written once each, not zeroed first.
        let mut src = Vec::with_capacity(kept);
        let mut dst = Vec::with_capacity(kept);
        let mut shift: Option<Vec<[i32; 3]>> =
            self.shift.as_ref().map(|_| Vec::with_capacity(kept));
        let mut vectors = Vec::with_capacity(3 * kept);
        // Each block's share of the outputs, split off in order.
        let mut parts = Vec::with_capacity(counts.len());
        let (mut s, mut d, mut v) = (
            &mut src.spare_capacity_mut()[..kept],
            &mut dst.spare_capacity_mut()[..kept],
            &mut vectors.spare_capacity_mut()[..3 * kept],
        );
        let mut sh = shift.as_mut().map(|h| &mut h.spare_capacity_mut()[..kept]);
        for &count in &counts {
            let (s0, s1) = std::mem::take(&mut s).split_at_mut(count);
            let (d0, d1) = std::mem::take(&mut d).split_at_mut(count);
            let (v0, v1) = std::mem::take(&mut v).split_at_mut(3 * count);
            let h0 = match sh.take() {
                Some(h) => {
                    let (h0, h1) = h.split_at_mut(count);
                    sh = Some(h1);
                    Some(h0)
                }
                None => None,
            };
            parts.push((s0, d0, v0, h0));
            (s, d, v) = (s1, d1, v1);
        }
        parts
            .into_par_iter()
            .enumerate()
            .for_each(|(b, (s, d, v, mut h))| {
                let first = b * EDGE_BLOCK;
                let block = &edge_vec[3 * first..(3 * (first + EDGE_BLOCK)).min(3 * e)];
                let mut at = 0;
                for (i, r) in block.chunks_exact(3).enumerate() {
                    if near(r) {
                        let k = first + i;
                        s[at].write(self.src[k]);
                        d[at].write(self.dst[k]);
                        for c in 0..3 {
                            v[3 * at + c].write(r[c]);
                        }
                        if let (Some(h), Some(shift)) = (h.as_deref_mut(), &self.shift) {
                            h[at].write(shift[k]);
                        }
                        at += 1;
                    }
                }
                // What the SAFETY below rests on (a block's two passes agree).
                assert_eq!(at, s.len(), "a block kept the edges it counted");
            });
        // SAFETY: the shares cover all `kept` entries of each output, and each block wrote
        // exactly its share's `counts[b]`: more would have panicked at the bounds-checked
        // writes, fewer at the assert, both before this (and the entries need no drop).
        unsafe {
            src.set_len(kept);
            dst.set_len(kept);
            vectors.set_len(3 * kept);
            if let Some(h) = &mut shift {
                h.set_len(kept);
            }
        }
        Ok((Graph { src, dst, shift }, vectors))
    }

    /// `dst` (and `shift`, if any) one per edge of `src`.
    fn check_lengths(&self) -> Result<()> {
        let e = self.num_edges();
        if self.dst.len() != e {
            return Err(Error::ShapeMismatch {
                what: "Graph::dst (one entry per edge of src)",
                expected: e,
                got: self.dst.len(),
            });
        }
        if let Some(shift) = &self.shift
            && shift.len() != e
        {
            return Err(Error::ShapeMismatch {
                what: "Graph::shift (one entry per edge of src)",
                expected: e,
                got: shift.len(),
            });
        }
        Ok(())
    }

    /// The edge vectors with each edge's cell from `cells`.
    fn edge_vectors<T: Real>(&self, pos: &[T], cell: Option<Cells<'_>>) -> Result<Vec<T>> {
        let n = num_atoms(pos)?;
        let num_edges = self.num_edges();
        self.check_lengths()?;
        check_indices("Graph::src", &self.src, n)?;
        check_indices("Graph::dst", &self.dst, n)?;
        let shift_cell = match (&self.shift, cell) {
            (Some(shift), Some(cell)) => Some((shift.as_slice(), cell)),
            (Some(_), None) => {
                return Err(Error::InvalidArgument {
                    name: "cell",
                    reason: "the graph has periodic shifts: pass the cell it was built with".into(),
                });
            }
            (None, _) => None,
        };
        // Written once each, not zeroed first (a step of MD at 1000 atoms zeroed a MB of
        // fresh pages per call).
        let mut out = Vec::with_capacity(3 * num_edges);
        // Blocks of edges per task, each a plain loop: a parallel item per edge cost more in
        // the iterator's bookkeeping than the subtraction (callgrind, MD at 108 atoms).
        out.spare_capacity_mut()[..3 * num_edges]
            .par_chunks_mut(3 * EDGE_BLOCK)
            .enumerate()
            .for_each(|(b, block)| {
                for (i, v) in block.chunks_exact_mut(3).enumerate() {
                    let e = b * EDGE_BLOCK + i;
                    let (s, d) = (self.src[e], self.dst[e]);
                    let ps: [f64; 3] = std::array::from_fn(|k| pos[3 * s + k].to_f64());
                    let pd: [f64; 3] = std::array::from_fn(|k| pos[3 * d + k].to_f64());
                    let sv = match shift_cell {
                        Some((shift, cells)) => cells.of(d).shift_vector(shift[e]),
                        None => [0.0; 3],
                    };
                    for k in 0..3 {
                        v[k].write(T::from_f64(pd[k] - (ps[k] + sv[k])));
                    }
                }
            });
        // SAFETY: the blocks cover the `3 * num_edges` values, each written above.
        unsafe { out.set_len(3 * num_edges) };
        Ok(out)
    }
}

/// The cell of each edge: one for the whole graph, or one per graph of a batch (found
/// through the destination node).
#[derive(Clone, Copy)]
enum Cells<'a> {
    One(&'a Cell),
    PerGraph {
        batch: &'a [usize],
        cells: &'a [Cell],
    },
}

impl Cells<'_> {
    /// The cell of the graph of `node`.
    fn of(&self, node: usize) -> &Cell {
        match self {
            Cells::One(cell) => cell,
            Cells::PerGraph { batch, cells } => &cells[batch[node]],
        }
    }
}

/// `n` for a `[n, 3]` buffer.
pub(super) fn num_atoms<T>(pos: &[T]) -> Result<usize> {
    if !pos.len().is_multiple_of(3) {
        return Err(Error::ShapeMismatch {
            what: "pos ([n, 3] row-major, length a multiple of 3)",
            expected: pos.len() - pos.len() % 3,
            got: pos.len(),
        });
    }
    Ok(pos.len() / 3)
}

fn check_indices(name: &'static str, index: &[usize], n: usize) -> Result<()> {
    match index.iter().position(|&i| i >= n) {
        Some(e) => Err(Error::InvalidArgument {
            name,
            reason: format!("entry {e} is node {}, but there are {n} nodes", index[e]),
        }),
        None => Ok(()),
    }
}

/// All pairs closer than `r`: torch_cluster's
/// `radius_graph(pos, r, loop=False, max_num_neighbors, flow="source_to_target")`, with an
/// `O(N)` cell list and optional periodic boundary conditions (ASE / matscipy neighbour-list
/// semantics).
///
/// # Shapes
/// `pos`: `[n, 3]` row-major. Returns a [`Graph`] with `E` edges (`src`, `dst`, and `shift`
/// when `cell` is given).
///
/// # Semantics
/// - Edge `src -> dst` exists iff `|d| < r` with `d = pos[dst] - (pos[src] + shift·L)`
///   (strictly less: pairs at exactly `r` are excluded). Without a cell `shift = 0`.
/// - Distances are computed in f64 from the f64 values of `pos`: the test is
///   `d_x² + d_y² + d_z² < r²` with every operation rounded in f64, `shift·L` as in
///   [`Cell::shift_vector`]. The relation is symmetric: `i -> j` iff `j -> i` (with the
///   opposite shift).
/// - No self loops: the pair `(i, i)` with zero shift is excluded. Distinct atoms at the
///   same position (distance 0) *are* connected, as in torch_cluster, which removes self
///   loops by index. With a cell, an atom's own periodic images within `r` are edges
///   `(i, i, s != 0)`; even a single atom can have edges then.
/// - Periodic axes (`cell.pbc()[c]`): every image within `r` is found, including cutoffs
///   larger than the cell (several images of the same pair, different shifts). Atoms may lie
///   outside the cell; shifts refer to the positions as given (no wrapping is applied to
///   them). Along non-periodic axes atoms may lie anywhere.
/// - `max_num_neighbors`: at most this many incoming edges per destination, keeping the
///   nearest (ties broken by smaller `src`, then smaller shift). torch_cluster keeps whichever
///   it finds first, which depends on its implementation; with no more than
///   `max_num_neighbors` candidates the results agree. `None` = unlimited (the guide passes
///   `N - 1`, which is unlimited without a cell).
/// - Order: edges sorted by `dst`, then `src`, then `shift` (lexicographic), for any number of
///   threads.
///
/// # Cost
/// `O(N + E)` time and memory at a fixed density (`O(N log N)` when the bounding box is so
/// sparse that only occupied bins are kept). A cutoff much larger than a periodic cell costs
/// `O(N² (r / h)³)`, the number of edges (`h`: [`Cell::plane_spacings`]). Bins are never
/// finer than the f64 rounding of the coordinates allows, so clusters of atoms around
/// `1e15 r` from each other or from the origin are binned coarsely (still exact, slower).
/// The result takes `16 E` bytes (`28 E` with shifts). The peak is that plus `O(N)` without
/// a cell (the intermediate per-bin lists, `4 E` bytes, are freed before `dst` is
/// allocated), and up to `36 E` bytes with shifts.
///
/// # Errors
/// - [`Error::ShapeMismatch`]: `pos.len()` is not a multiple of 3.
/// - [`Error::NonFinite`]: NaN or infinity in `pos` (first offending flat index).
/// - [`Error::InvalidArgument`]: `r` not finite or `<= 0`; more than `u32::MAX` atoms; a
///   cutoff needing more than 2^24 periodic bin offsets (`r` over ~100 times the cell
///   thickness); an atom more than 2^29 cells outside the cell along a periodic axis.
///
/// ```
/// use equivariant_core::graph::radius_graph;
/// // atoms 0 and 1 are 1.0 apart, atom 2 is 2.0 from atom 1 (== r: excluded).
/// let pos = [0.0f64, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 3.0, 0.0];
/// let g = radius_graph(&pos, 2.0, None, None)?;
/// assert_eq!((g.src, g.dst), (vec![1, 0], vec![0, 1]));
/// assert!(g.shift.is_none());
///
/// // Keep only the nearest neighbour of each node.
/// let pos = [0.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 3.0, 0.0, 0.0];
/// let g = radius_graph(&pos, 5.0, Some(1), None)?;
/// assert_eq!((g.src, g.dst), (vec![1, 0, 1], vec![0, 1, 2]));
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn radius_graph<T: Real>(
    pos: &[T],
    r: f64,
    max_num_neighbors: Option<usize>,
    cell: Option<&Cell>,
) -> Result<Graph> {
    let n = num_atoms(pos)?;
    if let Some(index) = first_non_finite(pos) {
        return Err(Error::NonFinite { what: "pos", index });
    }
    if !r.is_finite() || r <= 0.0 {
        return Err(Error::InvalidArgument {
            name: "r",
            reason: format!("the cutoff must be finite and > 0, got {r}"),
        });
    }
    if u32::try_from(n).is_err() {
        return Err(Error::InvalidArgument {
            name: "pos",
            reason: format!("{n} atoms: at most u32::MAX are supported"),
        });
    }
    let empty = Graph {
        src: Vec::new(),
        dst: Vec::new(),
        shift: cell.map(|_| Vec::new()),
    };
    let periodic = cell.is_some_and(|c| c.pbc().contains(&true));
    if n == 0 || (n == 1 && !periodic) || max_num_neighbors == Some(0) {
        return Ok(empty);
    }
    let p: Vec<[f64; 3]> = pos
        .par_chunks_exact(3)
        .map(|x| [x[0].to_f64(), x[1].to_f64(), x[2].to_f64()])
        .collect();
    let grid = Grid::new(&p, r, cell)?;
    let lists = grid.neighbour_lists(&p, r, max_num_neighbors);
    Ok(grid.assemble(lists, cell.is_some()))
}

/// One axis of the binning grid, in fractional coordinates (Cartesian without a cell).
#[derive(Debug, Clone, Copy)]
struct Axis {
    periodic: bool,
    /// Number of bins.
    nb: i64,
    /// Non-periodic: bin = floor((f / 2 - lo / 2) * inv_half_width).
    lo_half: f64,
    inv_half_width: f64,
    /// Bins a sphere of radius `r` reaches on each side.
    search: i64,
}

impl Axis {
    /// The bin of fractional coordinate `f` (already wrapped into `[0, 1)` when periodic).
    #[inline]
    fn bin(&self, f: f64) -> i64 {
        let b = if self.periodic {
            (f * self.nb as f64).floor()
        } else {
            ((0.5 * f - self.lo_half) * self.inv_half_width).floor()
        };
        // `as` saturates; the clamp absorbs rounding at the edges.
        (b as i64).clamp(0, self.nb - 1)
    }

    /// Bin `b` (possibly out of range) as (bin in range, periodic image), or `None` past the
    /// ends of a non-periodic axis.
    #[inline]
    fn wrap(&self, b: i64) -> Option<(i64, i32)> {
        if self.periodic {
            Some((b.rem_euclid(self.nb), b.div_euclid(self.nb) as i32))
        } else if (0..self.nb).contains(&b) {
            Some((b, 0))
        } else {
            None
        }
    }
}

/// Atoms sorted by bin, and where each bin's atoms lie in that order.
struct Grid {
    axes: [Axis; 3],
    /// The lattice when there is a periodic axis (`None`: no images, no wrapping).
    lattice: Option<[[f64; 3]; 3]>,
    /// Sorted position -> atom index; within a bin, atoms are in index order.
    order: Vec<u32>,
    /// Wrapped Cartesian positions `w = p - k·L`, in sorted order.
    wrapped: Vec<[f64; 3]>,
    /// Wrap counts `k` (integer part of the fractional coordinates along periodic axes), in
    /// sorted order.
    wraps: Vec<[i32; 3]>,
    /// Occupied bins `(key, start, end)` in key order, ranges into `order`.
    occupied: Vec<(u64, u32, u32)>,
    index: BinIndex,
    /// Candidate cutoff (with a rounding margin) for periodic systems, squared.
    r2_candidate: f64,
}

/// Where the atoms of a run of bins lie in sorted order.
enum BinIndex {
    /// Bin `key` holds `offsets[key]..offsets[key + 1]` (grids of at most `8 N + 4096` bins,
    /// see [`DENSE_BINS_PER_ATOM`]).
    Dense(Vec<u32>),
    /// Occupied keys in increasing order and `starts[i]..starts[i + 1]`, the atoms of bin
    /// `keys[i]` (binary search).
    Sparse { keys: Vec<u64>, starts: Vec<u32> },
}

impl BinIndex {
    /// The atoms (sorted positions) of bins `lo..=hi`.
    #[inline]
    fn range(&self, lo: u64, hi: u64) -> (usize, usize) {
        match self {
            BinIndex::Dense(offsets) => (
                offsets[lo as usize] as usize,
                offsets[hi as usize + 1] as usize,
            ),
            BinIndex::Sparse { keys, starts } => {
                let a = keys.partition_point(|&k| k < lo);
                let b = a + keys[a..].partition_point(|&k| k <= hi);
                (starts[a] as usize, starts[b] as usize)
            }
        }
    }
}

/// A run of candidate atoms (sorted positions `start..end`, consecutive bins along axis 0)
/// seen through one periodic image `image` (translation `t = image·L`).
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: usize,
    end: usize,
    t: [f64; 3],
    image: [i32; 3],
}

/// A destination's neighbour: source atom, total shift, squared distance.
#[derive(Debug, Clone, Copy)]
struct Neighbour {
    src: u32,
    shift: [i32; 3],
    d2: f64,
}

/// Neighbour lists of a run of consecutive sorted positions.
struct Lists {
    /// Sorted position of the first destination.
    first: usize,
    /// Number of neighbours of each destination.
    counts: Vec<u32>,
    src: Vec<u32>,
    shift: Vec<[i32; 3]>,
}

/// Per-task scratch buffers.
#[derive(Default)]
struct Scratch {
    /// Candidate runs of the current destination bin.
    segments: Vec<Segment>,
    /// Neighbours of the current destination (periodic, or with `max_num_neighbors`).
    found: Vec<Neighbour>,
    /// Sources of the current destination (open boundaries, unlimited), written branch-free:
    /// sized to hold every candidate of the bin.
    sources: Vec<u32>,
}

fn max_abs(v: [f64; 3]) -> f64 {
    v[0].abs().max(v[1].abs()).max(v[2].abs())
}

impl Grid {
    fn new(p: &[[f64; 3]], r: f64, cell: Option<&Cell>) -> Result<Self> {
        let n = p.len();
        let eps = f64::EPSILON;
        // Fractional coordinates: identity without a cell.
        let (recip, pbc, spacing, lattice) = match cell {
            Some(c) => (
                Some(c.reciprocal()),
                c.pbc(),
                c.plane_spacings(),
                Some(c.lattice()),
            ),
            None => (None, [false; 3], [1.0; 3], None),
        };
        let frac = |x: [f64; 3]| -> [f64; 3] {
            match recip {
                Some(b) => b.map(|b| x[0] * b[0] + x[1] * b[1] + x[2] * b[2]),
                None => x,
            }
        };
        // Bounds of the fractional coordinates, and magnitudes for rounding margins.
        let (lo, hi, max_f, max_p) = p
            .par_iter()
            .map(|&x| {
                let f = frac(x);
                (f, f, f.map(f64::abs), max_abs(x))
            })
            .reduce(
                || ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3], [0.0; 3], 0.0),
                |a, b| {
                    (
                        std::array::from_fn(|c| a.0[c].min(b.0[c])),
                        std::array::from_fn(|c| a.1[c].max(b.1[c])),
                        std::array::from_fn(|c| a.2[c].max(b.2[c])),
                        a.3.max(b.3),
                    )
                },
            );
        for c in 0..3 {
            if pbc[c] && max_f[c] >= MAX_WRAP {
                return Err(Error::InvalidArgument {
                    name: "pos",
                    reason: format!(
                        "an atom lies {:e} cells away along periodic axis {c}: wrap the positions into the cell",
                        max_f[c]
                    ),
                });
            }
        }
        let recip_norm: [f64; 3] = match recip {
            Some(b) => b.map(|b| b.iter().map(|x| x.abs()).sum()),
            None => [1.0; 3],
        };
        // Search radius. Without periodic axes the candidate test is the exact test, and
        // rounding only blurs the bin assignment (the `margin` below). With periodic axes the
        // candidates are tested on wrapped positions, which differ from the exact
        // `p_dst - (p_src + s·L)` by rounding: widen by a bound of that error.
        let any_pbc = pbc.contains(&true);
        let r_search = if any_pbc {
            let max_wrap = max_f
                .iter()
                .zip(pbc)
                .map(|(&f, periodic)| if periodic { f.ceil() } else { 0.0 })
                .fold(0.0, f64::max);
            // |p| + |k·L| + |image·L| over the atoms and images involved.
            let translations: f64 = lattice.map_or(0.0, |l| {
                (0..3)
                    .map(|c| (r / spacing[c] + 2.0 + 2.0 * max_wrap) * max_abs(l[c]))
                    .sum()
            });
            let scale = 2.0 * max_p + translations;
            r * (1.0 + 1e-9) + 16.0 * eps * scale
        } else {
            r * (1.0 + 1e-9)
        };
        // Bins at least r_search / SUBDIVISION thick, with a relative slack so that
        // `SUBDIVISION` bins always cover r_search.
        let width = r_search * (1.0 + 1e-6) / SUBDIVISION;
        let mut axes = [Axis {
            periodic: false,
            nb: 1,
            lo_half: 0.0,
            inv_half_width: 1.0,
            search: 1,
        }; 3];
        let mut reach = [0.0f64; 3];
        for c in 0..3 {
            // Rounding error of a fractional coordinate (and of its offset from the grid
            // origin), in fractional units. Bins are never thinner than 4 such errors, so
            // the bin assignment is off by at most half a bin even for extreme coordinates.
            let origin = if pbc[c] { 1.0 } else { lo[c].abs() };
            let err_f = 4.0 * eps * (max_f[c] + origin + max_p * recip_norm[c] * 3.0);
            let frac_width = (width / spacing[c]).max(4.0 * err_f);
            let axis = &mut axes[c];
            if pbc[c] {
                axis.periodic = true;
                let nb = (1.0 / frac_width).floor();
                axis.nb = if nb >= MAX_BINS_PER_AXIS as f64 {
                    MAX_BINS_PER_AXIS
                } else {
                    (nb as i64).max(1)
                };
                let bins_per_unit = axis.nb as f64;
                let margin = 1e-7 + 2.0 * err_f * bins_per_unit;
                reach[c] = r_search / spacing[c] * bins_per_unit + margin;
            } else {
                let half_range = 0.5 * hi[c] - 0.5 * lo[c];
                axis.lo_half = 0.5 * lo[c];
                let half_width = 0.5 * frac_width;
                // Bins past the ends are empty: reach at most nb - 1 bins.
                if half_range > 0.0 && half_width.is_finite() {
                    let nb = (half_range / half_width).floor() + 1.0;
                    let half_width = if nb >= MAX_BINS_PER_AXIS as f64 {
                        axis.nb = MAX_BINS_PER_AXIS;
                        half_range / (MAX_BINS_PER_AXIS - 2) as f64
                    } else {
                        axis.nb = nb as i64;
                        half_width
                    };
                    axis.inv_half_width = 1.0 / half_width;
                    let bins_per_unit = 0.5 * axis.inv_half_width;
                    let margin = 1e-7 + 2.0 * err_f * bins_per_unit;
                    reach[c] =
                        (r_search / spacing[c] * bins_per_unit + margin).min((axis.nb - 1) as f64);
                } else {
                    axis.nb = 1;
                    axis.inv_half_width = 1.0;
                    reach[c] = 0.0;
                }
            }
        }
        let num_offsets: f64 = reach.iter().map(|&x| 2.0 * x.ceil() + 1.0).product();
        if num_offsets > MAX_OFFSETS || !num_offsets.is_finite() {
            return Err(Error::InvalidArgument {
                name: "r",
                reason: format!(
                    "the cutoff {r} is too large for the cell (plane spacings {spacing:?}): it needs {num_offsets:e} periodic bin offsets, at most {MAX_OFFSETS:e} are supported"
                ),
            });
        }
        for c in 0..3 {
            axes[c].search = reach[c].ceil() as i64;
        }

        // Bin keys, wrap counts and wrapped positions, in atom order.
        let wrap_lattice = lattice.filter(|_| any_pbc);
        let per_atom: Vec<(u64, [i32; 3], [f64; 3])> = p
            .par_iter()
            .map(|&x| {
                let f = frac(x);
                let mut k = [0i32; 3];
                let mut key = 0u64;
                let mut stride = 1u64;
                for c in 0..3 {
                    let mut fc = f[c];
                    if axes[c].periodic {
                        let kc = fc.floor();
                        k[c] = kc as i32;
                        fc -= kc;
                    }
                    key += axes[c].bin(fc) as u64 * stride;
                    stride *= axes[c].nb as u64;
                }
                let w = match wrap_lattice {
                    Some(l) => {
                        let kf = k.map(f64::from);
                        std::array::from_fn(|j| {
                            x[j] - (kf[0] * l[0][j] + kf[1] * l[1][j] + kf[2] * l[2][j])
                        })
                    }
                    None => x,
                };
                (key, k, w)
            })
            .collect();
        let total_bins = axes.iter().map(|a| a.nb as u64).product::<u64>();

        let (order, occupied, index) = if total_bins <= DENSE_BINS_PER_ATOM * n as u64 + 4096 {
            // Counting sort: stable, so atoms stay in index order within a bin.
            let total = total_bins as usize;
            let mut offsets = vec![0u32; total + 1];
            for &(key, _, _) in &per_atom {
                offsets[key as usize + 1] += 1;
            }
            for b in 0..total {
                offsets[b + 1] += offsets[b];
            }
            let mut next = offsets.clone();
            let mut order = vec![0u32; n];
            for (i, &(key, _, _)) in per_atom.iter().enumerate() {
                let slot = &mut next[key as usize];
                order[*slot as usize] = i as u32;
                *slot += 1;
            }
            let occupied = (0..total)
                .filter(|&b| offsets[b + 1] > offsets[b])
                .map(|b| (b as u64, offsets[b], offsets[b + 1]))
                .collect::<Vec<_>>();
            (order, occupied, BinIndex::Dense(offsets))
        } else {
            let mut keyed: Vec<(u64, u32)> = per_atom
                .iter()
                .enumerate()
                .map(|(i, &(key, _, _))| (key, i as u32))
                .collect();
            keyed.par_sort_unstable();
            let order = keyed.iter().map(|&(_, i)| i).collect::<Vec<_>>();
            let mut occupied = Vec::new();
            let mut start = 0usize;
            for e in 1..=n {
                if e == n || keyed[e].0 != keyed[start].0 {
                    occupied.push((keyed[start].0, start as u32, e as u32));
                    start = e;
                }
            }
            let keys = occupied.iter().map(|o| o.0).collect();
            let starts = occupied
                .iter()
                .map(|o| o.1)
                .chain(std::iter::once(n as u32))
                .collect();
            (order, occupied, BinIndex::Sparse { keys, starts })
        };
        let wrapped = order.par_iter().map(|&i| per_atom[i as usize].2).collect();
        let wraps = order.par_iter().map(|&i| per_atom[i as usize].1).collect();
        Ok(Self {
            axes,
            lattice: wrap_lattice,
            order,
            wrapped,
            wraps,
            occupied,
            index,
            r2_candidate: r_search * r_search,
        })
    }

    /// The bin coordinates of a key.
    fn decode(&self, key: u64) -> [i64; 3] {
        let nb0 = self.axes[0].nb as u64;
        let nb1 = self.axes[1].nb as u64;
        [
            (key % nb0) as i64,
            ((key / nb0) % nb1) as i64,
            (key / (nb0 * nb1)) as i64,
        ]
    }

    /// Neighbour lists of every atom, in sorted order, split in runs of whole bins.
    fn neighbour_lists(&self, p: &[[f64; 3]], r: f64, max_nn: Option<usize>) -> Vec<Lists> {
        self.occupied
            .par_chunks(BINS_PER_TASK)
            .map_init(Scratch::default, |scratch, bins| {
                let first = bins[0].1 as usize;
                let mut lists = Lists {
                    first,
                    counts: Vec::with_capacity(bins[bins.len() - 1].2 as usize - first),
                    src: Vec::new(),
                    shift: Vec::new(),
                };
                for &(key, start, end) in bins {
                    self.bin_lists(
                        p,
                        r,
                        max_nn,
                        key,
                        start as usize..end as usize,
                        scratch,
                        &mut lists,
                    );
                }
                lists
            })
            .collect()
    }

    /// The candidate runs of destination bin `b`: for every reachable row of bins along
    /// axis 0 (and periodic image), the atoms of its consecutive bins, one [`Segment`] per
    /// image.
    fn segments(&self, b: [i64; 3], out: &mut Vec<Segment>) {
        out.clear();
        let [a0, a1, a2] = &self.axes;
        let (nb0, nb1) = (a0.nb, a1.nb);
        for d2 in -a2.search..=a2.search {
            let Some((b2, i2)) = a2.wrap(b[2] + d2) else {
                continue;
            };
            for d1 in -a1.search..=a1.search {
                let Some((b1, i1)) = a1.wrap(b[1] + d1) else {
                    continue;
                };
                let row = ((b2 * nb1 + b1) * nb0) as u64;
                let (mut x, mut x_end) = (b[0] - a0.search, b[0] + a0.search);
                if !a0.periodic {
                    x = x.max(0);
                    x_end = x_end.min(nb0 - 1);
                }
                while x <= x_end {
                    // Bins x..=x_end that share one periodic image along axis 0.
                    let i0 = if a0.periodic { x.div_euclid(nb0) } else { 0 };
                    let lo = x - i0 * nb0;
                    let hi = (x_end - i0 * nb0).min(nb0 - 1);
                    x += hi - lo + 1;
                    let (start, end) = self.index.range(row + lo as u64, row + hi as u64);
                    if start == end {
                        continue;
                    }
                    let image = [i0 as i32, i1, i2];
                    let t = match self.lattice {
                        Some(l) => {
                            let im = image.map(f64::from);
                            std::array::from_fn(|j| {
                                im[0] * l[0][j] + im[1] * l[1][j] + im[2] * l[2][j]
                            })
                        }
                        None => [0.0; 3],
                    };
                    out.push(Segment {
                        start,
                        end,
                        t,
                        image,
                    });
                }
            }
        }
    }

    /// Appends the neighbour lists of the atoms `atoms` (sorted positions) of bin `key`.
    #[allow(clippy::too_many_arguments)]
    fn bin_lists(
        &self,
        p: &[[f64; 3]],
        r: f64,
        max_nn: Option<usize>,
        key: u64,
        atoms: std::ops::Range<usize>,
        s: &mut Scratch,
        out: &mut Lists,
    ) {
        self.segments(self.decode(key), &mut s.segments);
        let num_candidates: usize = s.segments.iter().map(|g| g.end - g.start).sum();
        if s.sources.len() < num_candidates {
            s.sources.resize(num_candidates, 0);
        }
        let r2 = r * r;
        for qi in atoms {
            let wi = self.wrapped[qi];
            match (self.lattice, max_nn) {
                (None, None) => {
                    // Open boundaries: w = p and no translation, so the candidate distance
                    // is the exact one. Only the sources are needed.
                    // Branch-free compaction: every candidate is written, the length only
                    // advances for neighbours (the buffer holds all candidates of the bin).
                    let buf = &mut s.sources;
                    let mut len = 0;
                    for seg in &s.segments {
                        let ws = &self.wrapped[seg.start..seg.end];
                        let ids = &self.order[seg.start..seg.end];
                        for (q, (w, &j)) in ws.iter().zip(ids).enumerate() {
                            let (dx, dy, dz) = (wi[0] - w[0], wi[1] - w[1], wi[2] - w[2]);
                            let keep = (dx * dx + dy * dy + dz * dz < r2) & (seg.start + q != qi);
                            buf[len] = j;
                            len += usize::from(keep);
                        }
                    }
                    let found = &mut buf[..len];
                    found.sort_unstable();
                    out.counts.push(len as u32);
                    out.src.extend_from_slice(found);
                    continue;
                }
                (None, Some(_)) => {
                    s.found.clear();
                    for seg in &s.segments {
                        for (q, w) in self.wrapped[seg.start..seg.end].iter().enumerate() {
                            let (dx, dy, dz) = (wi[0] - w[0], wi[1] - w[1], wi[2] - w[2]);
                            let d2 = dx * dx + dy * dy + dz * dz;
                            let q = seg.start + q;
                            if d2 < r2 && q != qi {
                                s.found.push(Neighbour {
                                    src: self.order[q],
                                    shift: [0; 3],
                                    d2,
                                });
                            }
                        }
                    }
                }
                (Some(l), _) => {
                    s.found.clear();
                    let ki = self.wraps[qi];
                    let pi = p[self.order[qi] as usize];
                    for seg in &s.segments {
                        // Candidate test on wrapped positions (with a rounding margin).
                        let c = [wi[0] - seg.t[0], wi[1] - seg.t[1], wi[2] - seg.t[2]];
                        for (q, w) in self.wrapped[seg.start..seg.end].iter().enumerate() {
                            let (dx, dy, dz) = (c[0] - w[0], c[1] - w[1], c[2] - w[2]);
                            if dx * dx + dy * dy + dz * dz >= self.r2_candidate {
                                continue;
                            }
                            let q = seg.start + q;
                            let kj = self.wraps[q];
                            let shift: [i32; 3] =
                                std::array::from_fn(|a| seg.image[a] + ki[a] - kj[a]);
                            if q == qi && shift == [0; 3] {
                                continue;
                            }
                            // The exact test, on the positions as given.
                            let j = self.order[q];
                            let pj = p[j as usize];
                            let sf = shift.map(f64::from);
                            let mut d2 = 0.0;
                            for a in 0..3 {
                                let t = sf[0] * l[0][a] + sf[1] * l[1][a] + sf[2] * l[2][a];
                                let d = pi[a] - (pj[a] + t);
                                d2 += d * d;
                            }
                            if d2 < r2 {
                                s.found.push(Neighbour { src: j, shift, d2 });
                            }
                        }
                    }
                }
            }
            if let Some(m) = max_nn
                && s.found.len() > m
            {
                // m >= 1 here (m = 0 returns early).
                s.found.select_nth_unstable_by(m - 1, |a, b| {
                    a.d2.total_cmp(&b.d2)
                        .then(a.src.cmp(&b.src))
                        .then(a.shift.cmp(&b.shift))
                });
                s.found.truncate(m);
            }
            s.found
                .sort_unstable_by(|a, b| a.src.cmp(&b.src).then(a.shift.cmp(&b.shift)));
            out.counts.push(s.found.len() as u32);
            out.src.extend(s.found.iter().map(|nb| nb.src));
            if self.lattice.is_some() {
                out.shift.extend(s.found.iter().map(|nb| nb.shift));
            }
        }
    }

    /// Concatenates the lists in destination (atom index) order.
    fn assemble(&self, lists: Vec<Lists>, with_shift: bool) -> Graph {
        let n = self.order.len();
        // Where each atom's list lies: (task, start within the task, count).
        let mut loc = vec![(0u32, 0u32, 0u32); n];
        for (t, l) in lists.iter().enumerate() {
            let mut start = 0u32;
            for (a, &count) in l.counts.iter().enumerate() {
                loc[self.order[l.first + a] as usize] = (t as u32, start, count);
                start += count;
            }
        }
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0usize);
        for &(_, _, count) in &loc {
            offsets.push(offsets[offsets.len() - 1] + count as usize);
        }
        let num_edges = offsets[n];
        let mut src = vec![0usize; num_edges];
        fill_by_atom(&mut src, &offsets, |a, out| {
            let (t, start, count) = loc[a];
            let from = &lists[t as usize].src[start as usize..(start + count) as usize];
            for (o, &s) in out.iter_mut().zip(from) {
                *o = s as usize;
            }
        });
        let shift = with_shift.then(|| {
            let mut shift = vec![[0i32; 3]; num_edges];
            if self.lattice.is_some() {
                fill_by_atom(&mut shift, &offsets, |a, out| {
                    let (t, start, count) = loc[a];
                    out.copy_from_slice(
                        &lists[t as usize].shift[start as usize..(start + count) as usize],
                    );
                });
            }
            shift
        });
        // Free the per-bin lists before allocating the last output.
        drop(lists);
        let mut dst = vec![0usize; num_edges];
        fill_by_atom(&mut dst, &offsets, |a, out| out.fill(a));
        Graph { src, dst, shift }
    }
}

/// Fills `out[offsets[a]..offsets[a + 1]]` with `per_atom(a, ..)` for every atom `a`, in
/// parallel over blocks of atoms.
fn fill_by_atom<E: Send>(
    out: &mut [E],
    offsets: &[usize],
    per_atom: impl Fn(usize, &mut [E]) + Sync,
) {
    let n = offsets.len() - 1;
    let mut blocks = Vec::with_capacity(n.div_ceil(ATOMS_PER_BLOCK));
    let mut rest = out;
    for a0 in (0..n).step_by(ATOMS_PER_BLOCK) {
        let a1 = (a0 + ATOMS_PER_BLOCK).min(n);
        let (block, tail) = rest.split_at_mut(offsets[a1] - offsets[a0]);
        blocks.push((a0..a1, block));
        rest = tail;
    }
    blocks.into_par_iter().for_each(|(atoms, block)| {
        let base = offsets[atoms.start];
        for a in atoms {
            per_atom(a, &mut block[offsets[a] - base..offsets[a + 1] - base]);
        }
    });
}
