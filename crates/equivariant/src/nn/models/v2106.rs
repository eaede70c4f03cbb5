//! e3nn's `v2106.gate_points_networks`: [`SimpleNetwork`] (positions and node features in,
//! a radius graph built inside) and [`NetworkForAGraphWithAttributes`] (node and edge
//! attributes, a given or radius-built graph).

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use equivariant_core::Result;
use equivariant_core::graph::Graph;
use equivariant_core::math::Basis;
use equivariant_core::o3::{Irrep, Irreps, MulIr, Parity};

use super::MessagePassing;
use super::graph_input::{EdgeFeatures, GraphInput};
use crate::store::load_e3nn_state_dict;

/// e3nn's hidden irreps of the v2106 networks: `mul` copies of every `(l, p)` for
/// `l <= lmax`, odd before even.
fn hidden_irreps(mul: usize, lmax: u32) -> Irreps {
    Irreps::from_entries(
        (0..=lmax)
            .flat_map(|l| [Parity::Odd, Parity::Even].map(|p| MulIr::new(mul, Irrep::new(l, p))))
            .collect(),
    )
}

/// The settings of a [`SimpleNetwork`], e3nn's constructor arguments and defaults.
///
/// ```
/// use equivariant::nn::models::SimpleNetworkConfig;
/// let config = SimpleNetworkConfig::new(&"3x0e + 2x1o".parse()?, &"4x0e + 1x1o".parse()?, 2.0, 3.0, 5.0);
/// assert_eq!((config.mul, config.layers, config.lmax, config.pool_nodes), (50, 3, 2, true));
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SimpleNetworkConfig {
    /// Irreps of the node inputs `x`.
    pub irreps_in: Irreps,
    /// Irreps of the outputs.
    pub irreps_out: Irreps,
    /// The graph's cutoff and the end of the radial basis.
    pub max_radius: f64,
    /// The convolutions' `1/sqrt(num_neighbors)`.
    pub num_neighbors: f64,
    /// The pooling's `1/sqrt(num_nodes)`.
    pub num_nodes: f64,
    /// Multiplicity of each hidden irrep (50).
    pub mul: usize,
    /// Number of gated layers (3).
    pub layers: usize,
    /// Degree of the edge harmonics and of the hidden irreps (2).
    pub lmax: u32,
    /// Sum the nodes of each graph (`true`) or return per-node outputs.
    pub pool_nodes: bool,
}

impl SimpleNetworkConfig {
    /// e3nn's `SimpleNetwork(irreps_in, irreps_out, max_radius, num_neighbors, num_nodes)`
    /// with the defaults `mul = 50`, `layers = 3`, `lmax = 2`, `pool_nodes = True`.
    ///
    /// ```
    /// use equivariant::nn::models::SimpleNetworkConfig;
    /// let config = SimpleNetworkConfig::new(&"0e".parse()?, &"0e".parse()?, 1.0, 2.0, 3.0);
    /// assert_eq!(config.max_radius, 1.0);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(
        irreps_in: &Irreps,
        irreps_out: &Irreps,
        max_radius: f64,
        num_neighbors: f64,
        num_nodes: f64,
    ) -> Self {
        SimpleNetworkConfig {
            irreps_in: irreps_in.clone(),
            irreps_out: irreps_out.clone(),
            max_radius,
            num_neighbors,
            num_nodes,
            mul: 50,
            layers: 3,
            lmax: 2,
            pool_nodes: true,
        }
    }

    /// The network, parameters drawn as e3nn draws them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a non-positive
    /// `max_radius`, `num_neighbors` or `num_nodes`, and those of
    /// [`MessagePassing::v2106`].
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::SimpleNetworkConfig;
    /// let config = SimpleNetworkConfig { mul: 4, layers: 1, ..SimpleNetworkConfig::new(
    ///     &"0e".parse()?, &"0e".parse()?, 1.0, 2.0, 3.0) };
    /// let net = config.init(&Device::flex())?;
    /// assert_eq!(net.mp.layers.len(), 2);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn init(&self, device: &Device) -> Result<SimpleNetwork> {
        check_positive("num_nodes", self.num_nodes)?;
        let irreps_sh = Irreps::spherical_harmonics(self.lmax, Parity::Odd);
        let mut sequence = vec![self.irreps_in.clone()];
        sequence.extend(std::iter::repeat_n(
            hidden_irreps(self.mul, self.lmax),
            self.layers,
        ));
        sequence.push(self.irreps_out.clone());
        let mp = MessagePassing::v2106(
            &sequence,
            &"0e".parse()?,
            &irreps_sh,
            &[NUMBER_OF_BASIS, 100],
            self.num_neighbors,
            device,
        )?;
        Ok(SimpleNetwork {
            mp,
            edge_features: EdgeFeatures::new(
                &irreps_sh,
                self.max_radius,
                NUMBER_OF_BASIS,
                Basis::SmoothFinite,
                true,
            )?,
            config: self.clone(),
        })
    }
}

