//! Interatomic potentials: a model of the energy of atomic structures, with its forces,
//! virials and force-training gradients from [`forces`](crate::forces).
//!
//! A [`Potential`] computes one energy per structure of an [`AtomicGraph`] (a batch of
//! structures with their radius graph) from the edge vectors; the provided methods add the
//! forces and virials ([`Potential::energy_forces`]) and the gradient of a loss of all
//! three ([`Potential::training_gradients`]). A trainer or an MD engine takes any type with
//! this trait.

use std::sync::Arc;

use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::forces::{
    EnergyForces, LossDerivatives, TrainingGradients, energy_forces, training_gradients,
};
use crate::graph::{Batch, Cell, EdgeIndex, Graph, radius_graph_batched};
use crate::ops::{index_tensor, scatter_sum};
use crate::{Error, Result};
use equivariant_core::error::first_non_finite;

/// One structure: positions, species (type indices of the model) and, if periodic, its cell.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant::potential::{AtomicGraph, Structure};
/// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 1], cell: None };
/// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
/// assert_eq!(graph.species(), [0, 1]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Structure {
    /// Positions, `[n][3]`.
    pub positions: Vec<[f64; 3]>,
    /// The type index of each atom (`0..num_types` of the model).
    pub species: Vec<usize>,
    /// The cell and its periodic directions; `None` for an isolated structure.
    pub cell: Option<Cell>,
}

/// A batch of structures as one graph: the atoms' species and batch vector, the radius
/// graph within each structure (periodic images included), and its edge vectors
/// `r_e = pos[dst_e] - pos[src_e] - shift_e`, `[E, 3]`.
#[derive(Debug, Clone)]
pub struct AtomicGraph {
    species: Vec<usize>,
    batch: Batch,
    edges: Arc<EdgeIndex>,
    edge_vec: Tensor<2>,
    volumes: Vec<Option<f64>>,
    /// The edges with their periodic shifts, and the cells, for new positions.
    graph: Arc<Graph>,
    cells: Option<Arc<Vec<Cell>>>,
    /// For a domain's graph: what each message-passing step must compute.
    shells: Option<Arc<Vec<Shell>>>,
}

/// What one message-passing step of a model computes on a domain's graph
/// ([`AtomicGraph::from_neighbors`] with counted atoms): the graph's atoms are ordered by
/// their distance in edges from the nearest counted atom, and its edges by that of their
/// `dst`, so each step reads a prefix of the atoms and of the edges and writes a shorter
/// prefix of the atoms. Step `k` of `L` needs its output only where `L - 1 - k` more steps
/// still reach a counted atom.
#[derive(Debug, Clone)]
pub struct Shell {
    /// The number of atoms (the first ones) the step reads: the previous step's outputs.
    pub inputs: usize,
    /// The number of atoms (the first ones) whose output the next steps need.
    pub outputs: usize,
    /// The step's edges: the graph's first `edges.num_edges()`, into the first `outputs`
    /// atoms, over `inputs` nodes.
    pub edges: Arc<EdgeIndex>,
}

