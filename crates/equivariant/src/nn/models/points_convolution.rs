//! The point convolution of e3nn's gate-points models (`v2106.points_convolution.Convolution`
//! and `gate_points_2101.Convolution`): a self-connection plus a node-attributed,
//! edge-weighted message passing step.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use equivariant_core::graph::EdgeIndex;
use equivariant_core::math::ActivationFunction;
use equivariant_core::o3::Irreps;
use equivariant_core::o3::tensor_product::sorted_uvu_tensor_product;
use equivariant_core::{Error, Result};

use crate::nn::FullyConnectedNet;
use crate::o3::{FullyConnectedTensorProduct, TensorProduct};
use crate::ops::fused_convolution;
use crate::shape::{check_dtype, check_shape};

/// The convolution of e3nn's gate-points networks:
///
/// `out_i = sc(x_i, z_i) + a_i lin2(m_i, z_i)`,
/// `m_i = 1/sqrt(num_neighbors) sum_{e: dst_e = i} lin1(x, z)_{src_e} (x)_{w_e} y_e`,
///
/// with `x` the node features, `z` the node attributes, `y_e` the edge attributes,
/// `w_e = fc(s_e)` per-edge weights of a `uvu` product from a silu MLP of the edge scalars
/// `s_e`, and `sc`, `lin1`, `lin2` fully connected tensor products with the attributes.
/// The update factor `a_i`:
/// - **v2106** ([`Convolution::v2106`]): `a_i = alpha(m_i, z_i)`, a learned scalar (its
///   weights start at zero, so the layer starts as its self-connection); the product's
///   outputs include `0e` so that `alpha` has scalars to read;
/// - **gate_points_2101** ([`Convolution::gate_points_2101`]): fixed,
///   `out_i = sin(pi/8) sc + cos(pi/8) lin2`.
///
/// Output components that `sc` cannot reach take `lin2` alone, with factor 1 (e3nn's
/// `output_mask`).
///
/// The message step runs as one fused kernel ([`fused_convolution`]): the MLP's last layer
/// inside, no per-edge weight or message stored.
///
/// Parameters carry e3nn's names (`sc.weight`, `lin1.weight`, `fc.weights.{i}` for
/// `fc.layer{i}.weight`, `lin2.weight`, `alpha.weight`).
///
/// # Shapes
///
/// `node_input [N, irreps_node_input.dim]`, `node_attr [N, irreps_node_attr.dim]`,
/// `edge_attr [E, irreps_edge_attr.dim]`, `edge_scalars [E, fc_neurons[0]]` ->
/// `[N, irreps_node_output.dim]`.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::graph::EdgeIndex;
/// use equivariant::nn::models::Convolution;
///
/// let device = Device::flex();
/// let conv = Convolution::v2106(&"2x0e + 1x1o".parse()?, &"1x0e".parse()?, &"0e + 1o".parse()?,
///     &"3x0e + 1x1o".parse()?, &[4, 8], 2.0, &device)?;
/// let edges = Arc::new(EdgeIndex::new(&[0, 1], &[1, 0], 2)?);
/// let out = conv.forward(Tensor::ones([2, 5], &device), Tensor::ones([2, 1], &device), &edges,
///     Tensor::ones([2, 4], &device), Tensor::ones([2, 4], &device))?;
/// assert_eq!(out.dims(), [2, 6]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Convolution {
    /// The self-connection `FullyConnectedTensorProduct(input, attr, output)`.
    pub sc: TensorProduct,
    /// `FullyConnectedTensorProduct(input, attr, input)` before the message step.
    pub lin1: TensorProduct,
    /// The radial MLP `fc_neurons + [tp.weight_numel]`, silu.
    pub fc: FullyConnectedNet,
    /// The `uvu` product of the messages, weights from `fc` (no parameters of its own).
    pub tp: TensorProduct,
    /// `FullyConnectedTensorProduct(mid, attr, output)` after the message step.
    pub lin2: TensorProduct,
    /// v2106's `FullyConnectedTensorProduct(mid, attr, "0e")`: the update factor; `None`
    /// for gate_points_2101's fixed mix.
    pub alpha: Option<TensorProduct>,
    #[module(skip)]
    num_neighbors: f64,
    /// e3nn's `sc.output_mask`, per output component.
    #[module(skip)]
    sc_mask: Vec<bool>,
}

