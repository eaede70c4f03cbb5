//! The tensor products e3nn users know by name, built as [`TensorProductPlan`]s.

use super::instruction::{ConnectionMode, Instruction};
use super::plan::{TensorProductOptions, TensorProductPlan};
use crate::Result;
use crate::o3::irreps::{Irrep, Irreps, MulIr};

/// Whether `ir` passes the optional output filter (any entry of `filter`, whatever its
/// multiplicity).
fn allowed(filter: Option<&Irreps>, ir: &Irrep) -> bool {
    filter.is_none_or(|f| f.iter().any(|m| m.ir == *ir))
}

/// e3nn's `tp_path_exists`: whether some irrep of `irreps_in1` times some irrep of
/// `irreps_in2` contains `ir_out` (multiplicities ignored, as after `simplify`).
///
/// ```
/// use equivariant_core::o3::tensor_product::tp_path_exists;
/// let (a, b) = ("2x0e + 1o".parse()?, "0e + 1o".parse()?);
/// assert!(tp_path_exists(&a, &b, &"1e".parse()?)); // 1o x 1o
/// assert!(!tp_path_exists(&a, &b, &"2o".parse()?));
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn tp_path_exists(irreps_in1: &Irreps, irreps_in2: &Irreps, ir_out: &Irrep) -> bool {
    irreps_in1.iter().any(|a| {
        irreps_in2
            .iter()
            .any(|b| a.ir.tensor_product(&b.ir).any(|ir| ir == *ir_out))
    })
}

/// e3nn's `FullyConnectedTensorProduct`: every allowed path `(i1, i2) -> i_out` in mode
/// `uvw`, all weighted: `z_w = sum_{u,v} W_{uvw} x_u (x) y_v + ...`.
///
/// ```
/// use equivariant_core::o3::tensor_product::{fully_connected_tensor_product, TensorProductOptions};
/// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
/// let tp = fully_connected_tensor_product(
///     &"10x0e + 10x1e".parse()?, &"0e + 1o + 2e".parse()?, &"20x0e + 10x1e".parse()?, options)?;
/// assert_eq!(tp.weight_numel(), 400);
/// assert_eq!(tp.instructions().len(), 3); // the l = 1 harmonic breaks parity: unused
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn fully_connected_tensor_product(
    irreps_in1: &Irreps,
    irreps_in2: &Irreps,
    irreps_out: &Irreps,
    options: TensorProductOptions,
) -> Result<TensorProductPlan> {
    let mut instructions = Vec::new();
    for (i1, a) in irreps_in1.iter().enumerate() {
        for (i2, b) in irreps_in2.iter().enumerate() {
            for (i_out, c) in irreps_out.iter().enumerate() {
                if a.ir.tensor_product(&b.ir).any(|ir| ir == c.ir) {
                    instructions.push(Instruction::new(i1, i2, i_out, ConnectionMode::Uvw, true));
                }
            }
        }
    }
    TensorProductPlan::build(
        "FullyConnectedTensorProduct",
        irreps_in1,
        irreps_in2,
        irreps_out,
        instructions,
        options,
    )
}

/// e3nn's `FullTensorProduct`: `z_{uv} = x_u (x) y_v` for every pair of channels and every
/// allowed output irrep (passing `filter_ir_out`), no weights, mode `uvuv`. The inputs are
/// simplified first and the outputs sorted.
///
/// ```
/// use equivariant_core::o3::tensor_product::full_tensor_product;
/// let tp = full_tensor_product(&"2x1o".parse()?, &"1o".parse()?, None, Default::default())?;
/// assert_eq!(tp.irreps_out().to_string(), "2x0e+2x1e+2x2e");
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn full_tensor_product(
    irreps_in1: &Irreps,
    irreps_in2: &Irreps,
    filter_ir_out: Option<&Irreps>,
    options: TensorProductOptions,
) -> Result<TensorProductPlan> {
    let (in1, in2) = (irreps_in1.simplify(), irreps_in2.simplify());
    let mut out = Vec::new();
    let mut instructions = Vec::new();
    for (i1, a) in in1.iter().enumerate() {
        for (i2, b) in in2.iter().enumerate() {
            for ir in a.ir.tensor_product(&b.ir) {
                if allowed(filter_ir_out, &ir) {
                    instructions.push(Instruction::new(
                        i1,
                        i2,
                        out.len(),
                        ConnectionMode::Uvuv,
                        false,
                    ));
                    out.push(MulIr::new(a.mul * b.mul, ir));
                }
            }
        }
    }
    let sorted = Irreps::from_entries(out).sort();
    for ins in &mut instructions {
        ins.i_out = sorted.p[ins.i_out];
    }
    TensorProductPlan::build(
        "FullTensorProduct",
        &in1,
        &in2,
        &sorted.irreps,
        instructions,
        options,
    )
}