impl AtomicGraph {
    /// The graph of `structures` at cutoff `r_max`, edge vectors in `dtype` on `device`.
    ///
    /// Errors: [`Error::InvalidArgument`] for no structures, a structure without atoms or
    /// whose species and positions differ in length, or two atoms at the same place;
    /// [`Error::NonFinite`] for a NaN or infinite position; the errors of
    /// [`radius_graph_batched`].
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::graph::Cell;
    /// use equivariant::potential::{AtomicGraph, Structure};
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.0, 0.0, 0.0]], species: vec![0, 1], cell: None };
    /// let box_ = Structure {
    ///     positions: vec![[0.5; 3]],
    ///     species: vec![0],
    ///     cell: Some(Cell::orthorhombic([2.0; 3], [true; 3])?),
    /// };
    /// let graph = AtomicGraph::new(&[dimer, box_], 2.1, &Device::flex(), DType::F64)?;
    /// assert_eq!(graph.batch().index(), [0, 0, 1]);
    /// assert_eq!(graph.edges().num_edges(), 2 + 6); // the bond both ways, six images
    /// assert_eq!(graph.volumes(), [None, Some(8.0)]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(
        structures: &[Structure],
        r_max: f64,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        if structures.is_empty() {
            return Err(Error::InvalidArgument {
                name: "structures",
                reason: "a batch needs at least one structure".into(),
            });
        }
        let mut positions: Vec<f64> = Vec::new();
        let mut species = Vec::new();
        let mut index = Vec::new();
        for (g, s) in structures.iter().enumerate() {
            if s.positions.is_empty() {
                return Err(Error::InvalidArgument {
                    name: "structures",
                    reason: format!("structure {g} has no atoms"),
                });
            }
            if s.species.len() != s.positions.len() {
                return Err(Error::InvalidArgument {
                    name: "species",
                    reason: format!(
                        "structure {g} has {} positions but {} species",
                        s.positions.len(),
                        s.species.len()
                    ),
                });
            }
            positions.extend(s.positions.iter().flatten());
            species.extend(&s.species);
            index.extend(std::iter::repeat_n(g, s.positions.len()));
        }
        let batch = Batch::new(index)?;
        // A structure without a cell is periodic in no direction (any lattice will do).
        let periodic = structures.iter().any(|s| s.cell.is_some());
        let cells = if periodic {
            let isolated = Cell::orthorhombic([1.0; 3], [false; 3])?;
            Some(
                structures
                    .iter()
                    .map(|s| s.cell.clone().unwrap_or_else(|| isolated.clone()))
                    .collect::<Vec<_>>(),
            )
        } else {
            None
        };
        let graph = radius_graph_batched(&positions, batch.index(), r_max, None, cells.as_deref())?;
        let edge_vec = match &cells {
            Some(cells) => graph.edge_vec_batched(&positions, batch.index(), cells)?,
            None => graph.edge_vec(&positions, None)?,
        };
        check_no_zero_edge(&graph, &edge_vec)?;
        let edges = EdgeIndex::new(&graph.src, &graph.dst, species.len())?;
        let e = graph.num_edges();
        let edge_vec = Tensor::<2>::from_data(TensorData::new(edge_vec, [e, 3]), (device, dtype));
        let volumes = structures
            .iter()
            .map(|s| {
                s.cell
                    .as_ref()
                    .filter(|c| c.pbc() == [true; 3])
                    .map(|c| c.volume())
            })
            .collect();
        Ok(AtomicGraph {
            species,
            batch,
            edges: Arc::new(edges),
            edge_vec,
            volumes,
            graph: Arc::new(graph),
            cells: cells.map(Arc::new),
            shells: None,
        })
    }

    /// The structures of `graphs` as one batch, in order: what [`AtomicGraph::new`] builds
    /// from all their structures at once (the same edges in the same order, the same edge
    /// vectors), without a neighbour search: for graphs built once and batched many times,
    /// as a training set's are every epoch.
    ///
    /// Errors: [`Error::InvalidArgument`] for no graphs or a domain's graph
    /// ([`AtomicGraph::from_neighbors`] with counted atoms).
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::graph::Cell;
    /// use equivariant::potential::{AtomicGraph, Structure};
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.0, 0.0, 0.0]], species: vec![0, 1], cell: None };
    /// let box_ = Structure {
    ///     positions: vec![[0.5; 3]],
    ///     species: vec![0],
    ///     cell: Some(Cell::orthorhombic([2.0; 3], [true; 3])?),
    /// };
    /// let (device, dtype) = (Device::flex(), DType::F64);
    /// let one = |s: &Structure| AtomicGraph::new(&[s.clone()], 2.1, &device, dtype);
    /// let batched = AtomicGraph::concat(&[&one(&dimer)?, &one(&box_)?])?;
    /// let direct = AtomicGraph::new(&[dimer, box_], 2.1, &device, dtype)?;
    /// assert_eq!(batched.batch().index(), direct.batch().index());
    /// assert_eq!(batched.edge_vec().clone().into_data(), direct.edge_vec().clone().into_data());
    /// assert_eq!(batched.volumes(), [None, Some(8.0)]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn concat(graphs: &[&AtomicGraph]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidArgument {
            name: "graphs",
            reason,
        };
        if graphs.is_empty() {
            return Err(invalid("a batch needs at least one graph".into()));
        }
        if let Some(k) = graphs.iter().position(|g| g.shells.is_some()) {
            return Err(invalid(format!(
                "graph {k} is a domain's (with counted atoms): it cannot be batched"
            )));
        }
        // As `new`: with any periodic structure, every structure has a cell (an isolated one
        // for those without) and every edge a shift (zero in an isolated structure).
        let periodic = graphs.iter().any(|g| g.cells.is_some());
        let isolated = Cell::orthorhombic([1.0; 3], [false; 3])?;
        let (mut species, mut index, mut volumes) = (Vec::new(), Vec::new(), Vec::new());
        let (mut src, mut dst) = (Vec::new(), Vec::new());
        let mut shift = periodic.then(Vec::new);
        let mut cells = periodic.then(Vec::new);
        let (mut nodes, mut structures) = (0, 0);
        for g in graphs {
            species.extend(&g.species);
            index.extend(g.batch.index().iter().map(|&b| b + structures));
            volumes.extend(&g.volumes);
            src.extend(g.graph.src.iter().map(|&j| j + nodes));
            dst.extend(g.graph.dst.iter().map(|&i| i + nodes));
            if let Some(shift) = shift.as_mut() {
                match &g.graph.shift {
                    Some(s) => shift.extend(s),
                    None => shift.extend(std::iter::repeat_n([0; 3], g.graph.num_edges())),
                }
            }
            if let Some(cells) = cells.as_mut() {
                match &g.cells {
                    Some(c) => cells.extend(c.iter().cloned()),
                    None => {
                        cells.extend(std::iter::repeat_n(isolated.clone(), g.batch.num_graphs()))
                    }
                }
            }
            nodes += g.species.len();
            structures += g.batch.num_graphs();
        }
        let edges = EdgeIndex::new(&src, &dst, nodes)?;
        let edge_vec = Tensor::cat(graphs.iter().map(|g| g.edge_vec.clone()).collect(), 0);
        Ok(AtomicGraph {
            species,
            batch: Batch::new(index)?,
            edges: Arc::new(edges),
            edge_vec,
            volumes,
            graph: Arc::new(Graph { src, dst, shift }),
            cells: cells.map(Arc::new),
            shells: None,
        })
    }

    /// The same edges (and periodic images) at new positions of the same atoms (`[N][3]`, in
    /// the batch's order): what an MD engine steps with between rebuilds of its neighbour
    /// list, whose cutoff has a skin beyond the model's.
    ///
    /// Errors: [`Error::ShapeMismatch`] for another number of atoms; [`Error::NonFinite`]
    /// for a NaN or infinite position; [`Error::InvalidArgument`] for two atoms of an edge at
    /// the same place.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::potential::{AtomicGraph, Structure};
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// let moved = graph.with_positions(&[[0.0; 3], [2.5, 0.0, 0.0]])?;
    /// assert_eq!(moved.edges().num_edges(), 2); // kept, although now beyond 2.0
    /// assert_eq!(moved.edge_vec().clone().into_data().iter::<f64>().next(), Some(-2.5));
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_positions(&self, positions: &[[f64; 3]]) -> Result<Self> {
        let edge_vec = self.edge_vectors_at(positions)?;
        check_no_zero_edge(&self.graph, &edge_vec)?;
        Ok(AtomicGraph {
            edge_vec: self.edge_tensor(edge_vec),
            ..self.clone()
        })
    }

    /// The edges shorter than `r_max` at new positions of the same atoms (`[N][3]`): an MD
    /// engine's neighbour list (this graph, built at the model's cutoff plus a skin) cut to
    /// the model's cutoff at each step. The edges beyond it would change nothing (a
    /// potential's cutoff makes their terms zero) but cost as much as any other. The result
    /// has only the kept edges: call this on the list's graph at every step, not on its own
    /// result. The same test as the radius graph's, `|r|^2 < r_max^2`, in f64.
    ///
    /// Errors: as [`with_positions`](Self::with_positions); [`Error::InvalidArgument`] for
    /// an `r_max` that is not finite and positive, or a domain's graph (its
    /// [`shells`](Self::shells) were cut for its own edges).
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::potential::{AtomicGraph, Structure};
    /// let chain = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0], [3.0, 0.0, 0.0]], species: vec![0; 3], cell: None };
    /// let list = AtomicGraph::new(&[chain], 2.5, &Device::flex(), DType::F64)?; // model's 2.0 + skin 0.5
    /// assert_eq!(list.edges().num_edges(), 4);
    /// let moved = list.with_positions_within(&[[0.0; 3], [1.5, 0.0, 0.0], [3.6, 0.0, 0.0]], 2.0)?;
    /// assert_eq!(moved.edges().num_edges(), 2); // 1.5 apart: kept; 2.1 apart: dropped
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_positions_within(&self, positions: &[[f64; 3]], r_max: f64) -> Result<Self> {
        if !(r_max.is_finite() && r_max > 0.0) {
            return Err(Error::InvalidArgument {
                name: "r_max",
                reason: format!("must be finite and positive, got {r_max}"),
            });
        }
        if self.shells.is_some() {
            return Err(Error::InvalidArgument {
                name: "graph",
                reason: "a domain's graph keeps the edges its shells were cut for".into(),
            });
        }
        let edge_vec = self.edge_vectors_at(positions)?;
        let (graph, kept) = self.graph.within(&edge_vec, r_max)?;
        // A zero-length edge is shorter than any cutoff: it is among those kept.
        check_no_zero_edge(&graph, &kept)?;
        if graph.num_edges() == self.graph.num_edges() {
            return Ok(AtomicGraph {
                edge_vec: self.edge_tensor(kept),
                ..self.clone()
            });
        }
        let edges = EdgeIndex::new(&graph.src, &graph.dst, self.species.len())?;
        Ok(AtomicGraph {
            edges: Arc::new(edges),
            edge_vec: self.edge_tensor(kept),
            graph: Arc::new(graph),
            ..self.clone()
        })
    }

    /// The vectors of this graph's edges (with their periodic shifts) at new positions of
    /// its atoms, `[E * 3]` in f64, after checking the positions (the caller checks for
    /// atoms at the same place, on the edges it keeps).
    fn edge_vectors_at(&self, positions: &[[f64; 3]]) -> Result<Vec<f64>> {
        let n = self.species.len();
        if positions.len() != n {
            return Err(Error::ShapeMismatch {
                what: "positions (one per atom of the graph)",
                expected: n,
                got: positions.len(),
            });
        }
        let flat = positions.as_flattened();
        if let Some(index) = first_non_finite(flat) {
            return Err(Error::NonFinite {
                what: "positions",
                index,
            });
        }
        let edge_vec = match &self.cells {
            Some(cells) => (self.graph).edge_vec_batched(flat, self.batch.index(), cells)?,
            None => self.graph.edge_vec(flat, None)?,
        };
        Ok(edge_vec)
    }

    /// Edge vectors `[E * 3]` as a tensor `[E, 3]` in this graph's dtype, on its device.
    fn edge_tensor(&self, edge_vec: Vec<f64>) -> Tensor<2> {
        let like = &self.edge_vec;
        let e = edge_vec.len() / 3;
        Tensor::<2>::from_data(
            TensorData::new(edge_vec, [e, 3]),
            (&like.device(), like.dtype()),
        )
    }

    /// The graph of one structure given as atoms and their neighbour lists, as an MD engine
    /// with domain decomposition has it: local atoms and ghost atoms (periodic images and other
    /// domains' atoms as explicit copies), so no cell. `neighbors[i]` lists the atoms `j` near
    /// atom `i`; each pair closer than `r_max` becomes the edge `j -> i` (vector
    /// `pos[i] - pos[j]`), farther ones (a neighbour list's skin) are dropped. Edge vectors in
    /// `dtype` on `device`; the structure has no volume (ghosts have no cell). The lists are
    /// anything that reads as `&[usize]` (`Vec<Vec<usize>>`, or slices of one flat array).
    ///
    /// With `needed = Some((counted, hops))`, only what the energies of the `counted` atoms
    /// depend on through `hops` message-passing steps is kept: the atoms within `hops` edges
    /// of a counted atom, and the edges into those within `hops - 1` (a model's `k`-th step
    /// only matters where `hops - k` more steps still reach a counted atom, which a graph
    /// without edges into the outermost shell keeps exact). A domain's ghost shell, as deep
    /// as the model's influence distance, is mostly outside that. The graph's atoms are then
    /// ordered nearest first (counted atoms, then their neighbours, ...), and each step's
    /// share of the work is a [`Shell`] ([`shells`](Self::shells)). Returns the graph and the
    /// index (in `positions`) of each of its atoms.
    ///
    /// Errors: [`Error::InvalidArgument`] for no atoms, species, neighbour lists or `counted`
    /// not one per atom, a neighbour index out of range, or two atoms at the same place (an
    /// atom listed as its own neighbour included); [`Error::NonFinite`] for a NaN or infinite
    /// position.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::potential::AtomicGraph;
    /// // A chain 0 - 1 - 2 - 3 and a fifth atom listed beyond the cutoff (a skin).
    /// let positions = [[0.0; 3], [1.5, 0.0, 0.0], [3.0, 0.0, 0.0], [4.5, 0.0, 0.0], [9.0, 0.0, 0.0]];
    /// let neighbors = vec![vec![1, 4], vec![0, 2], vec![1, 3], vec![2], vec![0]];
    /// let species = vec![0; 5];
    /// let (device, dtype) = (Device::flex(), DType::F64);
    /// let (graph, atoms) = AtomicGraph::from_neighbors(&positions, species.clone(), &neighbors, 2.0, None, &device, dtype)?;
    /// assert_eq!((graph.edges().num_edges(), atoms.len()), (6, 5));
    /// assert_eq!((graph.edges().src(0), graph.edges().dst(0)), (1, 0));
    /// assert_eq!(graph.edge_vec().clone().into_data().iter::<f64>().next(), Some(-1.5));
    /// // Only atom 0 counted, one message-passing step: atoms 0 and 1, the edge 1 -> 0.
    /// let counted = [true, false, false, false, false];
    /// let (graph, atoms) = AtomicGraph::from_neighbors(&positions, species.clone(), &neighbors, 2.0, Some((&counted, 1)), &device, dtype)?;
    /// assert_eq!((graph.edges().num_edges(), atoms), (1, vec![0, 1]));
    /// // Atom 3 counted, two steps: atoms 3, 2, 1; the first step writes 3 and 2, the second 3.
    /// let counted = [false, false, false, true, false];
    /// let (graph, atoms) = AtomicGraph::from_neighbors(&positions, species, &neighbors, 2.0, Some((&counted, 2)), &device, dtype)?;
    /// assert_eq!(atoms, [3, 2, 1]);
    /// let steps: Vec<_> = graph.shells().unwrap().iter().map(|s| (s.inputs, s.outputs, s.edges.num_edges())).collect();
    /// assert_eq!(steps, [(3, 2, 3), (2, 1, 1)]); // edges 2->3; 3->2, 1->2; then 2->3
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn from_neighbors<L: AsRef<[usize]>>(
        positions: &[[f64; 3]],
        species: Vec<usize>,
        neighbors: &[L],
        r_max: f64,
        needed: Option<(&[bool], usize)>,
        device: &Device,
        dtype: DType,
    ) -> Result<(Self, Vec<usize>)> {
        let n = positions.len();
        if n == 0 {
            return Err(Error::InvalidArgument {
                name: "positions",
                reason: "a structure needs at least one atom".into(),
            });
        }
        let counted = needed.map(|(counted, _)| counted.len()).unwrap_or(n);
        for (what, len) in [
            ("species", species.len()),
            ("neighbors", neighbors.len()),
            ("counted", counted),
        ] {
            if len != n {
                return Err(Error::InvalidArgument {
                    name: what,
                    reason: format!("{n} atoms but {len} {what} (one per atom)"),
                });
            }
        }
        if let Some(index) = first_non_finite(positions.as_flattened()) {
            return Err(Error::NonFinite {
                what: "positions",
                index,
            });
        }
        // The edges within the cutoff, grouped by their dst: those into atom i are
        // edges[first[i]..first[i + 1]]. The same test as the radius graph's: |d|^2 < r^2.
        let r2 = r_max * r_max;
        let mut sources = Vec::new();
        let mut first = Vec::with_capacity(n + 1);
        for (i, list) in neighbors.iter().enumerate() {
            first.push(sources.len());
            for &j in list.as_ref() {
                let Some(pj) = positions.get(j) else {
                    return Err(Error::InvalidArgument {
                        name: "neighbors",
                        reason: format!("atom {i} lists neighbour {j}, but there are {n} atoms"),
                    });
                };
                let d2: f64 = (0..3).map(|a| (positions[i][a] - pj[a]).powi(2)).sum();
                if d2 < r2 {
                    sources.push(j);
                }
            }
        }
        first.push(sources.len());
        // Each atom's number of edges to the nearest counted atom (breadth first); the atoms
        // within `hops` of one, nearest first, and the edges into those within `hops - 1`,
        // grouped by their dst in that order.
        let (atoms, hop, hops) = match needed {
            None => ((0..n).collect::<Vec<_>>(), vec![0; n], None),
            Some((counted, hops)) => {
                let mut hop = vec![usize::MAX; n];
                let mut frontier: Vec<usize> = (0..n).filter(|&i| counted[i]).collect();
                let mut atoms = frontier.clone();
                for &i in &frontier {
                    hop[i] = 0;
                }
                for h in 1..=hops {
                    let mut next = Vec::new();
                    for &i in &frontier {
                        for &j in &sources[first[i]..first[i + 1]] {
                            if hop[j] == usize::MAX {
                                hop[j] = h;
                                next.push(j);
                            }
                        }
                    }
                    atoms.extend(&next);
                    frontier = next;
                }
                (atoms, hop, Some(hops))
            }
        };
        let mut node = vec![usize::MAX; n];
        for (k, &i) in atoms.iter().enumerate() {
            node[i] = k;
        }
        let mut graph = Graph::default();
        for &i in atoms
            .iter()
            .filter(|&&i| hops.is_none_or(|hops| hop[i] < hops))
        {
            for &j in &sources[first[i]..first[i + 1]] {
                graph.src.push(node[j]);
                graph.dst.push(node[i]);
            }
        }
        let flat: Vec<f64> = atoms.iter().flat_map(|&i| positions[i]).collect();
        let edge_vec = graph.edge_vec(&flat, None)?;
        check_no_zero_edge_named(&graph, &edge_vec, "", |k| atoms[k])?;
        let m = atoms.len();
        let edges = Arc::new(EdgeIndex::new(&graph.src, &graph.dst, m)?);
        let shells = match hops {
            None => None,
            Some(hops) => {
                // Atoms and edges are ordered by hop: a count per level is a prefix.
                let within = |level: usize| atoms.iter().filter(|&&i| hop[i] <= level).count();
                let edges_within = |level: usize| {
                    graph
                        .dst
                        .iter()
                        .filter(|&&d| hop[atoms[d]] <= level)
                        .count()
                };
                let mut inputs = m;
                let mut steps = Vec::with_capacity(hops);
                for k in 0..hops {
                    let level = hops - 1 - k;
                    let (outputs, e) = (within(level), edges_within(level));
                    // The first step reads every atom along every edge: the graph itself.
                    let step_edges = if k == 0 {
                        Arc::clone(&edges)
                    } else {
                        Arc::new(EdgeIndex::new(&graph.src[..e], &graph.dst[..e], inputs)?)
                    };
                    steps.push(Shell {
                        inputs,
                        outputs,
                        edges: step_edges,
                    });
                    inputs = outputs;
                }
                Some(Arc::new(steps))
            }
        };
        let e = graph.num_edges();
        let edge_vec = Tensor::<2>::from_data(TensorData::new(edge_vec, [e, 3]), (device, dtype));
        let graph = AtomicGraph {
            species: atoms.iter().map(|&i| species[i]).collect(),
            batch: Batch::single(m),
            edges,
            edge_vec,
            volumes: vec![None],
            graph: Arc::new(graph),
            cells: None,
            shells,
        };
        Ok((graph, atoms))
    }

    /// The type index of each atom, `[N]`.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::potential::{AtomicGraph, Structure};
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 1], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// assert_eq!(graph.species(), [0, 1]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn species(&self) -> &[usize] {
        &self.species
    }

    /// For a domain's graph ([`from_neighbors`](Self::from_neighbors) with counted atoms),
    /// what each message-passing step must compute; `None` for a whole structure.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::potential::{AtomicGraph, Structure};
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 1], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// assert!(graph.shells().is_none());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn shells(&self) -> Option<&[Shell]> {
        self.shells.as_deref().map(|s| s.as_slice())
    }

    /// Which structure each atom belongs to.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::potential::{AtomicGraph, Structure};
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 1], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// assert_eq!(graph.batch().num_graphs(), 1);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn batch(&self) -> &Batch {
        &self.batch
    }

    /// The edges, `src_e -> dst_e`.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::potential::{AtomicGraph, Structure};
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 1], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// assert_eq!((graph.edges().src(0), graph.edges().dst(0)), (1, 0));
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn edges(&self) -> &Arc<EdgeIndex> {
        &self.edges
    }

    /// The edge vectors `r_e = pos[dst_e] - pos[src_e] - shift_e`, `[E, 3]`.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::potential::{AtomicGraph, Structure};
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 1], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// // Edge 1 -> 0: pos[0] - pos[1].
    /// assert_eq!(graph.edge_vec().clone().into_data().iter::<f64>().next(), Some(-1.5));
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn edge_vec(&self) -> &Tensor<2> {
        &self.edge_vec
    }

    /// The cell volume of each structure periodic in all three directions (`None` for the
    /// others, which have no stress).
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::potential::{AtomicGraph, Structure};
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 1], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// assert_eq!(graph.volumes(), [None]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn volumes(&self) -> &[Option<f64>] {
        &self.volumes
    }
}

