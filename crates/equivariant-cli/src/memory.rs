//! How much memory `equivariant guide` needs, estimated from the node and edge counts,
//! and the budget it is held against, so that a large graph is refused or a stage skipped
//! with a message instead of the process being killed by the OOM killer.
//!
//! The guide holds per-edge data in three ways:
//!
//! - the story (`sh`, the embedding, the `[E, weight_numel]` weights, the summand) runs
//!   over chunks of edges and only accumulates statistics, so it holds one chunk at a time
//!   beside the graph;
//! - the fused convolution (`conv.forward`, the equivariance check and the last timing)
//!   holds the graph, its edge index, the edge vectors, the harmonics and the MLP's hidden
//!   activations, but no per-edge weight or message;
//! - the timing breakdown of the guide's last cell runs the unfused stages on the whole
//!   graph, holding every per-edge tensor at once (the weights alone are `400 x 4 B` per
//!   edge in the guide).
//!
//! Each estimate is the peak of the whole process's data: [`BASE`] plus per-node and
//! per-edge bytes counted from the tensors each stage keeps alive, times [`SLACK`] for the
//! allocator (the binary keeps freed memory in its heap, see `allocator::keep_freed_memory`,
//! so a freed block is reused only by requests that fit in it).
//!
//! Measured peaks (maximum resident set, debug build, 2 threads) against these estimates:
//! the breakdown 1.87 GB at 10 000 nodes (542 750 edges) and 3.74 GB at 20 000 nodes
//! (1 091 028 edges), 3.4 kB per edge where the tensors it keeps alive count 2.3 kB (the
//! estimate adds one more `[E, weight_numel]` buffer for the difference, then the slack:
//! 4.9 kB); the story on one chunk of all 542 750 edges 2.72 GB, 5.0 kB per edge against
//! 7.1 kB estimated; the fused convolution with small chunks 0.21 GB at 20 000 nodes,
//! about 150 B per edge against 290 B estimated; 23 MB for a graph without edges.

use equivariant::nn::ConvolutionConfig;

/// Bytes in a MiB.
const MIB: u64 = 1 << 20;

/// Everything that does not grow with the graph: the binary, the model and its plan,
/// thread stacks, the allocator's own use, the pictures (23 MB measured in all).
const BASE: u64 = 32 * MIB;

/// Headroom on the counted bytes, as a fraction `SLACK.0 / SLACK.1`, for allocator
/// fragmentation and temporaries not counted.
const SLACK: (u64, u64) = (5, 4);

/// Bytes of the scalar types the guide's per-edge data is made of.
const F32: u64 = 4;
const F64: u64 = 8;
const U32: u64 = 4;
const I64: u64 = 8;
const USIZE: u64 = 8;

/// The memory the guide may use, in bytes, and where that number comes from.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The budget in bytes.
    pub bytes: u64,
    /// Where it comes from, for the messages: `MemAvailable` or the command-line flag.
    pub source: &'static str,
}

impl Budget {
    /// `--memory-budget-mib` when given, else `MemAvailable` of `/proc/meminfo` (read
    /// now, before the guide allocates); `None` where neither is known (no limit).
    pub fn new(flag_mib: Option<u64>) -> Option<Self> {
        match flag_mib {
            Some(mib) => Some(Budget {
                bytes: mib.saturating_mul(MIB),
                source: "--memory-budget-mib",
            }),
            None => mem_available().map(|bytes| Budget {
                bytes,
                source: "MemAvailable in /proc/meminfo",
            }),
        }
    }
}

/// `MemAvailable` of `/proc/meminfo` in bytes: memory that can be allocated without
/// swapping; `None` off Linux or when it cannot be read.
fn mem_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// `bytes` in MiB, rounded up, for the messages.
pub fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

/// The widths the guide's tensors are made of, from its configuration.
#[derive(Debug, Clone, Copy)]
pub struct Widths {
    /// `irreps_in.dim`: node input features.
    pub input: u64,
    /// `irreps_out.dim`: node output features and summands.
    pub output: u64,
    /// `irreps_sh.dim`: edge harmonics.
    pub sh: u64,
    /// `num_basis`: the edge length embedding.
    pub basis: u64,
    /// The sum of the radial MLP's hidden widths.
    pub hidden: u64,
    /// `weight_numel`: per-edge tensor product weights.
    pub weights: u64,
}

impl Widths {
    /// The widths of `config`'s convolution, whose tensor product has `weight_numel`
    /// weights and whose harmonics are `sh_dim` wide.
    pub fn new(config: &ConvolutionConfig, sh_dim: usize, weight_numel: usize) -> Self {
        Widths {
            input: config.irreps_in.dim() as u64,
            output: config.irreps_out.dim() as u64,
            sh: sh_dim as u64,
            basis: config.num_basis as u64,
            hidden: config.hidden.iter().sum::<usize>() as u64,
            weights: weight_numel as u64,
        }
    }

    /// Bytes per node, the same in every stage: positions (f32, and f64 in the radius
    /// graph), `f_in` and its rotated copy, `f_out` and the equivariance check's two
    /// outputs (and a product, and their f64 copies), the edge index's two offset arrays,
    /// and the radius graph's per-atom cell data (about 64 B).
    fn per_node(&self) -> u64 {
        F32 * (3 + 2 * self.input + 4 * self.output) + F64 * (3 + 2 * self.output) + 2 * USIZE + 64
    }