/// e3nn's `ElementwiseTensorProduct`: `z_u = x_u (x) y_u` channel by channel, no weights,
/// mode `uuu`. Both inputs are simplified, then entries are split so multiplicities pair up;
/// they must have the same number of irreps.
///
/// ```
/// use equivariant_core::o3::tensor_product::elementwise_tensor_product;
/// let tp = elementwise_tensor_product(&"5x1o+5x1e".parse()?, &"10x1e".parse()?, Some(&"0e+0o".parse()?), Default::default())?;
/// assert_eq!(tp.to_string(), "ElementwiseTensorProduct(5x1o+5x1e x 10x1e -> 5x0o+5x0e | 10 paths | 0 weights)");
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn elementwise_tensor_product(
    irreps_in1: &Irreps,
    irreps_in2: &Irreps,
    filter_ir_out: Option<&Irreps>,
    options: TensorProductOptions,
) -> Result<TensorProductPlan> {
    let mut in1: Vec<MulIr> = irreps_in1.simplify().entries().to_vec();
    let mut in2: Vec<MulIr> = irreps_in2.simplify().entries().to_vec();
    let (n1, n2) = (irreps_in1.num_irreps(), irreps_in2.num_irreps());
    if n1 != n2 {
        return Err(crate::Error::InvalidArgument {
            name: "irreps_in2",
            reason: format!("{irreps_in1} has {n1} irreps but {irreps_in2} has {n2}"),
        });
    }
    let mut i = 0;
    while i < in1.len() && i < in2.len() {
        let (a, b) = (in1[i], in2[i]);
        if a.mul < b.mul {
            in2[i].mul = a.mul;
            in2.insert(i + 1, MulIr::new(b.mul - a.mul, b.ir));
        } else if b.mul < a.mul {
            in1[i].mul = b.mul;
            in1.insert(i + 1, MulIr::new(a.mul - b.mul, a.ir));
        }
        i += 1;
    }
    let mut out = Vec::new();
    let mut instructions = Vec::new();
    for (i, (a, b)) in in1.iter().zip(&in2).enumerate() {
        for ir in a.ir.tensor_product(&b.ir) {
            if allowed(filter_ir_out, &ir) {
                instructions.push(Instruction::new(
                    i,
                    i,
                    out.len(),
                    ConnectionMode::Uuu,
                    false,
                ));
                out.push(MulIr::new(a.mul, ir));
            }
        }
    }
    TensorProductPlan::build(
        "ElementwiseTensorProduct",
        &Irreps::from_entries(in1),
        &Irreps::from_entries(in2),
        &Irreps::from_entries(out),
        instructions,
        options,
    )
}

