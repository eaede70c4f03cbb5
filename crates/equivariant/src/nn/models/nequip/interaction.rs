//! NequIP's interaction layer (`ConvNetLayer`): an `InteractionBlock` (linear, a `uvu`
//! convolution with the edge harmonics weighted by a radial MLP, linear, a self-connection
//! on the species) and a gate, with its tangent pass for training on forces.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use equivariant_core::graph::EdgeIndex;
use equivariant_core::math::ActivationFunction;
use equivariant_core::o3::Irreps;
use equivariant_core::o3::tensor_product::sorted_uvu_tensor_product;
use equivariant_core::{Error, Result};

use super::super::message_passing::{GateRule, gate_for};
use crate::nn::{FullyConnectedNet, Gate};
use crate::o3::{FullyConnectedTensorProduct, Linear, LinearConfig, TensorProduct};
use crate::ops::{fused_convolution, fused_convolution_tangent};

/// What a layer reads besides its features: the graph, the species one-hot, the edge
/// harmonics and the radial embedding, each with its tangent along the edge-vector direction
/// (`None` outside a tangent pass), and how many of the nodes (the first ones) it must
/// output (fewer than the graph's on a domain's shells, see
/// [`Shell`](crate::potential::Shell)).
pub(super) struct EdgeInputs<'a> {
    pub edges: &'a Arc<EdgeIndex>,
    pub node_attr: Tensor<2>,
    pub edge_attr: (Tensor<2>, Option<Tensor<2>>),
    pub edge_embedding: (Tensor<2>, Option<Tensor<2>>),
    pub outputs: usize,
}

/// The first `rows` rows of `x` (all of them: `x` itself).
pub(super) fn first_rows(x: Tensor<2>, rows: usize) -> Tensor<2> {
    if x.dims()[0] == rows {
        x
    } else {
        x.narrow(0, 0, rows)
    }
}

/// What every layer of a model shares: the species one-hots' and edge harmonics' irreps,
/// the radial MLP's shape, the normalization and the connections.
pub(super) struct LayerSettings<'a> {
    pub irreps_node_attr: &'a Irreps,
    pub irreps_edge_attr: &'a Irreps,
    pub num_basis: usize,
    pub neurons: &'a [usize],
    pub avg_num_neighbors: f64,
    pub use_sc: bool,
    pub resnet: bool,
}

/// NequIP's `InteractionBlock`:
///
/// `out_i = linear_2( 1/sqrt(avg_num_neighbors) sum_{j -> i} linear_1(x)_j (x)_{uvu}
/// (fc(emb_ij)) Y_ij ) + sc(x_i, attr_i)`
///
/// with `fc` a radial MLP (silu, no biases) giving the product's per-edge weights, `sc` a
/// fully connected product with the species one-hot.
///
/// ```
/// use burn::tensor::Device;
/// use equivariant::nn::models::nequip::NequipConfig;
/// let model = NequipConfig { num_layers: 2, num_features: 4, ..NequipConfig::new(2, 3.0) }.init(&Device::flex())?;
/// let block = &model.layers[0].conv;
/// assert!(block.sc.is_some());
/// assert_eq!(block.fc.hs().last(), Some(&block.tp.weight_numel()));
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct InteractionBlock {
    /// `Linear(irreps_in, irreps_in)`.
    pub linear_1: Linear,
    /// The radial MLP `[num_basis, neurons..., tp.weight_numel]`.
    pub fc: FullyConnectedNet,
    /// The `uvu` product of the features with the edge harmonics (external weights).
    pub tp: TensorProduct,
    /// `Linear(irreps_mid, irreps_out)`.
    pub linear_2: Linear,
    /// The self-connection `FullyConnectedTensorProduct(irreps_in, node_attr, irreps_out)`.
    pub sc: Option<TensorProduct>,
    #[module(skip)]
    pub(super) avg_num_neighbors: f64,
}

impl InteractionBlock {
    /// The block from `irreps_in` to `irreps_out` with the shared `settings`.
    fn new(
        irreps_in: &Irreps,
        irreps_out: &Irreps,
        settings: &LayerSettings,
        device: &Device,
    ) -> Result<Self> {
        let LayerSettings {
            irreps_node_attr,
            irreps_edge_attr,
            num_basis,
            neurons,
            avg_num_neighbors,
            use_sc,
            ..
        } = *settings;
        let linear_1 = LinearConfig::new(irreps_in, irreps_in).init(device)?;
        let plan = sorted_uvu_tensor_product(irreps_in, irreps_edge_attr, irreps_out, false)?;
        let mid = plan.irreps_out().simplify();
        let tp = TensorProduct::with_external_weights(plan);
        let mut hs = vec![num_basis];
        hs.extend(neurons);
        hs.push(tp.weight_numel());
        let fc = FullyConnectedNet::new(&hs, Some(ActivationFunction::Silu), device)?;
        let linear_2 = LinearConfig::new(&mid, irreps_out).init(device)?;
        let sc = if use_sc {
            Some(
                FullyConnectedTensorProduct::new(irreps_in, irreps_node_attr, irreps_out)
                    .init(device)?,
            )
        } else {
            None
        };
        Ok(InteractionBlock {
            linear_1,
            fc,
            tp,
            linear_2,
            sc,
            avg_num_neighbors,
        })
    }

