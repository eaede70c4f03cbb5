//! Scalar functions of e3nn's `e3nn.math`: radial bases, the soft unit step and the
//! second-moment constants of normalized activations.

pub mod normalize2mom;
pub mod soft_one_hot_linspace;
pub mod soft_unit_step;

pub use normalize2mom::*;
pub use soft_one_hot_linspace::*;
pub use soft_unit_step::*;
