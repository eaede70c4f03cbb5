//! The tensor product plan: irreps, built instructions with their final coefficients, the
//! flat weight layout, and the sparse Clebsch-Gordan lists the kernels run over.

use std::fmt;

use super::instruction::{ConnectionMode, Instruction, IrrepNormalization, PathNormalization};
use crate::o3::irreps::Irreps;
use crate::o3::wigner_3j::wigner_3j;
use crate::{Error, Result};

/// Options of [`TensorProductPlan::new`], e3nn's keyword arguments.
///
/// ```
/// use equivariant_core::o3::tensor_product::TensorProductOptions;
/// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
/// assert!(options.in1_var.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TensorProductOptions {
    /// Variance of each block of input 1 (default all 1).
    pub in1_var: Option<Vec<f64>>,
    /// Variance of each block of input 2 (default all 1).
    pub in2_var: Option<Vec<f64>>,
    /// Target variance of each output block (default all 1).
    pub out_var: Option<Vec<f64>>,
    /// See [`IrrepNormalization`].
    pub irrep_normalization: IrrepNormalization,
    /// See [`PathNormalization`].
    pub path_normalization: PathNormalization,
    /// One weight vector for every row (`true`) or one per row (`false`, e3nn's
    /// `shared_weights=False`, as the guide does per edge).
    pub shared_weights: bool,
}

impl Default for TensorProductOptions {
    fn default() -> Self {
        TensorProductOptions {
            in1_var: None,
            in2_var: None,
            out_var: None,
            irrep_normalization: IrrepNormalization::Component,
            path_normalization: PathNormalization::Element,
            shared_weights: true,
        }
    }
}

/// Where the outputs of one multiplicity pair `(u, v)` of a path go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Targets {
    /// One output channel `o`, scaled by weight `w` (or 1 without weights).
    One { o: u32, w: Option<u32> },
    /// Every output channel `o`, scaled by weight `w_base + o`.
    All { w_base: u32 },
}

/// The sparse Clebsch-Gordan list of a path in one operand order: `out[r] += c a[p] b[q]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Contraction {
    /// `(p, q, r)` for each nonzero.
    pub idx: Vec<[u16; 3]>,
    /// The coefficient times the path's coefficient.
    pub coef: Vec<f64>,
}

impl Contraction {
    fn permuted(nonzeros: &[([u16; 3], f64)], order: [usize; 3]) -> Self {
        let mut entries: Vec<([u16; 3], f64)> = nonzeros
            .iter()
            .map(|&(ijk, c)| (order.map(|a| ijk[a]), c))
            .collect();
        // Grouped by output index, so each output element is accumulated in one run.
        entries.sort_by_key(|e| (e.0[2], e.0[0], e.0[1]));
        Contraction {
            idx: entries.iter().map(|e| e.0).collect(),
            coef: entries.iter().map(|e| e.1).collect(),
        }
    }
}

/// The kernel's view of one path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathPlan {
    /// Offsets of the path's blocks in the rows of x1, x2, out.
    pub in1: usize,
    pub in2: usize,
    pub out: usize,
    /// Irrep dimensions of the blocks.
    pub d1: usize,
    pub d2: usize,
    pub d3: usize,
    /// Multiplicities.
    pub m1: usize,
    pub m2: usize,
    pub mo: usize,
    /// The connection mode and whether the path is weighted.
    pub mode: ConnectionMode,
    pub has_weight: bool,
    /// The kernel instance that runs the path, chosen here once.
    pub kernel: PathKernel,
    /// Offset of the path's weights in the flat weight vector.
    pub weight_offset: usize,
    /// For `uvw` paths: offset of the output block, stored `[d3][mo]`, in the row scratch.
    pub outt: usize,
    /// The multiplicity pairs `(u, v)` and where each goes.
    pub pairs: Vec<(u32, u32, Targets)>,
    /// `t[k] += c x1[i] x2[j]` (forward).
    pub forward: Contraction,
    /// `g1[i] += c x2[j] h[k]` (gradient of input 1: the same product, operands permuted).
    pub backward1: Contraction,
    /// `g2[j] += c x1[i] h[k]` (gradient of input 2).
    pub backward2: Contraction,
}

