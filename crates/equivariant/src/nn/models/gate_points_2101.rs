//! e3nn's `gate_points_2101.Network` (January 2021): gated point convolutions over a radius
//! graph, edge attributes cut off smoothly at `max_radius`.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use equivariant_core::math::Basis;
use equivariant_core::o3::Irreps;
use equivariant_core::{Error, Result};

use super::Convolution;
use super::graph_input::{EdgeFeatures, GraphInput};
use super::message_passing::{Compose, GateRule, gated_layers};
use crate::store::load_e3nn_state_dict;

/// The settings of a [`Network`], e3nn's constructor arguments.
///
/// ```
/// use equivariant::nn::models::gate_points_2101::NetworkConfig;
/// let config = NetworkConfig::new(None, &"8x0e + 8x0o + 4x1e + 4x1o".parse()?, &"1x0e".parse()?,
///     None, &"0e + 1o + 2e".parse()?, 2, 2.0);
/// assert_eq!((config.number_of_basis, config.radial_layers, config.radial_neurons), (10, 1, 100));
/// assert!(config.reduce_output);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// Irreps of the node inputs `x`; `None`: the nodes have no inputs (a `1` each, `0e`).
    pub irreps_in: Option<Irreps>,
    /// Irreps of the hidden features (cut to what each layer can reach).
    pub irreps_hidden: Irreps,
    /// Irreps of the outputs.
    pub irreps_out: Irreps,
    /// Irreps of the node attributes `z`; `None`: a `1` each (`0e`).
    pub irreps_node_attr: Option<Irreps>,
    /// Irreps of the edge harmonics (`0e + 1o + 2e`, ...), times the smooth cutoff.
    pub irreps_edge_attr: Irreps,
    /// Number of gated layers.
    pub layers: usize,
    /// The graph's cutoff, the end of the gaussian basis and of the smooth cutoff.
    pub max_radius: f64,
    /// Number of gaussian bases of the edge lengths (10).
    pub number_of_basis: usize,
    /// Hidden layers of the radial MLPs (1).
    pub radial_layers: usize,
    /// Their width (100).
    pub radial_neurons: usize,
    /// The convolutions' `1/sqrt(num_neighbors)` (1).
    pub num_neighbors: f64,
    /// The pooling's `1/sqrt(num_nodes)` (1).
    pub num_nodes: f64,
    /// Sum the nodes of each graph (`true`) or return per-node outputs.
    pub reduce_output: bool,
}

