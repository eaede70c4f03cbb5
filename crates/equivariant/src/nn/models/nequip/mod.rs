//! NequIP (Batzner et al., Nat. Commun. 13, 2453 (2022)) as a [`Potential`]: a species
//! embedding, interaction layers (a radial MLP on a Bessel basis under a polynomial cutoff
//! weighting a `uvu` product of the features with the edge harmonics, a self-connection on
//! the species, a gate), a per-atom energy readout with per-species scale and shift, and
//! energies summed per structure.
//!
//! The layout follows `nequip` 0.6 (one-hot species as node attributes, `chemical_embedding`
//! and `conv_to_output_hidden` linears, e3nn's `FullyConnectedNet` radial MLP), with the
//! defaults of its example configurations; the edge embedding matches NequIP's to 1e-12
//! (`tools/reference/nequip/make_radial_fixture.py`). The Bessel frequencies stay at their
//! initial `n pi / r_max` (NequIP 0.6 trains them by default, `BesselBasis_trainable`; its
//! 0.19 does not), and the per-species scales and shifts are not trained (NequIP's default).

mod forces;
mod interaction;
mod radial;

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use equivariant_core::o3::{Irrep, Irreps, MulIr, Normalization, Parity, SphericalHarmonicsPlan};
use equivariant_core::{Error, Result};

pub use interaction::{ConvNetLayer, InteractionBlock};
use interaction::{EdgeInputs, LayerSettings, first_rows};
pub use radial::RadialBasisEdgeEncoding;

use crate::forces::EnergyForces;
use crate::o3::{Linear, LinearConfig};
use crate::ops::{index_tensor, spherical_harmonics, spherical_harmonics_tangent};
use crate::potential::{
    AtomicEnergyForces, AtomicGraph, AtomicPotential, Potential, atomic_energy_forces_autodiff,
    sum_per_structure,
};

/// The hyperparameters of a [`Nequip`] model, under NequIP's names.
#[derive(Debug, Clone, PartialEq)]
pub struct NequipConfig {
    /// The number of species (`num_types`).
    pub num_types: usize,
    /// The cutoff radius (Angstrom, as the data).
    pub r_max: f64,
    /// Interaction layers.
    pub num_layers: usize,
    /// The largest `l` of the features and edge harmonics.
    pub l_max: u32,
    /// Features of both parities and harmonics of parity `(-1)^l` (O(3)); `false`: all
    /// even (SO(3)), as NequIP's `parity`.
    pub parity: bool,
    /// The multiplicity of each irrep of the hidden features.
    pub num_features: usize,
    /// Bessel functions of the edge embedding.
    pub num_basis: usize,
    /// The power `p` of the polynomial cutoff.
    pub polynomial_cutoff_p: u32,
    /// Hidden layers of the radial MLP.
    pub invariant_layers: usize,
    /// Their width.
    pub invariant_neurons: usize,
    /// The convolutions' normalization `1 / sqrt(avg_num_neighbors)` (NequIP's `auto`: the
    /// mean number of neighbours in the training set).
    pub avg_num_neighbors: f64,
    /// Self-connections on the species.
    pub use_sc: bool,
    /// Residual connections where a layer keeps its irreps.
    pub resnet: bool,
    /// The last layer keeps only `num_features x 0e`, the irreps the readout reads (NequIP
    /// 0.7 and later always build it so; 0.6 keeps `feature_irreps_hidden` there too, whose
    /// non-scalars then reach no energy). Fewer paths, weights and FLOPs, the same family
    /// of functions.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::nequip::NequipConfig;
    /// let config = NequipConfig { num_layers: 2, num_features: 4, ..NequipConfig::new(2, 3.0) };
    /// let full = config.init(&Device::flex())?;
    /// let scalar = NequipConfig { scalar_last_layer: true, ..config }.init(&Device::flex())?;
    /// assert_eq!(full.layers[1].equivariant_nonlin.irreps_out().to_string(), "4x0e+4x1e+4x1o");
    /// assert_eq!(scalar.layers[1].equivariant_nonlin.irreps_out().to_string(), "4x0e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub scalar_last_layer: bool,
}

