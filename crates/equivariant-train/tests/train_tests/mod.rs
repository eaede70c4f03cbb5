//! The test modules.

mod optimizer;
mod parts;
mod train;