/// e3nn's v2106 networks embed edge lengths in 10 bases.
const NUMBER_OF_BASIS: usize = 10;

fn check_positive(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(crate::Error::InvalidArgument {
            name,
            reason: format!("must be positive and finite, got {value}"),
        })
    }
}

/// e3nn's `v2106.gate_points_networks.SimpleNetwork`: node features `x` at positions `pos`
/// through [`MessagePassing`] over their radius graph (`max_radius`, per graph of a batch),
/// edge attributes the harmonics `Y(pos[src] - pos[dst])` up to `lmax`, edge scalars
/// `sqrt(10) smooth_finite(|r|)` (cutoff at `max_radius`), node attributes `1`; then,
/// with `pool_nodes`, the sum over each graph's nodes over `sqrt(num_nodes)`.
///
/// Parameter names follow e3nn (`mp.layers.{i}.first.sc.weight`, ...); load an e3nn state
/// dict with [`load_e3nn`](SimpleNetwork::load_e3nn).
///
/// # Shapes
///
/// `pos [N, 3]`, `x [N, irreps_in.dim]`, `batch` `N` graph indices (sorted) ->
/// `[num_graphs, irreps_out.dim]` (or `[N, irreps_out.dim]` without pooling).
///
/// ```
/// use burn::tensor::{Device, Tensor, Distribution};
/// use equivariant::nn::models::SimpleNetworkConfig;
/// let device = Device::flex();
/// let config = SimpleNetworkConfig { mul: 4, layers: 1, ..SimpleNetworkConfig::new(
///     &"3x0e + 2x1o".parse()?, &"4x0e + 1x1o".parse()?, 2.0, 3.0, 5.0) };
/// let net = config.init(&device)?;
/// let pos = Tensor::<2>::random([6, 3], Distribution::Normal(0.0, 1.0), &device);
/// let x = Tensor::<2>::random([6, 9], Distribution::Normal(0.0, 1.0), &device);
/// // Two molecules of three atoms: one output row each.
/// assert_eq!(net.forward(pos, x, Some(&[0, 0, 0, 1, 1, 1]))?.dims(), [2, 7]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct SimpleNetwork {
    /// The layers, e3nn's `mp`.
    pub mp: MessagePassing,
    #[module(skip)]
    edge_features: EdgeFeatures,
    #[module(skip)]
    config: SimpleNetworkConfig,
}

