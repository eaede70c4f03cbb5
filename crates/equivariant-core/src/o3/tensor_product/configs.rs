//! The tensor products of published equivariant models and benchmarks (MACE, NequIP,
//! DiffDock, e3tools, e3nn's convolution guide), by name: what `equivariant bench tp` and
//! the benchmarks run, and a starting point for users porting those models.

use super::constructors::fully_connected_tensor_product;
use super::instruction::{ConnectionMode, Instruction};
use super::plan::{TensorProductOptions, TensorProductPlan};
use crate::o3::irreps::{Irreps, MulIr};
use crate::{Error, Result};

/// The names [`benchmark_config`] knows.
pub const BENCHMARK_CONFIGS: &[&str] = &[
    "mace-large",
    "mace-medium",
    "nequip-aspirin",
    "nequip-toluene",
    "nequip-benzene",
    "nequip-water",
    "diffdock-l1",
    "diffdock-l2",
    "e3tools-conv",
    "guide",
    "roofline-l5",
    "roofline-l7",
];

/// A `uvu` tensor product with one instruction, and its own output block, for every
/// allowed `(in1, in2) -> ir` path whose `ir` appears in `filter` (MACE and NequIP
/// interaction blocks).
///
/// ```
/// use equivariant_core::o3::tensor_product::uvu_tensor_product;
/// let tp = uvu_tensor_product(&"4x0e+4x1o".parse()?, &"0e+1o".parse()?, &"0e+1o".parse()?, false)?;
/// assert_eq!(tp.irreps_out().to_string(), "4x0e+4x1o+4x1o+4x0e");
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn uvu_tensor_product(
    irreps_in1: &Irreps,
    irreps_in2: &Irreps,
    filter: &Irreps,
    shared_weights: bool,
) -> Result<TensorProductPlan> {
    let (out, instructions) = uvu_paths(irreps_in1, irreps_in2, filter);
    uvu_plan(
        irreps_in1,
        irreps_in2,
        &Irreps::from_entries(out),
        instructions,
        shared_weights,
    )
}

/// [`uvu_tensor_product`] with its output blocks sorted by irrep (not merged), as e3nn's
/// point convolutions build their `tp` (`irreps_mid, p, _ = irreps_mid.sort()`, each
/// instruction's `i_out` moved to `p[i_out]`); the weights keep the instructions' order.
///
/// ```
/// use equivariant_core::o3::tensor_product::sorted_uvu_tensor_product;
/// let tp = sorted_uvu_tensor_product(&"4x0e+4x1o".parse()?, &"0e+1o".parse()?, &"0e+1o".parse()?, false)?;
/// assert_eq!(tp.irreps_out().to_string(), "4x0e+4x0e+4x1o+4x1o");
/// assert_eq!(tp.instructions()[3].i_out, 1); // 1o x 1o -> 0e, the fourth block before sorting
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn sorted_uvu_tensor_product(
    irreps_in1: &Irreps,
    irreps_in2: &Irreps,
    filter: &Irreps,
    shared_weights: bool,
) -> Result<TensorProductPlan> {
    let (out, mut instructions) = uvu_paths(irreps_in1, irreps_in2, filter);
    let sorted = Irreps::from_entries(out).sort();
    for ins in &mut instructions {
        ins.i_out = sorted.p[ins.i_out];
    }
    uvu_plan(
        irreps_in1,
        irreps_in2,
        &sorted.irreps,
        instructions,
        shared_weights,
    )
}

/// The output blocks and instructions of [`uvu_tensor_product`], in path order.
fn uvu_paths(
    irreps_in1: &Irreps,
    irreps_in2: &Irreps,
    filter: &Irreps,
) -> (Vec<MulIr>, Vec<Instruction>) {
    let mut out = Vec::new();
    let mut instructions = Vec::new();
    for (i1, a) in irreps_in1.iter().enumerate() {
        for (i2, b) in irreps_in2.iter().enumerate() {
            for ir in a.ir.tensor_product(&b.ir) {
                if filter.contains(&ir) {
                    instructions.push(Instruction::new(
                        i1,
                        i2,
                        out.len(),
                        ConnectionMode::Uvu,
                        true,
                    ));
                    out.push(MulIr::new(a.mul, ir));
                }
            }
        }
    }
    (out, instructions)
}

