//! burn backend extensions: the primitives the burn modules run, each a trait over
//! [`Backend`](burn::backend::Backend) implemented natively for Flex (the core CPU kernels)
//! and for `Autodiff` (a custom backward), plus a `Tensor`-level function that falls back
//! to [`composed`] (burn tensor ops, any backend) on other devices; gather / scatter and the
//! per-irrep operations of [`irreps`] are composed of burn tensor ops.

pub mod composed;
pub mod convolution;
pub mod edge_vectors;
mod flex;
pub mod irreps;
pub mod radial_layer;
pub mod scatter;
pub mod soft_one_hot_linspace;
pub mod spherical_harmonics;
pub mod tensor_product;

pub use convolution::{ConvolutionBackend, fused_convolution};
pub use edge_vectors::{EdgeVectorsBackend, edge_vectors};
pub use radial_layer::{RadialLayerBackend, radial_layer};
pub use scatter::{gather, index_tensor, scatter_mean, scatter_sum};
pub use soft_one_hot_linspace::{SoftOneHotLinspaceBackend, soft_one_hot_linspace};
pub use spherical_harmonics::{SphericalHarmonicsBackend, spherical_harmonics};
pub use tensor_product::{TensorProductBackend, tensor_product};
