//! e3nn's `e3nn.io`: physical quantities in irreps, here Cartesian tensors with index
//! symmetries ([`CartesianTensor`]).

pub mod cartesian_tensor;

pub use cartesian_tensor::CartesianTensor;
