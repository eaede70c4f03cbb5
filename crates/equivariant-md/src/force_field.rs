//! A potential evaluated along a trajectory: energy and forces at each new set of positions,
//! on the graph of a [`NeighborList`] (built at the model's cutoff plus a skin, rebuilt only
//! when an atom has moved more than `skin / 2`). At each step the model sees the list's
//! edges shorter than `r_max` (those beyond would cost as much work as any other and change
//! nothing: a potential's cutoff makes their terms zero).

use burn::tensor::{DType, Device};
use equivariant::potential::{AtomicGraph, Potential, Structure};
use equivariant::util::on_pool;
use equivariant::{Error, Result};

use crate::neighbor_list::NeighborList;

/// The energy and forces of `model` at the positions of a moving structure.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant::nn::models::nequip::NequipConfig;
/// use equivariant::potential::Structure;
/// use equivariant_md::force_field::ForceField;
/// let device = Device::flex();
/// let model = NequipConfig { num_layers: 1, num_features: 4, ..NequipConfig::new(1, 3.0) }.init(&device)?;
/// let model = equivariant::util::cast(model, DType::F64);
/// let mut structure = Structure { positions: vec![[0.0; 3], [2.0, 0.0, 0.0]], species: vec![0; 2], cell: None };
/// let mut field = ForceField::new(&model, &structure, 0.5, &device, DType::F64)?;
/// structure.positions[1][0] = 2.1;
/// field.update(&structure.positions)?; // moved 0.1 < skin / 2: the same graph
/// assert_eq!((field.forces().len(), field.rebuilds()), (2, 0));
/// # Ok::<(), equivariant::Error>(())
/// ```
pub struct ForceField<'a, P: Potential> {
    model: &'a P,
    /// The atoms at the positions of the energy and forces.
    structure: Structure,
    neighbors: NeighborList,
    /// The list's edges within `r_max` at the current positions: what the model sees.
    graph: AtomicGraph,
    forces: Vec<[f64; 3]>,
    energy: f64,
}

impl<'a, P: Potential> ForceField<'a, P> {
    /// The force field of `model` on `structure` (whose positions are those of the first
    /// graph build) with neighbour-list skin `skin` Å, run in `dtype` on `device`; computes
    /// the energy and forces at `structure`.
    ///
    /// Errors: [`Error::InvalidArgument`] for a skin that is not finite and `>= 0`; those of
    /// the graph and the model.
    pub fn new(
        model: &'a P,
        structure: &Structure,
        skin: f64,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let mut neighbors = NeighborList::new(model.r_max(), skin, device, dtype)?;
        let graph = neighbors.graph(structure)?;
        let mut field = ForceField {
            model,
            structure: structure.clone(),
            neighbors,
            graph,
            forces: Vec::new(),
            energy: 0.0,
        };
        field.compute()?;
        Ok(field)
    }

    /// Moves the atoms to `positions` (`[n][3]`) and computes the energy and forces there,
    /// rebuilding the graph if an atom has moved more than `skin / 2` since the last build.
    ///
    /// Errors: [`Error::ShapeMismatch`] for a number of positions other than the atoms';
    /// those of the graph and the model (e.g. atoms on top of each other, NaN positions).
    pub fn update(&mut self, positions: &[[f64; 3]]) -> Result<()> {
        if positions.len() != self.structure.positions.len() {
            return Err(Error::ShapeMismatch {
                what: "positions (one per atom)",
                expected: self.structure.positions.len(),
                got: positions.len(),
            });
        }
        // The new positions and graph in place, the last ones put back if the graph or the
        // model fails (the energy and forces stay theirs).
        let old = std::mem::replace(&mut self.structure.positions, positions.to_vec());
        let result = match self.neighbors.graph(&self.structure) {
            Ok(graph) => {
                let last = std::mem::replace(&mut self.graph, graph);
                let result = self.compute();
                if result.is_err() {
                    self.graph = last;
                }
                result
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.structure.positions = old;
        }
        result
    }

    /// The potential energy at the current positions (eV).
    pub fn energy(&self) -> f64 {
        self.energy
    }

    /// The forces at the current positions (eV/Å), `[n][3]`.
    pub fn forces(&self) -> &[[f64; 3]] {
        &self.forces
    }

    /// How many times the graph was rebuilt after the first build.
    pub fn rebuilds(&self) -> usize {
        self.neighbors.builds() - 1
    }

    /// The energy and forces on the current graph, computed on rayon's pool (one hand-over
    /// per step instead of one per parallel kernel: [`on_pool`]).
    fn compute(&mut self) -> Result<()> {
        let (model, graph) = (&self.model, &self.graph);
        let result = on_pool(|| model.energy_forces(graph))?;
        self.energy = result.energy.to_data().iter::<f64>().sum();
        let forces: Vec<f64> = result.forces.to_data().iter::<f64>().collect();
        self.forces = forces.chunks(3).map(|f| [f[0], f[1], f[2]]).collect();
        Ok(())
    }
}
