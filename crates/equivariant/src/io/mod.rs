//! e3nn's `e3nn.io`: everything of [`equivariant_core::io`] ([`CartesianTensor`]) plus its
//! conversions on burn tensors, batched and differentiable ([`from_cartesian`],
//! [`to_cartesian`]): a model predicting a tensor property (a polarizability, an elastic
//! tensor) trains on its Cartesian components through them.

mod cartesian_tensor_burn;

pub use cartesian_tensor_burn::{from_cartesian, to_cartesian};
pub use equivariant_core::io::*;