/// [`Error::InvalidArgument`] for an edge of zero length (`edge_vec`, `[E * 3]`): two atoms
/// at one place (or an atom on its own image), whose direction, and so the harmonics and the
/// forces, are undefined.
fn check_no_zero_edge(graph: &Graph, edge_vec: &[f64]) -> Result<()> {
    check_no_zero_edge_named(graph, edge_vec, "of the batch ", |k| k)
}

/// [`check_no_zero_edge`], naming node `k` as `name(k)` (its index in the caller's atoms).
fn check_no_zero_edge_named(
    graph: &Graph,
    edge_vec: &[f64],
    of: &str,
    name: impl Fn(usize) -> usize,
) -> Result<()> {
    if let Some(e) = edge_vec.chunks(3).position(|r| r.iter().all(|&x| x == 0.0)) {
        return Err(Error::InvalidArgument {
            name: "positions",
            reason: format!(
                "atoms {} and {} {of}are at the same place",
                name(graph.src[e]),
                name(graph.dst[e])
            ),
        });
    }
    Ok(())
}

/// A model of the energy of atomic structures from their edge vectors.
///
/// Implementors give the energies and their tangent (for training on forces); the forces,
/// virials and training gradients come with the trait. The edge vectors passed in are those
/// of [`AtomicGraph::edge_vec`] (or a leaf of them that requires its gradient).
///
/// A potential is `Sync`: its users evaluate it on a worker of rayon's pool
/// ([`on_pool`](crate::util::on_pool)), so the parallel kernels inside start there.
///
/// ```
/// use burn::tensor::{DType, Device, Tensor};
/// use equivariant::potential::{AtomicGraph, Potential, Structure};
/// /// `E = k sum_e |r_e|^2 / 2` over the directed edges: a harmonic pair potential.
/// struct Springs { k: f64 }
/// impl Potential for Springs {
///     fn r_max(&self) -> f64 { 2.0 }
///     fn num_types(&self) -> usize { 1 }
///     fn energy(&self, _: &AtomicGraph, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
///         Ok(r.powi_scalar(2).sum().mul_scalar(0.5 * self.k))
///     }
///     fn energy_tangent(&self, _: &AtomicGraph, r: Tensor<2>, s: Tensor<2>)
///         -> equivariant::Result<(Tensor<1>, Tensor<1>)> {
///         let e = r.clone().powi_scalar(2).sum().mul_scalar(0.5 * self.k);
///         Ok((e, r.mul(s).sum().mul_scalar(self.k)))
///     }
/// }
/// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
/// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
/// let model = Springs { k: 2.0 };
/// let result = model.energy_forces(&graph)?;
/// assert_eq!(result.energy.into_scalar::<f64>(), 4.5); // 2 edges * 2 * 1.5^2 / 2
/// // Each atom pulled toward the other by 2 k |r|.
/// assert_eq!(result.forces.into_data().iter::<f64>().next(), Some(6.0));
/// # Ok::<(), equivariant::Error>(())
/// ```
pub trait Potential: Sync {
    /// The cutoff radius: the graph the model needs.
    ///
    /// ```
    /// use burn::tensor::{DType, Device, Tensor};
    /// use equivariant::potential::{AtomicGraph, Potential, Structure};
    /// /// `E = k sum_e |r_e|^2 / 2` over the directed edges: a harmonic pair potential.
    /// struct Springs { k: f64 }
    /// impl Potential for Springs {
    ///     fn r_max(&self) -> f64 { 2.0 }
    ///     fn num_types(&self) -> usize { 1 }
    ///     fn energy(&self, _: &AtomicGraph, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
    ///         Ok(r.powi_scalar(2).sum().mul_scalar(0.5 * self.k))
    ///     }
    ///     fn energy_tangent(&self, _: &AtomicGraph, r: Tensor<2>, s: Tensor<2>)
    ///         -> equivariant::Result<(Tensor<1>, Tensor<1>)> {
    ///         let e = r.clone().powi_scalar(2).sum().mul_scalar(0.5 * self.k);
    ///         Ok((e, r.mul(s).sum().mul_scalar(self.k)))
    ///     }
    /// }
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// let model = Springs { k: 2.0 };
    /// assert_eq!(model.r_max(), 2.0);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    fn r_max(&self) -> f64;

