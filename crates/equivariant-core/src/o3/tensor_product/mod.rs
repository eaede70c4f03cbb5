//! Clebsch-Gordan tensor products, e3nn's `o3.TensorProduct` family: the plan
//! ([`TensorProductPlan`]: irreps, built instructions, coefficients, the flat weight layout
//! and the sparse Clebsch-Gordan lists), its instructions, the named constructors and the
//! benchmark configurations, and an SVG drawing of the paths.
//!
//! The plan is data; the CPU kernels that run it ([`TensorProductPlan::forward`],
//! [`TensorProductPlan::backward`], [`TensorProductPlan::conv_forward`],
//! [`TensorProductPlan::conv_backward`]) are in [`crate::kernels`].

mod arguments;
mod configs;
mod constructors;
mod instruction;
mod plan;
mod visualize;

pub use arguments::{
    ConvGradients, ConvTangentGradients, ConvTangentInputs, EdgeWeights, MlpLayer,
    RADIAL_KEPT_VALUES, RadialConvGradients, RadialSaved, RadialWeights, TensorProductGradients,
};
pub use configs::{
    BENCHMARK_CONFIGS, benchmark_config, sorted_uvu_tensor_product, uvu_tensor_product,
};
pub use constructors::{
    elementwise_tensor_product, full_tensor_product, fully_connected_tensor_product, tensor_square,
    tp_path_exists,
};
pub use instruction::{ConnectionMode, Instruction, IrrepNormalization, PathNormalization};
pub(crate) use plan::{Contraction, Dims, PathKernel, PathPlan, Targets};
pub use plan::{TensorProductOptions, TensorProductPlan};