/// How the kernels run a path, resolved once, when the plan is built, so that no kernel
/// matches on a path's mode or dimensions row by row: pair by pair over its multiplicity
/// pairs, or (`uvu`, `uvw`) contracted with one `x2` block at a time by the kernel instance
/// compiled for its irrep dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathKernel {
    /// Pair by pair over [`PathPlan::pairs`]: every mode but `uvu` and `uvw`.
    Pairs,
    /// `uvu` with the instance for these dimensions.
    Uvu(Dims),
    /// `uvw` with the instance for these dimensions.
    Uvw(Dims),
}

impl PathKernel {
    fn of(mode: ConnectionMode, d1: usize, d3: usize) -> Self {
        match mode {
            ConnectionMode::Uvu => PathKernel::Uvu(Dims::of(d1, d3)),
            ConnectionMode::Uvw => PathKernel::Uvw(Dims::of(d1, d3)),
            _ => PathKernel::Pairs,
        }
    }
}

/// Which instance of a contracted kernel runs a path: the one with the irrep dimensions
/// `(d1, d3)` as compile-time constants when both degrees are at most 3 (the small dense
/// products then unroll into registers), else the one with run-time dimensions.
///
/// The index into a kernel table of [`Dims::COUNT`] instances: `1 + 4 i + j` for
/// `d1 = 2 i + 1`, `d3 = 2 j + 1`, and `0` for run-time dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims(u8);

impl Dims {
    /// The number of instances: 16 with constant dimensions, one with run-time ones.
    pub(crate) const COUNT: usize = 17;

    fn of(d1: usize, d3: usize) -> Self {
        let degree = |d: usize| (d % 2 == 1 && d <= 7).then_some(d / 2);
        match (degree(d1), degree(d3)) {
            (Some(i), Some(j)) => Dims((1 + 4 * i + j) as u8),
            _ => Dims(0),
        }
    }

    /// The instance's position in a kernel table.
    #[inline(always)]
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// A tensor product `x1 (x) x2 -> out` of two direct sums of irreps, e3nn's
/// `o3.TensorProduct`: a list of paths, each coupling one block of `x1` with one block of
/// `x2` into one block of `out` through the Wigner 3j symbol,
///
/// `out[w, k] += coef * sum W[...] C[i, j, k] x1[u, i] x2[v, j]`
///
/// with the multiplicity indices connected as the path's [`ConnectionMode`] says and
/// `coef = sqrt(alpha / fan * out_var * path_weight)` (see [`IrrepNormalization`] and
/// [`PathNormalization`]). Paths into the same output block are summed.
///
/// Data: `x1` `[batch, irreps_in1.dim]`, `x2` `[batch, irreps_in2.dim]`, `out`
/// `[batch, irreps_out.dim]`, weights `[weight_numel]` (shared) or `[batch, weight_numel]`,
/// one block per weighted instruction in instruction order, each row-major over its path
/// shape: e3nn's flat layout, so an e3nn weight vector gives the same output here.
///
/// ```
/// use equivariant_core::o3::tensor_product::{ConnectionMode, Instruction, TensorProductPlan};
/// // The dot product of two vectors: 1o (x) 1o -> 0e, times sqrt(3)^-1 (component norm.)
/// let tp = TensorProductPlan::new(
///     &"1o".parse()?, &"1o".parse()?, &"0e".parse()?,
///     vec![Instruction::new(0, 0, 0, ConnectionMode::Uuu, false)],
///     Default::default(),
/// )?;
/// let mut out = [0.0f64];
/// tp.forward(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], &[], &mut out)?;
/// assert!((out[0] - 32.0 / 3f64.sqrt()).abs() < 1e-12);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TensorProductPlan {
    pub(crate) name: &'static str,
    pub(crate) irreps_in1: Irreps,
    pub(crate) irreps_in2: Irreps,
    pub(crate) irreps_out: Irreps,
    pub(crate) instructions: Vec<Instruction>,
    pub(crate) path_shapes: Vec<Vec<usize>>,
    pub(crate) shared_weights: bool,
    pub(crate) weight_numel: usize,
    pub(crate) paths: Vec<PathPlan>,
    /// Output blocks written by `uvw` paths, accumulated transposed (`[d3][mo]`, so the
    /// weight rows are contiguous axpys): `(offset in the out row, mo, d3, scratch offset)`.
    pub(crate) uvw_blocks: Vec<(usize, usize, usize, usize)>,
    pub(crate) uvw_scratch: usize,
}

