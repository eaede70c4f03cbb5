//! Batches of graphs: several structures side by side in one graph, torch_cluster's `batch`.

use rayon::prelude::*;

use super::cell::Cell;
use super::radius_graph::{Graph, num_atoms, radius_graph};
use crate::{Error, Real, Result};

/// A checked batch vector: which graph of a batch each node belongs to (torch_cluster's
/// `batch`), sorted, with the number of graphs.
///
/// ```
/// use equivariant_core::graph::Batch;
/// let batch = Batch::new(vec![0, 0, 1, 1, 1])?;
/// assert_eq!((batch.num_graphs(), batch.num_nodes()), (2, 5));
/// assert_eq!(batch.counts(), [2, 3]);
/// assert_eq!(Batch::single(3).index(), [0, 0, 0]);
/// assert!(Batch::new(vec![1, 0]).is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    index: Vec<usize>,
    num_graphs: usize,
}

impl Batch {
    /// The batch of the batch vector `index` (`index[i]`: the graph of node `i`).
    ///
    /// Errors: those of [`num_graphs`].
    ///
    /// ```
    /// use equivariant_core::graph::Batch;
    /// assert_eq!(Batch::new(vec![0, 2])?.num_graphs(), 3); // graph 1 is empty
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(index: Vec<usize>) -> Result<Self> {
        let num_graphs = num_graphs(&index)?;
        Ok(Batch { index, num_graphs })
    }

    /// One graph of `num_nodes` nodes.
    ///
    /// ```
    /// use equivariant_core::graph::Batch;
    /// assert_eq!(Batch::single(4).num_graphs(), 1);
    /// ```
    pub fn single(num_nodes: usize) -> Self {
        Batch {
            index: vec![0; num_nodes],
            num_graphs: 1,
        }
    }

    /// The batch vector, `[N]`.
    ///
    /// ```
    /// use equivariant_core::graph::Batch;
    /// assert_eq!(Batch::new(vec![0, 1])?.index(), [0, 1]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn index(&self) -> &[usize] {
        &self.index
    }

    /// The number of graphs (`max + 1` of the batch vector; 1 for [`Batch::single`]).
    ///
    /// ```
    /// use equivariant_core::graph::Batch;
    /// assert_eq!(Batch::new(vec![0, 0])?.num_graphs(), 1);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn num_graphs(&self) -> usize {
        self.num_graphs
    }

    /// The number of nodes `N`.
    ///
    /// ```
    /// use equivariant_core::graph::Batch;
    /// assert_eq!(Batch::single(4).num_nodes(), 4);
    /// ```
    pub fn num_nodes(&self) -> usize {
        self.index.len()
    }

    /// The number of nodes of each graph, `[num_graphs]`.
    ///
    /// ```
    /// use equivariant_core::graph::Batch;
    /// assert_eq!(Batch::new(vec![0, 2, 2])?.counts(), [1, 0, 2]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_graphs];
        for &g in &self.index {
            counts[g] += 1;
        }
        counts
    }
}

/// The number of graphs of a batch vector (`max + 1`; `0` for no nodes), after checking it:
/// one graph index per node, sorted (each graph's nodes contiguous, graphs in order).
///
/// Errors: [`Error::InvalidArgument`] for a batch vector that decreases, naming the node.
///
/// ```
/// use equivariant_core::graph::num_graphs;
/// assert_eq!(num_graphs(&[0, 0, 1, 1, 1, 3])?, 4); // graph 2 has no nodes
/// assert!(num_graphs(&[0, 1, 0]).is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn num_graphs(batch: &[usize]) -> Result<usize> {
    if let Some(i) = batch.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::InvalidArgument {
            name: "batch",
            reason: format!(
                "not sorted: node {} is in graph {} after graph {} (each graph's nodes must be contiguous, in order)",
                i + 1,
                batch[i + 1],
                batch[i]
            ),
        });
    }
    match batch.last() {
        None => Ok(0),
        Some(&last) => last.checked_add(1).ok_or_else(|| Error::InvalidArgument {
            name: "batch",
            reason: format!("graph index {last} is too large"),
        }),
    }
}

/// [`radius_graph`] of a batch of structures (torch_cluster's `radius_graph(pos, r, batch)`):
/// edges only between nodes of the same graph, each graph with its own periodic cell when
/// `cells` is given (one per graph, as the frames of a training set have).
///
/// `batch[i]` is the graph of node `i`, sorted ([`num_graphs`]). The edges of each graph are
/// those of [`radius_graph`] on its nodes, renumbered to the batch; the order is the same
/// (by `dst`, then `src`, then `shift`).
///
/// Errors: [`Error::ShapeMismatch`] if `batch` does not have one entry per node of `pos`,
/// or `cells` one per graph; [`Error::InvalidArgument`] for an unsorted `batch`; the errors
/// of [`radius_graph`].
///
/// ```
/// use equivariant_core::graph::radius_graph_batched;
/// // Two graphs of two atoms each, all four within the cutoff: no edge across graphs.
/// let pos = [0.0f64, 0.0, 0.0, 1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 1.5, 0.0, 0.0];
/// let g = radius_graph_batched(&pos, &[0, 0, 1, 1], 2.0, None, None)?;
/// assert_eq!((g.src, g.dst), (vec![1, 0, 3, 2], vec![0, 1, 2, 3]));
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn radius_graph_batched<T: Real>(
    pos: &[T],
    batch: &[usize],
    r: f64,
    max_num_neighbors: Option<usize>,
    cells: Option<&[Cell]>,
) -> Result<Graph> {
    let n = num_atoms(pos)?;
    if batch.len() != n {
        return Err(Error::ShapeMismatch {
            what: "batch (one graph index per node of pos)",
            expected: n,
            got: batch.len(),
        });
    }
    let graphs = num_graphs(batch)?;
    if let Some(cells) = cells
        && cells.len() != graphs
    {
        return Err(Error::ShapeMismatch {
            what: "cells (one per graph of batch)",
            expected: graphs,
            got: cells.len(),
        });
    }
    // Each graph's nodes, as runs of equal indices of the sorted batch (graphs without
    // nodes have no run and no edges).
    let mut runs = Vec::new();
    let mut first = 0;
    for run in batch.chunk_by(|a, b| a == b) {
        runs.push((run[0], first, first + run.len()));
        first += run.len();
    }
    let parts = runs
        .into_par_iter()
        .map(|(g, first, last)| {
            let cell = cells.map(|c| &c[g]);
            radius_graph(&pos[3 * first..3 * last], r, max_num_neighbors, cell)
                .map(|graph| (first, graph))
        })
        .collect::<Result<Vec<_>>>()?;
    let edges = parts.iter().map(|(_, g)| g.num_edges()).sum();
    let mut out = Graph {
        src: Vec::with_capacity(edges),
        dst: Vec::with_capacity(edges),
        shift: cells.map(|_| Vec::with_capacity(edges)),
    };
    for (first, graph) in parts {
        out.src.extend(graph.src.iter().map(|&i| i + first));
        out.dst.extend(graph.dst.iter().map(|&i| i + first));
        if let (Some(all), Some(shift)) = (out.shift.as_mut(), graph.shift) {
            all.extend(shift);
        }
    }
    Ok(out)
}