impl Convolution {
    /// e3nn's `v2106.points_convolution.Convolution(irreps_node_input, irreps_node_attr,
    /// irreps_edge_attr, irreps_node_output, fc_neurons, num_neighbors)`, parameters drawn
    /// as e3nn draws them (`N(0, 1)`; `alpha`'s weights zero).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if no path of `input x edge_attr` reaches the output or
    /// `0e`, if the mid irreps and the attributes make no scalar for `alpha` (e3nn's
    /// assertions), for `fc_neurons` with a zero width or `num_neighbors` not positive.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::Convolution;
    /// let conv = Convolution::v2106(&"3x0e + 2x1o".parse()?, &"1x0e".parse()?, &"0e + 1o".parse()?,
    ///     &"6x0e + 2x1o + 2x1e".parse()?, &[10, 100], 3.0, &Device::flex())?;
    /// assert_eq!(conv.tp.weight_numel(), 12);
    /// assert_eq!(conv.fc.hs(), [10, 100, 12]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn v2106(
        irreps_node_input: &Irreps,
        irreps_node_attr: &Irreps,
        irreps_edge_attr: &Irreps,
        irreps_node_output: &Irreps,
        fc_neurons: &[usize],
        num_neighbors: f64,
        device: &Device,
    ) -> Result<Self> {
        Self::build(
            [
                irreps_node_input,
                irreps_node_attr,
                irreps_edge_attr,
                irreps_node_output,
            ],
            fc_neurons,
            num_neighbors,
            true,
            device,
        )
    }

    /// e3nn's `gate_points_2101.Convolution(irreps_in, irreps_node_attr, irreps_edge_attr,
    /// irreps_out, number_of_basis, radial_layers, radial_neurons, num_neighbors)`: the MLP
    /// is `[number_of_basis] + radial_layers * [radial_neurons] + [tp.weight_numel]`.
    ///
    /// # Errors
    ///
    /// As [`v2106`](Convolution::v2106) (there is no `alpha`).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::Convolution;
    /// let conv = Convolution::gate_points_2101(&"2x0e".parse()?, &"1x0e".parse()?, &"0e + 1o".parse()?,
    ///     &"2x0e + 2x1o".parse()?, 5, 1, 8, 2.0, &Device::flex())?;
    /// assert!(conv.alpha.is_none());
    /// assert_eq!(conv.fc.hs(), [5, 8, 4]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn gate_points_2101(
        irreps_in: &Irreps,
        irreps_node_attr: &Irreps,
        irreps_edge_attr: &Irreps,
        irreps_out: &Irreps,
        number_of_basis: usize,
        radial_layers: usize,
        radial_neurons: usize,
        num_neighbors: f64,
        device: &Device,
    ) -> Result<Self> {
        let mut fc_neurons = vec![number_of_basis];
        fc_neurons.extend(std::iter::repeat_n(radial_neurons, radial_layers));
        Self::build(
            [irreps_in, irreps_node_attr, irreps_edge_attr, irreps_out],
            &fc_neurons,
            num_neighbors,
            false,
            device,
        )
    }

    /// Both versions: `[input, attr, edge, output]` irreps; `alpha` for v2106.
    fn build(
        [input, attr, edge, output]: [&Irreps; 4],
        fc_neurons: &[usize],
        num_neighbors: f64,
        alpha: bool,
        device: &Device,
    ) -> Result<Self> {
        if !(num_neighbors.is_finite() && num_neighbors > 0.0) {
            return Err(Error::InvalidArgument {
                name: "num_neighbors",
                reason: format!("must be positive and finite, got {num_neighbors}"),
            });
        }
        let fctp = |a: &Irreps, b: &Irreps, c: &Irreps| {
            FullyConnectedTensorProduct::new(a, b, c).init(device)
        };
        let sc = fctp(input, attr, output)?;
        let lin1 = fctp(input, attr, input)?;
        // v2106 keeps the scalars of the product even when the output has none: alpha reads
        // them.
        let mut filter = output.clone();
        if alpha {
            filter = filter + "0e".parse()?;
        }
        let plan = sorted_uvu_tensor_product(input, edge, &filter, false)?;
        if plan.irreps_out().dim() == 0 {
            return Err(Error::InvalidArgument {
                name: "irreps_node_output",
                reason: format!(
                    "irreps_node_input={input} times irreps_edge_attr={edge} produces nothing in irreps_node_output={output}"
                ),
            });
        }
        let mid = plan.irreps_out().clone();
        let tp = TensorProduct::with_external_weights(plan);
        let mut hs = fc_neurons.to_vec();
        hs.push(tp.weight_numel());
        let fc = FullyConnectedNet::new(&hs, Some(ActivationFunction::Silu), device)?;
        let lin2 = fctp(&mid, attr, output)?;
        let alpha = if alpha {
            let alpha = fctp(&mid, attr, &"0e".parse()?)?;
            if alpha.plan().output_mask() != [true] {
                return Err(Error::InvalidArgument {
                    name: "irreps_node_attr",
                    reason: format!(
                        "irreps_mid={mid} and irreps_node_attr={attr} are not able to generate scalars"
                    ),
                });
            }
            Some(alpha.map(&mut ZeroWeights))
        } else {
            None
        };
        Ok(Convolution {
            sc_mask: sc.plan().output_mask(),
            sc,
            lin1,
            fc,
            tp,
            lin2,
            alpha,
            num_neighbors,
        })
    }

    /// The input irreps.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::Convolution;
    /// let conv = Convolution::v2106(&"2x0e".parse()?, &"1x0e".parse()?, &"0e".parse()?,
    ///     &"1x0e".parse()?, &[3], 1.0, &Device::flex())?;
    /// assert_eq!(conv.irreps_node_input().to_string(), "2x0e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_node_input(&self) -> &Irreps {
        self.sc.plan().irreps_in1()
    }

    /// The output irreps.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::Convolution;
    /// let conv = Convolution::v2106(&"2x0e".parse()?, &"1x0e".parse()?, &"0e".parse()?,
    ///     &"1x0e".parse()?, &[3], 1.0, &Device::flex())?;
    /// assert_eq!(conv.irreps_node_output().to_string(), "1x0e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_node_output(&self) -> &Irreps {
        self.sc.plan().irreps_out()
    }

    /// The layer on a graph given as its edges grouped by node (`edges.num_nodes()` must
    /// be `N`; messages go from `src` to `dst`).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for inputs of other shapes than the module's (see the
    /// type's docs) or a graph of another size; [`Error::InvalidArgument`] for mixed
    /// dtypes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::graph::EdgeIndex;
    /// use equivariant::nn::models::Convolution;
    /// let device = Device::flex();
    /// let conv = Convolution::v2106(&"1x0e".parse()?, &"1x0e".parse()?, &"0e".parse()?,
    ///     &"1x0e".parse()?, &[2], 1.0, &device)?;
    /// let edges = Arc::new(EdgeIndex::new(&[0], &[1], 2)?);
    /// let ones = |r, c| Tensor::<2>::ones([r, c], &device);
    /// // alpha starts at zero: the output is the self-connection.
    /// let out = conv.forward(ones(2, 1), ones(2, 1), &edges, ones(1, 1), ones(1, 2))?;
    /// let sc = conv.sc.forward(ones(2, 1), ones(2, 1), None)?;
    /// assert_eq!(out.into_data(), sc.into_data());
    /// assert!(conv.forward(ones(3, 1), ones(3, 1), &edges, ones(1, 1), ones(1, 2)).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(
        &self,
        node_input: Tensor<2>,
        node_attr: Tensor<2>,
        edges: &Arc<EdgeIndex>,
        edge_attr: Tensor<2>,
        edge_scalars: Tensor<2>,
    ) -> Result<Tensor<2>> {
        let (n, e) = (edges.num_nodes(), edges.num_edges());
        let sc_plan = self.sc.plan();
        check_shape(
            "node_input [N, irreps_node_input.dim]",
            &node_input,
            [n, sc_plan.irreps_in1().dim()],
        )?;
        check_shape(
            "node_attr [N, irreps_node_attr.dim]",
            &node_attr,
            [n, sc_plan.irreps_in2().dim()],
        )?;
        check_shape(
            "edge_attr [E, irreps_edge_attr.dim]",
            &edge_attr,
            [e, self.tp.plan().irreps_in2().dim()],
        )?;
        check_shape(
            "edge_scalars [E, fc_neurons[0]]",
            &edge_scalars,
            [e, self.fc.hs()[0]],
        )?;
        check_dtype("node_attr", &node_attr, &node_input)?;
        check_dtype("edge_attr", &edge_attr, &node_input)?;
        let hidden = self.fc.forward_hidden(edge_scalars)?;
        let linear = self.fc.last_linear().ok_or(Error::InvalidArgument {
            name: "fc",
            reason: "the radial MLP must end with a linear layer".into(),
        })?;
        let self_connection = self
            .sc
            .forward(node_input.clone(), node_attr.clone(), None)?;
        let features = self.lin1.forward(node_input, node_attr.clone(), None)?;
        let messages = fused_convolution(
            self.tp.plan(),
            edges,
            features,
            edge_attr,
            hidden,
            linear,
            1.0 / self.num_neighbors.sqrt(),
        );
        let conv = self
            .lin2
            .forward(messages.clone(), node_attr.clone(), None)?;
        let (device, dtype) = (conv.device(), conv.dtype());
        let mask = |on: f64, off: f64| {
            let values: Vec<f64> = self
                .sc_mask
                .iter()
                .map(|&m| if m { on } else { off })
                .collect();
            Tensor::<2>::from_data(
                TensorData::new(values, [1, self.sc_mask.len()]),
                (&device, dtype),
            )
        };
        Ok(match &self.alpha {
            // e3nn: alpha = (1 - m) + alpha m; out = sc + alpha lin2.
            Some(alpha) => {
                let alpha = alpha.forward(messages, node_attr, None)?;
                let factor = alpha.mul(mask(1.0, 0.0)).add(mask(0.0, 1.0));
                self_connection.add(factor.mul(conv))
            }
            None => {
                let (c_s, c_x) = (
                    (std::f64::consts::PI / 8.0).sin(),
                    (std::f64::consts::PI / 8.0).cos(),
                );
                self_connection
                    .mul_scalar(c_s)
                    .add(conv.mul(mask(c_x, 1.0)))
            }
        })
    }
}

/// Sets every float parameter to zero (e3nn's `alpha.weight.zero_()`).
struct ZeroWeights;

impl burn::module::ModuleMapper for ZeroWeights {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        param.map(|t| t.zeros_like())
    }
}
