//! The convolution of e3nn's convolution guide as a burn module:
//!
//! `f'_i = 1/sqrt(z) sum_{j in N(i)} f_j (x)(h(|x_ij|)) Y(x_ij / |x_ij|)`
//!
//! with `x_ij = pos[i] - pos[j]` (edge `j -> i`), `Y` the spherical harmonics, `h` a
//! [`FullyConnectedNet`] on a [`SoftOneHotLinspace`] embedding of the edge length giving
//! the per-edge weights of a fully connected tensor product, and `z` the average degree.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use equivariant_core::graph::{EdgeIndex, Graph, radius_graph};
use equivariant_core::math::{ActivationFunction, Basis, SoftOneHotLinspace};
use equivariant_core::o3::tensor_product::{TensorProductOptions, fully_connected_tensor_product};
use equivariant_core::o3::{Irreps, Normalization, Parity, SphericalHarmonicsPlan};
use equivariant_core::{Error, Result};

use super::FullyConnectedNet;
use crate::o3::TensorProduct;
use crate::ops::composed::edge_vectors_from_index;
use crate::ops::edge_vectors::edge_lengths;
use crate::ops::{
    edge_vectors, fused_convolution, fused_convolution_tangent, gather, index_tensor, radial_layer,
    scatter_sum, soft_one_hot_linspace, soft_one_hot_linspace_derivative, spherical_harmonics,
    spherical_harmonics_tangent,
};
use crate::shape::{check_dtype, check_finite, check_rows, check_shape, check_width};

/// The settings of a [`Convolution`]; [`ConvolutionConfig::guide`] gives the guide's.
///
/// ```
/// use equivariant::nn::ConvolutionConfig;
/// let config = ConvolutionConfig::guide();
/// assert_eq!(config.irreps_in.to_string(), "10x0e+10x1e");
/// assert_eq!((config.lmax, config.num_basis, config.max_radius), (2, 10, 1.8));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ConvolutionConfig {
    /// Irreps of the node input features.
    pub irreps_in: Irreps,
    /// Irreps of the node output features.
    pub irreps_out: Irreps,
    /// Degree of the edge harmonics: `Y` has irreps `0e + 1o + ... + lmax (-1)^lmax`.
    pub lmax: u32,
    /// Number of radial basis functions.
    pub num_basis: usize,
    /// The radial basis (the guide's `smooth_finite`).
    pub basis: Basis,
    /// The basis `cutoff` flag (the guide's `conv` uses `false`).
    pub cutoff: bool,
    /// Hidden widths of the radial MLP `h` (the guide's `[16]`).
    pub hidden: Vec<usize>,
    /// Activation of the radial MLP (the guide's relu), normalized as e3nn does.
    pub act: ActivationFunction,
    /// Cutoff radius of the graph and end of the radial basis.
    pub max_radius: f64,
    /// `z`, the normalization `1/sqrt(z)`; `None` takes the graph's average degree
    /// `E / N` at each call, as the guide does.
    pub num_neighbors: Option<f64>,
}

impl ConvolutionConfig {
    /// The guide's settings: `10x0e + 10x1e -> 20x0e + 10x1e`, `lmax = 2`, 10
    /// `smooth_finite` bases without cutoff, MLP `[10, 16, weight_numel]` with relu,
    /// `max_radius = 1.8`, `z` from the graph.
    ///
    /// ```
    /// use equivariant::nn::ConvolutionConfig;
    /// assert_eq!(ConvolutionConfig::guide().hidden, [16]);
    /// ```
    pub fn guide() -> Self {
        ConvolutionConfig {
            irreps_in: "10x0e + 10x1e".parse().expect("valid irreps"),
            irreps_out: "20x0e + 10x1e".parse().expect("valid irreps"),
            lmax: 2,
            num_basis: 10,
            basis: Basis::SmoothFinite,
            cutoff: false,
            hidden: vec![16],
            act: ActivationFunction::Relu,
            max_radius: 1.8,
            num_neighbors: None,
        }
    }

