//! Neural-network layers, e3nn's `e3nn.nn`: [`FullyConnectedNet`], and the guide's
//! [`Convolution`].

mod convolution;
mod fully_connected_net;

pub use convolution::{Convolution, ConvolutionConfig};
pub use fully_connected_net::FullyConnectedNet;