    /// The number of species (type indices `0..num_types`).
    ///
    /// ```
    /// use burn::tensor::{DType, Device, Tensor};
    /// use equivariant::potential::{AtomicGraph, Potential, Structure};
    /// /// `E = k sum_e |r_e|^2 / 2` over the directed edges: a harmonic pair potential.
    /// struct Springs { k: f64 }
    /// impl Potential for Springs {
    ///     fn r_max(&self) -> f64 { 2.0 }
    ///     fn num_types(&self) -> usize { 1 }
    ///     fn energy(&self, _: &AtomicGraph, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
    ///         Ok(r.powi_scalar(2).sum().mul_scalar(0.5 * self.k))
    ///     }
    ///     fn energy_tangent(&self, _: &AtomicGraph, r: Tensor<2>, s: Tensor<2>)
    ///         -> equivariant::Result<(Tensor<1>, Tensor<1>)> {
    ///         let e = r.clone().powi_scalar(2).sum().mul_scalar(0.5 * self.k);
    ///         Ok((e, r.mul(s).sum().mul_scalar(self.k)))
    ///     }
    /// }
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// let model = Springs { k: 2.0 };
    /// assert_eq!(model.num_types(), 1);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    fn num_types(&self) -> usize;

    /// The energy of each structure of `graph` at edge vectors `edge_vec`, `[G]`.
    ///
    /// Errors: an implementation's; [`Error::InvalidArgument`] for a species it does not
    /// know.
    ///
    /// ```
    /// use burn::tensor::{DType, Device, Tensor};
    /// use equivariant::potential::{AtomicGraph, Potential, Structure};
    /// /// `E = k sum_e |r_e|^2 / 2` over the directed edges: a harmonic pair potential.
    /// struct Springs { k: f64 }
    /// impl Potential for Springs {
    ///     fn r_max(&self) -> f64 { 2.0 }
    ///     fn num_types(&self) -> usize { 1 }
    ///     fn energy(&self, _: &AtomicGraph, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
    ///         Ok(r.powi_scalar(2).sum().mul_scalar(0.5 * self.k))
    ///     }
    ///     fn energy_tangent(&self, _: &AtomicGraph, r: Tensor<2>, s: Tensor<2>)
    ///         -> equivariant::Result<(Tensor<1>, Tensor<1>)> {
    ///         let e = r.clone().powi_scalar(2).sum().mul_scalar(0.5 * self.k);
    ///         Ok((e, r.mul(s).sum().mul_scalar(self.k)))
    ///     }
    /// }
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// let model = Springs { k: 2.0 };
    /// assert_eq!(model.energy(&graph, graph.edge_vec().clone())?.into_scalar::<f64>(), 4.5);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    fn energy(&self, graph: &AtomicGraph, edge_vec: Tensor<2>) -> Result<Tensor<1>>;

