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

use std::path::PathBuf;

pub use burn::store::{ModuleSnapshot, SafetensorsStore};

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
    SafetensorsStore::from_file(path)
        .with_key_remapping(r"(^|\.)layer(\d+)\.weight$", "${1}weights.$2")
}
