//! Framework-free math and kernels of `equivariant`, numerically matching e3nn 0.6.0.
//!
//! - [`o3`]: irreducible representations of O(3) ([`o3::Irreps`]), rotations in every
//!   parametrization e3nn has, Wigner D matrices, Wigner 3j symbols and spherical harmonics.
//! - [`math`]: radial bases (`soft_one_hot_linspace`), `soft_unit_step`, and the
//!   second-moment constants of normalized activations.
//!
//! Tables are built in f64; data kernels run in f32 or f64 (the [`Real`] trait).
//!
//! ```
//! use equivariant_core::o3::Irreps;
//! let irreps: Irreps = "10x0e + 10x1e".parse()?;
//! assert_eq!(irreps.dim(), 40);
//! assert_eq!(irreps.to_string(), "10x0e+10x1e");
//! # Ok::<(), equivariant_core::Error>(())
//! ```

pub mod error;
pub mod graph;
pub mod math;
pub mod o3;
pub mod real;

pub use error::{Error, Result};
pub use real::Real;
