//! What the trainer needs of a model: an [`AtomicPotential`] with parameters (a burn
//! `Module`), its own section of the configuration, and a way to build it from that section
//! and the training set's statistics. [`Nequip`] is one; any architecture of this library's
//! modules trains the same way once it implements [`Trainable`].

use std::fmt::Debug;
use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use equivariant::nn::models::nequip::Nequip;
use equivariant::potential::AtomicPotential;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Result;
use crate::config::ModelConfig;
use crate::statistics::Statistics;

/// A model the trainer can train, checkpoint and rebuild.
///
/// ```
/// use burn::tensor::Device;
/// use equivariant::nn::models::nequip::Nequip;
/// use equivariant_train::model::Trainable;
/// use equivariant_train::statistics::Statistics;
/// let section: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4").unwrap();
/// let stats = Statistics { avg_num_neighbors: 8.0, per_atom_energy_mean: -3.5, forces_rms: 0.4 };
/// assert_eq!(Nequip::configured_r_max(&section), 3.0);
/// let model = Nequip::build(&section, 2, &stats, &Device::flex())?;
/// assert_eq!(model.config().avg_num_neighbors, 8.0);
/// # Ok::<(), equivariant_train::Error>(())
/// ```
pub trait Trainable: AtomicPotential + Module + Clone + Debug + Sized {
    /// The model's section of the configuration (`[model]`), also kept in checkpoints.
    type Config: Serialize + DeserializeOwned + Clone + PartialEq + Debug;

    /// The cutoff radius `config` asks for (the statistics need it before the model exists).
    fn configured_r_max(config: &Self::Config) -> f64;

    /// A model with freshly drawn parameters for `num_types` species, fitted to the training
    /// set's `statistics` where the architecture uses them.
    ///
    /// # Errors
    ///
    /// An impossible configuration.
    fn build(
        config: &Self::Config,
        num_types: usize,
        statistics: &Statistics,
        device: &Device,
    ) -> Result<Self>;
}

/// Held while parameters are drawn: burn's parameter seed is process-wide, so two models
/// built at once (a run and a checkpoint being loaded, in one process) would otherwise take
/// each other's random numbers, and a seeded run would not be reproducible.
static PARAMETER_DRAW: Mutex<()> = Mutex::new(());

/// [`Trainable::build`] under the parameter lock, after seeding burn's generator with `seed`
/// (`None`: parameters that will be overwritten, e.g. from a checkpoint).
pub(crate) fn build_seeded<M: Trainable>(
    config: &M::Config,
    num_types: usize,
    statistics: &Statistics,
    device: &Device,
    seed: Option<u64>,
) -> Result<M> {
    let _draw = PARAMETER_DRAW.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(seed) = seed {
        device.seed(seed);
    }
    let model = M::build(config, num_types, statistics, device)?;
    // burn draws a parameter when it is first read: read them all while the lock is held.
    model.visit(&mut Materialize);
    Ok(model)
}

/// `param` with a new value `value(inner)`, computed from its value without autodiff and
/// lifted back as a fresh leaf, with the parameter's id and require-grad flag (as burn's
/// optimizers write an update): an updated parameter, or a part's own copy of one.
pub(crate) fn relifted<const D: usize>(
    param: Param<Tensor<D>>,
    value: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Param<Tensor<D>> {
    let (id, p, mapper) = param.consume();
    let trained = p.is_require_grad();
    let leaf = Tensor::from_inner(value(p.inner()));
    let leaf = if trained { leaf.require_grad() } else { leaf };
    Param::from_mapped_value(id, leaf, mapper)
}

/// Reads every float parameter (drawing the lazily initialized ones).
struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

impl Trainable for Nequip {
    type Config = ModelConfig;

    fn configured_r_max(config: &ModelConfig) -> f64 {
        config.r_max
    }

    /// NequIP's: `avg_num_neighbors` from the data, per-species shifts at the mean energy
    /// per atom and scales at the force RMS.
    fn build(
        config: &ModelConfig,
        num_types: usize,
        statistics: &Statistics,
        device: &Device,
    ) -> Result<Self> {
        let model = config
            .nequip(num_types, statistics.avg_num_neighbors)
            .init(device)?;
        Ok(model.with_scale_shift(
            &vec![statistics.forces_rms; num_types],
            &vec![statistics.per_atom_energy_mean; num_types],
        )?)
    }
}