/// e3nn's `TensorSquare`: the products of `x` with itself without the redundant half.
///
/// The input is simplified. Pairs of entries `i1 < i2` get a `uvuv` path (`uvw` with
/// weights when `irreps_out` is given); an entry with itself gets `uvu<v` (`u<vw`) over
/// channel pairs `u < v` when `mul > 1`, and for even output degrees a `uuu` (`uuw`) path
/// for the squares `u = v`, each with its own normalization (e3nn's `_square_instructions_*`).
/// Without `irreps_out` the outputs are sorted, not simplified. Call it with `x` as both
/// inputs; the gradient with respect to `x` is the sum of the two input gradients.
/// Giving both `irreps_out` and `filter_ir_out` is an error.
///
/// ```
/// use equivariant_core::o3::tensor_product::tensor_square;
/// let ts = tensor_square(&"2x1o".parse()?, None, None, Default::default())?;
/// assert_eq!(ts.irreps_out().to_string(), "1x0e+2x0e+1x1e+1x2e+2x2e");
/// assert_eq!(ts.weight_numel(), 0);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn tensor_square(
    irreps_in: &Irreps,
    irreps_out: Option<&Irreps>,
    filter_ir_out: Option<&Irreps>,
    options: TensorProductOptions,
) -> Result<TensorProductPlan> {
    use super::instruction::IrrepNormalization;
    let norm = options.irrep_normalization;
    let irreps_in = irreps_in.simplify();
    // The normalization of a path, and of the squares u = v into an even degree.
    let alpha = |d1: usize, d2: usize, d_out: usize| match norm {
        IrrepNormalization::Component => d_out as f64,
        IrrepNormalization::Norm => (d1 * d2) as f64,
        IrrepNormalization::None => 1.0,
    };
    let alpha_square = |d1: usize, l_out: u32, d_out: usize| match (norm, l_out) {
        (IrrepNormalization::Component, 0) => d_out as f64 / (d1 + 2) as f64,
        (IrrepNormalization::Component, _) => d_out as f64 / 2.0,
        (IrrepNormalization::Norm, 0) => (d_out * d1) as f64,
        (IrrepNormalization::Norm, _) => (d1 * (d1 + 2)) as f64 / 2.0,
        (IrrepNormalization::None, _) => 1.0,
    };
    let mut instructions = Vec::new();
    let irreps_out = match irreps_out {
        Some(given) => {
            if filter_ir_out.is_some() {
                return Err(crate::Error::InvalidArgument {
                    name: "filter_ir_out",
                    reason: "give irreps_out or filter_ir_out, not both".into(),
                });
            }
            let out = given.simplify();
            for (i1, a) in irreps_in.iter().enumerate() {
                for (i2, b) in irreps_in.iter().enumerate().skip(i1) {
                    for (i_out, c) in out.iter().enumerate() {
                        if !a.ir.tensor_product(&b.ir).any(|ir| ir == c.ir) {
                            continue;
                        }
                        let pw = alpha(a.ir.dim(), b.ir.dim(), c.ir.dim());
                        let ins = |mode| Instruction::new(i1, i2, i_out, mode, true);
                        if i1 < i2 {
                            instructions.push(ins(ConnectionMode::Uvw).with_path_weight(pw));
                            continue;
                        }
                        if a.mul > 1 {
                            instructions.push(ins(ConnectionMode::ULtvw).with_path_weight(pw));
                        }
                        if c.ir.l % 2 == 0 {
                            let pw = alpha_square(a.ir.dim(), c.ir.l, c.ir.dim());
                            instructions.push(ins(ConnectionMode::Uuw).with_path_weight(pw));
                        }
                    }
                }
            }
            out
        }
        None => {
            let mut out = Vec::new();
            for (i1, a) in irreps_in.iter().enumerate() {
                for (i2, b) in irreps_in.iter().enumerate().skip(i1) {
                    for ir in a.ir.tensor_product(&b.ir) {
                        if !allowed(filter_ir_out, &ir) {
                            continue;
                        }
                        let pw = alpha(a.ir.dim(), b.ir.dim(), ir.dim());
                        let ins = |mode, i_out| Instruction::new(i1, i2, i_out, mode, false);
                        if i1 < i2 {
                            instructions
                                .push(ins(ConnectionMode::Uvuv, out.len()).with_path_weight(pw));
                            out.push(MulIr::new(a.mul * b.mul, ir));
                            continue;
                        }
                        if a.mul > 1 {
                            instructions
                                .push(ins(ConnectionMode::UvuLtv, out.len()).with_path_weight(pw));
                            out.push(MulIr::new(a.mul * (a.mul - 1) / 2, ir));
                        }
                        if ir.l % 2 == 0 {
                            let pw = alpha_square(a.ir.dim(), ir.l, ir.dim());
                            instructions
                                .push(ins(ConnectionMode::Uuu, out.len()).with_path_weight(pw));
                            out.push(MulIr::new(a.mul, ir));
                        }
                    }
                }
            }
            let sorted = Irreps::from_entries(out).sort();
            for ins in &mut instructions {
                ins.i_out = sorted.p[ins.i_out];
            }
            sorted.irreps
        }
    };
    let options = TensorProductOptions {
        irrep_normalization: IrrepNormalization::None,
        ..options
    };
    TensorProductPlan::build(
        "TensorSquare",
        &irreps_in,
        &irreps_in,
        &irreps_out,
        instructions,
        options,
    )
}