impl NetworkConfig {
    /// The required arguments of e3nn's `Network`; the others take these values:
    /// `number_of_basis = 10`, `radial_layers = 1`, `radial_neurons = 100`,
    /// `num_neighbors = num_nodes = 1`, `reduce_output = true` (e3nn has no defaults for
    /// them but these; set the fields).
    ///
    /// ```
    /// use equivariant::nn::models::gate_points_2101::NetworkConfig;
    /// let c = NetworkConfig::new(Some(&"0e".parse()?), &"0e".parse()?, &"0e".parse()?, None, &"0e".parse()?, 1, 1.0);
    /// assert_eq!(c.layers, 1);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(
        irreps_in: Option<&Irreps>,
        irreps_hidden: &Irreps,
        irreps_out: &Irreps,
        irreps_node_attr: Option<&Irreps>,
        irreps_edge_attr: &Irreps,
        layers: usize,
        max_radius: f64,
    ) -> Self {
        NetworkConfig {
            irreps_in: irreps_in.cloned(),
            irreps_hidden: irreps_hidden.clone(),
            irreps_out: irreps_out.clone(),
            irreps_node_attr: irreps_node_attr.cloned(),
            irreps_edge_attr: irreps_edge_attr.clone(),
            layers,
            max_radius,
            number_of_basis: 10,
            radial_layers: 1,
            radial_neurons: 100,
            num_neighbors: 1.0,
            num_nodes: 1.0,
            reduce_output: true,
        }
    }

    /// The network, parameters drawn as e3nn draws them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-positive `max_radius`, `num_neighbors` or
    /// `num_nodes`, edge irreps that are not spherical harmonics, and those of
    /// [`Convolution::gate_points_2101`].
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::gate_points_2101::NetworkConfig;
    /// let config = NetworkConfig { radial_neurons: 8, ..NetworkConfig::new(None,
    ///     &"4x0e + 4x0o + 2x1e + 2x1o".parse()?, &"1x0e".parse()?, None, &"0e + 1o".parse()?, 1, 2.0) };
    /// let net = config.init(&Device::flex())?;
    /// assert_eq!(net.layers.len(), 2);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn init(&self, device: &Device) -> Result<Network> {
        if !(self.num_nodes.is_finite() && self.num_nodes > 0.0) {
            return Err(Error::InvalidArgument {
                name: "num_nodes",
                reason: format!("must be positive and finite, got {}", self.num_nodes),
            });
        }
        let scalar: Irreps = "0e".parse()?;
        let irreps_in = self.irreps_in.clone().unwrap_or_else(|| scalar.clone());
        let irreps_node_attr = self.irreps_node_attr.clone().unwrap_or(scalar);
        let hidden = vec![self.irreps_hidden.clone(); self.layers];
        let (layers, _) = gated_layers(
            &irreps_in,
            &hidden,
            &self.irreps_out,
            &self.irreps_edge_attr,
            GateRule::GatePoints2101,
            |input, output| {
                Convolution::gate_points_2101(
                    input,
                    &irreps_node_attr,
                    &self.irreps_edge_attr,
                    output,
                    self.number_of_basis,
                    self.radial_layers,
                    self.radial_neurons,
                    self.num_neighbors,
                    device,
                )
            },
        )?;
        Ok(Network {
            layers,
            edge_features: EdgeFeatures::new(
                &self.irreps_edge_attr,
                self.max_radius,
                self.number_of_basis,
                Basis::Gaussian,
                false,
            )?,
            config: self.clone(),
        })
    }
}

/// e3nn's `gate_points_2101.Network`: node inputs `x` (or `1`) and attributes `z` (or
/// `1`) through gated [`Convolution::gate_points_2101`] layers over the radius graph of
/// `pos` (per graph of a batch), edge attributes `smooth_cutoff(|r| / max_radius) Y(r)`
/// with `r = pos[src] - pos[dst]`, edge scalars `sqrt(number_of_basis) gaussian(|r|)`;
/// then, with `reduce_output`, the sum over each graph's nodes over `sqrt(num_nodes)`.
///
/// `smooth_cutoff(x) = (1 - cos(pi u)) / 2` with `u = 2 (x - 1)`, 1 for `u < -1` and 0 for
/// `u > 0`.
///
/// Parameters carry e3nn's names (`layers.{i}.first.sc.weight`, ...).
///
/// # Shapes
///
/// `pos [N, 3]`, `x [N, irreps_in.dim]`, `z [N, irreps_node_attr.dim]` ->
/// `[num_graphs, irreps_out.dim]` (or `[N, irreps_out.dim]`).
///
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use equivariant::nn::models::gate_points_2101::NetworkConfig;
/// let device = Device::flex();
/// let config = NetworkConfig { radial_neurons: 8, ..NetworkConfig::new(None,
///     &"4x0e + 4x0o + 2x1e + 2x1o".parse()?, &"1x0e + 1x1o".parse()?, None,
///     &"0e + 1o + 2e".parse()?, 2, 2.0) };
/// let net = config.init(&device)?;
/// let pos = Tensor::<2>::random([5, 3], Distribution::Normal(0.0, 1.0), &device);
/// assert_eq!(net.forward(pos, None, None, None)?.dims(), [1, 4]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Network {
    /// The layers, e3nn's `layers`.
    pub layers: Vec<Compose>,
    #[module(skip)]
    edge_features: EdgeFeatures,
    #[module(skip)]
    config: NetworkConfig,
}

