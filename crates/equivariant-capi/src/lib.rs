//! The C ABI of `equivariant` (`include/equivariant.h`): a checkpoint of `equivariant train`
//! loaded once, then energies, per-atom energies, forces and virials computed for an MD
//! engine, either from its own neighbour lists over local and ghost atoms (domain
//! decomposition: [`equivariant_model_compute`]) or for a whole structure with a cell
//! ([`equivariant_model_compute_structure`]).
//!
//! Every function returns [`EQUIVARIANT_OK`] or an error code and never unwinds into the
//! host: bad input (a null pointer, a negative count, an unknown species, a NaN position, a
//! checkpoint that does not load) is a code with a message from
//! [`equivariant_last_error`], and a panic is caught as [`EQUIVARIANT_ERROR_INTERNAL`].
//!
//! ```
//! use std::ffi::CString;
//! use equivariant_capi::*;
//! # let path = equivariant_capi::doc_checkpoint()?;
//! let path = CString::new(path.to_str().unwrap())?;
//! let mut model = std::ptr::null_mut();
//! // SAFETY: a NUL-terminated path and a place for the model.
//! assert_eq!(unsafe { equivariant_model_load(path.as_ptr(), 64, &mut model) }, EQUIVARIANT_OK);
//! // A Cu dimer (type index 1), each atom the other's neighbour.
//! let (species, positions) = ([1, 1], [0.0, 0.0, 0.0, 2.5, 0.0, 0.0]);
//! let (counts, neighbors) = ([1, 1], [1, 0]);
//! let (mut energy, mut forces) = (0.0, [0.0; 6]);
//! let null = std::ptr::null_mut();
//! // SAFETY: every array has the length the header asks for.
//! let code = unsafe {
//!     equivariant_model_compute(model, 2, species.as_ptr(), positions.as_ptr(), std::ptr::null(),
//!         counts.as_ptr(), neighbors.as_ptr(), &mut energy, null, forces.as_mut_ptr(), null, null)
//! };
//! assert_eq!(code, EQUIVARIANT_OK);
//! assert_eq!(forces[0], -forces[3]);
//! // SAFETY: the model came from equivariant_model_load and is freed once.
//! unsafe { equivariant_model_free(model) };
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compute;
mod error;
mod model;

/// The library's own allocator: a step's large tensors (tens of MB at 10 000 atoms) are
/// above glibc's largest mmap threshold, so under the host's malloc every step mapped and
/// unmapped them (LAMMPS, 10 000 atoms: a million page faults in five steps, a fifth of the
/// time); mimalloc keeps them. The host's own allocations are untouched (the `equivariant`
/// binary, which owns its process, tunes glibc instead: `mallopt` in `main`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use compute::{equivariant_model_compute, equivariant_model_compute_structure};
pub use error::{
    EQUIVARIANT_ERROR_INTERNAL, EQUIVARIANT_ERROR_INVALID_ARGUMENT, EQUIVARIANT_ERROR_LOAD,
    EQUIVARIANT_ERROR_NULL_POINTER, EQUIVARIANT_OK, equivariant_last_error,
};
pub use model::{
    EquivariantModel, equivariant_model_cutoff, equivariant_model_free, equivariant_model_load,
    equivariant_model_num_layers, equivariant_model_num_species, equivariant_model_species_index,
    equivariant_model_species_symbol,
};

/// An untrained checkpoint (species Au and Cu, cutoff 3 Å, 2 layers) written to the temporary
/// directory, for the doc examples.
#[doc(hidden)]
pub fn doc_checkpoint() -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    use equivariant::burn::tensor::Device;
    use equivariant::nn::models::nequip::Nequip;
    use equivariant_train::checkpoint::{self, Header};
    use equivariant_train::model::Trainable;
    use equivariant_train::statistics::Statistics;
    let section: equivariant_train::config::ModelConfig =
        toml::from_str("r_max = 3.0\nnum_layers = 2\nnum_features = 4")?;
    let statistics = Statistics {
        avg_num_neighbors: 6.0,
        per_atom_energy_mean: -3.0,
        forces_rms: 0.5,
    };
    let model = Nequip::build(&section, 2, &statistics, &Device::flex())?;
    let header = Header {
        species: vec!["Au".into(), "Cu".into()],
        statistics,
        dtype: "f32".into(),
        model: section,
    };
    // Written under this process's name, then renamed onto one shared name: doc examples
    // running at once each read a whole file, and runs leave one file behind, not one each.
    let dir = std::env::temp_dir();
    let written = dir.join(format!(
        "equivariant_capi_doc_{}.safetensors",
        std::process::id()
    ));
    checkpoint::save(&written, &model, &header)?;
    let path = dir.join("equivariant_capi_doc.safetensors");
    std::fs::rename(&written, &path)?;
    Ok(path)
}