    /// [`energy`](Potential::energy) and its tangent along the edge-vector direction `s`
    /// (`[E, 3]`): `(E_g [G], sum_g dE_g/dr . s [1])`, both differentiable in the
    /// parameters (and in `edge_vec`, `s`).
    ///
    /// ```
    /// use burn::tensor::{DType, Device, Tensor};
    /// use equivariant::potential::{AtomicGraph, Potential, Structure};
    /// /// `E = k sum_e |r_e|^2 / 2` over the directed edges: a harmonic pair potential.
    /// struct Springs { k: f64 }
    /// impl Potential for Springs {
    ///     fn r_max(&self) -> f64 { 2.0 }
    ///     fn num_types(&self) -> usize { 1 }
    ///     fn energy(&self, _: &AtomicGraph, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
    ///         Ok(r.powi_scalar(2).sum().mul_scalar(0.5 * self.k))
    ///     }
    ///     fn energy_tangent(&self, _: &AtomicGraph, r: Tensor<2>, s: Tensor<2>)
    ///         -> equivariant::Result<(Tensor<1>, Tensor<1>)> {
    ///         let e = r.clone().powi_scalar(2).sum().mul_scalar(0.5 * self.k);
    ///         Ok((e, r.mul(s).sum().mul_scalar(self.k)))
    ///     }
    /// }
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// let model = Springs { k: 2.0 };
    /// let s = graph.edge_vec().clone(); // along the bond: dE = k sum r . r
    /// let (_, d) = model.energy_tangent(&graph, graph.edge_vec().clone(), s)?;
    /// assert_eq!(d.into_scalar::<f64>(), 9.0);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    fn energy_tangent(
        &self,
        graph: &AtomicGraph,
        edge_vec: Tensor<2>,
        s: Tensor<2>,
    ) -> Result<(Tensor<1>, Tensor<1>)>;

    /// The energies, forces and virials of `graph` ([`forces::energy_forces`](crate::forces::energy_forces)).
    ///
    /// ```
    /// use burn::tensor::{DType, Device, Tensor};
    /// use equivariant::potential::{AtomicGraph, Potential, Structure};
    /// /// `E = k sum_e |r_e|^2 / 2` over the directed edges: a harmonic pair potential.
    /// struct Springs { k: f64 }
    /// impl Potential for Springs {
    ///     fn r_max(&self) -> f64 { 2.0 }
    ///     fn num_types(&self) -> usize { 1 }
    ///     fn energy(&self, _: &AtomicGraph, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
    ///         Ok(r.powi_scalar(2).sum().mul_scalar(0.5 * self.k))
    ///     }
    ///     fn energy_tangent(&self, _: &AtomicGraph, r: Tensor<2>, s: Tensor<2>)
    ///         -> equivariant::Result<(Tensor<1>, Tensor<1>)> {
    ///         let e = r.clone().powi_scalar(2).sum().mul_scalar(0.5 * self.k);
    ///         Ok((e, r.mul(s).sum().mul_scalar(self.k)))
    ///     }
    /// }
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// let model = Springs { k: 2.0 };
    /// assert_eq!(model.energy_forces(&graph)?.virial.dims(), [1, 3, 3]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    fn energy_forces(&self, graph: &AtomicGraph) -> Result<EnergyForces> {
        energy_forces(&graph.edges, &graph.batch, graph.edge_vec.clone(), |r| {
            self.energy(graph, r)
        })
    }

    /// The gradient of a loss of the energies, forces and virials with respect to every
    /// parameter (and the positions, if `positions`):
    /// [`forces::training_gradients`](crate::forces::training_gradients) on this model.
    ///
    /// ```
    /// use burn::tensor::{DType, Device, Tensor};
    /// use equivariant::potential::{AtomicGraph, Potential, Structure};
    /// /// `E = k sum_e |r_e|^2 / 2` over the directed edges: a harmonic pair potential.
    /// struct Springs { k: f64 }
    /// impl Potential for Springs {
    ///     fn r_max(&self) -> f64 { 2.0 }
    ///     fn num_types(&self) -> usize { 1 }
    ///     fn energy(&self, _: &AtomicGraph, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
    ///         Ok(r.powi_scalar(2).sum().mul_scalar(0.5 * self.k))
    ///     }
    ///     fn energy_tangent(&self, _: &AtomicGraph, r: Tensor<2>, s: Tensor<2>)
    ///         -> equivariant::Result<(Tensor<1>, Tensor<1>)> {
    ///         let e = r.clone().powi_scalar(2).sum().mul_scalar(0.5 * self.k);
    ///         Ok((e, r.mul(s).sum().mul_scalar(self.k)))
    ///     }
    /// }
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
    /// let model = Springs { k: 2.0 };
    /// use equivariant::forces::LossDerivatives;
    /// // L = sum F^2: dL/dF = 2 F; no parameters, so only dL/dpos.
    /// let step = model.training_gradients(&graph, |r| Ok(LossDerivatives {
    ///     energy: vec![0.0], forces: r.forces.clone().mul_scalar(2.0), virial: None,
    /// }), true)?;
    /// assert_eq!(step.positions.unwrap().dims(), [2, 3]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    fn training_gradients(
        &self,
        graph: &AtomicGraph,
        loss: impl FnOnce(&EnergyForces) -> Result<LossDerivatives>,
        positions: bool,
    ) -> Result<TrainingGradients>
    where
        Self: Sized,
    {
        training_gradients(
            &graph.edges,
            &graph.batch,
            graph.edge_vec.clone(),
            |r| self.energy(graph, r),
            loss,
            |r, s| self.energy_tangent(graph, r, s),
            positions,
        )
    }
}

