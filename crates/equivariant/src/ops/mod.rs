//! burn backend extensions: the primitives the burn modules run, each a trait over
//! [`Backend`](burn::backend::Backend) implemented natively for Flex (the core CPU kernels)
//! and for `Autodiff` (a custom backward), plus a `Tensor`-level function.

pub mod tensor_product;

pub use tensor_product::{tensor_product, TensorProductBackend};