impl NequipConfig {
    /// NequIP's example configuration for `num_types` species at cutoff `r_max`: 4 layers,
    /// `l_max` 1 with both parities, 32 features, 8 Bessel functions, `p = 6`, a radial
    /// MLP of two hidden layers of 64, self-connections, no residual connections, and
    /// `avg_num_neighbors` 1 (set it from the data).
    ///
    /// ```
    /// use equivariant::nn::models::nequip::NequipConfig;
    /// let config = NequipConfig::new(2, 4.0);
    /// assert_eq!((config.num_layers, config.num_features, config.l_max), (4, 32, 1));
    /// ```
    pub fn new(num_types: usize, r_max: f64) -> Self {
        NequipConfig {
            num_types,
            r_max,
            num_layers: 4,
            l_max: 1,
            parity: true,
            num_features: 32,
            num_basis: 8,
            polynomial_cutoff_p: 6,
            invariant_layers: 2,
            invariant_neurons: 64,
            avg_num_neighbors: 1.0,
            use_sc: true,
            resnet: false,
            scalar_last_layer: false,
        }
    }

    /// The hidden features: `num_features` copies of each `l <= l_max`, both parities when
    /// `parity` (NequIP's `feature_irreps_hidden`).
    ///
    /// ```
    /// use equivariant::nn::models::nequip::NequipConfig;
    /// let config = NequipConfig { num_features: 4, ..NequipConfig::new(1, 4.0) };
    /// assert_eq!(config.feature_irreps_hidden().to_string(), "4x0e+4x1e+4x0o+4x1o");
    /// ```
    pub fn feature_irreps_hidden(&self) -> Irreps {
        let parities: &[Parity] = if self.parity {
            &[Parity::Even, Parity::Odd]
        } else {
            &[Parity::Even]
        };
        Irreps::from_entries(
            parities
                .iter()
                .flat_map(|&p| {
                    (0..=self.l_max).map(move |l| MulIr::new(self.num_features, Irrep::new(l, p)))
                })
                .collect(),
        )
    }

    /// A model with these hyperparameters, parameters drawn as e3nn draws them, per-species
    /// scales 1 and shifts 0 ([`Nequip::with_scale_shift`] sets them from the data).
    ///
    /// Errors: [`Error::InvalidArgument`] for no species, no layers, no features, an
    /// `avg_num_neighbors` that is not finite and positive, and the errors of
    /// [`RadialBasisEdgeEncoding::new`].
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::nequip::NequipConfig;
    /// let model = NequipConfig { num_layers: 2, ..NequipConfig::new(2, 4.0) }.init(&Device::flex())?;
    /// assert_eq!(model.layers.len(), 2);
    /// assert!(NequipConfig::new(0, 4.0).init(&Device::flex()).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn init(&self, device: &Device) -> Result<Nequip> {
        let bad = |name, reason: String| Err(Error::InvalidArgument { name, reason });
        if self.num_types == 0 {
            return bad("num_types", "a model needs at least one species".into());
        }
        if self.num_layers == 0 || self.num_features == 0 {
            return bad(
                "num_layers",
                format!(
                    "needs at least one layer of at least one feature, got {} layers of {}",
                    self.num_layers, self.num_features
                ),
            );
        }
        if !(self.avg_num_neighbors.is_finite() && self.avg_num_neighbors > 0.0) {
            return bad(
                "avg_num_neighbors",
                format!(
                    "must be finite and positive, got {}",
                    self.avg_num_neighbors
                ),
            );
        }
        let radial =
            RadialBasisEdgeEncoding::new(self.r_max, self.num_basis, self.polynomial_cutoff_p)?;
        let harmonic_parity = if self.parity {
            Parity::Odd
        } else {
            Parity::Even
        };
        let irreps_edge_sh = Irreps::spherical_harmonics(self.l_max, harmonic_parity);
        let sh = SphericalHarmonicsPlan::new(&irreps_edge_sh, true, Normalization::Component)?;
        let scalars =
            |mul: usize| Irreps::from_entries(vec![MulIr::new(mul, Irrep::new(0, Parity::Even))]);
        let node_attr = scalars(self.num_types);
        let chemical_embedding =
            LinearConfig::new(&node_attr, &scalars(self.num_features)).init(device)?;
        let hidden = self.feature_irreps_hidden();
        let neurons = vec![self.invariant_neurons; self.invariant_layers];
        let mut irreps = scalars(self.num_features);
        let mut layers = Vec::with_capacity(self.num_layers);
        let settings = LayerSettings {
            irreps_node_attr: &node_attr,
            irreps_edge_attr: &irreps_edge_sh,
            num_basis: self.num_basis,
            neurons: &neurons,
            avg_num_neighbors: self.avg_num_neighbors,
            use_sc: self.use_sc,
            resnet: self.resnet,
        };
        let last_hidden = if self.scalar_last_layer {
            scalars(self.num_features)
        } else {
            hidden.clone()
        };
        for k in 0..self.num_layers {
            let hidden = if k + 1 == self.num_layers {
                &last_hidden
            } else {
                &hidden
            };
            let layer = ConvNetLayer::new(&irreps, hidden, &settings, device)?;
            irreps = layer.irreps_out().clone();
            layers.push(layer);
        }
        let conv_to_output_hidden =
            LinearConfig::new(&irreps, &scalars((self.num_features / 2).max(1))).init(device)?;
        let output_hidden = scalars((self.num_features / 2).max(1));
        let output_hidden_to_scalar =
            LinearConfig::new(&output_hidden, &scalars(1)).init(device)?;
        let per_type = |value: f32| {
            Param::from_tensor(Tensor::<1>::full([self.num_types], value, device))
                .set_require_grad(false)
        };
        Ok(Nequip {
            chemical_embedding,
            layers,
            conv_to_output_hidden,
            output_hidden_to_scalar,
            per_type_scales: per_type(1.0),
            per_type_shifts: per_type(0.0),
            sh: Arc::new(sh),
            radial,
            config: self.clone(),
        })
    }
}

