//! e3nn's `v2106.gate_points_message_passing.MessagePassing`: point convolutions with gates
//! between them, the irreps of each hidden layer cut to what the previous one can reach.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use equivariant_core::graph::EdgeIndex;
use equivariant_core::math::ActivationFunction;
use equivariant_core::o3::tensor_product::tp_path_exists;
use equivariant_core::o3::{Irrep, Irreps, MulIr, Parity};
use equivariant_core::{Error, Result};

use super::Convolution;
use crate::nn::Gate;

/// e3nn's `Compose(first, second)`: a convolution, then (every layer but the last) a gate.
/// The last layer of e3nn's models is a bare convolution; its state-dict keys lack the
/// `first.` this type adds (the models' loaders map them).
#[derive(Module, Debug)]
pub struct Compose {
    /// The convolution.
    pub first: Convolution,
    /// The gate after it; `None` on the last layer.
    pub second: Option<Gate>,
}

impl Compose {
    /// `second(first(...))`, arguments as [`Convolution::forward`].
    ///
    /// # Errors
    ///
    /// Those of [`Convolution::forward`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::graph::EdgeIndex;
    /// use equivariant::nn::models::MessagePassing;
    /// let device = Device::flex();
    /// let mp = MessagePassing::v2106(&["0e".parse()?, "2x0e + 1x1o".parse()?, "1o".parse()?],
    ///     &"0e".parse()?, &"0e + 1o".parse()?, &[2], 1.0, &device)?;
    /// let edges = Arc::new(EdgeIndex::new(&[0], &[1], 2)?);
    /// let ones = |r, c| Tensor::<2>::ones([r, c], &device);
    /// let h = mp.layers[0].forward(ones(2, 1), ones(2, 1), &edges, ones(1, 4), ones(1, 2))?;
    /// assert_eq!(h.dims(), [2, 5]); // 1x0e + 1x1o after the gate
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(
        &self,
        node_features: Tensor<2>,
        node_attr: Tensor<2>,
        edges: &Arc<EdgeIndex>,
        edge_attr: Tensor<2>,
        edge_scalars: Tensor<2>,
    ) -> Result<Tensor<2>> {
        let x = self
            .first
            .forward(node_features, node_attr, edges, edge_attr, edge_scalars)?;
        match &self.second {
            Some(gate) => gate.forward(x),
            None => Ok(x),
        }
    }
}

/// e3nn's `MessagePassing(irreps_node_sequence, irreps_node_attr, irreps_edge_attr,
/// fc_neurons, num_neighbors)`: for each hidden irreps of the sequence, a
/// [`Convolution`] (v2106) followed by a [`Gate`]; a last convolution to the output irreps.
///
/// Each hidden layer keeps the irreps the previous layer times the edge attributes can
/// reach (e3nn's `tp_path_exists`); scalars go through silu (even) or tanh (odd), the other
/// irreps are gated by as many `0e` scalars through sigmoid (or `0o` through tanh, when no
/// `0e` is reachable).
///
/// # Shapes
///
/// As [`Convolution`], from `irreps_node_sequence[0]` to the last irreps of the sequence.
///
/// ```
/// use burn::tensor::Device;
/// use equivariant::nn::models::MessagePassing;
/// let mp = MessagePassing::v2106(
///     &["3x0e + 2x1o".parse()?, "2x0e + 2x0o + 2x1o + 2x1e".parse()?, "4x0e + 1x1o".parse()?],
///     &"0e".parse()?, &"0e + 1o".parse()?, &[10, 100], 3.0, &Device::flex())?;
/// // 0o is unreachable from 3x0e + 2x1o with 0e + 1o harmonics: dropped.
/// let sequence: Vec<String> = mp.irreps_node_sequence().iter().map(|i| i.to_string()).collect();
/// assert_eq!(sequence, ["3x0e+2x1o", "2x0e+2x1o+2x1e", "4x0e+1x1o"]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct MessagePassing {
    /// The layers, e3nn's `layers`.
    pub layers: Vec<Compose>,
    #[module(skip)]
    irreps_node_sequence: Vec<Irreps>,
}

