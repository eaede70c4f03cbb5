//! The integration tests of `equivariant`, one binary with a module per topic: the burn ops
//! and modules against e3nn 0.6.0 fixtures (`tests/fixtures/`), their gradients, the composed
//! fallbacks against the Flex kernels, and e3nn's tetris example trained end to end.

mod composed;
mod forces;
mod functions;
mod io;
mod models;
mod modules;
mod nequip;
mod nn;
mod s2;
mod so3;
mod support;
mod tensor_product;
mod tetris;