impl TensorProductPlan {
    /// Builds the tensor product, checking every instruction (indices, parity, triangle
    /// rule, multiplicities against the mode) and computing each path's coefficient.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::{ConnectionMode, Instruction, TensorProductPlan};
    /// let bad = TensorProductPlan::new(
    ///     &"1o".parse()?, &"1o".parse()?, &"0o".parse()?, // 1o x 1o is even
    ///     vec![Instruction::new(0, 0, 0, ConnectionMode::Uuu, false)],
    ///     Default::default(),
    /// );
    /// assert!(bad.is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(
        irreps_in1: &Irreps,
        irreps_in2: &Irreps,
        irreps_out: &Irreps,
        instructions: Vec<Instruction>,
        options: TensorProductOptions,
    ) -> Result<Self> {
        Self::build(
            "TensorProduct",
            irreps_in1,
            irreps_in2,
            irreps_out,
            instructions,
            options,
        )
    }

    pub(crate) fn build(
        name: &'static str,
        irreps_in1: &Irreps,
        irreps_in2: &Irreps,
        irreps_out: &Irreps,
        instructions: Vec<Instruction>,
        options: TensorProductOptions,
    ) -> Result<Self> {
        let variances =
            |given: &Option<Vec<f64>>, irreps: &Irreps, name: &'static str| -> Result<Vec<f64>> {
                match given {
                    None => Ok(vec![1.0; irreps.len()]),
                    Some(v) if v.len() == irreps.len() => Ok(v.clone()),
                    Some(v) => Err(Error::ShapeMismatch {
                        what: name,
                        expected: irreps.len(),
                        got: v.len(),
                    }),
                }
            };
        let in1_var = variances(
            &options.in1_var,
            irreps_in1,
            "in1_var (one per irreps_in1 entry)",
        )?;
        let in2_var = variances(
            &options.in2_var,
            irreps_in2,
            "in2_var (one per irreps_in2 entry)",
        )?;
        let out_var = variances(
            &options.out_var,
            irreps_out,
            "out_var (one per irreps_out entry)",
        )?;

        for (index, ins) in instructions.iter().enumerate() {
            check_instruction(index, ins, irreps_in1, irreps_in2, irreps_out)?;
        }
        let muls = |ins: &Instruction| {
            (
                irreps_in1[ins.i_in1].mul,
                irreps_in2[ins.i_in2].mul,
                irreps_out[ins.i_out].mul,
            )
        };
        let fan_in = |ins: &Instruction| {
            let (m1, m2, _) = muls(ins);
            in1_var[ins.i_in1]
                * in2_var[ins.i_in2]
                * ins.connection_mode.num_elements(m1, m2) as f64
        };

        let mut built = Vec::with_capacity(instructions.len());
        let mut path_shapes = Vec::with_capacity(instructions.len());
        let mut paths = Vec::new();
        let mut weight_numel = 0;
        let (slices1, slices2, slices_out) = (
            irreps_in1.slices(),
            irreps_in2.slices(),
            irreps_out.slices(),
        );
        for (index, ins) in instructions.iter().enumerate() {
            let (m1, m2, mo) = muls(ins);
            let (ir1, ir2, ir_out) = (
                irreps_in1[ins.i_in1].ir,
                irreps_in2[ins.i_in2].ir,
                irreps_out[ins.i_out].ir,
            );
            let mut alpha = match options.irrep_normalization {
                IrrepNormalization::Component => ir_out.dim() as f64,
                IrrepNormalization::Norm => (ir1.dim() * ir2.dim()) as f64,
                IrrepNormalization::None => 1.0,
            };
            let same_output = || instructions.iter().filter(|i| i.i_out == ins.i_out);
            let x = match options.path_normalization {
                PathNormalization::Element => same_output().map(fan_in).sum(),
                PathNormalization::Path => fan_in(ins) * same_output().count() as f64,
                PathNormalization::None => 1.0,
            };
            if x > 0.0 {
                alpha /= x;
            }
            alpha *= out_var[ins.i_out] * ins.path_weight;
            if alpha.is_nan() || alpha < 0.0 {
                return Err(Error::InvalidInstruction {
                    index,
                    reason: format!(
                        "negative or NaN coefficient^2 {alpha} (path_weight {}, out_var {})",
                        ins.path_weight, out_var[ins.i_out]
                    ),
                });
            }
            let coef = alpha.sqrt();
            let shape = ins.connection_mode.path_shape(m1, m2, mo);
            let weight_offset = weight_numel;
            if ins.has_weight {
                weight_numel += shape.iter().product::<usize>();
            }
            built.push(Instruction {
                path_weight: coef,
                ..*ins
            });
            if m1 > 0 && m2 > 0 && mo > 0 {
                let cg = wigner_3j(ir1.l, ir2.l, ir_out.l)?;
                let nonzeros: Vec<([u16; 3], f64)> = cg
                    .nonzeros()
                    .iter()
                    .map(|nz| ([nz.i, nz.j, nz.k], coef * nz.value))
                    .collect();
                paths.push(PathPlan {
                    outt: 0,
                    m1,
                    m2,
                    mode: ins.connection_mode,
                    has_weight: ins.has_weight,
                    kernel: PathKernel::of(ins.connection_mode, ir1.dim(), ir_out.dim()),
                    in1: slices1[ins.i_in1].start,
                    in2: slices2[ins.i_in2].start,
                    out: slices_out[ins.i_out].start,
                    d1: ir1.dim(),
                    d2: ir2.dim(),
                    d3: ir_out.dim(),
                    mo,
                    weight_offset,
                    pairs: pairs(ins.connection_mode, ins.has_weight, m1, m2, mo),
                    forward: Contraction::permuted(&nonzeros, [0, 1, 2]),
                    backward1: Contraction::permuted(&nonzeros, [1, 2, 0]),
                    backward2: Contraction::permuted(&nonzeros, [0, 2, 1]),
                });
            }
            path_shapes.push(shape);
        }
        let mut uvw_blocks: Vec<(usize, usize, usize, usize)> = Vec::new();
        let mut uvw_scratch = 0;
        for p in paths.iter_mut().filter(|p| p.mode == ConnectionMode::Uvw) {
            p.outt = match uvw_blocks.iter().find(|b| b.0 == p.out) {
                Some(b) => b.3,
                None => {
                    uvw_blocks.push((p.out, p.mo, p.d3, uvw_scratch));
                    uvw_scratch += p.mo * p.d3;
                    uvw_scratch - p.mo * p.d3
                }
            };
        }
        Ok(TensorProductPlan {
            uvw_blocks,
            uvw_scratch,
            name,
            irreps_in1: irreps_in1.clone(),
            irreps_in2: irreps_in2.clone(),
            irreps_out: irreps_out.clone(),
            instructions: built,
            path_shapes,
            shared_weights: options.shared_weights,
            weight_numel,
            paths,
        })
    }

    /// The first input's irreps.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"2x0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?;
    /// assert_eq!(tp.irreps_in1().to_string(), "2x0e");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn irreps_in1(&self) -> &Irreps {
        &self.irreps_in1
    }

    /// The second input's irreps.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"2x0e".parse()?, &"1o".parse()?, &"1o".parse()?, Default::default())?;
    /// assert_eq!(tp.irreps_in2().to_string(), "1x1o");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn irreps_in2(&self) -> &Irreps {
        &self.irreps_in2
    }

    /// The output irreps.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"2x0e".parse()?, &"1o".parse()?, &"3x1o".parse()?, Default::default())?;
    /// assert_eq!(tp.irreps_out().dim(), 9);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn irreps_out(&self) -> &Irreps {
        &self.irreps_out
    }

    /// The built instructions; `path_weight` is each path's final coefficient.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?;
    /// assert_eq!(tp.instructions()[0].path_weight, 1.0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    /// The weight shape of each instruction (also for instructions without weights).
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"2x0e".parse()?, &"3x0e".parse()?, &"4x0e".parse()?, Default::default())?;
    /// assert_eq!(tp.path_shapes()[0], vec![2, 3, 4]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn path_shapes(&self) -> &[Vec<usize>] {
        &self.path_shapes
    }

    /// e3nn's `output_mask`: for each output component (`irreps_out.dim` of them), whether
    /// some path reaches it (an instruction into its irrep with a nonzero path weight and
    /// no zero multiplicity); the others are always zero.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// // 0e x 0e reaches the 0e output, nothing reaches the 1o.
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"2x0e + 1o".parse()?, Default::default())?;
    /// assert_eq!(tp.output_mask(), [true, true, false, false, false]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn output_mask(&self) -> Vec<bool> {
        let reached: Vec<bool> = (0..self.irreps_out.len())
            .map(|i_out| {
                self.instructions
                    .iter()
                    .zip(&self.path_shapes)
                    .any(|(ins, shape)| {
                        ins.i_out == i_out && ins.path_weight != 0.0 && !shape.contains(&0)
                    })
            })
            .collect();
        self.irreps_out
            .iter()
            .zip(reached)
            .flat_map(|(entry, on)| std::iter::repeat_n(on, entry.mul * entry.ir.dim()))
            .collect()
    }

    /// The number of weights per weight vector.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// // The guide's tensor product needs 400 weights.
    /// let tp = fully_connected_tensor_product(
    ///     &"10x0e + 10x1e".parse()?, &"0e + 1o + 2e".parse()?, &"20x0e + 10x1e".parse()?, Default::default())?;
    /// assert_eq!(tp.weight_numel(), 400);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn weight_numel(&self) -> usize {
        self.weight_numel
    }

    /// Whether one weight vector serves every row.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?;
    /// assert!(tp.shared_weights());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn shared_weights(&self) -> bool {
        self.shared_weights
    }

    /// The same product with shared (`true`) or per-row (`false`) weights.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?;
    /// assert!(!tp.with_shared_weights(false).shared_weights());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn with_shared_weights(mut self, shared_weights: bool) -> Self {
        self.shared_weights = shared_weights;
        self
    }

    /// Multiply-adds per row of the forward pass spent on Clebsch-Gordan nonzeros and
    /// weights (the useful work; zeros are never visited).
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?;
    /// assert_eq!(tp.forward_macs_per_row(), 2);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward_macs_per_row(&self) -> usize {
        self.paths
            .iter()
            .map(|p| {
                p.pairs
                    .iter()
                    .map(|(_, _, t)| {
                        p.forward.idx.len()
                            + match t {
                                Targets::One { .. } => p.d3,
                                Targets::All { .. } => p.mo * p.d3,
                            }
                    })
                    .sum::<usize>()
            })
            .sum()
    }
}