impl SimpleNetwork {
    /// The settings it was built with.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::SimpleNetworkConfig;
    /// let config = SimpleNetworkConfig { mul: 2, layers: 1, ..SimpleNetworkConfig::new(
    ///     &"0e".parse()?, &"0e".parse()?, 1.0, 2.0, 3.0) };
    /// assert_eq!(config.init(&Device::flex())?.config(), &config);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn config(&self) -> &SimpleNetworkConfig {
        &self.config
    }

    /// The network on positions `pos` and node inputs `x`; `batch` gives each node's graph
    /// (`None`: one graph).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for `pos` not `[N, 3]`, `x`
    /// not `[N, irreps_in.dim]`, a batch of another length;
    /// [`Error::NonFinite`](crate::Error::NonFinite) for a NaN position;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for an unsorted batch.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::models::SimpleNetworkConfig;
    /// let device = Device::flex();
    /// let config = SimpleNetworkConfig { mul: 2, layers: 1, ..SimpleNetworkConfig::new(
    ///     &"0e".parse()?, &"0e".parse()?, 2.0, 1.0, 1.0) };
    /// let net = config.init(&device)?;
    /// let pos = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], &device);
    /// let x = Tensor::<2>::ones([2, 1], &device);
    /// assert!(net.forward(pos.clone(), x.clone(), Some(&[1, 0])).is_err()); // not sorted
    /// assert!(net.forward(pos, x, Some(&[0])).is_err()); // one index per node
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(
        &self,
        pos: Tensor<2>,
        x: Tensor<2>,
        batch: Option<&[usize]>,
    ) -> Result<Tensor<2>> {
        let graph = GraphInput::new(&pos, batch, None, self.config.max_radius)?;
        let edge_attr = self.edge_features.sh(graph.edge_vec.clone());
        let length = self.edge_features.lengths(graph.edge_vec.clone());
        let edge_scalars = self.edge_features.embedding(length);
        let node_attr = Tensor::<2>::ones([x.dims()[0], 1], (&x.device(), x.dtype()));
        let out = self
            .mp
            .forward(x, node_attr, &graph.edges, edge_attr, edge_scalars)?;
        Ok(if self.config.pool_nodes {
            graph.pool(out, self.config.num_nodes)
        } else {
            out
        })
    }

    /// Loads an e3nn `SimpleNetwork`'s `state_dict` saved as safetensors
    /// ([`load_e3nn_state_dict`](crate::store::load_e3nn_state_dict), with the last
    /// layer's keys mapped).
    ///
    /// # Errors
    ///
    /// As [`load_e3nn_state_dict`](crate::store::load_e3nn_state_dict); the network is
    /// unchanged on error.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::SimpleNetworkConfig;
    /// let config = SimpleNetworkConfig::new(&"0e".parse()?, &"0e".parse()?, 1.0, 2.0, 3.0);
    /// let mut net = config.init(&Device::flex())?;
    /// assert!(net.load_e3nn("no-such-file.safetensors").is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn load_e3nn(&mut self, path: impl AsRef<Path>) -> Result<()> {
        load_e3nn_state_dict(self, path, &[super::LAST_LAYER])
    }
}

/// The settings of a [`NetworkForAGraphWithAttributes`], e3nn's constructor arguments and
/// defaults.
///
/// ```
/// use equivariant::nn::models::NetworkForAGraphWithAttributesConfig;
/// let config = NetworkForAGraphWithAttributesConfig::new(&"3x0e + 2x1o".parse()?,
///     &"4x0e + 1x1o".parse()?, &"1e".parse()?, &"3x0o + 1e".parse()?, 2.0, 3.0, 5.0);
/// assert_eq!(config.mul, 50);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkForAGraphWithAttributesConfig {
    /// Irreps of the node inputs.
    pub irreps_node_input: Irreps,
    /// Irreps of the node attributes.
    pub irreps_node_attr: Irreps,
    /// Irreps of the given edge attributes (the harmonics are appended to them).
    pub irreps_edge_attr: Irreps,
    /// Irreps of the outputs.
    pub irreps_node_output: Irreps,
    /// The radius graph's cutoff and the end of the radial basis.
    pub max_radius: f64,
    /// The convolutions' `1/sqrt(num_neighbors)`.
    pub num_neighbors: f64,
    /// The pooling's `1/sqrt(num_nodes)`.
    pub num_nodes: f64,
    /// Multiplicity of each hidden irrep (50).
    pub mul: usize,
    /// Number of gated layers (3).
    pub layers: usize,
    /// Degree of the edge harmonics and of the hidden irreps (2).
    pub lmax: u32,
    /// Sum the nodes of each graph (`true`) or return per-node outputs.
    pub pool_nodes: bool,
}

