//! A trained potential loaded for single-point calculations: the energy, forces and stress
//! of a structure given by chemical symbols, positions and (if periodic) a cell, as an ASE
//! calculator, an MD engine or `equivariant predict` needs them.

use std::path::Path;
use std::sync::Mutex;

use burn::tensor::{DType, Device};
use equivariant::nn::models::nequip::Nequip;
use equivariant::potential::{AtomicGraph, Structure};
use equivariant::util::on_pool;
use equivariant_data::Frame;
use equivariant_train::model::Trainable;
use equivariant_train::{Result, checkpoint, dataset};

use crate::neighbor_list::NeighborList;

/// The energy (eV), the energy of each atom (eV), forces (eV/Å, `[n][3]`), virial
/// `-sum_e r_e (x) dE/dr_e` (eV) and each atom's share of it, and, for a structure periodic
/// along all three axes, stress (`-virial / volume`, eV/Å³, ASE's sign) of one structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The potential energy.
    pub energy: f64,
    /// The energy of each atom, `[n]` (summing to `energy` over the counted atoms).
    pub energies: Vec<f64>,
    /// The forces, `[n][3]`.
    pub forces: Vec<[f64; 3]>,
    /// The virial, 3x3.
    pub virial: [[f64; 3]; 3],
    /// Each atom's share of the virial, `[n]` 3x3: half of `-r_e (x) dE/dr_e` of each edge it
    /// is an end of (summing to `virial`); LAMMPS's per-atom virial (`compute stress/atom`
    /// is its negative).
    pub atom_virials: Vec<[[f64; 3]; 3]>,
    /// The stress, 3x3, if all three axes are periodic.
    pub stress: Option<[[f64; 3]; 3]>,
}

/// A checkpoint of `equivariant train` ready to compute, in the checkpoint's dtype or another.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant::nn::models::nequip::Nequip;
/// use equivariant_data::Frame;
/// use equivariant_md::calculator::Calculator;
/// use equivariant_train::checkpoint::{self, Header};
/// use equivariant_train::model::Trainable;
/// use equivariant_train::statistics::Statistics;
/// // An untrained checkpoint (`equivariant train` writes trained ones).
/// let section: <Nequip as Trainable>::Config = toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4")?;
/// let statistics = Statistics { avg_num_neighbors: 6.0, per_atom_energy_mean: -3.0, forces_rms: 0.5 };
/// let model = Nequip::build(&section, 2, &statistics, &Device::flex())?;
/// let header = Header { species: vec!["Au".into(), "Cu".into()], statistics, dtype: "f32".into(), model: section };
/// let path = std::env::temp_dir().join("equivariant_doc_calculator.safetensors");
/// checkpoint::save(&path, &model, &header)?;
///
/// let calculator = Calculator::<Nequip>::load(&path, Some(DType::F64))?;
/// let dimer = Frame::new(vec!["Cu".into(), "Au".into()], vec![[0.0; 3], [2.5, 0.0, 0.0]]);
/// let result = calculator.compute(&dimer)?;
/// assert_eq!(result.forces[0][0], -result.forces[1][0]); // Newton's third law
/// assert!(result.stress.is_none()); // not periodic
/// let water = Frame::new(vec!["O".into()], vec![[0.0; 3]]);
/// assert!(calculator.compute(&water).unwrap_err().to_string().contains("species O"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Calculator<M: Trainable = Nequip> {
    model: M,
    species: Vec<String>,
    dtype: DType,
    device: Device,
    /// The graphs of [`compute`](Self::compute), kept from call to call.
    neighbors: Mutex<NeighborList>,
}

impl<M: Trainable> Calculator<M> {
    /// The checkpoint at `path` on the CPU, run in `dtype` (`None`: the checkpoint's).
    ///
    /// Errors: those of [`checkpoint::load`] (a missing, truncated or foreign file).
    pub fn load(path: &Path, dtype: Option<DType>) -> Result<Self> {
        let device = Device::flex();
        let (model, header) = checkpoint::load::<M>(path, &device)?;
        let dtype = match dtype {
            Some(dtype) => dtype,
            None => checkpoint::dtype(&header.dtype)?,
        };
        let model = equivariant::util::cast(model, dtype);
        let neighbors = Mutex::new(NeighborList::new(model.r_max(), 0.0, &device, dtype)?);
        Ok(Calculator {
            model,
            species: header.species,
            dtype,
            device,
            neighbors,
        })
    }

