//! e3nn's `e3nn.io`: physical quantities in irreps, here Cartesian tensors with index
//! symmetries ([`CartesianTensor`]) and signals on the sphere ([`SphericalTensor`]).

pub mod cartesian_tensor;
pub mod spherical_tensor;

pub use cartesian_tensor::CartesianTensor;
pub use spherical_tensor::{SphereSurface, SphericalTensor};
