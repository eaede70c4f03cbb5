//! Training interatomic potentials of `equivariant` from the command line's configuration:
//!
//! - [`config`]: the TOML file (`[data]`, `[model]`, `[training]`); [`model`]: what a
//!   model needs to be trained ([`model::Trainable`], implemented by NequIP);
//! - [`dataset`]: labelled structures from extended XYZ, batches of them as one graph;
//! - [`statistics`]: what NequIP fits from the training set (neighbours, shift, scale);
//! - [`trainer`]: the loop (loss through the forces, AdamW, schedules, validation metrics,
//!   early stopping, CSV, resuming); [`parallel`]: a step's batch in parts trained at once;
//!   [`gradients`]: the parameters' gradients by id, summed over the parts; [`optimizer`]:
//!   AdamW with gradient clipping and a state that resumes exactly; [`schedule`]: cosine
//!   and plateau learning rates; [`ema`]: the weights' moving average;
//! - [`evaluate`]: a potential's errors on labelled structures;
//! - [`checkpoint`]: self-describing safetensors checkpoints, written atomically.

pub mod checkpoint;
pub mod config;
pub mod dataset;
pub mod ema;
mod error;
pub mod evaluate;
mod files;
pub mod gradients;
pub mod model;
pub mod optimizer;
pub mod parallel;
pub mod schedule;
pub mod statistics;
pub mod trainer;
mod values;

pub use error::{Error, Result};