/// NequIP's energy model: per-atom energies
/// `E_i = scale[t_i] readout(layers(embedding(onehot(t_i)), graph))_i + shift[t_i]`, summed
/// per structure. See the [module docs](self).
///
/// The model sees an edge `j -> i` as NequIP does, from the centre `i` to the neighbour `j`
/// (`pos[j] - pos[i]`, the negative of [`AtomicGraph::edge_vec`]).
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant::nn::models::nequip::NequipConfig;
/// use equivariant::potential::{AtomicGraph, Potential, Structure};
/// let device = Device::flex();
/// let model = NequipConfig { num_layers: 2, num_features: 8, ..NequipConfig::new(2, 3.0) }.init(&device)?;
/// let water = Structure {
///     positions: vec![[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]],
///     species: vec![0, 1, 1],
///     cell: None,
/// };
/// let graph = AtomicGraph::new(&[water], model.r_max(), &device, DType::F32)?;
/// let result = model.energy_forces(&graph)?;
/// assert_eq!(result.energy.dims(), [1]);
/// assert_eq!(result.forces.dims(), [3, 3]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Nequip {
    /// `Linear(num_types x 0e, num_features x 0e)` on the species one-hot.
    pub chemical_embedding: Linear,
    /// The interaction layers.
    pub layers: Vec<ConvNetLayer>,
    /// `Linear(features, max(1, num_features / 2) x 0e)`.
    pub conv_to_output_hidden: Linear,
    /// `Linear(.., 1x0e)`: the per-atom energy before scaling.
    pub output_hidden_to_scalar: Linear,
    /// The per-species scale of the atomic energies, `[num_types]` (not trained).
    pub per_type_scales: Param<Tensor<1>>,
    /// The per-species shift of the atomic energies, `[num_types]` (not trained).
    pub per_type_shifts: Param<Tensor<1>>,
    #[module(skip)]
    sh: Arc<SphericalHarmonicsPlan>,
    #[module(skip)]
    radial: RadialBasisEdgeEncoding,
    #[module(skip)]
    config: NequipConfig,
}

