//! The integration tests of `equivariant-md`, one binary (one link of burn) with a module per
//! topic: velocity Verlet, Langevin, the checkpoint calculator.

mod md_tests;
