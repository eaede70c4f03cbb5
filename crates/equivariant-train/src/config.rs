//! The training configuration (`equivariant train CONFIG.toml`): data, model and training
//! sections, with NequIP's names for the model's hyperparameters.

use std::path::{Path, PathBuf};

use equivariant::nn::models::nequip::NequipConfig;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A whole configuration file.
///
/// ```
/// let dir = std::env::temp_dir().join("equivariant_doc_config_1");
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("config.toml");
/// std::fs::write(&path, "[data]\npath = \"data.xyz\"\n[model]\nr_max = 4.0\n[training]\nepochs = 5\noutput = \"run\"\n")?;
/// let config = equivariant_train::config::TrainConfig::read(&path)?;
/// assert_eq!(config.data.path, dir.join("data.xyz")); // relative to the file
/// assert_eq!(config.model["r_max"].as_float(), Some(4.0)); // the section as written
/// assert_eq!(config.training.batch_size, 5); // a default
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Where the data comes from and how it is split.
    pub data: DataConfig,
    /// The model's section, as written: the model type reads it
    /// ([`Trainable::Config`](crate::model::Trainable::Config); NequIP's is [`ModelConfig`]).
    pub model: toml::Table,
    /// The optimization.
    pub training: TrainingConfig,
}

/// The `[data]` section.
///
/// ```
/// let data: equivariant_train::config::DataConfig = toml::from_str("path = \"a.xyz\"")?;
/// assert_eq!((data.validation, data.test, data.seed), (0.1, 0.1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// An extended XYZ file, relative to the configuration file.
    pub path: PathBuf,
    /// The fraction of frames held out for validation.
    #[serde(default = "default_validation")]
    pub validation: f64,
    /// The fraction held out for testing.
    #[serde(default = "default_test")]
    pub test: f64,
    /// The seed of the split.
    #[serde(default)]
    pub seed: u64,
    /// Validation frames from their own file (relative to the configuration file): then
    /// every frame of `path` trains, and `validation` and `test` must be 0.
    #[serde(default)]
    pub validation_path: Option<PathBuf>,
}

/// The `[model]` section: NequIP's hyperparameters (defaults: its example configuration).
///
/// ```
/// let model_config: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 8")?;
/// assert_eq!((model_config.l_max, model_config.polynomial_cutoff_p), (1, 6));
/// assert!(!model_config.scalar_last_layer); // NequIP 0.6's layout unless asked
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The cutoff radius (Å).
    pub r_max: f64,
    /// Interaction layers.
    #[serde(default = "default_num_layers")]
    pub num_layers: usize,
    /// The largest `l`.
    #[serde(default = "default_l_max")]
    pub l_max: u32,
    /// Both parities.
    #[serde(default = "default_true")]
    pub parity: bool,
    /// Multiplicity of each hidden irrep.
    #[serde(default = "default_num_features")]
    pub num_features: usize,
    /// Bessel functions.
    #[serde(default = "default_num_basis")]
    pub num_basis: usize,
    /// The polynomial cutoff's power.
    #[serde(default = "default_p", rename = "PolynomialCutoff_p")]
    pub polynomial_cutoff_p: u32,
    /// Hidden layers of the radial MLP.
    #[serde(default = "default_invariant_layers")]
    pub invariant_layers: usize,
    /// Their width.
    #[serde(default = "default_invariant_neurons")]
    pub invariant_neurons: usize,
    /// Self-connections.
    #[serde(default = "default_true")]
    pub use_sc: bool,
    /// Residual connections.
    #[serde(default)]
    pub resnet: bool,
    /// The last layer keeps only scalars, as NequIP 0.7 and later build it (fewer weights,
    /// faster); off by default, which is NequIP 0.6's layout and that of every checkpoint
    /// written before this key existed.
    #[serde(default)]
    pub scalar_last_layer: bool,
}