impl MessagePassing {
    /// The network of e3nn's `v2106` models, parameters drawn as e3nn does.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a sequence of fewer than two irreps, when no gate
    /// scalar is reachable for gated irreps, and those of [`Convolution::v2106`].
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::MessagePassing;
    /// let short = MessagePassing::v2106(&["0e".parse()?], &"0e".parse()?, &"0e".parse()?, &[2], 1.0, &Device::flex());
    /// assert!(short.is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn v2106(
        irreps_node_sequence: &[Irreps],
        irreps_node_attr: &Irreps,
        irreps_edge_attr: &Irreps,
        fc_neurons: &[usize],
        num_neighbors: f64,
        device: &Device,
    ) -> Result<Self> {
        let (first, last) = match irreps_node_sequence {
            [first, .., last] => (first, last),
            _ => {
                return Err(Error::InvalidArgument {
                    name: "irreps_node_sequence",
                    reason: format!(
                        "needs the input and output irreps at least, got {} irreps",
                        irreps_node_sequence.len()
                    ),
                });
            }
        };
        let hidden = &irreps_node_sequence[1..irreps_node_sequence.len() - 1];
        let (layers, irreps_node_sequence) = gated_layers(
            first,
            hidden,
            last,
            irreps_edge_attr,
            GateRule::V2106,
            |input, output| {
                Convolution::v2106(
                    input,
                    irreps_node_attr,
                    irreps_edge_attr,
                    output,
                    fc_neurons,
                    num_neighbors,
                    device,
                )
            },
        )?;
        Ok(MessagePassing {
            layers,
            irreps_node_sequence,
        })
    }

    /// The irreps between the layers, as built (e3nn's `irreps_node_sequence`): the input,
    /// each gate's output, the output.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::MessagePassing;
    /// let mp = MessagePassing::v2106(&["0e".parse()?, "1o".parse()?], &"0e".parse()?,
    ///     &"0e + 1o".parse()?, &[2], 1.0, &Device::flex())?;
    /// assert_eq!(mp.irreps_node_sequence().len(), 2);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_node_sequence(&self) -> &[Irreps] {
        &self.irreps_node_sequence
    }

    /// The layers in turn, arguments as [`Convolution::forward`].
    ///
    /// # Errors
    ///
    /// Those of [`Convolution::forward`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::graph::EdgeIndex;
    /// use equivariant::nn::models::MessagePassing;
    /// let device = Device::flex();
    /// let mp = MessagePassing::v2106(&["0e".parse()?, "2x0e + 1x1o".parse()?, "1o".parse()?],
    ///     &"0e".parse()?, &"0e + 1o".parse()?, &[2], 1.0, &device)?;
    /// let edges = Arc::new(EdgeIndex::new(&[0, 1], &[1, 0], 2)?);
    /// let ones = |r, c| Tensor::<2>::ones([r, c], &device);
    /// assert_eq!(mp.forward(ones(2, 1), ones(2, 1), &edges, ones(2, 4), ones(2, 2))?.dims(), [2, 3]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(
        &self,
        node_features: Tensor<2>,
        node_attr: Tensor<2>,
        edges: &Arc<EdgeIndex>,
        edge_attr: Tensor<2>,
        edge_scalars: Tensor<2>,
    ) -> Result<Tensor<2>> {
        self.layers.iter().try_fold(node_features, |x, layer| {
            layer.forward(
                x,
                node_attr.clone(),
                edges,
                edge_attr.clone(),
                edge_scalars.clone(),
            )
        })
    }
}

/// How a model of e3nn picks the gates of a hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GateRule {
    /// `v2106`: scalars and gates simplified; an error when gated irreps have no reachable
    /// gate scalar.
    V2106,
    /// `gate_points_2101`: as listed; `0o` gates when `0e` is unreachable, unchecked.
    GatePoints2101,
    /// NequIP's `ConvNetLayer`: as `gate_points_2101`, but even gates through silu (its
    /// default `nonlinearity_gates`), not sigmoid.
    Nequip,
}

