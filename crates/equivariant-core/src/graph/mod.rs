//! Graph helpers of the convolution guide, with torch_cluster / torch_scatter semantics:
//! neighbour lists ([`radius_graph`](fn@radius_graph), optionally periodic through a [`Cell`];
//! [`radius_graph_batched`] for several structures in one graph) and
//! edge <-> node reductions ([`scatter_sum`], [`scatter_mean`], [`gather`]).
//!
//! The guide's pipeline, in this crate's terms (row-major flat buffers):
//!
//! | e3nn / PyTorch | here | shape |
//! |---|---|---|
//! | `edge_src, edge_dst = radius_graph(pos, r, max_num_neighbors=N-1)` | `let g = radius_graph(&pos, r, None, None)?` | `[E]`, `[E]` |
//! | `edge_vec = pos[edge_dst] - pos[edge_src]` | `g.edge_vec(&pos, None)?` | `[E, 3]` |
//! | `f_in[edge_src]` | `gather(&f_in, &g.src, d)?` | `[E, d]` |
//! | `scatter(x, edge_dst, dim=0, dim_size=N)` | `scatter_sum(&x, &g.dst, N, d)?` | `[N, d]` |
//!
//! ```
//! use equivariant_core::graph::{gather, radius_graph, scatter_sum};
//! // Three atoms on a line, 1 apart; cutoff 1.5: neighbours are consecutive atoms.
//! let pos = [0.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0];
//! let g = radius_graph(&pos, 1.5, None, None)?;
//! assert_eq!(g.num_edges(), 4);
//! let f_in = [1.0f32, 10.0, 100.0]; // one feature per node
//! let messages = gather(&f_in, &g.src, 1)?; // f_in[edge_src]
//! let f_out = scatter_sum(&messages, &g.dst, 3, 1)?; // sum over incoming edges
//! assert_eq!(f_out, vec![10.0, 101.0, 10.0]);
//! # Ok::<(), equivariant_core::Error>(())
//! ```

pub mod batch;
pub mod cell;
pub mod edge_index;
pub mod edge_vectors;
pub mod radius_graph;
pub mod scatter;

pub use batch::*;
pub use cell::*;
pub use edge_index::*;
pub use radius_graph::*;
pub use scatter::*;
