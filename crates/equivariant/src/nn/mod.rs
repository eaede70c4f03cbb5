//! Neural-network layers, e3nn's `e3nn.nn`: [`FullyConnectedNet`], [`Activation`],
//! [`Gate`], [`NormActivation`], [`BatchNorm`], [`Dropout`], [`Extract`], [`ExtractIr`],
//! [`Identity`], and the guide's [`Convolution`].

pub(crate) mod activation;
pub mod batch_norm;
mod convolution;
mod dropout;
mod extract;
mod fully_connected_net;
mod gate;
mod identity;
pub mod models;
mod norm_activation;
mod s2_activation;
mod so3_activation;

pub use crate::ops::activation::ScalarFunction;
pub use activation::Activation;
pub use batch_norm::{BatchNorm, BatchNormConfig, Reduce};
pub use convolution::{Convolution, ConvolutionConfig};
pub use dropout::Dropout;
pub use extract::{Extract, ExtractIr};
pub use fully_connected_net::FullyConnectedNet;
pub use gate::Gate;
pub use identity::Identity;
pub use norm_activation::NormActivation;
pub use s2_activation::S2Activation;
pub use so3_activation::SO3Activation;