/// The layers of e3nn's gate-points networks: for each `hidden` irreps, a convolution
/// (`conv(input, gate.irreps_in)`) and its gate; then `conv(input, output)`. Also returns
/// the irreps sequence (input, gates' outputs, output).
pub(super) fn gated_layers(
    input: &Irreps,
    hidden: &[Irreps],
    output: &Irreps,
    irreps_edge_attr: &Irreps,
    rule: GateRule,
    conv: impl Fn(&Irreps, &Irreps) -> Result<Convolution>,
) -> Result<(Vec<Compose>, Vec<Irreps>)> {
    let mut layers = Vec::with_capacity(hidden.len() + 1);
    let mut sequence = vec![input.clone()];
    let mut irreps_node = input.clone();
    for irreps_node_hidden in hidden {
        let gate = gate_for(&irreps_node, irreps_node_hidden, irreps_edge_attr, rule)?;
        let first = conv(&irreps_node, gate.irreps_in())?;
        irreps_node = gate.irreps_out().clone();
        sequence.push(irreps_node.clone());
        layers.push(Compose {
            first,
            second: Some(gate),
        });
    }
    layers.push(Compose {
        first: conv(&irreps_node, output)?,
        second: None,
    });
    sequence.push(output.clone());
    Ok((layers, sequence))
}

/// The gate of a hidden layer: the reachable scalars of `hidden` (silu even, tanh odd),
/// its reachable higher irreps gated by `0e` scalars (sigmoid; silu for NequIP) or, if no
/// `0e` is reachable, `0o` (tanh), as `rule` says.
pub(super) fn gate_for(
    irreps_node: &Irreps,
    hidden: &Irreps,
    irreps_edge_attr: &Irreps,
    rule: GateRule,
) -> Result<Gate> {
    let v2106 = rule == GateRule::V2106;
    let reachable = |ir: &Irrep| tp_path_exists(irreps_node, irreps_edge_attr, ir);
    let pick = |scalar: bool| -> Irreps {
        Irreps::from_entries(
            hidden
                .iter()
                .filter(|m| (m.ir.l == 0) == scalar && reachable(&m.ir))
                .copied()
                .collect(),
        )
    };
    let irreps_scalars = if v2106 {
        pick(true).simplify()
    } else {
        pick(true)
    };
    let irreps_gated = pick(false);
    let gate_ir = if irreps_gated.dim() == 0 {
        None
    } else {
        let (even, odd) = (Irrep::new(0, Parity::Even), Irrep::new(0, Parity::Odd));
        Some(if reachable(&even) {
            even
        } else if reachable(&odd) || !v2106 {
            odd
        } else {
            return Err(Error::InvalidArgument {
                name: "irreps_node_sequence",
                reason: format!(
                    "irreps_node={irreps_node} times irreps_edge_attr={irreps_edge_attr} is unable to produce gates needed for irreps_gated={irreps_gated}"
                ),
            });
        })
    };
    let irreps_gates = match gate_ir {
        Some(ir) => {
            Irreps::from_entries(irreps_gated.iter().map(|m| MulIr::new(m.mul, ir)).collect())
                .simplify()
        }
        None => Irreps::new(),
    };
    let act = |ir: &Irrep, even, odd| {
        Some(match ir.p {
            Parity::Even => even,
            Parity::Odd => odd,
        })
    };
    let act_scalars: Vec<Option<ActivationFunction>> = irreps_scalars
        .iter()
        .map(|m| act(&m.ir, ActivationFunction::Silu, ActivationFunction::Tanh))
        .collect();
    let even_gate = match rule {
        GateRule::Nequip => ActivationFunction::Silu,
        GateRule::V2106 | GateRule::GatePoints2101 => ActivationFunction::Sigmoid,
    };
    let act_gates: Vec<Option<ActivationFunction>> = irreps_gates
        .iter()
        .map(|m| act(&m.ir, even_gate, ActivationFunction::Tanh))
        .collect();
    Gate::new(
        &irreps_scalars,
        &act_scalars,
        &irreps_gates,
        &act_gates,
        &irreps_gated,
    )
}
