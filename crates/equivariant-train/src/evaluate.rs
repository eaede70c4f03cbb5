//! Errors of a potential on labelled structures: energy per atom, force components and
//! (for frames with a stress label and a cell periodic in all three directions) stress
//! components, as mean absolute and root mean square errors.

use burn::tensor::{DType, Device};
use equivariant::potential::Potential;
use equivariant::util::on_pool;

use crate::Result;
use crate::dataset::{Batch, Sample};

/// Mean absolute and root mean square error of a quantity, over `count` values.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant_train::evaluate::evaluate;
/// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
/// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
/// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
/// let model_config: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4").unwrap();
/// let device = Device::flex().autodiff();
/// let model = model_config.nequip(2, 1.0).init(&device)?;
/// let result = evaluate(&model, &[&data.samples[0]], 4, &device, DType::F32)?;
/// assert_eq!(result.forces.count, 6);
/// assert!(result.forces.rmse >= result.forces.mae);
/// # Ok::<(), equivariant_train::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Errors {
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean square error.
    pub rmse: f64,
    /// How many values (0: the quantity had no labels).
    pub count: usize,
}

/// Sums of absolute and squared residuals.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    abs: f64,
    sq: f64,
    count: usize,
}

impl Sums {
    fn add(&mut self, residual: f64) {
        self.abs += residual.abs();
        self.sq += residual * residual;
        self.count += 1;
    }

    fn errors(&self) -> Errors {
        let n = self.count.max(1) as f64;
        Errors {
            mae: self.abs / n,
            rmse: (self.sq / n).sqrt(),
            count: self.count,
        }
    }
}

/// The errors of a potential on a set of structures, and its force predictions.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant_train::evaluate::evaluate;
/// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
/// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
/// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
/// let model_config: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4").unwrap();
/// let device = Device::flex().autodiff();
/// let model = model_config.nequip(2, 1.0).init(&device)?;
/// let result = evaluate(&model, &[&data.samples[0]], 4, &device, DType::F32)?;
/// assert_eq!(result.stress.count, 0); // no stress label, no cell
/// assert_eq!(result.force_pairs[0].0, 0.1);
/// # Ok::<(), equivariant_train::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    /// Energy per atom.
    pub energy_per_atom: Errors,
    /// Force components.
    pub forces: Errors,
    /// Stress components (frames with a stress label and a fully periodic cell).
    pub stress: Errors,
    /// `(reference, predicted)` force components, for a parity plot.
    pub force_pairs: Vec<(f64, f64)>,
}

/// Evaluates `model` on `samples` in batches of `batch_size` structures, edge vectors in
/// `dtype` on `device`.
///
/// Errors: those of building the graphs and of the model.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant_train::evaluate::evaluate;
/// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
/// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
/// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
/// let model_config: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4").unwrap();
/// let device = Device::flex().autodiff();
/// let model = model_config.nequip(2, 1.0).init(&device)?;
/// let result = evaluate(&model, &[&data.samples[0]], 4, &device, DType::F32)?;
/// assert_eq!(result.energy_per_atom.count, 1);
/// # Ok::<(), equivariant_train::Error>(())
/// ```
pub fn evaluate<P: Potential>(
    model: &P,
    samples: &[&Sample],
    batch_size: usize,
    device: &Device,
    dtype: DType,
) -> Result<Evaluation> {
    let batches = Batch::chunks(samples, batch_size, model.r_max(), device, dtype)?;
    evaluate_batches(model, &batches)
}

/// [`evaluate`] on batches built already ([`Batch::chunks`]; a trainer validates on the
/// same batches every epoch).
///
/// Errors: those of the model.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant_train::dataset::Batch;
/// use equivariant_train::evaluate::evaluate_batches;
/// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
/// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
/// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
/// let model_config: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4").unwrap();
/// let device = Device::flex().autodiff();
/// let model = model_config.nequip(2, 1.0).init(&device)?;
/// let batches = Batch::chunks(&[&data.samples[0]], 4, 3.0, &device, DType::F32)?;
/// assert_eq!(evaluate_batches(&model, &batches)?.forces.count, 6);
/// # Ok::<(), equivariant_train::Error>(())
/// ```
pub fn evaluate_batches<P: Potential>(model: &P, batches: &[Batch]) -> Result<Evaluation> {
    let (mut energy, mut forces, mut stress) = (Sums::default(), Sums::default(), Sums::default());
    let mut force_pairs = Vec::new();
    for batch in batches {
        let result = on_pool(|| model.energy_forces(&batch.graph))?;
        let energies: Vec<f64> = result.energy.to_data().iter::<f64>().collect();
        for ((e, e_ref), &n) in energies.iter().zip(&batch.energies).zip(&batch.counts) {
            energy.add((e - e_ref) / n.max(1) as f64);
        }
        let predicted: Vec<f64> = result.forces.to_data().iter::<f64>().collect();
        for (f, f_ref) in predicted.iter().zip(&batch.forces) {
            forces.add(f - f_ref);
            force_pairs.push((*f_ref, *f));
        }
        // The stress of the periodic structures (a placeholder volume for the others,
        // whose stress is not compared).
        let volumes = batch.graph.volumes();
        let placeholder: Vec<f64> = volumes.iter().map(|v| v.unwrap_or(1.0)).collect();
        let stresses: Vec<f64> = result
            .stress(&placeholder)?
            .to_data()
            .iter::<f64>()
            .collect();
        for (g, reference) in batch.stresses.iter().enumerate() {
            if let (Some(reference), Some(_)) = (reference, volumes[g]) {
                for (k, s_ref) in reference.iter().flatten().enumerate() {
                    stress.add(stresses[9 * g + k] - s_ref);
                }
            }
        }
    }
    Ok(Evaluation {
        energy_per_atom: energy.errors(),
        forces: forces.errors(),
        stress: stress.errors(),
        force_pairs,
    })
}