/// The plan of a `uvu` product with e3nn's default normalization.
fn uvu_plan(
    irreps_in1: &Irreps,
    irreps_in2: &Irreps,
    irreps_out: &Irreps,
    instructions: Vec<Instruction>,
    shared_weights: bool,
) -> Result<TensorProductPlan> {
    let options = TensorProductOptions {
        shared_weights,
        ..Default::default()
    };
    TensorProductPlan::build(
        "TensorProduct",
        irreps_in1,
        irreps_in2,
        irreps_out,
        instructions,
        options,
    )
}

/// The named configuration of `../shared/benchmarks.md`, with per-row weights
/// (`shared_weights = false`, one weight vector per edge).
///
/// ```
/// use equivariant_core::o3::tensor_product::benchmark_config;
/// let tp = benchmark_config("guide")?;
/// assert_eq!(tp.weight_numel(), 400);
/// assert!(benchmark_config("nope").is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn benchmark_config(name: &str) -> Result<TensorProductPlan> {
    let i = |s: &str| s.parse::<Irreps>();
    let per_row = TensorProductOptions {
        shared_weights: false,
        ..Default::default()
    };
    let nequip = |in1: &str, in2: &str| -> Result<TensorProductPlan> {
        let in1 = i(in1)?;
        uvu_tensor_product(&in1, &i(in2)?, &in1, false)
    };
    let diffdock = |in2: &str| -> Result<TensorProductPlan> {
        let in1 = i("10x1o+10x1e+48x0e+48x0o")?;
        fully_connected_tensor_product(&in1, &i(in2)?, &in1, per_row.clone())
    };
    match name {
        "mace-large" => uvu_tensor_product(
            &i("128x0e+128x1o+128x2e")?,
            &i("1x0e+1x1o+1x2e+1x3o")?,
            &i("128x0e+128x1o+128x2e+128x3o")?,
            false,
        ),
        "mace-medium" => uvu_tensor_product(
            &i("128x0e+128x1o")?,
            &i("1x0e+1x1o+1x2e+1x3o")?,
            &i("128x0e+128x1o+128x2e")?,
            false,
        ),
        "nequip-aspirin" => nequip("64x0o+64x0e+64x1o+64x1e", "0e+1o"),
        "nequip-toluene" => nequip("64x0o+64x0e+64x1o+64x1e+64x2o+64x2e", "0e+1o+2e"),
        "nequip-benzene" => nequip(
            "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e+64x3o+64x3e",
            "0e+1o+2e+3o",
        ),
        "nequip-water" => nequip("32x0o+32x0e+32x1o+32x1e", "0e+1o"),
        "diffdock-l1" => diffdock("1x0e+1x1o"),
        "diffdock-l2" => diffdock("1x0e+1x1o+1x2e"),
        "e3tools-conv" => fully_connected_tensor_product(
            &i("64x0e+16x1o")?,
            &i("1x0e+1x1o")?,
            &i("80x0e+16x1o")?,
            per_row,
        ),
        "guide" => fully_connected_tensor_product(
            &i("10x0e+10x1e")?,
            &i("1x0e+1x1o+1x2e")?,
            &i("20x0e+10x1e")?,
            per_row,
        ),
        "roofline-l5" => uvu_tensor_product(&i("128x5e")?, &i("1x3e")?, &i("128x5e")?, false),
        "roofline-l7" => uvu_tensor_product(&i("128x7e")?, &i("1x7e")?, &i("128x7e")?, false),
        _ => Err(Error::InvalidArgument {
            name: "config",
            reason: format!(
                "unknown configuration {name:?}; known: {}",
                BENCHMARK_CONFIGS.join(", ")
            ),
        }),
    }
}