/// The rows of `atomic` (`[N]`, one value per atom of `graph`) summed per structure, `[G]`.
///
/// ```
/// use burn::tensor::{DType, Device, Tensor};
/// use equivariant::potential::{AtomicGraph, Structure, sum_per_structure};
/// let atom = |x: f64| Structure { positions: vec![[x, 0.0, 0.0]], species: vec![0], cell: None };
/// let graph = AtomicGraph::new(&[atom(0.0), atom(5.0)], 2.0, &Device::flex(), DType::F64)?;
/// let sums = sum_per_structure(&graph, Tensor::<1>::from_floats([1.0, 2.0], &Device::flex()));
/// assert_eq!(sums.into_data().try_into_vec::<f32>().unwrap(), [1.0, 2.0]);
/// // One structure: its sum, still `[1]`.
/// let one = AtomicGraph::new(&[atom(0.0)], 2.0, &Device::flex(), DType::F64)?;
/// let sum = sum_per_structure(&one, Tensor::<1>::from_floats([3.0], &Device::flex()));
/// assert_eq!(sum.dims(), [1]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn sum_per_structure(graph: &AtomicGraph, atomic: Tensor<1>) -> Tensor<1> {
    let g = graph.batch().num_graphs();
    if g == 1 {
        // One op, where the scatter takes three (autodiff records each).
        return atomic.sum();
    }
    let n = atomic.dims()[0];
    let index = index_tensor(graph.batch().index(), &atomic.device());
    scatter_sum(atomic.reshape([n, 1]), index, g).reshape([g])
}

