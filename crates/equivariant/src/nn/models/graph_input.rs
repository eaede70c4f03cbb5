//! What e3nn's gate-points networks compute from positions before their layers: the graph
//! (radius-built per graph of a batch, or given), the edge vectors `pos[src] - pos[dst]`,
//! their harmonics and length embedding; and the pooling per graph after them.

use std::sync::Arc;

use burn::tensor::Tensor;
use equivariant_core::graph::{EdgeIndex, Graph, num_graphs, radius_graph_batched};
use equivariant_core::math::{Basis, SoftOneHotLinspace};
use equivariant_core::o3::{Irreps, Normalization, SphericalHarmonicsPlan};
use equivariant_core::{Error, Result};

use crate::ops::edge_vectors::edge_lengths;
use crate::ops::{
    edge_vectors, index_tensor, scatter_sum, soft_one_hot_linspace, spherical_harmonics,
};
use crate::shape::{check_finite, check_width};

/// The graph of a forward call: edges grouped by node, and the batch vector.
pub(super) struct GraphInput {
    pub edges: Arc<EdgeIndex>,
    /// `pos[src] - pos[dst]` (e3nn's models' convention), `[E, 3]`, differentiable in `pos`.
    pub edge_vec: Tensor<2>,
    pub batch: Vec<usize>,
    pub num_graphs: usize,
}

impl GraphInput {
    /// The radius graph of `pos` (`[N, 3]`) at `max_radius`, per graph of `batch` (one
    /// graph when `None`), or the given `graph`.
    ///
    /// Errors: [`Error::ShapeMismatch`] for `pos` not `[N, 3]` or a batch of another
    /// length; [`Error::NonFinite`] for a NaN or infinite position; [`Error::InvalidArgument`]
    /// for an unsorted batch or a graph naming a node past `N`.
    pub fn new(
        pos: &Tensor<2>,
        batch: Option<&[usize]>,
        graph: Option<&Graph>,
        max_radius: f64,
    ) -> Result<Self> {
        check_width("pos [N, 3]", pos, 3)?;
        check_finite("pos", pos)?;
        let n = pos.dims()[0];
        let batch = match batch {
            Some(batch) => batch.to_vec(),
            None => vec![0; n],
        };
        if batch.len() != n {
            return Err(Error::ShapeMismatch {
                what: "batch (one graph index per node of pos)",
                expected: n,
                got: batch.len(),
            });
        }
        let num_graphs = num_graphs(&batch)?;
        let built;
        let graph = match graph {
            Some(graph) => graph,
            None => {
                let host: Vec<f64> = pos.to_data().iter::<f64>().collect();
                built = radius_graph_batched(&host, &batch, max_radius, None, None)?;
                &built
            }
        };
        let edges = EdgeIndex::new(&graph.src, &graph.dst, n).map_err(|err| match err {
            Error::IndexOutOfRange { index, .. } => Error::InvalidArgument {
                name: "graph",
                reason: format!("an edge names node {index}, but there are {n} nodes"),
            },
            other => other,
        })?;
        let edges = Arc::new(edges);
        // ops::edge_vectors is pos[dst] - pos[src]; the models use the opposite.
        let edge_vec = edge_vectors(&edges, pos.clone()).neg();
        Ok(GraphInput {
            edges,
            edge_vec,
            batch,
            num_graphs,
        })
    }

    /// e3nn's `scatter(x, batch, int(batch.max()) + 1).div(num_nodes**0.5)`: the node rows
    /// summed per graph, `[num_graphs, d]`.
    pub fn pool(&self, x: Tensor<2>, num_nodes: f64) -> Tensor<2> {
        let index = index_tensor(&self.batch, &x.device());
        // A multiplication, not `div_scalar`, whose backward rounds the divisor to f32.
        scatter_sum(x, index, self.num_graphs).mul_scalar(1.0 / num_nodes.sqrt())
    }
}

/// The edge features of the gate-points networks: spherical harmonics of the edge vectors
/// (normalized, component normalization) and `sqrt(number) basis(|r|)`.
#[derive(Debug, Clone)]
pub(super) struct EdgeFeatures {
    sh: Arc<SphericalHarmonicsPlan>,
    basis: Arc<SoftOneHotLinspace>,
}

impl EdgeFeatures {
    /// Harmonics of `irreps_sh`; `number` bases of kind `basis` on `[0, max_radius]`.
    pub fn new(
        irreps_sh: &Irreps,
        max_radius: f64,
        number: usize,
        basis: Basis,
        cutoff: bool,
    ) -> Result<Self> {
        if !(max_radius.is_finite() && max_radius > 0.0) {
            return Err(Error::InvalidArgument {
                name: "max_radius",
                reason: format!("must be positive and finite, got {max_radius}"),
            });
        }
        Ok(EdgeFeatures {
            sh: Arc::new(SphericalHarmonicsPlan::new(
                irreps_sh,
                true,
                Normalization::Component,
            )?),
            basis: Arc::new(SoftOneHotLinspace::new(
                0.0, max_radius, number, basis, cutoff,
            )?),
        })
    }

    /// `Y(r / |r|)`, `[E, irreps_sh.dim]`.
    pub fn sh(&self, edge_vec: Tensor<2>) -> Tensor<2> {
        spherical_harmonics(&self.sh, edge_vec)
    }

    /// `|r|`, `[E]`.
    pub fn lengths(&self, edge_vec: Tensor<2>) -> Tensor<1> {
        let [e, _] = edge_vec.dims();
        edge_lengths(edge_vec).0.reshape([e])
    }

    /// `sqrt(number) basis(length)`, `[E, number]`.
    pub fn embedding(&self, length: Tensor<1>) -> Tensor<2> {
        let number = self.basis.number() as f64;
        soft_one_hot_linspace(&self.basis, length).mul_scalar(number.sqrt())
    }
}