/// The `[training]` section.
///
/// ```
/// let t: equivariant_train::config::TrainingConfig = toml::from_str("epochs = 3\noutput = \"run\"")?;
/// assert_eq!((t.lr_schedule.as_str(), t.ema_decay, t.dtype.as_str()), ("constant", 0.99, "f32"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Passes over the training frames.
    pub epochs: usize,
    /// Frames per step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// The weight of the energy-per-atom term of the loss.
    #[serde(default = "default_one")]
    pub energy_weight: f64,
    /// The weight of the force term.
    #[serde(default = "default_one")]
    pub force_weight: f64,
    /// `"f32"` or `"f64"`.
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// The seed of the parameters and the batches.
    #[serde(default)]
    pub seed: u64,
    /// The output folder (checkpoint, metrics), relative to the configuration file.
    pub output: PathBuf,
    /// AdamW's decoupled weight decay (0: Adam).
    #[serde(default)]
    pub weight_decay: f64,
    /// Clip each step's gradient to this L2 norm (absent: no clipping).
    #[serde(default)]
    pub max_grad_norm: Option<f64>,
    /// The learning-rate schedule: `"constant"`, `"cosine"` (from `learning_rate` down to
    /// `lr_min` over the epochs, per step) or `"plateau"` (times `lr_factor` after
    /// `lr_patience` epochs without a better validation loss).
    #[serde(default = "default_schedule")]
    pub lr_schedule: String,
    /// The floor of the cosine schedule.
    #[serde(default)]
    pub lr_min: f64,
    /// Epochs without improvement before the plateau schedule lowers the rate.
    #[serde(default = "default_lr_patience")]
    pub lr_patience: usize,
    /// The plateau schedule's factor.
    #[serde(default = "default_lr_factor")]
    pub lr_factor: f64,
    /// The decay of the exponential moving average of the weights (NequIP's `ema_decay`,
    /// with its warm-up `min(decay, (1 + n) / (10 + n))`); validation and checkpoints use
    /// the average. 0 turns it off.
    #[serde(default = "default_ema_decay")]
    pub ema_decay: f64,
    /// Stop after this many epochs without a better validation loss (absent: never).
    #[serde(default)]
    pub early_stopping_patience: Option<usize>,
}

fn default_validation() -> f64 {
    0.1
}
fn default_test() -> f64 {
    0.1
}
fn default_num_layers() -> usize {
    4
}
fn default_l_max() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_num_features() -> usize {
    32
}
fn default_num_basis() -> usize {
    8
}
fn default_p() -> u32 {
    6
}
fn default_invariant_layers() -> usize {
    2
}
fn default_invariant_neurons() -> usize {
    64
}
fn default_batch_size() -> usize {
    5
}
fn default_learning_rate() -> f64 {
    0.005
}
fn default_one() -> f64 {
    1.0
}
fn default_dtype() -> String {
    "f32".into()
}
fn default_schedule() -> String {
    "constant".into()
}
fn default_lr_patience() -> usize {
    10
}
fn default_lr_factor() -> f64 {
    0.5
}
fn default_ema_decay() -> f64 {
    0.99
}