/// The energies, forces and virials of [`AtomicPotential::atomic_energy_forces`], with the
/// energy of each atom.
#[derive(Debug, Clone)]
pub struct AtomicEnergyForces {
    /// The energy of each structure (of its counted atoms), its forces (on every atom) and
    /// virial.
    pub energy_forces: EnergyForces,
    /// The energy of each atom, `[N]` (counted or not).
    pub atomic: Tensor<1>,
}

/// A potential whose energy is a sum of per-atom energies, as NequIP's and MACE's are: what an
/// MD engine with domain decomposition needs, each domain counting only its own atoms'
/// energies while their neighbourhoods reach into ghost atoms.
///
/// ```
/// use burn::tensor::{DType, Device, Tensor};
/// use equivariant::potential::{AtomicGraph, AtomicPotential, Potential, Structure};
/// use equivariant::ops::{index_tensor, scatter_sum};
/// /// `E_i = k sum_{e -> i} |r_e|^2 / 2`: half of each bond's spring on each atom.
/// struct Springs { k: f64 }
/// impl Potential for Springs {
///     fn r_max(&self) -> f64 { 2.0 }
///     fn num_types(&self) -> usize { 1 }
///     fn energy(&self, g: &AtomicGraph, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
///         Ok(equivariant::potential::sum_per_structure(g, self.atomic_energies(g, r)?))
///     }
///     fn energy_tangent(&self, _: &AtomicGraph, r: Tensor<2>, s: Tensor<2>)
///         -> equivariant::Result<(Tensor<1>, Tensor<1>)> {
///         let e = r.clone().powi_scalar(2).sum().mul_scalar(0.5 * self.k);
///         Ok((e, r.mul(s).sum().mul_scalar(self.k)))
///     }
/// }
/// impl AtomicPotential for Springs {
///     fn num_interactions(&self) -> usize { 1 }
///     fn atomic_energies(&self, g: &AtomicGraph, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
///         let n = g.species().len();
///         let dst: Vec<usize> = (0..g.edges().num_edges()).map(|e| g.edges().dst(e)).collect();
///         let index = index_tensor(&dst, &r.device());
///         let per_edge = r.powi_scalar(2).sum_dim(1).mul_scalar(0.5 * self.k);
///         Ok(scatter_sum(per_edge, index, n).reshape([n]))
///     }
/// }
/// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
/// let graph = AtomicGraph::new(&[dimer], 2.0, &Device::flex(), DType::F64)?;
/// // Only atom 0 counted: E = 2.25, and the force on atom 1 is that of its half bond.
/// let result = Springs { k: 2.0 }.atomic_energy_forces(&graph, Some(&[true, false]))?;
/// assert_eq!(result.energy_forces.energy.into_scalar::<f64>(), 2.25);
/// assert_eq!(result.atomic.into_data().try_into_vec::<f64>().unwrap(), [2.25, 2.25]);
/// assert_eq!(result.energy_forces.forces.into_data().iter::<f64>().nth(3), Some(-3.0));
/// # Ok::<(), equivariant::Error>(())
/// ```
pub trait AtomicPotential: Potential {
    /// The number of message-passing steps: an atom's energy depends on the atoms up to this
    /// many edges away (so within `num_interactions * r_max`), the depth a domain's ghost
    /// atoms need.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::nequip::NequipConfig;
    /// use equivariant::potential::AtomicPotential;
    /// let model = NequipConfig { num_layers: 3, ..NequipConfig::new(1, 3.0) }.init(&Device::flex())?;
    /// assert_eq!(model.num_interactions(), 3);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    fn num_interactions(&self) -> usize;

