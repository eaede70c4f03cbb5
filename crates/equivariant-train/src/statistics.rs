//! What NequIP fits from the training set before training: the mean number of neighbours
//! (the convolutions' normalization), the mean energy per atom (the atomic energies' shift)
//! and the force RMS (their scale).

use burn::tensor::{DType, Device};
use equivariant::potential::{AtomicGraph, Structure};

use crate::Result;
use crate::dataset::Sample;

/// The training set's statistics (kept in checkpoints: a model is rebuilt from them).
///
/// ```
/// use equivariant_train::statistics::Statistics;
/// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
/// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
/// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
/// let stats = Statistics::of(&[&data.samples[0]], 3.0)?;
/// assert_eq!(stats.avg_num_neighbors, 1.0);
/// assert_eq!(stats.per_atom_energy_mean, -0.75);
/// assert!((stats.forces_rms - (0.02f64 / 6.0).sqrt()).abs() < 1e-15);
/// # Ok::<(), equivariant_train::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Statistics {
    /// Edges per atom within the cutoff.
    pub avg_num_neighbors: f64,
    /// The mean over frames of energy / atoms.
    pub per_atom_energy_mean: f64,
    /// The root mean square of the force components.
    pub forces_rms: f64,
}

impl Statistics {
    /// The statistics of `samples` at cutoff `r_max`.
    ///
    /// Errors: those of [`AtomicGraph::new`].
    ///
    /// ```
    /// use equivariant_train::statistics::Statistics;
    /// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
    /// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
    /// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
    /// // No neighbours within 2 A: the normalization stays at 1.
    /// assert_eq!(Statistics::of(&[&data.samples[0]], 2.0)?.avg_num_neighbors, 1.0);
    /// # Ok::<(), equivariant_train::Error>(())
    /// ```
    pub fn of(samples: &[&Sample], r_max: f64) -> Result<Self> {
        let structures: Vec<Structure> = samples.iter().map(|s| s.structure.clone()).collect();
        let graph = AtomicGraph::new(&structures, r_max, &Device::flex(), DType::F64)?;
        let atoms = graph.species().len().max(1) as f64;
        let avg_num_neighbors = (graph.edges().num_edges() as f64 / atoms).max(1.0);
        let per_atom_energy_mean = samples
            .iter()
            .map(|s| s.energy / s.structure.positions.len().max(1) as f64)
            .sum::<f64>()
            / samples.len().max(1) as f64;
        let (sum_sq, count) = samples
            .iter()
            .flat_map(|s| s.forces.iter().flatten())
            .fold((0.0, 0usize), |(s, c), f| (s + f * f, c + 1));
        let forces_rms = if count > 0 && sum_sq > 0.0 {
            (sum_sq / count as f64).sqrt()
        } else {
            1.0
        };
        Ok(Statistics {
            avg_num_neighbors,
            per_atom_energy_mean,
            forces_rms,
        })
    }
}
