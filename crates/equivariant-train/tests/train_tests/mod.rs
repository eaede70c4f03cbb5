//! The test modules.

mod optimizer;
mod parts;
mod train;

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device};
use equivariant::nn::models::nequip::Nequip;

/// The shipped Cu-Au slice.
fn slice() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/cuau_emt_slice.extxyz")
}

/// A two-species NequIP of the `[model]` section `section` in f64, with fixed statistics
/// (10 neighbours, shift -3 eV, scale 0.5 eV/Å).
fn f64_model(section: &str, device: &Device) -> Nequip {
    let config: equivariant_train::config::ModelConfig = toml::from_str(section).unwrap();
    let statistics = equivariant_train::statistics::Statistics {
        avg_num_neighbors: 10.0,
        per_atom_energy_mean: -3.0,
        forces_rms: 0.5,
    };
    let model: Nequip =
        equivariant_train::model::Trainable::build(&config, 2, &statistics, device).unwrap();
    equivariant::util::cast(model, DType::F64)
}
