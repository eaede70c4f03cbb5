//! The integration tests of `equivariant-core`, one binary with a module per topic: e3nn
//! 0.6.0 fixtures (`tests/fixtures/`, made by `tools/reference/`), equivariance, gradients
//! against finite differences, determinism and bad input.

mod convolution;
mod convolution_radial;
mod convolution_tangent;
mod graph;
mod irreps;
mod kernels;
mod linalg;
mod math;
mod rotation;
mod s2_grid;
mod so3_grid;
mod spherical_harmonics;
mod support;
mod tensor_product;
mod wigner;