impl fmt::Display for TensorProductPlan {
    /// e3nn's repr: `Name(in1 x in2 -> out | n paths | n weights)`, where e3nn counts
    /// the elements of every path shape as "paths".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let npath: usize = self
            .path_shapes
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum();
        if self.name == "TensorSquare" {
            return write!(
                f,
                "TensorSquare({} -> {} | {npath} paths | {} weights)",
                self.irreps_in1,
                self.irreps_out.simplify(),
                self.weight_numel
            );
        }
        write!(
            f,
            "{}({} x {} -> {} | {} paths | {} weights)",
            self.name,
            self.irreps_in1.simplify(),
            self.irreps_in2.simplify(),
            self.irreps_out.simplify(),
            npath,
            self.weight_numel
        )
    }
}

fn check_instruction(
    index: usize,
    ins: &Instruction,
    in1: &Irreps,
    in2: &Irreps,
    out: &Irreps,
) -> Result<()> {
    let bad = |reason: String| Error::InvalidInstruction { index, reason };
    let get = |irreps: &Irreps, i: usize, what: &str| {
        irreps.get(i).map_err(|_| {
            bad(format!(
                "{what} = {i} but the irreps have {} entries",
                irreps.len()
            ))
        })
    };
    let (a, b, c) = (
        get(in1, ins.i_in1, "i_in1")?,
        get(in2, ins.i_in2, "i_in2")?,
        get(out, ins.i_out, "i_out")?,
    );
    if a.ir.p * b.ir.p != c.ir.p {
        return Err(bad(format!(
            "parity: {} x {} cannot give {}",
            a.ir, b.ir, c.ir
        )));
    }
    if c.ir.l < a.ir.l.abs_diff(b.ir.l) || c.ir.l > a.ir.l + b.ir.l {
        return Err(bad(format!(
            "triangle rule: {} x {} cannot give {}",
            a.ir, b.ir, c.ir
        )));
    }
    let (m1, m2, mo) = (a.mul, b.mul, c.mul);
    let need = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(bad(format!(
                "mode {} needs {what}; multiplicities are {m1}, {m2} -> {mo}",
                ins.connection_mode
            )))
        }
    };
    match ins.connection_mode {
        ConnectionMode::Uvw => need(ins.has_weight, "weights"),
        ConnectionMode::Uvu => need(mo == m1, "m_out = m1"),
        ConnectionMode::Uvv => need(mo == m2, "m_out = m2"),
        ConnectionMode::Uuw => {
            need(m1 == m2, "m1 = m2")?;
            need(ins.has_weight || mo == 1, "weights or m_out = 1")
        }
        ConnectionMode::Uuu => need(m1 == m2 && m2 == mo, "m1 = m2 = m_out"),
        ConnectionMode::Uvuv => need(mo == m1 * m2, "m_out = m1 m2"),
        ConnectionMode::UvuLtv => need(
            m1 == m2 && mo == m1 * m1.saturating_sub(1) / 2,
            "m1 = m2 and m_out = m1 (m1 - 1) / 2",
        ),
        ConnectionMode::ULtvw => {
            need(m1 == m2, "m1 = m2")?;
            need(ins.has_weight, "weights")
        }
    }
}