    /// The calculator with a neighbour list of skin `skin` Å kept between calls of
    /// [`compute`](Self::compute) ([`NeighborList`]): built at the model's cutoff plus the
    /// skin, and built again only when an atom has moved more than `skin / 2` since, or the
    /// atoms, species or cell changed. For an optimizer's or an MD engine's calls on atoms
    /// that move a little at a time (ASE's); with the default, 0, every call with new
    /// positions builds its own graph at the cutoff. The results are the same to the bit
    /// either way.
    ///
    /// Errors: [`equivariant_train::Error::Model`] for a skin that is not finite and `>= 0`.
    ///
    /// ```
    /// # use burn::tensor::{DType, Device};
    /// # use equivariant::nn::models::nequip::Nequip;
    /// # use equivariant_data::Frame;
    /// # use equivariant_md::calculator::Calculator;
    /// # use equivariant_train::checkpoint::{self, Header};
    /// # use equivariant_train::model::Trainable;
    /// # use equivariant_train::statistics::Statistics;
    /// # let section: <Nequip as Trainable>::Config = toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4")?;
    /// # let statistics = Statistics { avg_num_neighbors: 6.0, per_atom_energy_mean: -3.0, forces_rms: 0.5 };
    /// # let model = Nequip::build(&section, 2, &statistics, &Device::flex())?;
    /// # let header = Header { species: vec!["Au".into(), "Cu".into()], statistics, dtype: "f32".into(), model: section };
    /// # let path = std::env::temp_dir().join("equivariant_doc_calculator_skin.safetensors");
    /// # checkpoint::save(&path, &model, &header)?;
    /// let calculator = Calculator::<Nequip>::load(&path, Some(DType::F64))?.with_skin(0.5)?;
    /// let mut dimer = Frame::new(vec!["Cu".into(), "Au".into()], vec![[0.0; 3], [2.5, 0.0, 0.0]]);
    /// let first = calculator.compute(&dimer)?;
    /// dimer.positions[1][0] = 2.6; // moved 0.1 < skin / 2: the list is kept
    /// let second = calculator.compute(&dimer)?;
    /// assert_eq!((calculator.skin(), calculator.list_builds()), (0.5, 1));
    /// assert_ne!(first.energy, second.energy);
    /// assert!(calculator.with_skin(-1.0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_skin(mut self, skin: f64) -> Result<Self> {
        let neighbors = NeighborList::new(self.model.r_max(), skin, &self.device, self.dtype)?;
        self.neighbors = Mutex::new(neighbors);
        Ok(self)
    }

    /// The skin of the neighbour list [`compute`](Self::compute) keeps (Å); see
    /// [`with_skin`](Self::with_skin)'s example.
    pub fn skin(&self) -> f64 {
        self.lock_neighbors().skin()
    }

    /// How many times [`compute`](Self::compute) built its neighbour list; see
    /// [`with_skin`](Self::with_skin)'s example.
    pub fn list_builds(&self) -> usize {
        self.lock_neighbors().builds()
    }

    /// The neighbour list, whatever a panic elsewhere left it in (a list is valid or rebuilt).
    fn lock_neighbors(&self) -> std::sync::MutexGuard<'_, NeighborList> {
        self.neighbors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The model, in [`dtype`](Self::dtype).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The chemical symbol of each of the model's type indices.
    pub fn species(&self) -> &[String] {
        &self.species
    }

    /// The dtype the model runs in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The structure of `frame` in the model's type indices.
    ///
    /// Errors: [`equivariant_train::Error::UnknownSpecies`] for a species the model was not
    /// trained on; [`equivariant_train::Error::Model`] for a singular cell.
    pub fn structure(&self, frame: &Frame) -> Result<Structure> {
        dataset::structure(frame, &self.species)
    }

    /// The energy, forces, virial and (if periodic along all three axes) stress of `frame`.
    ///
    /// Errors: those of [`structure`](Self::structure); [`equivariant_train::Error::Model`]
    /// for no atoms, NaN or infinite positions, two atoms at one place.
    pub fn compute(&self, frame: &Frame) -> Result<Prediction> {
        let structure = self.structure(frame)?;
        let graph = self.lock_neighbors().graph(&structure)?;
        self.predict(&graph, None)
    }

    /// The energy of the `contributing` atoms (`None`: all), their energies, and the forces
    /// (on every atom) and virial of that energy, for atoms given with their neighbour lists
    /// as an MD engine with domain decomposition has them: its local atoms and ghost copies of
    /// the others. Only the atoms and edges the contributing energies depend on are computed
    /// ([`AtomicGraph::from_neighbors`]); the others get zero energy, force and virial. A
    /// ghost's force and virial share belong to the atom it copies (the MD engine adds them
    /// there); its energy is zero. Species are
    /// the model's type indices ([`species`](Self::species)); no stress (ghosts have no
    /// cell).
    ///
    /// Errors: [`equivariant_train::Error::Model`] for a type index out of range, a count
    /// that is not one per atom, a neighbour out of range, two atoms at one place, a NaN
    /// position.
    ///
    /// ```
    /// # use burn::tensor::{DType, Device};
    /// # use equivariant::nn::models::nequip::Nequip;
    /// # use equivariant_data::Frame;
    /// # use equivariant_md::calculator::Calculator;
    /// # use equivariant_train::checkpoint::{self, Header};
    /// # use equivariant_train::model::Trainable;
    /// # use equivariant_train::statistics::Statistics;
    /// # let section: <Nequip as Trainable>::Config = toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4")?;
    /// # let statistics = Statistics { avg_num_neighbors: 6.0, per_atom_energy_mean: -3.0, forces_rms: 0.5 };
    /// # let model = Nequip::build(&section, 2, &statistics, &Device::flex())?;
    /// # let header = Header { species: vec!["Au".into(), "Cu".into()], statistics, dtype: "f32".into(), model: section };
    /// # let path = std::env::temp_dir().join("equivariant_doc_calculator_neighbors.safetensors");
    /// # checkpoint::save(&path, &model, &header)?;
    /// let calculator = Calculator::<Nequip>::load(&path, Some(DType::F64))?;
    /// // A Cu dimer: atom 0 local, atom 1 a ghost (another domain's atom).
    /// let positions = [[0.0; 3], [2.5, 0.0, 0.0]];
    /// let result = calculator.compute_neighbors(&positions, vec![1, 1], Some(&[true, false]), &[vec![1], vec![0]])?;
    /// assert_eq!((result.energy, result.energies[1]), (result.energies[0], 0.0));
    /// let whole = calculator.compute(&Frame::new(vec!["Cu".into(), "Cu".into()], positions.to_vec()))?;
    /// assert!((2.0 * result.energy - whole.energy).abs() < 1e-12);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compute_neighbors<L: AsRef<[usize]>>(
        &self,
        positions: &[[f64; 3]],
        species: Vec<usize>,
        contributing: Option<&[bool]>,
        neighbors: &[L],
    ) -> Result<Prediction> {
        let n = positions.len();
        let all = vec![true; n];
        let contributing = contributing.unwrap_or(&all);
        let (graph, atoms) = AtomicGraph::from_neighbors(
            positions,
            species,
            neighbors,
            self.model.r_max(),
            Some((contributing, self.model.num_interactions())),
            &self.device,
            self.dtype,
        )?;
        let counted: Vec<bool> = atoms.iter().map(|&i| contributing[i]).collect();
        let part = self.predict(&graph, Some(&counted))?;
        let mut energies = vec![0.0; n];
        let mut forces = vec![[0.0; 3]; n];
        let mut atom_virials = vec![[[0.0; 3]; 3]; n];
        for (k, &i) in atoms.iter().enumerate() {
            if counted[k] {
                energies[i] = part.energies[k];
            }
            forces[i] = part.forces[k];
            atom_virials[i] = part.atom_virials[k];
        }
        Ok(Prediction {
            energies,
            forces,
            atom_virials,
            ..part
        })
    }

    /// [`Prediction`] of the one structure of `graph`, counting the energies of `counted`.
    fn predict(&self, graph: &AtomicGraph, counted: Option<&[bool]>) -> Result<Prediction> {
        // On rayon's pool: one hand-over per call instead of one per parallel kernel.
        let model = &self.model;
        let result = on_pool(|| model.atomic_energy_forces(graph, counted))?;
        let energies = values(result.atomic.to_data());
        let result = result.energy_forces;
        let stress = match graph.volumes()[0] {
            Some(volume) => Some(matrix(&values(result.stress(&[volume])?.to_data()))),
            None => None,
        };
        let forces = values(result.forces.to_data());
        // Half of each edge's -r_e (x) g_e to each of its two atoms.
        let r = values(graph.edge_vec().to_data());
        let g = values(result.edge_gradient.to_data());
        let edges = graph.edges();
        let mut atom_virials = vec![[[0.0; 3]; 3]; graph.species().len()];
        for e in 0..edges.num_edges() {
            let (r, g) = (&r[3 * e..3 * e + 3], &g[3 * e..3 * e + 3]);
            for atom in [edges.src(e), edges.dst(e)] {
                for a in 0..3 {
                    for b in 0..3 {
                        atom_virials[atom][a][b] -= 0.5 * r[a] * g[b];
                    }
                }
            }
        }
        Ok(Prediction {
            energy: result.energy.to_data().iter::<f64>().sum(),
            energies,
            forces: forces.chunks(3).map(|f| [f[0], f[1], f[2]]).collect(),
            virial: matrix(&values(result.virial.to_data())),
            atom_virials,
            stress,
        })
    }
}

/// The values of `data` as f64 (from f32 or f64).
fn values(data: burn::tensor::TensorData) -> Vec<f64> {
    data.iter::<f64>().collect()
}

/// The 3x3 matrix of nine values in row-major order.
fn matrix(values: &[f64]) -> [[f64; 3]; 3] {
    std::array::from_fn(|i| std::array::from_fn(|j| values[3 * i + j]))
}