impl Network {
    /// The settings it was built with.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::gate_points_2101::NetworkConfig;
    /// let config = NetworkConfig::new(None, &"2x0e".parse()?, &"0e".parse()?, None, &"0e".parse()?, 1, 1.0);
    /// assert_eq!(config.init(&Device::flex())?.config(), &config);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The network on positions `pos`, node inputs `x` and attributes `z` (`None` where
    /// the configuration has none), `batch` the graph of each node (`None`: one graph).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for inputs given where the configuration has none (or
    /// the reverse), an unsorted batch; [`Error::ShapeMismatch`] and [`Error::NonFinite`]
    /// as [`SimpleNetwork::forward`](super::SimpleNetwork::forward).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::models::gate_points_2101::NetworkConfig;
    /// let device = Device::flex();
    /// let config = NetworkConfig::new(None, &"2x0e".parse()?, &"0e".parse()?, None, &"0e".parse()?, 1, 1.0);
    /// let net = config.init(&device)?;
    /// let pos = Tensor::<2>::zeros([2, 3], &device);
    /// assert!(net.forward(pos, Some(Tensor::ones([2, 1], &device)), None, None).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(
        &self,
        pos: Tensor<2>,
        x: Option<Tensor<2>>,
        z: Option<Tensor<2>>,
        batch: Option<&[usize]>,
    ) -> Result<Tensor<2>> {
        let graph = GraphInput::new(&pos, batch, None, self.config.max_radius)?;
        let n = pos.dims()[0];
        let ones = || Tensor::<2>::ones([n, 1], (&pos.device(), pos.dtype()));
        let input = |given: Option<Tensor<2>>, expected: bool, name: &'static str| match (
            given, expected,
        ) {
            (Some(t), true) => Ok(t),
            (None, false) => Ok(ones()),
            (given, _) => Err(Error::InvalidArgument {
                name,
                reason: if given.is_some() {
                    "given, but the network was built without it (irreps None)".into()
                } else {
                    "missing: the network was built with its irreps".into()
                },
            }),
        };
        let x = input(x, self.config.irreps_in.is_some(), "x")?;
        let z = input(z, self.config.irreps_node_attr.is_some(), "z")?;
        let edge_sh = self.edge_features.sh(graph.edge_vec.clone());
        let length = self.edge_features.lengths(graph.edge_vec.clone());
        let edge_scalars = self.edge_features.embedding(length.clone());
        let [e] = length.dims();
        let cutoff = smooth_cutoff(length.mul_scalar(1.0 / self.config.max_radius)).reshape([e, 1]);
        let edge_attr = edge_sh.mul(cutoff);
        let out = self.layers.iter().try_fold(x, |x, layer| {
            layer.forward(
                x,
                z.clone(),
                &graph.edges,
                edge_attr.clone(),
                edge_scalars.clone(),
            )
        })?;
        Ok(if self.config.reduce_output {
            graph.pool(out, self.config.num_nodes)
        } else {
            out
        })
    }

    /// Loads an e3nn `gate_points_2101.Network`'s `state_dict` saved as safetensors
    /// ([`load_e3nn_state_dict`], with the last layer's keys mapped).
    ///
    /// # Errors
    ///
    /// As [`load_e3nn_state_dict`]; the network is unchanged on error.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::gate_points_2101::NetworkConfig;
    /// let config = NetworkConfig::new(None, &"2x0e".parse()?, &"0e".parse()?, None, &"0e".parse()?, 1, 1.0);
    /// assert!(config.init(&Device::flex())?.load_e3nn("no-such-file.safetensors").is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn load_e3nn(&mut self, path: impl AsRef<Path>) -> Result<()> {
        load_e3nn_state_dict(self, path, &[super::LAST_LAYER])
    }
}

/// e3nn's `smooth_cutoff(x)`: `(1 - cos(pi u)) / 2` with `u = 2 (x - 1)` clamped to
/// `[-1, 0]` (1 below `x = 1/2`, 0 past `x = 1`). The clamp gives the exact gradient too:
/// the cosine's slope vanishes at both ends.
fn smooth_cutoff(x: Tensor<1>) -> Tensor<1> {
    let u = x.sub_scalar(1.0).mul_scalar(2.0).clamp(-1.0, 0.0);
    u.mul_scalar(std::f64::consts::PI)
        .cos()
        .neg()
        .add_scalar(1.0)
        .mul_scalar(0.5)
}
