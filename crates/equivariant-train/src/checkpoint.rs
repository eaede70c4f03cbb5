//! Checkpoints: the parameters as safetensors, with what rebuilds the model (species, model
//! section, `avg_num_neighbors`, dtype) in the file's metadata, so a checkpoint is
//! self-describing. Written to a temporary file and renamed: a crash mid-write leaves the
//! last good checkpoint.

use std::path::Path;

use burn::tensor::{DType, Device};
use equivariant::nn::models::nequip::Nequip;
use equivariant::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::files::read_safetensors;
use crate::{Error, Result};

/// The metadata key holding the [`Header`] as TOML.
const KEY: &str = "equivariant";

/// What a checkpoint says about its model.
///
/// ```
/// use burn::tensor::Device;
/// use equivariant_train::checkpoint::{self, Header};
/// let model_config: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 8")?;
/// let device = Device::flex();
/// let model = model_config.nequip(2, 6.0).init(&device)?;
/// let header = Header { species: vec!["Au".into(), "Cu".into()], avg_num_neighbors: 6.0, dtype: "f32".into(), model: model_config };
/// let path = std::env::temp_dir().join("equivariant_doc_checkpoint.safetensors");
/// checkpoint::save(&path, &model, &header)?;
/// assert_eq!(checkpoint::load(&path, &device)?.1, header);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The chemical symbol of each type index.
    pub species: Vec<String>,
    /// The convolutions' normalization fitted from the training set.
    pub avg_num_neighbors: f64,
    /// `"f32"` or `"f64"`.
    pub dtype: String,
    /// The model's hyperparameters.
    pub model: ModelConfig,
}

/// The dtype a configuration or header names, `"f32"` or `"f64"`.
///
/// Errors: [`Error::Config`] for any other name.
///
/// ```
/// use burn::tensor::DType;
/// assert_eq!(equivariant_train::checkpoint::dtype("f64")?, DType::F64);
/// assert!(equivariant_train::checkpoint::dtype("f16").is_err());
/// # Ok::<(), equivariant_train::Error>(())
/// ```
pub fn dtype(name: &str) -> Result<DType> {
    match name {
        "f32" => Ok(DType::F32),
        "f64" => Ok(DType::F64),
        other => Err(Error::Config {
            file: "dtype".into(),
            reason: format!("{other:?} is not \"f32\" or \"f64\""),
        }),
    }
}

/// Writes `model` and `header` to `path` (through `path.tmp`, then a rename).
///
/// Errors: [`Error::Checkpoint`] if the model cannot be serialized; [`Error::Io`] for a
/// file that cannot be written.
///
/// ```
/// use burn::tensor::Device;
/// use equivariant_train::checkpoint::{self, Header};
/// let model_config: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 8")?;
/// let device = Device::flex();
/// let model = model_config.nequip(2, 6.0).init(&device)?;
/// let header = Header { species: vec!["Au".into(), "Cu".into()], avg_num_neighbors: 6.0, dtype: "f32".into(), model: model_config };
/// let path = std::env::temp_dir().join("equivariant_doc_checkpoint.safetensors");
/// checkpoint::save(&path, &model, &header)?;
/// assert!(path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save(path: &Path, model: &Nequip, header: &Header) -> Result<()> {
    let file = path.display().to_string();
    let fail = |reason: String| Error::Checkpoint {
        file: file.clone(),
        reason,
    };
    let text = toml::to_string(header).map_err(|e| fail(e.to_string()))?;
    let mut store = SafetensorsStore::from_bytes(None).metadata(KEY, text);
    model
        .save_into(&mut store)
        .map_err(|e| fail(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| fail(e.to_string()))?;
    crate::files::write_atomically(path, &bytes)
}

/// The model of the checkpoint at `path`, on `device`, and its header.
///
/// Errors: [`Error::Io`] for a file that cannot be read; [`Error::Checkpoint`] naming the
/// file for one that is not a safetensors file, has no equivariant header, or whose
/// parameters do not fit the model the header describes.
///
/// ```
/// use equivariant::potential::Potential;
/// use burn::tensor::Device;
/// use equivariant_train::checkpoint::{self, Header};
/// let model_config: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 8")?;
/// let device = Device::flex();
/// let model = model_config.nequip(2, 6.0).init(&device)?;
/// let header = Header { species: vec!["Au".into(), "Cu".into()], avg_num_neighbors: 6.0, dtype: "f32".into(), model: model_config };
/// let path = std::env::temp_dir().join("equivariant_doc_load.safetensors");
/// checkpoint::save(&path, &model, &header)?;
/// let (loaded, _) = checkpoint::load(&path, &device)?;
/// assert_eq!(loaded.r_max(), 3.0);
/// std::fs::write(&path, b"not a checkpoint")?;
/// assert!(checkpoint::load(&path, &device).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load(path: &Path, device: &Device) -> Result<(Nequip, Header)> {
    let file = path.display().to_string();
    let fail = |reason: String| Error::Checkpoint {
        file: file.clone(),
        reason,
    };
    let (bytes, text) = read_safetensors(path, KEY, "a checkpoint of equivariant train")?;
    let header: Header = toml::from_str(&text).map_err(|e| fail(format!("bad header: {e}")))?;
    let config = header
        .model
        .nequip(header.species.len(), header.avg_num_neighbors);
    let dtype = dtype(&header.dtype).map_err(|e| fail(e.to_string()))?;
    let mut model = equivariant::util::cast(config.init(device)?, dtype);
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = model
        .load_from(&mut store)
        .map_err(|e| fail(e.to_string()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(fail(format!(
            "parameters do not fit the model: missing {:?}, errors {:?}",
            result.missing, result.errors
        )));
    }
    Ok((model, header))
}
