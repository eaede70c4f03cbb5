//! # equivariant
//!
//! E(3)-equivariant neural networks in Rust: what e3nn is to PyTorch users, for Rust.
//!
//! This crate is the user-facing front end. It re-exports the framework-free math of
//! [`equivariant_core`] under e3nn's module names (`o3`, `math`, `graph`) and adds the burn
//! modules built on it: [`o3::TensorProduct`] (with [`o3::FullyConnectedTensorProduct`] and
//! the other constructors), [`o3::Linear`], [`o3::SphericalHarmonics`],
//! [`nn::FullyConnectedNet`], [`nn::Gate`], [`nn::NormActivation`], [`nn::BatchNorm`],
//! [`nn::Extract`] and the guide's [`nn::Convolution`], running on the [`ops`] backend
//! extensions; [`store`] saves and loads parameters (and e3nn state dicts), and
//! [`util::test`] checks equivariance.
//!
//! ```
//! use equivariant::o3::{Irreps, Parity};
//! let irreps_sh = Irreps::spherical_harmonics(2, Parity::Odd);
//! assert_eq!(irreps_sh.to_string(), "1x0e+1x1o+1x2e");
//! ```

#![forbid(unsafe_code)]

pub mod nn;
pub mod o3;
pub mod ops;
mod shape;
pub mod store;
pub mod util;

/// The burn version this crate is built on, for matching tensor types.
pub use burn;
pub use equivariant_core::{Error, Real, Result, graph, math};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
