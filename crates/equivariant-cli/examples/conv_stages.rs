//! Where the time of the fused convolution's forward goes, stage by stage, on the guide's
//! graph: `RAYON_NUM_THREADS=2 cargo run --release -p equivariant-cli --example conv_stages
//! -- 10000`.
//!
//! Prints the median (of 9) of each stage of `nn::Convolution::forward_graph` run on its
//! own (Flex, f32, no autodiff) and of the whole call. The allocator settings are those of
//! the `equivariant` binary.

use std::sync::Arc;

use equivariant::burn::tensor::{Device, Distribution, Tensor};
use equivariant::graph::EdgeIndex;
use equivariant::math::SoftOneHotLinspace;
use equivariant::nn::ConvolutionConfig;
use equivariant::ops::{edge_vectors, fused_convolution, radial_layer};

// The binary's timing helpers; this example uses only some of them.
#[allow(dead_code)]
#[path = "../src/timing.rs"]
mod timing;

// The binary's allocator.
#[path = "../src/allocator.rs"]
mod allocator;

#[global_allocator]
static ALLOCATOR: allocator::SizeRouted = allocator::SizeRouted;

/// The median of 9 runs of `f`, after one untimed run.
fn median_ms(mut f: impl FnMut() + Send) -> f64 {
    timing::median_ms(9, 1, || {
        f();
        Ok(())
    })
    .expect("f cannot fail")
}

fn main() -> Result<(), equivariant::Error> {
    allocator::keep_freed_memory();
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let device = Device::flex();
    let conv = ConvolutionConfig::guide().init(&device)?;
    let side = (n as f64 / 100.0).cbrt();
    let pos = Tensor::<2>::random([n, 3], Distribution::Normal(0.0, side), &device);
    let f_in = Tensor::<2>::random([n, 40], Distribution::Normal(0.0, 1.0), &device);
    let graph = conv.graph(&pos)?;
    let mut stages: Vec<(&str, f64)> = Vec::new();
    let edges_of = || EdgeIndex::new(&graph.src, &graph.dst, n);
    stages.push(("EdgeIndex::new", median_ms(|| drop(edges_of()))));
    let edges = Arc::new(edges_of()?);
    stages.push((
        "edge vectors",
        median_ms(|| drop(edge_vectors(&edges, pos.clone()))),
    ));
    let ev = edge_vectors(&edges, pos.clone());
    stages.push(("harmonics", median_ms(|| drop(conv.edge_sh(ev.clone())))));
    let c = conv.config();
    let basis = SoftOneHotLinspace::new(0.0, c.max_radius, c.num_basis, c.basis, c.cutoff)?;
    let layer = Arc::new(
        conv.fc
            .first_radial_layer(&basis, (c.num_basis as f64).sqrt())
            .expect("a hidden layer"),
    );
    let hidden = || {
        let h = radial_layer(&layer, ev.clone(), conv.fc.weights[0].val());
        conv.fc.forward_hidden_after_first(h)
    };
    stages.push(("radial layers", median_ms(|| drop(hidden()))));
    let (sh, hidden) = (conv.edge_sh(ev.clone())?, hidden()?);
    let linear = conv.fc.last_linear().expect("a linear last layer");
    let z = conv.num_neighbors(graph.num_edges(), n);
    let kernel = || {
        let args = (f_in.clone(), sh.clone(), hidden.clone(), linear.clone());
        fused_convolution(
            conv.tp.plan(),
            &edges,
            args.0,
            args.1,
            args.2,
            args.3,
            1.0 / z.sqrt(),
        )
    };
    stages.push(("fused kernel", median_ms(|| drop(kernel()))));
    let whole = median_ms(|| drop(conv.forward_graph(f_in.clone(), pos.clone(), &graph)));
    println!("{n} nodes, {} edges (median of 9, ms):", graph.num_edges());
    let sum: f64 = stages.iter().map(|s| s.1).sum();
    for (name, ms) in &stages {
        println!("  {name:<16} {ms:>8.2}");
    }
    println!(
        "  {:<16} {sum:>8.2}\n  forward_graph    {whole:>8.2}",
        "sum of stages"
    );
    Ok(())
}
