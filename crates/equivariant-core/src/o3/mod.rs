//! The group O(3): irreps, rotations, Wigner D matrices, Wigner 3j symbols and spherical
//! harmonics, Legendre functions and signals on the sphere, in e3nn 0.6.0's conventions (y is
//! the polar axis; Euler angles are Y-X-Y).

pub mod angular_spherical_harmonics;
pub mod irreps;
pub mod legendre;
pub mod linear;
mod low_degree_harmonics;
pub mod reduced_tensor_products;
pub mod rotation;
pub mod s2_grid;
pub mod so3_grid;
pub mod spherical_harmonics;
mod table_cache;
pub mod tensor_product;
pub mod wigner_3j;
pub mod wigner_d;

pub use angular_spherical_harmonics::{spherical_harmonics_alpha, spherical_harmonics_alpha_beta};
pub use irreps::{Irrep, Irreps, MulIr, Parity, Sorted};
pub use legendre::Legendre;
pub use linear::LinearPlan;
pub use reduced_tensor_products::ReducedTensorProducts;
pub use rotation::*;
pub use s2_grid::{
    FromS2GridPlan, ToS2GridPlan, complete_lmax_res, irfft, quadrature_weights, rfft, s2_grid,
    spherical_harmonics_s2_grid,
};
pub use so3_grid::SO3GridPlan;
pub use spherical_harmonics::{Normalization, SphericalHarmonicsPlan, spherical_harmonics};
pub use wigner_3j::wigner_3j;
pub use wigner_d::{WignerDFactors, flat_wigner, so3_generators, wigner_d, wigner_d_factors};