impl NetworkForAGraphWithAttributesConfig {
    /// e3nn's `NetworkForAGraphWithAttributes(irreps_node_input, irreps_node_attr,
    /// irreps_edge_attr, irreps_node_output, max_radius, num_neighbors, num_nodes)` with the
    /// defaults `mul = 50`, `layers = 3`, `lmax = 2`, `pool_nodes = True`.
    ///
    /// ```
    /// use equivariant::nn::models::NetworkForAGraphWithAttributesConfig;
    /// let c = NetworkForAGraphWithAttributesConfig::new(&"0e".parse()?, &"0e".parse()?,
    ///     &"0e".parse()?, &"0e".parse()?, 1.0, 1.0, 1.0);
    /// assert!(c.pool_nodes);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        irreps_node_input: &Irreps,
        irreps_node_attr: &Irreps,
        irreps_edge_attr: &Irreps,
        irreps_node_output: &Irreps,
        max_radius: f64,
        num_neighbors: f64,
        num_nodes: f64,
    ) -> Self {
        NetworkForAGraphWithAttributesConfig {
            irreps_node_input: irreps_node_input.clone(),
            irreps_node_attr: irreps_node_attr.clone(),
            irreps_edge_attr: irreps_edge_attr.clone(),
            irreps_node_output: irreps_node_output.clone(),
            max_radius,
            num_neighbors,
            num_nodes,
            mul: 50,
            layers: 3,
            lmax: 2,
            pool_nodes: true,
        }
    }

    /// The network, parameters drawn as e3nn draws them.
    ///
    /// # Errors
    ///
    /// As [`SimpleNetworkConfig::init`].
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::NetworkForAGraphWithAttributesConfig;
    /// let config = NetworkForAGraphWithAttributesConfig { mul: 2, layers: 1,
    ///     ..NetworkForAGraphWithAttributesConfig::new(&"3x0e + 2x1o".parse()?,
    ///     &"4x0e + 1x1o".parse()?, &"1e".parse()?, &"3x0o + 1e".parse()?, 2.0, 3.0, 5.0) };
    /// let net = config.init(&Device::flex())?;
    /// assert_eq!(net.mp.irreps_node_sequence().last().unwrap().to_string(), "3x0o+1x1e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn init(&self, device: &Device) -> Result<NetworkForAGraphWithAttributes> {
        check_positive("num_nodes", self.num_nodes)?;
        let irreps_sh = Irreps::spherical_harmonics(self.lmax, Parity::Odd);
        let mut sequence = vec![self.irreps_node_input.clone()];
        sequence.extend(std::iter::repeat_n(
            hidden_irreps(self.mul, self.lmax),
            self.layers,
        ));
        sequence.push(self.irreps_node_output.clone());
        let mp = MessagePassing::v2106(
            &sequence,
            &self.irreps_node_attr,
            &(self.irreps_edge_attr.clone() + irreps_sh.clone()),
            &[NUMBER_OF_BASIS, 100],
            self.num_neighbors,
            device,
        )?;
        Ok(NetworkForAGraphWithAttributes {
            mp,
            edge_features: EdgeFeatures::new(
                &irreps_sh,
                self.max_radius,
                NUMBER_OF_BASIS,
                Basis::SmoothFinite,
                true,
            )?,
            config: self.clone(),
        })
    }
}

/// e3nn's `v2106.gate_points_networks.NetworkForAGraphWithAttributes`: as
/// [`SimpleNetwork`], with node attributes `node_attr`, edge attributes `edge_attr` (the
/// harmonics appended to them) and a given graph (or the radius graph when `None`).
///
/// # Shapes
///
/// `pos [N, 3]`, `node_input [N, irreps_node_input.dim]`, `node_attr [N,
/// irreps_node_attr.dim]`, `edge_attr [E, irreps_edge_attr.dim]` -> `[num_graphs,
/// irreps_node_output.dim]` (or per node).
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::Graph;
/// use equivariant::nn::models::NetworkForAGraphWithAttributesConfig;
/// let device = Device::flex();
/// let config = NetworkForAGraphWithAttributesConfig { mul: 2, layers: 1,
///     ..NetworkForAGraphWithAttributesConfig::new(&"3x0e + 2x1o".parse()?,
///     &"4x0e + 1x1o".parse()?, &"1e".parse()?, &"3x0o + 1e".parse()?, 2.0, 3.0, 5.0) };
/// let net = config.init(&device)?;
/// // e3nn's test: three nodes, edges 0 -> 1 -> 2 -> 0.
/// let graph = Graph { src: vec![0, 1, 2], dst: vec![1, 2, 0], shift: None };
/// let pos = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], &device);
/// let ones = |r, c| Tensor::<2>::ones([r, c], &device);
/// let out = net.forward(pos, ones(3, 9), ones(3, 7), ones(3, 3), None, Some(&graph))?;
/// assert_eq!(out.dims(), [1, 6]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct NetworkForAGraphWithAttributes {
    /// The layers, e3nn's `mp`.
    pub mp: MessagePassing,
    #[module(skip)]
    edge_features: EdgeFeatures,
    #[module(skip)]
    config: NetworkForAGraphWithAttributesConfig,
}

