//! Scalar functions of e3nn's `e3nn.math`: radial bases, the soft unit step and the
//! second-moment constants of normalized activations (from torch's own normal samples); and the radial basis fused with the
//! first layer of a radial MLP ([`RadialLayer`]).

pub mod erf;
pub mod normalize2mom;
pub mod radial_layer;
pub mod soft_one_hot_linspace;
pub mod soft_unit_step;
pub mod torch_randn;

pub use erf::*;
pub use normalize2mom::*;
pub use radial_layer::*;
pub use soft_one_hot_linspace::*;
pub use soft_unit_step::*;
pub use torch_randn::*;
