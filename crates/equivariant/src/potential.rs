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
use crate::{Error, Result};

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
        let n = self.species.len();
        if positions.len() != n {
            return Err(Error::ShapeMismatch {
                what: "positions (one per atom of the graph)",
                expected: n,
                got: positions.len(),
            });
        }
        let flat: Vec<f64> = positions.iter().flatten().copied().collect();
        if let Some(index) = flat.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                what: "positions",
                index,
            });
        }
        let edge_vec = match &self.cells {
            Some(cells) => self
                .graph
                .edge_vec_batched(&flat, self.batch.index(), cells)?,
            None => self.graph.edge_vec(&flat, None)?,
        };
        check_no_zero_edge(&self.graph, &edge_vec)?;
        let e = self.graph.num_edges();
        let like = &self.edge_vec;
        let edge_vec = Tensor::<2>::from_data(
            TensorData::new(edge_vec, [e, 3]),
            (&like.device(), like.dtype()),
        );
        Ok(AtomicGraph {
            edge_vec,
            ..self.clone()
        })
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
    if let Some(e) = edge_vec.chunks(3).position(|r| r.iter().all(|&x| x == 0.0)) {
        return Err(Error::InvalidArgument {
            name: "positions",
            reason: format!(
                "atoms {} and {} of the batch are at the same place",
                graph.src[e], graph.dst[e]
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
pub trait Potential {
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
