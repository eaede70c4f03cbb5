//! The test modules.

mod optimizer;
mod train;