impl NetworkForAGraphWithAttributes {
    /// The settings it was built with.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::NetworkForAGraphWithAttributesConfig;
    /// let config = NetworkForAGraphWithAttributesConfig { mul: 2, layers: 1,
    ///     ..NetworkForAGraphWithAttributesConfig::new(&"0e".parse()?, &"0e".parse()?,
    ///     &"0e".parse()?, &"0e".parse()?, 1.0, 1.0, 1.0) };
    /// assert_eq!(config.init(&Device::flex())?.config(), &config);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn config(&self) -> &NetworkForAGraphWithAttributesConfig {
        &self.config
    }

    /// The network; `graph` gives the edges (`None`: the radius graph of `pos` per graph
    /// of `batch`).
    ///
    /// # Errors
    ///
    /// As [`SimpleNetwork::forward`]; [`Error::ShapeMismatch`](crate::Error::ShapeMismatch)
    /// for attributes of other shapes; [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// for a graph naming a node past `N`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::graph::Graph;
    /// use equivariant::nn::models::NetworkForAGraphWithAttributesConfig;
    /// let device = Device::flex();
    /// let config = NetworkForAGraphWithAttributesConfig { mul: 2, layers: 1,
    ///     ..NetworkForAGraphWithAttributesConfig::new(&"0e".parse()?, &"0e".parse()?,
    ///     &"0e".parse()?, &"0e".parse()?, 2.0, 1.0, 1.0) };
    /// let net = config.init(&device)?;
    /// let bad = Graph { src: vec![0], dst: vec![5], shift: None };
    /// let pos = Tensor::<2>::zeros([2, 3], &device);
    /// let ones = |r, c| Tensor::<2>::ones([r, c], &device);
    /// assert!(net.forward(pos, ones(2, 1), ones(2, 1), ones(1, 1), None, Some(&bad)).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(
        &self,
        pos: Tensor<2>,
        node_input: Tensor<2>,
        node_attr: Tensor<2>,
        edge_attr: Tensor<2>,
        batch: Option<&[usize]>,
        graph: Option<&Graph>,
    ) -> Result<Tensor<2>> {
        let graph = GraphInput::new(&pos, batch, graph, self.config.max_radius)?;
        crate::shape::check_shape(
            "edge_attr [E, irreps_edge_attr.dim]",
            &edge_attr,
            [graph.edges.num_edges(), self.config.irreps_edge_attr.dim()],
        )?;
        let edge_sh = self.edge_features.sh(graph.edge_vec.clone());
        let edge_attr = Tensor::cat(vec![edge_attr, edge_sh], 1);
        let length = self.edge_features.lengths(graph.edge_vec.clone());
        let edge_scalars = self.edge_features.embedding(length);
        let out = self
            .mp
            .forward(node_input, node_attr, &graph.edges, edge_attr, edge_scalars)?;
        Ok(if self.config.pool_nodes {
            graph.pool(out, self.config.num_nodes)
        } else {
            out
        })
    }

    /// Loads an e3nn `NetworkForAGraphWithAttributes`' `state_dict` saved as safetensors.
    ///
    /// # Errors
    ///
    /// As [`SimpleNetwork::load_e3nn`].
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::NetworkForAGraphWithAttributesConfig;
    /// let config = NetworkForAGraphWithAttributesConfig::new(&"0e".parse()?, &"0e".parse()?,
    ///     &"0e".parse()?, &"0e".parse()?, 1.0, 1.0, 1.0);
    /// assert!(config.init(&Device::flex())?.load_e3nn("no-such-file.safetensors").is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn load_e3nn(&mut self, path: impl AsRef<Path>) -> Result<()> {
        load_e3nn_state_dict(self, path, &[super::LAST_LAYER])
    }
}
