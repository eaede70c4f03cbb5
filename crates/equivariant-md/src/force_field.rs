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
    /// The atoms, at the positions last asked for (those of the energy and forces unless
    /// that update failed).
    structure: Structure,
    neighbors: NeighborList,
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
            forces: Vec::new(),
            energy: 0.0,
        };
        field.compute(&graph)?;
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
        self.structure.positions.copy_from_slice(positions);
        // The list's edges within `r_max` at the new positions: what the model sees. A
        // failure leaves the energy and forces of the last positions that computed.
        let graph = self.neighbors.graph(&self.structure)?;
        self.compute(&graph)
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

    /// The energy and forces on `graph`, computed on rayon's pool (one hand-over per step
    /// instead of one per parallel kernel: [`on_pool`]).
    fn compute(&mut self, graph: &AtomicGraph) -> Result<()> {
        let model = self.model;
        let result = on_pool(|| model.energy_forces(graph))?;
        self.energy = result.energy.to_data().iter::<f64>().sum();
        let forces: Vec<f64> = result.forces.to_data().iter::<f64>().collect();
        self.forces = forces.chunks(3).map(|f| [f[0], f[1], f[2]]).collect();
        Ok(())
    }
}
