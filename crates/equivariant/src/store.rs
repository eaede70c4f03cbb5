//! Parameters in and out: burn's stores ([`SafetensorsStore`], [`ModuleSnapshot`]) and
//! e3nn state dicts exported from PyTorch.
//!
//! Every module here names its parameters as e3nn does (`weight`, `bias`, `biases`,
//! `running_mean`, `running_var`), so a model whose fields carry the names of the PyTorch
//! model's submodules reads e3nn's `state_dict` as it is, except for
//! `FullyConnectedNet`, whose `layer{i}.weight` is `weights.{i}` here
//! ([`e3nn_safetensors`] maps it).
//!
//! ```
//! use burn::tensor::Device;
//! use equivariant::o3::LinearConfig;
//! use equivariant::store::{ModuleSnapshot, SafetensorsStore};
//!
//! let device = Device::flex();
//! let config = LinearConfig::new(&"2x0e + 1x1o".parse()?, &"1x0e + 1x1o".parse()?).with_biases(true);
//! let linear = config.init(&device)?;
//! let mut saved = SafetensorsStore::from_bytes(None);
//! linear.save_into(&mut saved).unwrap();
//!
//! let mut loaded = config.init(&device)?;
//! let mut store = SafetensorsStore::from_bytes(Some(saved.get_bytes().unwrap()));
//! loaded.load_from(&mut store).unwrap();
//! let (a, b) = (linear.weight.unwrap().val(), loaded.weight.unwrap().val());
//! assert_eq!(a.into_data(), b.into_data());
//! # Ok::<(), equivariant::Error>(())
//! ```

use std::path::{Path, PathBuf};

use burn::module::Module;
pub use burn::store::{ModuleSnapshot, SafetensorsStore};
use equivariant_core::{Error, Result};

/// A store reading an e3nn model's `state_dict` saved by
/// `safetensors.torch.save_file(model.state_dict(), path)` (see
/// `tools/reference/export_state_dict.py`): keys are the PyTorch attribute paths, with
/// `FullyConnectedNet`'s `layer{i}.weight` renamed `weights.{i}`.
///
/// e3nn also stores buffers it derives from the irreps (`output_mask`, the empty `weight`
/// of weightless products, an empty `bias` of a `Linear` without biases); they have no
/// counterpart here: export the state dict without them, as the script does, or load
/// with [`SafetensorsStore::allow_partial`] left off and check the result.
///
/// ```
/// use equivariant::store::e3nn_safetensors;
/// let store = e3nn_safetensors("model.safetensors");
/// # let _ = store;
/// ```
pub fn e3nn_safetensors(path: impl Into<PathBuf>) -> SafetensorsStore {
    e3nn_key_remapping(SafetensorsStore::from_file(path))
}

/// `FullyConnectedNet`'s `layer{i}.weight` is `weights.{i}` here.
fn e3nn_key_remapping(store: SafetensorsStore) -> SafetensorsStore {
    store.with_key_remapping(r"(^|\.)layer(\d+)\.weight$", "${1}weights.$2")
}

/// Loads an e3nn `state_dict` saved with `safetensors.torch.save_file(model.state_dict(),
/// path)` into `module`, all or nothing: on any error `module` is left as it was.
///
/// Keys are mapped as [`e3nn_safetensors`] maps them, then by `remapping` (`(regex,
/// replacement)` pairs applied in order, for models whose structure differs from
/// PyTorch's). The buffers e3nn derives from the irreps (`*.output_mask`, the Wigner
/// blocks `*._w3j_*` of compiled products, and empty tensors such as the `weight` of a
/// product with external weights) are skipped.
///
/// # Errors
///
/// [`Error::StateDict`] naming the key: a parameter of `module` missing from the file, a
/// tensor in the file that `module` does not have, or one of another shape or dtype;
/// [`Error::InvalidArgument`] for a file that cannot be read or is not safetensors.
///
/// ```no_run
/// use burn::tensor::Device;
/// use equivariant::o3::LinearConfig;
/// use equivariant::store::load_e3nn_state_dict;
/// let mut linear = LinearConfig::new(&"2x0e".parse()?, &"1x0e".parse()?).init(&Device::flex())?;
/// load_e3nn_state_dict(&mut linear, "linear.safetensors", &[])?;
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn load_e3nn_state_dict<M: Module + Clone>(
    module: &mut M,
    path: impl AsRef<Path>,
    remapping: &[(&str, &str)],
) -> Result<()> {
    let path = path.as_ref();
    let unreadable = |reason: String| Error::InvalidArgument {
        name: "path",
        reason: format!("{}: {reason}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(|err| unreadable(err.to_string()))?;
    let bytes = without_derived_buffers(&bytes)
        .map_err(|err| unreadable(format!("not a safetensors file ({err})")))?;
    let mut store = e3nn_key_remapping(SafetensorsStore::from_bytes(Some(bytes)));
    for (from, to) in remapping {
        store = store.with_key_remapping(from, *to);
    }
    let mut store = store.allow_partial(true).validate(false);
    let mut loaded = module.clone();
    let result = loaded
        .load_from(&mut store)
        .map_err(|err| Error::StateDict {
            key: String::new(),
            reason: err.to_string(),
        })?;
    if let Some(error) = result.errors.first() {
        let text = error.to_string();
        let key = match error {
            burn::store::ApplyError::ShapeMismatch { path, .. }
            | burn::store::ApplyError::DTypeMismatch { path, .. }
            | burn::store::ApplyError::AdapterError { path, .. }
            | burn::store::ApplyError::LoadError { path, .. } => path.clone(),
        };
        return Err(Error::StateDict { key, reason: text });
    }
    if let Some((key, _)) = result.missing.first() {
        return Err(Error::StateDict {
            key: key.clone(),
            reason: "missing from the file".into(),
        });
    }
    if let Some(key) = result.unused.first() {
        return Err(Error::StateDict {
            key: key.clone(),
            reason: "not a parameter of the module".into(),
        });
    }
    *module = loaded;
    Ok(())
}

/// The safetensors file `bytes` without the buffers e3nn derives from the irreps (output
/// masks, Wigner blocks, empty tensors), which have no counterpart here.
fn without_derived_buffers(
    bytes: &[u8],
) -> std::result::Result<Vec<u8>, safetensors::SafeTensorError> {
    let tensors = safetensors::SafeTensors::deserialize(bytes)?;
    let kept: Vec<_> = tensors
        .tensors()
        .into_iter()
        .filter(|(key, view)| {
            !(key.ends_with("output_mask")
                || key.contains("._w3j_")
                || view.shape().iter().product::<usize>() == 0)
        })
        .collect();
    safetensors::serialize(kept, None)
}
