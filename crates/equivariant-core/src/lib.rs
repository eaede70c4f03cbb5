//! Framework-free math and kernels of `equivariant`, numerically matching e3nn 0.6.0.
//!
//! The modules, bottom up (each imports only from those before it in this list):
//!
//! - [`real`] ([`Real`]: the float types, f32 and f64, and crate-internal dual numbers that
//!   give the generic harmonics and bases their second derivatives) and [`error`]
//!   ([`Error`]).
//! - [`graph`]: edge lists ([`graph::EdgeIndex`]), radius graphs, periodic cells, edge
//!   vectors and scatter sums.
//! - [`o3`]: irreducible representations of O(3) ([`o3::Irreps`]), rotations in every
//!   parametrization e3nn has, Wigner D matrices, Wigner 3j symbols, and the plans, plain
//!   data built once in f64: [`o3::SphericalHarmonicsPlan`] (which also evaluates the
//!   harmonics), [`o3::LinearPlan`], and, under [`o3::tensor_product`], the tensor product's
//!   [`TensorProductPlan`](o3::tensor_product::TensorProductPlan) (instructions,
//!   Clebsch-Gordan lists, weight layout) with e3nn's named constructors.
//! - [`math`]: radial bases (`soft_one_hot_linspace`), `soft_unit_step`, the second-moment
//!   constants of normalized activations ([`math::ActivationFunction`]), and the radial
//!   basis fused with a radial MLP's first layer.
//! - [`kernels`]: the CPU kernels that run the tensor product plans (forward, backward, the
//!   fused convolution), by what they compute, over the SIMD detection they share; their
//!   entry points are the methods `forward`, `backward`, `conv_forward` and `conv_backward`
//!   of [`TensorProductPlan`](o3::tensor_product::TensorProductPlan), and `forward` and
//!   `backward` of [`LinearPlan`](o3::LinearPlan). The plans in `o3` hold no compute.
//!
//! Tables are built in f64; data kernels run in f32 or f64 (the [`Real`] trait).
//!
//! ```
//! use equivariant_core::o3::Irreps;
//! let irreps: Irreps = "10x0e + 10x1e".parse()?;
//! assert_eq!(irreps.dim(), 40);
//! assert_eq!(irreps.to_string(), "10x0e+10x1e");
//! # Ok::<(), equivariant_core::Error>(())
//! ```

pub mod error;
pub mod graph;
pub mod io;
pub mod kernels;
pub mod math;
pub mod o3;
pub mod real;

pub use error::{Error, Result};
pub use real::Real;