    /// Bytes per edge of one unfused pass that keeps everything it computes (the guide's
    /// code, as the timing breakdown runs it): its own radius graph (`src`, `dst` as
    /// usize, and the u32 neighbour lists they are assembled from), the index tensors
    /// (i64), the edge vectors and the two gathers they are the difference of, `sh`, the
    /// embedding, the MLP's hidden layers (product, activation, scaled), the weights,
    /// the gathered inputs and the summand; and a second weights-sized buffer, what the
    /// measured peak holds beyond these (see the module docs).
    fn unfused_per_edge(&self) -> u64 {
        2 * USIZE
            + 2 * U32
            + 2 * I64
            + F32
                * (3 * 3
                    + self.sh
                    + self.basis
                    + 3 * self.hidden
                    + 2 * self.weights
                    + self.input
                    + self.output)
    }

    /// Bytes per edge of one edge of a story chunk: the unfused pass on the chunk's edges
    /// (but no graph of its own), plus the copy of the weights the statistics read and
    /// the squares of the widest tensor a second moment is taken of.
    fn story_per_edge(&self) -> u64 {
        self.unfused_per_edge() - 2 * USIZE - 2 * U32
            + F32 * (self.weights + self.output.max(self.sh).max(self.basis))
    }

    /// Bytes per edge of one fused `conv.forward`: its own radius graph (as in
    /// [`unfused_per_edge`](Widths::unfused_per_edge)), the edge index (four u32 arrays),
    /// the edge vectors, the harmonics and the MLP's hidden activations (the radial
    /// layer's output and the next layer's).
    fn fused_per_edge(&self) -> u64 {
        2 * USIZE + 2 * U32 + 4 * U32 + F32 * (3 + self.sh + 2 * self.hidden)
    }
}

/// The guide's peak memory, in bytes, per part; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    /// The story, over chunks of edges.
    pub story: u64,
    /// The fused convolution (equivariance check and fused timing).
    pub fused: u64,
    /// The timing breakdown's unfused stages on the whole graph.
    pub breakdown: u64,
}

impl Estimate {
    /// The estimates for `nodes` nodes and `edges` edges, the story taking
    /// `chunk_edges` edges at a time. The guide's own graph (`src`, `dst` as usize) is
    /// held throughout.
    pub fn new(widths: &Widths, nodes: usize, edges: usize, chunk_edges: usize) -> Self {
        // u128: no product of counts and widths can overflow.
        let (n, e) = (nodes as u128, edges as u128);
        let chunk = edges.min(chunk_edges) as u128;
        let held = BASE as u128 + n * widths.per_node() as u128 + e * (2 * USIZE) as u128;
        let with_slack = |per_edge: u128| {
            let bytes = (held + per_edge) * SLACK.0 as u128 / SLACK.1 as u128;
            u64::try_from(bytes).unwrap_or(u64::MAX)
        };
        Estimate {
            story: with_slack(chunk * widths.story_per_edge() as u128),
            fused: with_slack(e * widths.fused_per_edge() as u128),
            breakdown: with_slack(e * widths.unfused_per_edge() as u128),
        }
    }

    /// What the guide cannot do without: the story and the fused convolution.
    pub fn required(&self) -> u64 {
        self.story.max(self.fused)
    }
}

/// An upper bound on the expected edge count of the guide's random graph, for a check
/// before the radius graph is built (the graph itself holds 16 B per edge): `n (n - 1)`
/// times the probability that two nodes are closer than `radius`. The difference of two
/// positions `randn * s`, `s = (n / 100)^(1/3)`, is normal with variance `2 s^2` per axis,
/// whose density is at most `(4 pi s^2)^(-3/2)`, so that probability is at most
/// `(4/3 pi r^3) / (4 pi s^2)^(3/2)`: about 55 neighbours per node at the guide's radius,
/// exact for large graphs (54.5 measured at 200 000 nodes), an overestimate for small ones
/// (54 against 36 at 100 nodes).
pub fn expected_edges_bound(nodes: usize, radius: f64) -> usize {
    let n = nodes as f64;
    let s2 = (n / 100.0).cbrt().powi(2);
    let ball = 4.0 / 3.0 * std::f64::consts::PI * radius.powi(3);
    let p = (ball / (4.0 * std::f64::consts::PI * s2).powf(1.5)).min(1.0);
    // `as` saturates: a bound past usize::MAX is usize::MAX.
    (n * (n - 1.0) * p).ceil() as usize
}

/// The largest node count, at most `nodes`, whose `part` of the estimate fits in
/// `budget` bytes, the edges scaled in proportion (`edges * n / nodes`: at the guide's
/// density the average degree only grows with the node count, so this errs on the side
/// of fitting fewer); `None` if not even 2 nodes fit.
pub fn largest_fitting(
    widths: &Widths,
    nodes: usize,
    edges: usize,
    chunk_edges: usize,
    budget: u64,
    part: impl Fn(&Estimate) -> u64,
) -> Option<usize> {
    let fits = |n: usize| {
        let e = (edges as u128 * n as u128 / nodes.max(1) as u128) as usize;
        part(&Estimate::new(widths, n, e, chunk_edges)) <= budget
    };
    if !fits(2) {
        return None;
    }
    // Binary search: the estimate grows with n.
    let (mut lo, mut hi) = (2, nodes.max(2));
    if fits(hi) {
        return Some(hi);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}
