//! Edges grouped by node: the compressed-sparse-row views a fused convolution walks.

use crate::{Error, Result};

/// The edges of a graph on `num_nodes` nodes, grouped by destination and by source.
///
/// `by_dst(i)` lists the edges `e` with `dst[e] = i` in increasing `e`, and `by_src(j)`
/// those with `src[e] = j`; both are built once, in `O(N + E)` (a stable counting sort, or
/// a walk over edges already in node order), and fix the order of every per-node sum.
///
/// ```
/// use equivariant_core::graph::EdgeIndex;
/// let edges = EdgeIndex::new(&[1, 0, 2, 1], &[0, 1, 1, 2], 3)?;
/// assert_eq!(edges.by_dst(1), [1, 2]);
/// assert_eq!(edges.by_src(1), [0, 3]);
/// assert!(edges.by_dst(2) == [3] && edges.num_edges() == 4);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeIndex {
    src: Vec<u32>,
    dst: Vec<u32>,
    num_nodes: usize,
    dst_offsets: Vec<usize>,
    dst_edges: Vec<u32>,
    src_offsets: Vec<usize>,
    src_edges: Vec<u32>,
}

/// Below this many edges the two directions are grouped one after the other on the calling
/// thread: a batch of a few small structures (~10^4 edges) takes tens of microseconds, less
/// than handing half of it to another thread costs. From a thread outside rayon's pool (the
/// trainer's batch builder) a join also queues the work on the pool, where it interrupts
/// the training step running there.
const PARALLEL_EDGES: usize = 1 << 16;

/// The same on a worker of rayon's pool (an MD step's graph, cut from its neighbour list at
/// every step), where a join hands half the work to a worker that is already polling: at
/// 1000 atoms (18000 edges) the index took ~150 us of a 5 ms step on one thread.
const PARALLEL_EDGES_ON_POOL: usize = 1 << 13;

/// `(a(), b())`, at once on rayon's pool when `parallel`.
fn both<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if parallel {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// `(offsets, edges)`: the edges of node `i` are `edges[offsets[i]..offsets[i + 1]]`.
fn group(nodes: &[u32], num_nodes: usize) -> (Vec<usize>, Vec<u32>) {
    // Edges already in node order (a neighbour list's destinations) are their own order,
    // and each node's first edge is found by walking them once: counting them one by one
    // would add into the same node's count edge after edge, each addition waiting on the
    // last one's store.
    if nodes.is_sorted() {
        let mut offsets = Vec::with_capacity(num_nodes + 1);
        let mut e = 0;
        for i in 0..=num_nodes as u32 {
            while e < nodes.len() && nodes[e] < i {
                e += 1;
            }
            offsets.push(e);
        }
        return (offsets, (0..nodes.len() as u32).collect());
    }
    let mut offsets = vec![0usize; num_nodes + 1];
    for &i in nodes {
        offsets[i as usize + 1] += 1;
    }
    for i in 0..num_nodes {
        offsets[i + 1] += offsets[i];
    }
    let mut next = offsets.clone();
    let mut edges = vec![0u32; nodes.len()];
    for (e, &i) in nodes.iter().enumerate() {
        edges[next[i as usize]] = e as u32;
        next[i as usize] += 1;
    }
    (offsets, edges)
}

impl EdgeIndex {
    /// Groups the edges `src[e] -> dst[e]` of a graph on `num_nodes` nodes.
    ///
    /// Errors: [`Error::ShapeMismatch`] if `src` and `dst` differ in length;
    /// [`Error::IndexOutOfRange`] for a node `>= num_nodes`; [`Error::InvalidArgument`] for
    /// more than `u32::MAX` edges or nodes.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// assert!(EdgeIndex::new(&[0], &[3], 2).is_err());
    /// assert_eq!(EdgeIndex::new(&[], &[], 5)?.by_dst(4), []);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(src: &[usize], dst: &[usize], num_nodes: usize) -> Result<Self> {
        if src.len() != dst.len() {
            return Err(Error::ShapeMismatch {
                what: "dst (as long as src)",
                expected: src.len(),
                got: dst.len(),
            });
        }
        if src.len() > u32::MAX as usize || num_nodes > u32::MAX as usize {
            return Err(Error::InvalidArgument {
                name: "src",
                reason: format!("{} edges on {num_nodes} nodes exceed u32", src.len()),
            });
        }
        // Checked first, then narrowed in a loop the compiler vectorizes (a fallible
        // collect converts one value at a time).
        let narrow = |nodes: &[usize]| -> Result<Vec<u32>> {
            if let Some(&index) = nodes.iter().find(|&&i| i >= num_nodes) {
                return Err(Error::IndexOutOfRange {
                    index,
                    len: num_nodes,
                });
            }
            Ok(nodes.iter().map(|&i| i as u32).collect())
        };
        // The two directions are independent: one thread each on a large graph.
        let parallel = src.len()
            >= match rayon::current_thread_index() {
                Some(_) => PARALLEL_EDGES_ON_POOL,
                None => PARALLEL_EDGES,
            };
        let (src, dst) = both(parallel, || narrow(src), || narrow(dst));
        let (src, dst) = (src?, dst?);
        let ((dst_offsets, dst_edges), (src_offsets, src_edges)) = both(
            parallel,
            || group(&dst, num_nodes),
            || group(&src, num_nodes),
        );
        Ok(EdgeIndex {
            src,
            dst,
            num_nodes,
            dst_offsets,
            dst_edges,
            src_offsets,
            src_edges,
        })
    }

    /// The number of nodes `N`.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// assert_eq!(EdgeIndex::new(&[0], &[1], 4)?.num_nodes(), 4);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn num_nodes(&self) -> usize {
        self.num_nodes
    }

    /// The number of edges `E`.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// assert_eq!(EdgeIndex::new(&[0, 1], &[1, 0], 2)?.num_edges(), 2);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn num_edges(&self) -> usize {
        self.src.len()
    }

    /// Source node of edge `e`.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// assert_eq!(EdgeIndex::new(&[2], &[0], 3)?.src(0), 2);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[inline]
    pub fn src(&self, e: usize) -> usize {
        self.src[e] as usize
    }

    /// Destination node of edge `e`.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// assert_eq!(EdgeIndex::new(&[2], &[0], 3)?.dst(0), 0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[inline]
    pub fn dst(&self, e: usize) -> usize {
        self.dst[e] as usize
    }

    /// The edges arriving at node `i`, in increasing order.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// assert_eq!(EdgeIndex::new(&[0, 1, 2], &[2, 2, 0], 3)?.by_dst(2), [0, 1]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[inline]
    pub fn by_dst(&self, i: usize) -> &[u32] {
        &self.dst_edges[self.dst_offsets[i]..self.dst_offsets[i + 1]]
    }

    /// The edges leaving node `j`, in increasing order.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// assert_eq!(EdgeIndex::new(&[0, 1, 0], &[2, 2, 1], 3)?.by_src(0), [0, 2]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[inline]
    pub fn by_src(&self, j: usize) -> &[u32] {
        &self.src_edges[self.src_offsets[j]..self.src_offsets[j + 1]]
    }
}
