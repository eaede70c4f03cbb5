//! Clebsch-Gordan tensor products, e3nn's `o3.TensorProduct` family: the plan
//! ([`TensorProductPlan`]), its instructions, the named constructors and the CPU kernels.

mod compiled;
mod configs;
mod constructors;
mod convolution;
mod gemm;
mod instruction;
mod kernel;
mod lanes;
mod linear_convolution;
#[allow(clippy::module_inception)]
mod tensor_product;
mod visualize;

pub(crate) use compiled::{F32, F64, Kernels};
pub use configs::{BENCHMARK_CONFIGS, benchmark_config, uvu_tensor_product};
pub use constructors::{
    elementwise_tensor_product, full_tensor_product, fully_connected_tensor_product, tensor_square,
};
pub use convolution::{ConvGradients, EdgeWeights};
pub use instruction::{ConnectionMode, Instruction, IrrepNormalization, PathNormalization};
pub use kernel::TensorProductGradients;
pub use tensor_product::{TensorProductOptions, TensorProductPlan};
