//! Atomic structures for training and running interatomic potentials, without a
//! deep-learning dependency: a [`Frame`] (species, positions, cell, periodicity, and the
//! labels a potential is trained on: energy, forces, stress) and extended XYZ, the format
//! ASE writes and the field's datasets use ([`extxyz`]), split into training, validation
//! and test frames by a seed ([`split()`]).
//!
//! ```
//! use equivariant_data::extxyz;
//! let text = "1\nLattice=\"2 0 0 0 2 0 0 0 2\" Properties=species:S:1:pos:R:3 energy=-1.5 pbc=\"T T T\"\nCu 0 0 0\n";
//! let frames = extxyz::parse(text, "cu.xyz")?;
//! assert_eq!(frames[0].species, ["Cu"]);
//! assert_eq!(frames[0].energy, Some(-1.5));
//! # Ok::<(), equivariant_data::Error>(())
//! ```

pub mod error;
pub mod extxyz;
pub mod frame;
pub mod split;

pub use error::{Error, Result};
pub use frame::{Column, Frame};
pub use split::{Split, split};
