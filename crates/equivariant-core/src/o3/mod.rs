//! The group O(3): irreps, rotations, Wigner D matrices, Wigner 3j symbols and spherical
//! harmonics, in e3nn 0.6.0's conventions (y is the polar axis; Euler angles are Y-X-Y).

pub mod irreps;
pub mod linear;
pub mod reduced_tensor_products;
pub mod rotation;
pub mod spherical_harmonics;
mod table_cache;
pub mod tensor_product;
pub mod wigner_3j;
pub mod wigner_d;

pub use irreps::{Irrep, Irreps, MulIr, Parity, Sorted};
pub use linear::LinearPlan;
pub use reduced_tensor_products::ReducedTensorProducts;
pub use rotation::*;
pub use spherical_harmonics::{Normalization, SphericalHarmonicsPlan, spherical_harmonics};
pub use wigner_3j::wigner_3j;
pub use wigner_d::{so3_generators, wigner_d};
