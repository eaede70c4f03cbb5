//! The group O(3) and the layers built on it: everything of [`equivariant_core::o3`]
//! (irreps, rotations, Wigner D and 3j, spherical harmonics, the tensor product plans and
//! kernels under [`tensor_product`]) plus the burn modules.
//!
//! The burn modules take the names e3nn users know: [`TensorProduct`] (with
//! [`FullyConnectedTensorProduct`], [`TensorProduct::full`], [`TensorProduct::elementwise`],
//! [`TensorProduct::square`]), [`Linear`], [`SphericalHarmonics`] and [`Norm`] hold their weights and
//! run a core plan ([`TensorProductPlan`](tensor_product::TensorProductPlan),
//! [`LinearPlan`], [`SphericalHarmonicsPlan`]).
//!
//! ```
//! use burn::tensor::Device;
//! use equivariant::o3::{FullyConnectedTensorProduct, Irreps};
//! let irreps: Irreps = "2x0e + 1x1o".parse()?;
//! let tp = FullyConnectedTensorProduct::new(&irreps, &"1o".parse()?, &irreps)
//!     .init(&Device::flex())?;
//! // Paths 0e x 1o -> 1o and 1o x 1o -> 0e: 2 x 1 -> 1 and 1 x 1 -> 2 weights.
//! assert_eq!(tp.weight_numel(), 2 + 2);
//! # Ok::<(), equivariant::Error>(())
//! ```

mod linear_burn;
mod norm_burn;
mod reduced_tensor_products_burn;
mod s2_grid_burn;
mod so3_grid_burn;
mod spherical_harmonics_burn;
mod tensor_product_burn;

pub use equivariant_core::o3::*;
pub use linear_burn::{Linear, LinearConfig};
pub use norm_burn::Norm;
pub use reduced_tensor_products_burn::reduced_tensor_products_forward;
pub use s2_grid_burn::{FromS2Grid, ToS2Grid};
pub use so3_grid_burn::SO3Grid;
pub use spherical_harmonics_burn::SphericalHarmonics;
pub use tensor_product_burn::{FullyConnectedTensorProduct, TensorProduct, WeightView};
