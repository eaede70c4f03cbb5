//! e3nn's `e3nn.math`: radial bases, the soft unit step and the second-moment constants of
//! normalized activations (from torch's own normal samples); the radial basis fused with the
//! first layer of a radial MLP ([`RadialLayer`]); NequIP's edge embedding, its Bessel basis
//! under its polynomial cutoff, from the edge vectors ([`BesselEdgeEncoding`]); the linear
//! algebra and permutations that build constant bases ([`linalg`], [`perm`], [`reduce`]).

pub mod bessel_edge_encoding;
pub mod eigh;
pub mod erf;
pub(crate) mod exp;
pub mod linalg;
pub mod normalize2mom;
pub mod perm;
pub mod radial_layer;
pub mod reduce;
pub mod soft_one_hot_linspace;
pub mod soft_unit_step;
pub mod torch_randn;

pub use bessel_edge_encoding::*;
pub use eigh::*;
pub use erf::*;
pub use linalg::*;
pub use normalize2mom::*;
pub use radial_layer::*;
pub use reduce::*;
pub use soft_one_hot_linspace::*;
pub use soft_unit_step::*;
pub use torch_randn::*;