impl Nequip {
    /// The hyperparameters.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::nequip::NequipConfig;
    /// let config = NequipConfig { num_layers: 1, ..NequipConfig::new(1, 4.0) };
    /// assert_eq!(config.init(&Device::flex())?.config(), &config);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn config(&self) -> &NequipConfig {
        &self.config
    }

    /// The model with per-species scales and shifts of the atomic energies (NequIP fits
    /// them from the training set: the force RMS, the mean energy per atom).
    ///
    /// Errors: [`Error::ShapeMismatch`] unless both have `num_types` entries;
    /// [`Error::NonFinite`] for a value that is not finite.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::models::nequip::NequipConfig;
    /// let model = NequipConfig { num_layers: 1, ..NequipConfig::new(2, 4.0) }.init(&Device::flex())?;
    /// let model = model.with_scale_shift(&[0.5, 0.5], &[-3.5, -4.1])?;
    /// assert_eq!(model.per_type_shifts.val().into_data().try_into_vec::<f32>().unwrap(), [-3.5, -4.1]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn with_scale_shift(mut self, scales: &[f64], shifts: &[f64]) -> Result<Self> {
        let k = self.config.num_types;
        for (what, values) in [("per_type_scales", scales), ("per_type_shifts", shifts)] {
            if values.len() != k {
                return Err(Error::ShapeMismatch {
                    what,
                    expected: k,
                    got: values.len(),
                });
            }
            if let Some(index) = values.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFinite { what, index });
            }
        }
        let like = self.per_type_scales.val();
        let param = |values: &[f64]| {
            let t = Tensor::<1>::from_data(
                TensorData::new(values.to_vec(), [k]),
                (&like.device(), like.dtype()),
            );
            Param::from_tensor(t).set_require_grad(false)
        };
        self.per_type_scales = param(scales);
        self.per_type_shifts = param(shifts);
        Ok(self)
    }

    /// `Ok` when the model knows every species of `graph` and, for a domain's graph, it was
    /// cut for the model's number of layers.
    fn check_graph(&self, graph: &AtomicGraph) -> Result<()> {
        let k = self.config.num_types;
        if let Some((i, &t)) = graph.species().iter().enumerate().find(|(_, t)| **t >= k) {
            return Err(Error::InvalidArgument {
                name: "species",
                reason: format!("atom {i} has type {t}, but the model knows {k} types"),
            });
        }
        if let Some(steps) = graph.shells()
            && steps.len() != self.layers.len()
        {
            return Err(Error::InvalidArgument {
                name: "graph",
                reason: format!(
                    "a domain's graph cut for {} message-passing steps, but the model has {} layers",
                    steps.len(),
                    self.layers.len()
                ),
            });
        }
        Ok(())
    }

    /// The per-atom energies `[N, 1]` and, with a tangent `s` of the edge vectors, their
    /// tangent.
    fn atomic_energies_tangent(
        &self,
        graph: &AtomicGraph,
        edge_vec: Tensor<2>,
        s: Option<Tensor<2>>,
    ) -> Result<(Tensor<2>, Option<Tensor<2>>)> {
        self.check_graph(graph)?;
        let k = self.config.num_types;
        let n = graph.species().len();
        let (device, dtype) = (edge_vec.device(), edge_vec.dtype());
        // NequIP's edge vectors point from the centre (dst) to the neighbour (src).
        let r = edge_vec.neg();
        let s = s.map(|s| s.neg());
        let edge_attr = spherical_harmonics(&self.sh, r.clone());
        let d_edge_attr = s
            .clone()
            .map(|s| spherical_harmonics_tangent(&self.sh, r.clone(), s));
        let (emb, d_emb) = match s {
            Some(s) => {
                let (emb, d_emb) = self.radial.forward_tangent(r, s);
                (emb, Some(d_emb))
            }
            None => (self.radial.forward(r), None),
        };
        let mut onehot = vec![0.0; n * k];
        for (i, &t) in graph.species().iter().enumerate() {
            onehot[i * k + t] = 1.0;
        }
        let node_attr = Tensor::<2>::from_data(TensorData::new(onehot, [n, k]), (&device, dtype));
        let steps = graph.shells();
        let mut x = self.chemical_embedding.forward(node_attr.clone(), None)?;
        let mut dx = None;
        for (k, layer) in self.layers.iter().enumerate() {
            // A domain's layer k reads a prefix of the nodes and edges and writes a shorter
            // prefix of the nodes; a whole structure's reads and writes all.
            let (edges, inputs, outputs, e) = match steps {
                Some(steps) => {
                    let step = &steps[k];
                    let e = step.edges.num_edges();
                    (&step.edges, step.inputs, step.outputs, e)
                }
                None => (graph.edges(), n, n, graph.edges().num_edges()),
            };
            let cut = |t: &Tensor<2>| first_rows(t.clone(), e);
            let step_inputs = EdgeInputs {
                edges,
                node_attr: first_rows(node_attr.clone(), inputs),
                edge_attr: (cut(&edge_attr), d_edge_attr.as_ref().map(cut)),
                edge_embedding: (cut(&emb), d_emb.as_ref().map(cut)),
                outputs,
            };
            (x, dx) = layer.forward_tangent(x, dx, &step_inputs)?;
        }
        for linear in [&self.conv_to_output_hidden, &self.output_hidden_to_scalar] {
            (x, dx) = match dx {
                Some(d) => {
                    let (y, dy) = linear.forward_tangent(x, d, None)?;
                    (y, Some(dy))
                }
                None => (linear.forward(x, None)?, None),
            };
        }
        // The atoms the layers computed (on a domain's shells, the counted ones first); the
        // others get zero energy.
        let m = x.dims()[0];
        let types = index_tensor(&graph.species()[..m], &device);
        let per_atom =
            |p: &Param<Tensor<1>>| p.val().cast(dtype).select(0, types.clone()).reshape([m, 1]);
        let scale = per_atom(&self.per_type_scales);
        let energies = x.mul(scale.clone()).add(per_atom(&self.per_type_shifts));
        let pad = |t: Tensor<2>| {
            if m == n {
                t
            } else {
                Tensor::cat(vec![t, Tensor::zeros([n - m, 1], (&device, dtype))], 0)
            }
        };
        Ok((pad(energies), dx.map(|d| pad(d.mul(scale)))))
    }

    /// For each layer, whether its energy and forces run the radial MLP inside the
    /// convolution; `None` where they run through autodiff on `graph` (for the tests, which
    /// assert which models take which path).
    #[doc(hidden)]
    pub fn written_out_radial_layers(&self, graph: &AtomicGraph) -> Result<Option<Vec<bool>>> {
        forces::radial_layers(self, graph)
    }
}

