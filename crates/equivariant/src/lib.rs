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
//!
//! # Map of the crate
//!
//! From the bottom up, each layer using only those below it:
//!
//! - [`math`], [`graph`] and the plain-data half of [`o3`] (irreps, Wigner matrices, the
//!   tensor product plans): re-exported from [`equivariant_core`], framework-free, with the
//!   CPU kernels.
//! - [`ops`]: burn operations on tensors. The backend extensions (one folder each:
//!   `tensor_product`, `convolution`, `spherical_harmonics`, `soft_one_hot_linspace`,
//!   `radial_layer`, `edge_vectors`) run the core kernels on Flex with a custom backward on
//!   `Autodiff`, and fall back to [`ops::composed`] (burn tensor ops) on other backends;
//!   gather / scatter and the per-irrep operations are burn tensor ops.
//! - [`o3`] (the burn modules [`o3::TensorProduct`], [`o3::Linear`],
//!   [`o3::SphericalHarmonics`]) and [`nn`] (e3nn's `nn` modules and the guide's
//!   convolution): `#[derive(Module)]` types built by a config or constructor, holding
//!   `Param`s, running [`ops`].
//! - [`forces`]: the energy of a potential built from these modules with its forces and
//!   virial, from one backward pass, and the training gradients of a loss of all three.
//! - [`potential`]: the [`potential::Potential`] trait and batches of structures
//!   ([`potential::AtomicGraph`]); [`nn::models::nequip`] implements it.
//! - [`store`]: parameters in and out (safetensors, e3nn state dicts); [`util`]: the
//!   equivariance checks of [`util::test`].
//!
//! # Errors and panics
//!
//! Where `Result` ends and panics begin:
//!
//! - Constructors and configs (`::new`, `Config::init`, irreps parsing) and every module's
//!   `forward` return [`Result`], with a typed [`Error`] naming the values: a row width
//!   that does not match the irreps or a row count that does not match the other inputs
//!   ([`Error::ShapeMismatch`]), mixed dtypes ([`Error::InvalidArgument`]), a NaN or
//!   infinite value where a kernel would refuse one ([`Error::NonFinite`]). These are what
//!   a user can get wrong, and the modules check them before running an op.
//! - The ops layer, [`ops`], panics on misuse, as burn's own tensor ops do: a shape that
//!   does not match the plan, mixed dtypes, a dtype other than f32/f64, a non-finite input
//!   a kernel refuses, or a backend that does not implement an extension trait. Each op's
//!   documentation lists its cases under `# Panics`; call the modules for checked inputs.
//! - Inside, `assert!` and `expect` guard invariants of the crate's own making, not user
//!   input.

#![forbid(unsafe_code)]

pub mod forces;
pub mod io;
pub mod nn;
pub mod o3;
pub mod ops;
pub mod potential;
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