impl TrainConfig {
    /// Reads and checks a configuration file; relative paths in it become relative to its
    /// folder.
    ///
    /// Errors: [`Error::Io`] for a file that cannot be read; [`Error::Config`] naming the
    /// file for TOML that does not parse, an unknown key, or an impossible value.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join("equivariant_doc_config_2");
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("config.toml");
    /// std::fs::write(&path, "[data]\npath = \"data.xyz\"\n[model]\nr_max = 4.0\n[training]\nepochs = 5\noutput = \"run\"\n")?;
    /// let config = equivariant_train::config::TrainConfig::read(&path)?;
    /// std::fs::write(&path, "[data]\npath = \"data.xyz\"\n[model]\nr_max = 4.0\n[training]\nepochs = 0\noutput = \"run\"\n")?;
    /// assert!(equivariant_train::config::TrainConfig::read(&path).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let file = path.display().to_string();
        let mut config: TrainConfig = toml::from_str(&text).map_err(|e| Error::Config {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data.path = base.join(&config.data.path);
        config.data.validation_path = config.data.validation_path.map(|p| base.join(p));
        config.training.output = base.join(&config.training.output);
        config.check(&file)?;
        Ok(config)
    }

    /// Errors unless every value is possible.
    fn check(&self, file: &str) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::Config {
                file: file.into(),
                reason,
            })
        };
        if self.data.validation_path.is_some()
            && (self.data.validation != 0.0 || self.data.test != 0.0)
        {
            return bad(format!(
                "data.validation_path gives the validation frames: data.validation ({}) and data.test ({}) must be 0",
                self.data.validation, self.data.test
            ));
        }
        let t = &self.training;
        if t.epochs == 0 || t.batch_size == 0 {
            return bad(format!(
                "training.epochs ({}) and training.batch_size ({}) must be at least 1",
                t.epochs, t.batch_size
            ));
        }
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return bad(format!(
                "training.learning_rate must be finite and positive, got {}",
                t.learning_rate
            ));
        }
        for (name, w) in [
            ("energy_weight", t.energy_weight),
            ("force_weight", t.force_weight),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return bad(format!("training.{name} must be finite and >= 0, got {w}"));
            }
        }
        if !["constant", "cosine", "plateau"].contains(&t.lr_schedule.as_str()) {
            return bad(format!(
                "training.lr_schedule must be \"constant\", \"cosine\" or \"plateau\", got {:?}",
                t.lr_schedule
            ));
        }
        if !(t.lr_factor > 0.0 && t.lr_factor < 1.0) {
            return bad(format!(
                "training.lr_factor must be in (0, 1), got {}",
                t.lr_factor
            ));
        }
        if !(t.lr_min.is_finite() && t.lr_min >= 0.0 && t.lr_min <= t.learning_rate) {
            return bad(format!(
                "training.lr_min must be in [0, learning_rate], got {}",
                t.lr_min
            ));
        }
        if !(t.ema_decay >= 0.0 && t.ema_decay < 1.0) {
            return bad(format!(
                "training.ema_decay must be in [0, 1), got {}",
                t.ema_decay
            ));
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return bad(format!(
                "training.weight_decay must be finite and >= 0, got {}",
                t.weight_decay
            ));
        }
        if t.early_stopping_patience == Some(0) {
            return bad(
                "training.early_stopping_patience must be at least 1 (absent: never stop early)"
                    .into(),
            );
        }
        if let Some(norm) = t.max_grad_norm
            && !(norm.is_finite() && norm > 0.0)
        {
            return bad(format!(
                "training.max_grad_norm must be finite and positive, got {norm}"
            ));
        }
        if t.dtype != "f32" && t.dtype != "f64" {
            return bad(format!(
                "training.dtype must be \"f32\" or \"f64\", got {:?}",
                t.dtype
            ));
        }
        Ok(())
    }
}

impl TrainConfig {
    /// The `[model]` section as the configuration type `C` of a model.
    ///
    /// Errors: [`Error::Config`] naming the section for keys `C` does not know or values of
    /// the wrong type.
    ///
    /// ```
    /// use equivariant_train::config::{ModelConfig, TrainConfig};
    /// let config: TrainConfig = toml::from_str(
    ///     "[data]\npath = \"a.xyz\"\n[model]\nr_max = 4.0\n[training]\nepochs = 1\noutput = \"run\"",
    /// )?;
    /// assert_eq!(config.model_section::<ModelConfig>()?.num_layers, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn model_section<C: serde::de::DeserializeOwned>(&self) -> Result<C> {
        self.model.clone().try_into().map_err(|e| Error::Config {
            file: "[model]".into(),
            reason: e.to_string(),
        })
    }
}

impl ModelConfig {
    /// The model's configuration for `num_types` species, at `avg_num_neighbors`.
    ///
    /// ```
    /// let model_config: equivariant_train::config::ModelConfig =
    ///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 8")?;
    /// let nequip = model_config.nequip(2, 12.5);
    /// assert_eq!((nequip.num_types, nequip.avg_num_neighbors, nequip.r_max), (2, 12.5, 3.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn nequip(&self, num_types: usize, avg_num_neighbors: f64) -> NequipConfig {
        NequipConfig {
            num_types,
            r_max: self.r_max,
            num_layers: self.num_layers,
            l_max: self.l_max,
            parity: self.parity,
            num_features: self.num_features,
            num_basis: self.num_basis,
            polynomial_cutoff_p: self.polynomial_cutoff_p,
            invariant_layers: self.invariant_layers,
            invariant_neurons: self.invariant_neurons,
            avg_num_neighbors,
            use_sc: self.use_sc,
            resnet: self.resnet,
            scalar_last_layer: self.scalar_last_layer,
        }
    }
}