/// The multiplicity pairs of a path and where each pair's product goes.
fn pairs(
    mode: ConnectionMode,
    has_weight: bool,
    m1: usize,
    m2: usize,
    mo: usize,
) -> Vec<(u32, u32, Targets)> {
    let mut out = Vec::new();
    let one = |o: usize, w: usize| Targets::One {
        o: o as u32,
        w: has_weight.then_some(w as u32),
    };
    match mode {
        ConnectionMode::Uvw => {
            for u in 0..m1 {
                for v in 0..m2 {
                    out.push((
                        u as u32,
                        v as u32,
                        Targets::All {
                            w_base: ((u * m2 + v) * mo) as u32,
                        },
                    ));
                }
            }
        }
        ConnectionMode::Uvu | ConnectionMode::Uvv | ConnectionMode::Uvuv => {
            for u in 0..m1 {
                for v in 0..m2 {
                    let o = match mode {
                        ConnectionMode::Uvu => u,
                        ConnectionMode::Uvv => v,
                        _ => u * m2 + v,
                    };
                    out.push((u as u32, v as u32, one(o, u * m2 + v)));
                }
            }
        }
        ConnectionMode::Uuw => {
            for u in 0..m1 {
                let target = if has_weight {
                    Targets::All {
                        w_base: (u * mo) as u32,
                    }
                } else {
                    one(0, 0)
                };
                out.push((u as u32, u as u32, target));
            }
        }
        ConnectionMode::Uuu => {
            for u in 0..m1 {
                out.push((u as u32, u as u32, one(u, u)));
            }
        }
        ConnectionMode::UvuLtv | ConnectionMode::ULtvw => {
            let mut q = 0;
            for u in 0..m1 {
                for v in u + 1..m2 {
                    let target = if mode == ConnectionMode::UvuLtv {
                        one(q, q)
                    } else {
                        Targets::All {
                            w_base: (q * mo) as u32,
                        }
                    };
                    out.push((u as u32, v as u32, target));
                    q += 1;
                }
            }
        }
    }
    out
}