    /// A [`Convolution`] with these settings, its MLP weights drawn from `N(0, 1)` on
    /// `device` (e3nn's initialization).
    ///
    /// Errors: [`Error::InvalidArgument`] for a non-positive `max_radius`, `num_neighbors` or
    /// `num_basis`, or a zero hidden width; those of the tensor product when no path
    /// connects the irreps.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::ConvolutionConfig;
    /// let conv = ConvolutionConfig::guide().init(&Device::flex())?;
    /// assert_eq!(conv.tp.weight_numel(), 400);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn init(&self, device: &Device) -> Result<Convolution> {
        if !(self.max_radius.is_finite() && self.max_radius > 0.0) {
            return Err(Error::InvalidArgument {
                name: "max_radius",
                reason: format!("must be positive and finite, got {}", self.max_radius),
            });
        }
        if let Some(z) = self.num_neighbors
            && !(z.is_finite() && z > 0.0)
        {
            return Err(Error::InvalidArgument {
                name: "num_neighbors",
                reason: format!("must be positive and finite, got {z}"),
            });
        }
        let irreps_sh = Irreps::spherical_harmonics(self.lmax, Parity::Odd);
        let sh = SphericalHarmonicsPlan::new(&irreps_sh, true, Normalization::Component)?;
        let basis = SoftOneHotLinspace::new(
            0.0,
            self.max_radius,
            self.num_basis,
            self.basis,
            self.cutoff,
        )?;
        let plan = fully_connected_tensor_product(
            &self.irreps_in,
            &irreps_sh,
            &self.irreps_out,
            TensorProductOptions {
                shared_weights: false,
                ..Default::default()
            },
        )?;
        let mut hs = vec![self.num_basis];
        hs.extend(&self.hidden);
        hs.push(plan.weight_numel());
        let fc = FullyConnectedNet::new(&hs, Some(self.act), device)?;
        Ok(Convolution {
            fc,
            tp: TensorProduct::with_external_weights(plan),
            sh: Arc::new(sh),
            basis: Arc::new(basis),
            config: self.clone(),
        })
    }
}

/// The number of nodes of positions `pos`, which must be `[n, 3]`.
/// `Ok` for edge vectors `[E, 3]` without a NaN or infinite coordinate (from positions
/// that have one, or given so), which the harmonics and the radial basis reject.
fn check_edge_vectors(edge_vec: &Tensor<2>) -> Result<()> {
    check_width("edge_vec [E, 3]", edge_vec, 3)?;
    check_finite("edge_vec", edge_vec)
}

fn num_nodes(pos: &Tensor<2>) -> Result<usize> {
    check_width("pos [n, 3]", pos, 3)?;
    Ok(pos.dims()[0])
}

/// The guide's equivariant convolution, `f'_i = 1/sqrt(z) sum_{j in N(i)} f_j (x)(h(|x_ij|)) Y(x_ij / |x_ij|)`.
///
/// Trainable (the radial MLP's weights are its parameters) and differentiable with respect
/// to the node features and positions on an autodiff device.
///
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use equivariant::nn::ConvolutionConfig;
///
/// let device = Device::flex();
/// let conv = ConvolutionConfig::guide().init(&device)?;
/// let pos = Tensor::<2>::random([30, 3], Distribution::Normal(0.0, 1.0), &device);
/// let f_in = Tensor::<2>::random([30, 40], Distribution::Normal(0.0, 1.0), &device);
/// let f_out = conv.forward(f_in, pos)?;
/// assert_eq!(f_out.dims(), [30, 50]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Convolution {
    /// The radial MLP `h`: `[num_basis, hidden.., weight_numel]`.
    pub fc: FullyConnectedNet,
    /// The fully connected tensor product `irreps_in x irreps_sh -> irreps_out`, with
    /// per-edge (external) weights.
    pub tp: TensorProduct,
    #[module(skip)]
    sh: Arc<SphericalHarmonicsPlan>,
    #[module(skip)]
    basis: Arc<SoftOneHotLinspace>,
    #[module(skip)]
    config: ConvolutionConfig,
}