    /// The block's output and its tangent (`dx`: the features' tangent, `None` for
    /// constant features; the edge inputs carry theirs).
    fn forward_tangent(
        &self,
        x: Tensor<2>,
        dx: Option<Tensor<2>>,
        inputs: &EdgeInputs,
    ) -> Result<(Tensor<2>, Option<Tensor<2>>)> {
        let tangent = inputs.edge_attr.1.is_some() || dx.is_some();
        let (h, dh) = match (&inputs.edge_embedding.1, tangent) {
            (Some(d_emb), true) => {
                let (h, dh) = self
                    .fc
                    .forward_hidden_tangent(inputs.edge_embedding.0.clone(), d_emb.clone())?;
                (h, Some(dh))
            }
            _ => (
                self.fc.forward_hidden(inputs.edge_embedding.0.clone())?,
                None,
            ),
        };
        let linear = self.fc.last_linear().ok_or(Error::InvalidArgument {
            name: "fc",
            reason: "the radial MLP must end with a linear layer".into(),
        })?;
        let (x1, dx1) = match &dx {
            Some(dx) => {
                let (x1, dx1) = self.linear_1.forward_tangent(x.clone(), dx.clone(), None)?;
                (x1, Some(dx1))
            }
            None => (self.linear_1.forward(x.clone(), None)?, None),
        };
        let scale = 1.0 / self.avg_num_neighbors.sqrt();
        // Only the nodes the next layers need (the edges reach no others).
        let m = inputs.outputs;
        let (mut out, mut d_out) = if tangent {
            let (messages, d_messages) = fused_convolution_tangent(
                self.tp.plan(),
                inputs.edges,
                (x1, dx1),
                inputs.edge_attr.clone(),
                (h, dh),
                linear,
                scale,
            );
            let (messages, d_messages) = (first_rows(messages, m), first_rows(d_messages, m));
            let (out, d_out) = self.linear_2.forward_tangent(messages, d_messages, None)?;
            (out, Some(d_out))
        } else {
            // Nothing moves: the convolution alone (its tangent would be zero).
            let messages = fused_convolution(
                self.tp.plan(),
                inputs.edges,
                x1,
                inputs.edge_attr.0.clone(),
                h,
                linear,
                scale,
            );
            (self.linear_2.forward(first_rows(messages, m), None)?, None)
        };
        if let Some(sc) = &self.sc {
            let attr = first_rows(inputs.node_attr.clone(), m);
            out = out.add(sc.forward(first_rows(x, m), attr.clone(), None)?);
            if let Some(dx) = dx {
                let d_sc = sc.forward(first_rows(dx, m), attr, None)?;
                d_out = d_out.map(|d| d.add(d_sc));
            }
        }
        Ok((out, d_out))
    }
}

/// NequIP's `ConvNetLayer`: an [`InteractionBlock`] to the reachable part of the hidden
/// irreps (scalars, gates, gated), the gate, and the input added back when `resnet` and the
/// irreps agree.
///
/// ```
/// use burn::tensor::Device;
/// use equivariant::nn::models::nequip::NequipConfig;
/// let model = NequipConfig { num_layers: 2, num_features: 4, ..NequipConfig::new(2, 3.0) }.init(&Device::flex())?;
/// // From 4x0e, 0e x (0e + 1o) reaches 0e and 1o of the hidden irreps: 1o is gated.
/// assert_eq!(model.layers[0].equivariant_nonlin.irreps_out().to_string(), "4x0e+4x1o");
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct ConvNetLayer {
    /// The interaction block.
    pub conv: InteractionBlock,
    /// NequIP's `equivariant_nonlin`.
    pub equivariant_nonlin: Gate,
    #[module(skip)]
    pub(super) resnet: bool,
}

impl ConvNetLayer {
    /// The layer from `irreps_in`, keeping of `feature_irreps_hidden` what `irreps_in` times
    /// the edge harmonics reaches.
    pub(super) fn new(
        irreps_in: &Irreps,
        feature_irreps_hidden: &Irreps,
        settings: &LayerSettings,
        device: &Device,
    ) -> Result<Self> {
        let gate = gate_for(
            irreps_in,
            feature_irreps_hidden,
            settings.irreps_edge_attr,
            GateRule::Nequip,
        )?;
        let conv_irreps_out = gate.irreps_in().simplify();
        let conv = InteractionBlock::new(irreps_in, &conv_irreps_out, settings, device)?;
        Ok(ConvNetLayer {
            resnet: settings.resnet && gate.irreps_out() == irreps_in,
            conv,
            equivariant_nonlin: gate,
        })
    }

    /// The irreps after the gate.
    pub(super) fn irreps_out(&self) -> &Irreps {
        self.equivariant_nonlin.irreps_out()
    }

    /// The layer's output and its tangent, as [`InteractionBlock::forward_tangent`].
    pub(super) fn forward_tangent(
        &self,
        x: Tensor<2>,
        dx: Option<Tensor<2>>,
        inputs: &EdgeInputs,
    ) -> Result<(Tensor<2>, Option<Tensor<2>>)> {
        let (y, dy) = self.conv.forward_tangent(x.clone(), dx.clone(), inputs)?;
        let (mut y, mut dy) = match dy {
            Some(dy) => {
                let (y, dy) = self.equivariant_nonlin.forward_tangent(y, dy)?;
                (y, Some(dy))
            }
            None => (self.equivariant_nonlin.forward(y)?, None),
        };
        if self.resnet {
            let m = inputs.outputs;
            y = y.add(first_rows(x, m));
            dy = match (dy, dx.map(|dx| first_rows(dx, m))) {
                (Some(a), Some(b)) => Some(a.add(b)),
                (a, b) => a.or(b),
            };
        }
        Ok((y, dy))
    }
}
