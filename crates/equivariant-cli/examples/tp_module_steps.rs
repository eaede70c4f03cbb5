//! Where the time of a tensor-product module's forward + backward goes, step by step:
//! `RAYON_NUM_THREADS=2 cargo run --release -p equivariant-cli --example tp_module_steps -- mace-medium`.
//!
//! Prints the median (of 9) of: the module's forward on an autodiff device; the loss
//! `out.powi_scalar(2).sum()` with its backward (the benchmark protocol); and the loss
//! `out.sum()` (no `powi`), whose backward seeds the op with ones. The allocator settings
//! are those of the `equivariant` binary.

use equivariant::burn::tensor::{DType, Device, Distribution, Tensor};
use equivariant::o3::TensorProduct;
use equivariant::o3::tensor_product::benchmark_config;

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
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mace-medium".into());
    let plan = benchmark_config(&name)?;
    let batch = 10_000;
    let device = Device::flex().autodiff();
    let random = |width: usize| {
        Tensor::<2>::random(
            [batch, width],
            Distribution::Normal(0.0, 1.0),
            (&device, DType::F32),
        )
        .require_grad()
    };
    let x1 = random(plan.irreps_in1().dim());
    let x2 = random(plan.irreps_in2().dim());
    let w = random(plan.weight_numel());
    let tp = TensorProduct::with_external_weights(plan);
    let forward = || tp.forward(x1.clone(), x2.clone(), Some(w.clone()));
    forward()?;
    let fwd = median_ms(|| drop(forward()));
    let squares = median_ms(|| drop(forward().map(|y| y.powi_scalar(2).sum().backward())));
    let sum = median_ms(|| drop(forward().map(|y| y.sum().backward())));
    println!(
        "{name}: forward {fwd:.1} ms; forward + backward of sum(out^2) {squares:.1} ms; of sum(out) {sum:.1} ms"
    );
    Ok(())
}
