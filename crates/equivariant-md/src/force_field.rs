//! A potential evaluated along a trajectory: energy and forces at each new set of positions,
//! on a graph built at the model's cutoff plus a skin and rebuilt only when an atom has moved
//! more than `skin / 2` since the last build (no pair can then have come from beyond
//! `r_max + skin` to within `r_max`). Between rebuilds only the edge vectors change; at each
//! step the model sees the list's edges shorter than `r_max` (those beyond would cost as
//! much work as any other and change nothing: a potential's cutoff makes their terms zero).

use burn::tensor::{DType, Device};
use equivariant::potential::{AtomicGraph, Potential, Structure};
use equivariant::util::on_pool;
use equivariant::{Error, Result};

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
    skin: f64,
    device: Device,
    dtype: DType,
    structure: Structure,
    /// The neighbour list: the graph at `r_max + skin` of the positions it was built at.
    list: AtomicGraph,
    /// The list's edges within `r_max` at the current positions: what the model sees.
    graph: AtomicGraph,
    forces: Vec<[f64; 3]>,
    energy: f64,
    rebuilds: usize,
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
        if !(skin.is_finite() && skin >= 0.0) {
            return Err(Error::InvalidArgument {
                name: "skin",
                reason: format!("must be finite and >= 0, got {skin}"),
            });
        }
        let list = AtomicGraph::new(
            std::slice::from_ref(structure),
            model.r_max() + skin,
            device,
            dtype,
        )?;
        let graph = list.with_positions_within(&structure.positions, model.r_max())?;
        let mut field = ForceField {
            model,
            skin,
            device: device.clone(),
            dtype,
            structure: structure.clone(),
            list,
            graph,
            forces: Vec::new(),
            energy: 0.0,
            rebuilds: 0,
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
        let built_at = &self.structure.positions;
        if positions.len() != built_at.len() {
            return Err(Error::ShapeMismatch {
                what: "positions (one per atom)",
                expected: built_at.len(),
                got: positions.len(),
            });
        }
        let moved = positions
            .iter()
            .zip(built_at)
            .map(|(x, y)| {
                ((x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2)).sqrt()
            })
            .fold(0.0f64, f64::max);
        // A NaN position rebuilds, and the graph names it.
        if moved > 0.5 * self.skin || moved.is_nan() {
            // Built aside and kept only if it builds: a failed rebuild leaves the last graph
            // and the positions it was built at together.
            let structure = Structure {
                positions: positions.to_vec(),
                ..self.structure.clone()
            };
            let list = AtomicGraph::new(
                std::slice::from_ref(&structure),
                self.model.r_max() + self.skin,
                &self.device,
                self.dtype,
            )?;
            self.graph = list.with_positions_within(positions, self.model.r_max())?;
            self.list = list;
            self.structure = structure;
            self.rebuilds += 1;
        } else {
            self.graph = self
                .list
                .with_positions_within(positions, self.model.r_max())?;
        }
        self.compute()
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
        self.rebuilds
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