impl Convolution {
    /// The settings this convolution was built with.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::ConvolutionConfig;
    /// let conv = ConvolutionConfig::guide().init(&Device::flex())?;
    /// assert_eq!(conv.config().max_radius, 1.8);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn config(&self) -> &ConvolutionConfig {
        &self.config
    }

    /// The irreps of the edge harmonics, `0e + 1o + ... ` up to `lmax`.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::ConvolutionConfig;
    /// let conv = ConvolutionConfig::guide().init(&Device::flex())?;
    /// assert_eq!(conv.irreps_sh().to_string(), "1x0e+1x1o+1x2e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_sh(&self) -> &Irreps {
        self.sh.irreps_out()
    }

    /// The radius graph of `pos` (`[n, 3]`): every ordered pair closer than `max_radius`,
    /// without self loops, in the deterministic order of [`radius_graph`](fn@crate::graph::radius_graph).
    ///
    /// Errors: [`Error::ShapeMismatch`] if `pos` is not `[n, 3]`; [`Error::NonFinite`] for a
    /// NaN or infinite coordinate.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::ConvolutionConfig;
    /// let device = Device::flex();
    /// let conv = ConvolutionConfig::guide().init(&device)?;
    /// let pos = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [5.0, 0.0, 0.0]], &device);
    /// let graph = conv.graph(&pos)?;
    /// assert_eq!((graph.src, graph.dst), (vec![1, 0], vec![0, 1]));
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn graph(&self, pos: &Tensor<2>) -> Result<Graph> {
        num_nodes(pos)?;
        let pos: Vec<f64> = pos.to_data().iter::<f64>().collect();
        radius_graph(&pos, self.config.max_radius, None, None)
    }

    /// The convolution of the node features `f_in` (`[n, irreps_in.dim]`) at positions `pos`
    /// (`[n, 3]`) over their radius graph: `[n, irreps_out.dim]`.
    ///
    /// Errors: those of [`graph`](Convolution::graph) and
    /// [`forward_graph`](Convolution::forward_graph).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::ConvolutionConfig;
    /// let device = Device::flex();
    /// let conv = ConvolutionConfig::guide().init(&device)?;
    /// let pos = Tensor::<2>::from_floats([[0.0, 0.0, f32::NAN]], &device);
    /// assert!(conv.forward(Tensor::<2>::zeros([1, 40], &device), pos).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(&self, f_in: Tensor<2>, pos: Tensor<2>) -> Result<Tensor<2>> {
        let graph = self.graph(&pos)?;
        self.forward_graph(f_in, pos, &graph)
    }

    /// The convolution over a given graph (edges `graph.src[e] -> graph.dst[e]`), the edge
    /// vectors being `pos[dst] - pos[src]`.
    ///
    /// Errors: [`Error::ShapeMismatch`] if `f_in` is not `[n, irreps_in.dim]` or `pos` not
    /// `[n, 3]`; [`Error::InvalidArgument`] for an edge naming a node `>= n`;
    /// [`Error::InvalidArgument`] for a periodic graph (shifts), whose edge vectors need the
    /// cell: compute them and call [`forward_edges`](Convolution::forward_edges);
    /// [`Error::NonFinite`] for a NaN or infinite coordinate in `pos`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::graph::Graph;
    /// use equivariant::nn::ConvolutionConfig;
    /// let device = Device::flex();
    /// let conv = ConvolutionConfig::guide().init(&device)?;
    /// let pos = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], &device);
    /// let graph = Graph { src: vec![0], dst: vec![1], shift: None };
    /// let f_out = conv.forward_graph(Tensor::<2>::ones([2, 40], &device), pos, &graph)?;
    /// // Node 0 receives nothing.
    /// assert!(f_out.clone().slice([0..1]).abs().max().into_scalar::<f32>() == 0.0);
    /// assert!(f_out.slice([1..2]).abs().max().into_scalar::<f32>() > 0.0);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_graph(
        &self,
        f_in: Tensor<2>,
        pos: Tensor<2>,
        graph: &Graph,
    ) -> Result<Tensor<2>> {
        if graph.shift.is_some() {
            return Err(Error::InvalidArgument {
                name: "graph",
                reason: "a periodic graph needs its cell shifts in the edge vectors; \
                         use forward_edges"
                    .into(),
            });
        }
        let n = num_nodes(&pos)?;
        check_finite("pos", &pos)?;
        let edges = Arc::new(self.edge_index(graph, n)?);
        let edge_vec = edge_vectors(&edges, pos);
        self.convolve(f_in, edge_vec, &edges)
    }

    /// [`forward_graph`](Convolution::forward_graph) with separate ops (gather, harmonics,
    /// MLP, row tensor product, scatter), materializing the per-edge weights and messages:
    /// the guide's code, kept as the reference and the baseline of the benchmarks.
    ///
    /// Errors: as [`forward_graph`](Convolution::forward_graph).
    ///
    /// ```
    /// use burn::tensor::{Device, Distribution, Tensor};
    /// use equivariant::nn::ConvolutionConfig;
    /// let device = Device::flex();
    /// let conv = ConvolutionConfig::guide().init(&device)?;
    /// let pos = Tensor::<2>::random([20, 3], Distribution::Normal(0.0, 1.0), &device);
    /// let f_in = Tensor::<2>::random([20, 40], Distribution::Normal(0.0, 1.0), &device);
    /// let graph = conv.graph(&pos)?;
    /// let fused = conv.forward_graph(f_in.clone(), pos.clone(), &graph)?;
    /// let unfused = conv.forward_graph_unfused(f_in, pos, &graph)?;
    /// assert!(fused.sub(unfused).abs().max().into_scalar::<f32>() < 1e-4);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_graph_unfused(
        &self,
        f_in: Tensor<2>,
        pos: Tensor<2>,
        graph: &Graph,
    ) -> Result<Tensor<2>> {
        if graph.shift.is_some() {
            return self.forward_graph(f_in, pos, graph);
        }
        let n = num_nodes(&pos)?;
        check_finite("pos", &pos)?;
        self.edge_index(graph, n)?;
        let device = pos.device();
        let (src, dst) = (
            index_tensor(&graph.src, &device),
            index_tensor(&graph.dst, &device),
        );
        let edge_vec = edge_vectors_from_index(pos, src.clone(), dst.clone());
        self.check_features(&f_in)?;
        let [e, _] = edge_vec.dims();
        let sh = self.harmonics(edge_vec.clone());
        let weight = self.fc.forward(self.embedding(edge_vec))?;
        let summand = self.tp.forward(gather(f_in, src), sh, Some(weight))?;
        let z = self.num_neighbors(e, n);
        // A multiplication, not `div_scalar`: see `FullyConnectedNet::forward`.
        Ok(scatter_sum(summand, dst, n).mul_scalar(1.0 / z.sqrt()))
    }

    /// The convolution with given edge vectors `edge_vec` (`[E, 3]`, edge `e` going from
    /// `graph.src[e]` to `graph.dst[e]`), e.g. with periodic shifts added. Differentiable
    /// with respect to `f_in` and `edge_vec`.
    ///
    /// Errors: [`Error::ShapeMismatch`] if `f_in` is not `[n, irreps_in.dim]` or `edge_vec`
    /// not `[graph.num_edges(), 3]`; [`Error::InvalidArgument`] for an edge naming a node
    /// `>= n`; [`Error::NonFinite`] for a NaN or infinite edge vector.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::graph::Graph;
    /// use equivariant::nn::ConvolutionConfig;
    /// let device = Device::flex();
    /// let conv = ConvolutionConfig::guide().init(&device)?;
    /// let graph = Graph { src: vec![0, 1], dst: vec![1, 0], shift: None };
    /// let edge_vec = Tensor::<2>::from_floats([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], &device);
    /// let f_out = conv.forward_edges(Tensor::<2>::ones([2, 40], &device), edge_vec, &graph)?;
    /// assert_eq!(f_out.dims(), [2, 50]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_edges(
        &self,
        f_in: Tensor<2>,
        edge_vec: Tensor<2>,
        graph: &Graph,
    ) -> Result<Tensor<2>> {
        check_shape("edge_vec [E, 3]", &edge_vec, [graph.num_edges(), 3])?;
        check_finite("edge_vec", &edge_vec)?;
        let edges = Arc::new(self.edge_index(graph, f_in.dims()[0])?);
        self.convolve(f_in, edge_vec, &edges)
    }

    /// [`forward_edges`](Convolution::forward_edges) and its tangent: `(out, d_out)` with
    /// `d_out` the derivative of the output along the direction `tangent` of the edge
    /// vectors (`[E, 3]`) and `f_in_tangent` of the features (`None`: constant features),
    ///
    /// `d_out = conv(f_in, dY, W) + conv(f_in, Y, dW) + conv(df_in, Y, W)`,
    ///
    /// computed with the output in one call of the fused tangent convolution
    /// ([`fused_convolution_tangent`](crate::ops::fused_convolution_tangent())), with `dY =
    /// J_Y(r) t` and `dW` the radial MLP's tangent along `d emb = J_emb(r) t`. Every step is an op with a backward (`dY` and
    /// `d emb` through the harmonics' Hessian and the basis' second derivative), so `d_out`
    /// is differentiable with respect to the parameters, `f_in`, the edge vectors and the
    /// tangent.
    /// That is the forward-over-reverse route to training on forces: for an energy `E` and
    /// `t_e = v[dst_e] - v[src_e]`, `v . grad_pos E` is the tangent of `E` along `t`, and
    /// its backward gives the parameter gradient of a force loss with `v = dL/dF`.
    ///
    /// Errors: as [`forward_edges`](Convolution::forward_edges), and
    /// [`Error::ShapeMismatch`] / [`Error::NonFinite`] / [`Error::InvalidArgument`] (dtype)
    /// for a tangent that is not like `edge_vec` / `f_in`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::graph::Graph;
    /// use equivariant::nn::ConvolutionConfig;
    /// let device = Device::flex();
    /// let conv = ConvolutionConfig::guide().init(&device)?;
    /// let graph = Graph { src: vec![0, 1], dst: vec![1, 0], shift: None };
    /// let r = Tensor::<2>::from_floats([[1.0, 0.2, 0.0], [-1.0, -0.2, 0.0]], &device);
    /// let t = Tensor::<2>::from_floats([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]], &device);
    /// let f_in = Tensor::<2>::ones([2, 40], &device);
    /// let (out, d_out) = conv.forward_edges_tangent(f_in.clone(), r.clone(), t.clone(), None, &graph)?;
    /// let step = 1e-2;
    /// let plus = conv.forward_edges(f_in.clone(), r.clone().add(t.clone().mul_scalar(step)), &graph)?;
    /// let minus = conv.forward_edges(f_in, r.sub(t.mul_scalar(step)), &graph)?;
    /// let slope = plus.sub(minus).mul_scalar(0.5 / step);
    /// assert!(d_out.sub(slope).abs().max().into_scalar::<f32>() < 1e-2 * (1.0 + out.abs().max().into_scalar::<f32>()));
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_edges_tangent(
        &self,
        f_in: Tensor<2>,
        edge_vec: Tensor<2>,
        tangent: Tensor<2>,
        f_in_tangent: Option<Tensor<2>>,
        graph: &Graph,
    ) -> Result<(Tensor<2>, Tensor<2>)> {
        let e = graph.num_edges();
        check_shape("edge_vec [E, 3]", &edge_vec, [e, 3])?;
        check_shape("tangent [E, 3]", &tangent, [e, 3])?;
        check_finite("edge_vec", &edge_vec)?;
        check_finite("tangent", &tangent)?;
        check_dtype("tangent", &tangent, &edge_vec)?;
        self.check_features(&f_in)?;
        if let Some(df) = &f_in_tangent {
            check_rows("f_in_tangent [n, irreps_in.dim]", df, f_in.dims()[0])?;
            self.check_features(df)?;
            check_dtype("f_in_tangent", df, &f_in)?;
        }
        let n = f_in.dims()[0];
        let edges = Arc::new(self.edge_index(graph, n)?);
        let d_sh = spherical_harmonics_tangent(&self.sh, edge_vec.clone(), tangent.clone());
        let (emb, d_emb) = self.embedding_tangent(edge_vec.clone(), tangent);
        let (hidden, d_hidden) = self.fc.forward_hidden_tangent(emb, d_emb)?;
        let linear = self
            .fc
            .last_linear()
            .expect("the radial MLP of a Convolution ends with a linear layer");
        let sh = self.harmonics(edge_vec);
        let scale = 1.0 / self.num_neighbors(e, n).sqrt();
        let (out, d_out) = fused_convolution_tangent(
            self.tp.plan(),
            &edges,
            (f_in, f_in_tangent),
            (sh, Some(d_sh)),
            (hidden, Some(d_hidden)),
            linear,
            scale,
        );
        Ok((out, d_out))
    }

    /// [`embedding`](Convolution::edge_embedding) and its tangent along `tangent`,
    /// `d emb_e = sqrt(num_basis) basis'(|r_e|) (r_e . t_e) / |r_e|` (zero for a zero-length
    /// edge, as the length's gradient there), `[E, num_basis]` each; differentiable in both.
    fn embedding_tangent(&self, edge_vec: Tensor<2>, tangent: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let [e, _] = edge_vec.dims();
        let (length, nonzero) = edge_lengths(edge_vec.clone());
        // d|r| = (r . t) / |r|, on a safe divisor (the length is 0 only with r = 0).
        let divisor = length.clone().add(nonzero.clone().neg().add_scalar(1.0));
        let rate = edge_vec.mul(tangent).sum_dim(1).div(divisor).mul(nonzero);
        let length = length.reshape([e]);
        let d_emb = soft_one_hot_linspace_derivative(&self.basis, length.clone())
            .mul(rate)
            .mul_scalar((self.config.num_basis as f64).sqrt());
        (self.embedding_of_lengths(length), d_emb)
    }

    /// `Y(x / |x|)` of the edge vectors (`[E, 3] -> [E, irreps_sh.dim]`), component
    /// normalized: the guide's `sh`.
    ///
    /// Errors: [`Error::ShapeMismatch`] if `edge_vec` is not `[E, 3]`; [`Error::NonFinite`]
    /// for a NaN or infinite coordinate.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::ConvolutionConfig;
    /// let device = Device::flex();
    /// let conv = ConvolutionConfig::guide().init(&device)?;
    /// let y = conv.edge_sh(Tensor::<2>::from_floats([[0.0, 3.0, 0.0]], &device))?;
    /// assert_eq!(y.dims(), [1, 9]);
    /// assert!(conv.edge_sh(Tensor::<2>::from_floats([[f32::NAN, 3.0, 0.0]], &device)).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn edge_sh(&self, edge_vec: Tensor<2>) -> Result<Tensor<2>> {
        check_edge_vectors(&edge_vec)?;
        Ok(self.harmonics(edge_vec))
    }

    /// [`edge_sh`](Convolution::edge_sh) of checked edge vectors.
    fn harmonics(&self, edge_vec: Tensor<2>) -> Tensor<2> {
        spherical_harmonics(&self.sh, edge_vec)
    }

    /// The radial embedding of the edge lengths, `sqrt(num_basis) basis(|x|)`
    /// (`[E, 3] -> [E, num_basis]`): the guide's `emb`. Errors as
    /// [`edge_sh`](Convolution::edge_sh).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::ConvolutionConfig;
    /// let device = Device::flex();
    /// let conv = ConvolutionConfig::guide().init(&device)?;
    /// let emb = conv.edge_embedding(Tensor::<2>::from_floats([[0.0, 1.0, 0.0]], &device))?;
    /// assert_eq!(emb.dims(), [1, 10]);
    /// assert!(conv.edge_embedding(Tensor::<2>::ones([1, 2], &device)).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn edge_embedding(&self, edge_vec: Tensor<2>) -> Result<Tensor<2>> {
        check_edge_vectors(&edge_vec)?;
        Ok(self.embedding(edge_vec))
    }

    /// [`edge_embedding`](Convolution::edge_embedding) of checked edge vectors.
    fn embedding(&self, edge_vec: Tensor<2>) -> Tensor<2> {
        let [e, _] = edge_vec.dims();
        let (length, _) = edge_lengths(edge_vec);
        self.embedding_of_lengths(length.reshape([e]))
    }

    /// `sqrt(num_basis) basis(length)`, `[E] -> [E, num_basis]`.
    fn embedding_of_lengths(&self, length: Tensor<1>) -> Tensor<2> {
        soft_one_hot_linspace(&self.basis, length).mul_scalar((self.config.num_basis as f64).sqrt())
    }

    /// `z` for a graph of `num_edges` edges on `num_nodes` nodes: the configured value, or
    /// the average degree (1 for a graph without edges, whose output is zero anyway).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::nn::ConvolutionConfig;
    /// let conv = ConvolutionConfig::guide().init(&Device::flex())?;
    /// assert_eq!(conv.num_neighbors(300, 100), 3.0);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn num_neighbors(&self, num_edges: usize, num_nodes: usize) -> f64 {
        match self.config.num_neighbors {
            Some(z) => z,
            None if num_edges == 0 || num_nodes == 0 => 1.0,
            None => num_edges as f64 / num_nodes as f64,
        }
    }

    /// The graph's edges grouped by node, checked against `n` nodes.
    fn edge_index(&self, graph: &Graph, n: usize) -> Result<EdgeIndex> {
        EdgeIndex::new(&graph.src, &graph.dst, n).map_err(|err| match err {
            Error::IndexOutOfRange { index, .. } => Error::InvalidArgument {
                name: "graph",
                reason: format!("an edge names node {index}, but there are {n} nodes"),
            },
            other => other,
        })
    }

    /// Errors unless `f_in` is `[n, irreps_in.dim]`.
    fn check_features(&self, f_in: &Tensor<2>) -> Result<()> {
        check_width("f_in [n, irreps_in.dim]", f_in, self.config.irreps_in.dim())
    }

    /// The guide's `conv` given finite edge vectors (the callers check the positions or
    /// the given vectors, whichever is smaller; edges checked against `f_in`): harmonics
    /// and the MLP's hidden layers as separate ops, then the fused kernel with the MLP's
    /// last layer inside.
    fn convolve(
        &self,
        f_in: Tensor<2>,
        edge_vec: Tensor<2>,
        edges: &Arc<EdgeIndex>,
    ) -> Result<Tensor<2>> {
        self.check_features(&f_in)?;
        let [n, _] = f_in.dims();
        if n != edges.num_nodes() {
            return Err(Error::ShapeMismatch {
                what: "f_in [n, irreps_in.dim] (one row per node of pos)",
                expected: edges.num_nodes(),
                got: n,
            });
        }
        let sh = self.harmonics(edge_vec.clone());
        let basis_scale = (self.config.num_basis as f64).sqrt();
        // The embedding and the MLP's first layer in one op when there is a hidden layer.
        let hidden = match self.fc.first_radial_layer(&self.basis, basis_scale) {
            Some(layer) => self.fc.forward_hidden_after_first(radial_layer(
                &Arc::new(layer),
                edge_vec,
                self.fc.weights[0].val(),
            ))?,
            None => self.fc.forward_hidden(self.embedding(edge_vec))?,
        };
        let linear = self
            .fc
            .last_linear()
            .expect("the radial MLP of a Convolution ends with a linear layer");
        let z = self.num_neighbors(edges.num_edges(), n);
        Ok(fused_convolution(
            self.tp.plan(),
            edges,
            f_in,
            sh,
            hidden,
            linear,
            1.0 / z.sqrt(),
        ))
    }
}
