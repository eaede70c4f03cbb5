//! e3nn's reference models (`e3nn.nn.models`), with e3nn's structure and parameter names so
//! that an e3nn `state_dict` loads and gives e3nn's outputs:
//!
//! - `v2106`: [`Convolution::v2106`] (`points_convolution.Convolution`), [`MessagePassing`]
//!   (`gate_points_message_passing`), [`SimpleNetwork`] and
//!   [`NetworkForAGraphWithAttributes`] (`gate_points_networks`);
//! - [`gate_points_2101::Network`], with [`Convolution::gate_points_2101`];
//! - [`nequip::Nequip`], NequIP's interatomic potential, a [`Potential`](crate::potential::Potential).
//!
//! Every model runs its message steps on the fused convolution kernel and is
//! differentiable (parameters, node inputs, positions) on an autodiff device.

pub mod gate_points_2101;
mod graph_input;
mod message_passing;
pub mod nequip;
mod points_convolution;
mod v2106;

pub use message_passing::{Compose, MessagePassing};
pub use points_convolution::Convolution;
pub use v2106::{
    NetworkForAGraphWithAttributes, NetworkForAGraphWithAttributesConfig, SimpleNetwork,
    SimpleNetworkConfig,
};

/// The state-dict keys of e3nn's last layer, a bare convolution there, get the `first.` of
/// [`Compose`].
const LAST_LAYER: (&str, &str) = (
    r"(^|\.)layers\.(\d+)\.(sc|lin1|fc|tp|lin2|alpha)\.",
    "${1}layers.$2.first.$3.",
);