impl Potential for Nequip {
    fn r_max(&self) -> f64 {
        self.config.r_max
    }

    fn num_types(&self) -> usize {
        self.config.num_types
    }

    fn energy(&self, graph: &AtomicGraph, edge_vec: Tensor<2>) -> Result<Tensor<1>> {
        Ok(sum_per_structure(
            graph,
            AtomicPotential::atomic_energies(self, graph, edge_vec)?,
        ))
    }

    /// The energies, forces and virials, as [`AtomicPotential::atomic_energy_forces`] of
    /// every atom.
    fn energy_forces(&self, graph: &AtomicGraph) -> Result<EnergyForces> {
        Ok(self.atomic_energy_forces(graph, None)?.energy_forces)
    }

    fn energy_tangent(
        &self,
        graph: &AtomicGraph,
        edge_vec: Tensor<2>,
        s: Tensor<2>,
    ) -> Result<(Tensor<1>, Tensor<1>)> {
        let (atomic, d_atomic) = self.atomic_energies_tangent(graph, edge_vec, Some(s))?;
        let d_atomic = d_atomic.expect("a tangent pass has tangents");
        let n = graph.species().len();
        Ok((
            sum_per_structure(graph, atomic.reshape([n])),
            d_atomic.sum(),
        ))
    }
}

impl AtomicPotential for Nequip {
    fn num_interactions(&self) -> usize {
        self.config.num_layers
    }

    /// By the model's backward written out on slices (`nequip/forces.rs`: the same values
    /// as autodiff through the burn ops, without its per-op costs), on a whole structure's
    /// graph and on a domain's shells.
    fn atomic_energy_forces(
        &self,
        graph: &AtomicGraph,
        counted: Option<&[bool]>,
    ) -> Result<AtomicEnergyForces> {
        match forces::atomic_energy_forces(self, graph, counted)? {
            Some(result) => Ok(result),
            None => atomic_energy_forces_autodiff(self, graph, counted),
        }
    }

    fn atomic_energies(&self, graph: &AtomicGraph, edge_vec: Tensor<2>) -> Result<Tensor<1>> {
        let (atomic, _) = self.atomic_energies_tangent(graph, edge_vec, None)?;
        let n = graph.species().len();
        Ok(atomic.reshape([n]))
    }
}
