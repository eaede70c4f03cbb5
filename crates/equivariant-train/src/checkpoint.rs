//! Checkpoints: the parameters as safetensors, with what rebuilds the model (species, model
//! section, the training set's statistics, dtype) in the file's metadata, so a checkpoint is
//! self-describing. Written to a temporary file and renamed: a crash mid-write leaves the
//! last good checkpoint.

use std::path::Path;

use burn::tensor::{DType, Device};
use equivariant::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::files::read_safetensors;
use crate::model::Trainable;
use crate::statistics::Statistics;
use crate::{Error, Result};

/// The metadata key holding the [`Header`] as TOML.
const KEY: &str = "equivariant";

/// What a checkpoint says about its model: enough to rebuild it (the model's configuration
/// section `C`, the species, the training set's statistics, the dtype).
///
/// ```
/// use burn::tensor::Device;
/// use equivariant::nn::models::nequip::Nequip;
/// use equivariant_train::checkpoint::{self, Header};
/// use equivariant_train::model::Trainable;
/// use equivariant_train::statistics::Statistics;
/// let section: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4")?;
/// let statistics = Statistics { avg_num_neighbors: 6.0, per_atom_energy_mean: -3.0, forces_rms: 0.5 };
/// let device = Device::flex();
/// let model = Nequip::build(&section, 2, &statistics, &device)?;
/// let header = Header { species: vec!["Au".into(), "Cu".into()], statistics, dtype: "f32".into(), model: section };
/// let path = std::env::temp_dir().join("equivariant_doc_checkpoint.safetensors");
/// checkpoint::save(&path, &model, &header)?;
/// let (loaded, read): (Nequip, _) = checkpoint::load(&path, &device)?;
/// assert_eq!(read, header);
/// std::fs::write(&path, b"not a checkpoint")?;
/// assert!(checkpoint::load::<Nequip>(&path, &device).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header<C> {
    /// The chemical symbol of each type index.
    pub species: Vec<String>,
    /// The training set's statistics the model was built with.
    pub statistics: Statistics,
    /// `"f32"` or `"f64"`.
    pub dtype: String,
    /// The model's configuration section.
    pub model: C,
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

/// Writes `model` and `header` to `path` (through `path.tmp`, then a rename): see
/// [`Header`] for an example.
///
/// Errors: [`Error::Checkpoint`] if the model cannot be serialized; [`Error::Io`] for a
/// file that cannot be written.
pub fn save<M: Trainable>(path: &Path, model: &M, header: &Header<M::Config>) -> Result<()> {
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

/// The model of the checkpoint at `path`, on `device`, and its header: see [`Header`] for an
/// example.
///
/// Errors: [`Error::Io`] for a file that cannot be read; [`Error::Checkpoint`] naming the
/// file for one that is not a safetensors file, has no header of this model type, or whose
/// parameters do not fit the model the header describes.
pub fn load<M: Trainable>(path: &Path, device: &Device) -> Result<(M, Header<M::Config>)> {
    let file = path.display().to_string();
    let fail = |reason: String| Error::Checkpoint {
        file: file.clone(),
        reason,
    };
    let (bytes, text) = read_safetensors(path, KEY, "a checkpoint of equivariant train")?;
    let header: Header<M::Config> =
        toml::from_str(&text).map_err(|e| fail(format!("bad header: {e}")))?;
    let dtype = dtype(&header.dtype).map_err(|e| fail(e.to_string()))?;
    let model = crate::model::build_seeded::<M>(
        &header.model,
        header.species.len(),
        &header.statistics,
        device,
        None,
    )?;
    let mut model = equivariant::util::cast(model, dtype);
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