    /// The energy of each atom, `[N]`, from the edge vectors (as in [`Potential::energy`]);
    /// a structure's energy is the sum over its atoms.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::nn::models::nequip::NequipConfig;
    /// use equivariant::potential::{AtomicGraph, AtomicPotential, Potential, Structure};
    /// let model = NequipConfig { num_layers: 1, num_features: 4, ..NequipConfig::new(1, 3.0) }.init(&Device::flex())?;
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], model.r_max(), &Device::flex(), DType::F32)?;
    /// let atomic = model.atomic_energies(&graph, graph.edge_vec().clone())?;
    /// let energy = model.energy(&graph, graph.edge_vec().clone())?;
    /// let sum: f64 = atomic.into_data().iter::<f64>().sum();
    /// assert!((sum - energy.into_scalar::<f64>()).abs() < 1e-5);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    fn atomic_energies(&self, graph: &AtomicGraph, edge_vec: Tensor<2>) -> Result<Tensor<1>>;

    /// The energy of the `counted` atoms of each structure (`None`: all), the energy of every
    /// atom, and the forces (on every atom, counted or not) and virials of the counted
    /// energy: [`forces::energy_forces`](crate::forces::energy_forces) of
    /// `E_g = sum_{i in g, counted} E_i`.
    ///
    /// Errors: [`Error::ShapeMismatch`] for a `counted` that is not one per atom; those of
    /// [`atomic_energies`](Self::atomic_energies) and of `energy_forces`.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::nn::models::nequip::NequipConfig;
    /// use equivariant::potential::{AtomicGraph, AtomicPotential, Potential, Structure};
    /// let model = NequipConfig { num_layers: 1, num_features: 4, ..NequipConfig::new(1, 3.0) }.init(&Device::flex())?;
    /// let dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0, 0], cell: None };
    /// let graph = AtomicGraph::new(&[dimer], model.r_max(), &Device::flex(), DType::F32)?;
    /// let all = model.atomic_energy_forces(&graph, None)?;
    /// let plain = model.energy_forces(&graph)?;
    /// assert_eq!(all.energy_forces.energy.into_scalar::<f64>(), plain.energy.into_scalar::<f64>());
    /// assert!(model.atomic_energy_forces(&graph, Some(&[true])).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    fn atomic_energy_forces(
        &self,
        graph: &AtomicGraph,
        counted: Option<&[bool]>,
    ) -> Result<AtomicEnergyForces> {
        atomic_energy_forces_autodiff(self, graph, counted)
    }
}

/// `Ok` unless `counted` is given with other than one flag per atom of `graph`
/// ([`Error::ShapeMismatch`]).
pub(crate) fn check_counted(graph: &AtomicGraph, counted: Option<&[bool]>) -> Result<()> {
    let n = graph.species().len();
    match counted {
        Some(counted) if counted.len() != n => Err(Error::ShapeMismatch {
            what: "counted (one flag per atom)",
            expected: n,
            got: counted.len(),
        }),
        _ => Ok(()),
    }
}

/// [`AtomicPotential::atomic_energy_forces`] by autodiff through the model's
/// [`atomic_energies`](AtomicPotential::atomic_energies): the provided method, and what a
/// model with its own backward runs where that backward does not apply.
pub(crate) fn atomic_energy_forces_autodiff<P: AtomicPotential + ?Sized>(
    model: &P,
    graph: &AtomicGraph,
    counted: Option<&[bool]>,
) -> Result<AtomicEnergyForces> {
    let n = graph.species().len();
    check_counted(graph, counted)?;
    let mask: Option<Vec<f64>> =
        counted.map(|counted| counted.iter().map(|&c| f64::from(u8::from(c))).collect());
    let mut atomic = None;
    let energy_forces = energy_forces(&graph.edges, &graph.batch, graph.edge_vec.clone(), |r| {
        let energies = model.atomic_energies(graph, r)?;
        atomic = Some(energies.clone());
        let counted = match mask {
            Some(mask) => {
                let mask = Tensor::<1>::from_data(
                    TensorData::new(mask, [n]),
                    (&energies.device(), energies.dtype()),
                );
                energies.mul(mask)
            }
            None => energies,
        };
        Ok(sum_per_structure(graph, counted))
    })?;
    let atomic = atomic
        .ok_or(Error::InvalidArgument {
            name: "atomic_energies",
            reason: "the energy pass did not run".into(),
        })?
        .without_autodiff();
    Ok(AtomicEnergyForces {
        energy_forces,
        atomic,
    })
}
