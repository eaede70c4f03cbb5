//! burn backend extensions: the primitives the burn modules run, each a trait over
//! [`Backend`](burn::backend::Backend) implemented natively for Flex (the core CPU kernels)
//! and for `Autodiff` (a custom backward), plus a `Tensor`-level function that falls back
//! to [`composed`] (burn tensor ops, any backend) on other devices; gather / scatter, the
//! per-irrep operations of [`irreps`], [`soft_unit_step`] and the batched [`wigner_d`] are
//! composed of burn tensor ops.
//!
//! Every op with a native kernel has one shape, a folder `ops/<op>/`: `mod.rs` (the backend
//! trait, the `Tensor`-level function, the formula and the shapes), `flex.rs` (the Flex
//! implementation), `autodiff.rs` (the `Autodiff` implementation and its backward step) and
//! `composed.rs` (the fallback). What they share is written once: the dtype dispatch and
//! the typed views of Flex data in `ops/flex.rs`, the `Autodiff` preparation and gradient
//! registration in `ops/autodiff.rs`.
//!
//! # Panics
//!
//! The ops panic on misuse, as burn's tensor ops do; each lists its cases under `# Panics`,
//! and the crate's [error policy](crate#errors-and-panics) says where `Result` takes over.

pub(crate) mod activation;
mod autodiff;
pub mod bessel_edge_encoding;
pub mod composed;
pub mod convolution;
pub mod dense;
pub mod edge_vectors;
mod flex;
pub mod grid_transform;
pub mod irreps;
pub mod normalized_activation;
pub mod radial_layer;
pub mod scatter;
pub mod soft_one_hot_linspace;
mod soft_unit_step;
pub mod spherical_harmonics;
pub mod tensor_product;
mod wigner_d;

pub use bessel_edge_encoding::{
    BesselEdgeEncodingBackend, bessel_edge_encoding, bessel_edge_encoding_tangent,
};
pub use convolution::{ConvolutionBackend, Dual, fused_convolution, fused_convolution_tangent};
pub use dense::{DenseBackend, dense};
pub use edge_vectors::{EdgeVectorsBackend, edge_vectors};
pub use grid_transform::{GridTransform, GridTransformBackend, grid_transform};
pub use normalized_activation::{
    NormalizedActivationBackend, normalized_activation, normalized_activation_tangent,
};
pub use radial_layer::{RadialLayerBackend, radial_layer};
pub use scatter::{gather, index_tensor, scatter_mean, scatter_sum};
pub use soft_one_hot_linspace::{
    SoftOneHotLinspaceBackend, soft_one_hot_linspace, soft_one_hot_linspace_derivative,
};
pub use soft_unit_step::soft_unit_step;
pub use spherical_harmonics::{
    SphericalHarmonicsBackend, spherical_harmonics, spherical_harmonics_tangent,
};
pub use tensor_product::{TensorProductBackend, tensor_product};
pub use wigner_d::wigner_d;
