//! The equivariant linear map between direct sums of irreps, e3nn's `o3.Linear`.

use super::irreps::{Irrep, Irreps, Parity};
use super::tensor_product::{
    ConnectionMode, Instruction, PathNormalization, TensorProductOptions, TensorProductPlan,
};
use crate::{Error, Result};

/// e3nn's `o3.Linear`: `out[w] = sum_{u} W[u, w] x[u] / sqrt(fan) (+ b[w] on 0e outputs)`
/// for every pair of equal irreps `(i_in, i_out)`.
///
/// `fan` is the sum of `mul_in` over the instructions into that output (`element`), or
/// `mul_in` times their number (`path`). Weights: one block `[mul_in, mul_out]` per
/// instruction, in instruction order (e3nn's layout). Biases: `mul` entries for every `0e`
/// output block, in output order, added with coefficient 1; e3nn starts them at zero.
/// Built as a [`TensorProductPlan`] with the constant `0e` input `1` (mode `uvw`), so it shares
/// the tensor product's kernels and gradients (in `f32` on AVX2 the map and its input
/// gradient run a row kernel of their own, with the same coefficients).
///
/// ```
/// use equivariant_core::o3::LinearPlan;
/// let linear = LinearPlan::new(&"2x0e + 1x1o".parse()?, &"1x0e + 2x1o".parse()?, true, Default::default(), true)?;
/// assert_eq!(linear.weight_numel(), 2 + 2);
/// assert_eq!(linear.bias_numel(), 1);
/// let mut out = vec![0.0f64; 7];
/// linear.forward(&[1.0, 1.0, 0.0, 0.0, 1.0], &[1.0, 1.0, 1.0, -1.0], &[0.5], &mut out)?;
/// assert!((out[0] - (2.0 / 2f64.sqrt() + 0.5)).abs() < 1e-12);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinearPlan {
    tp: TensorProductPlan,
    /// `(start, len)` of each `0e` output block, in output order.
    bias_blocks: Vec<(usize, usize)>,
}

impl LinearPlan {
    /// The linear map `irreps_in -> irreps_out`, with biases on `0e` outputs if `biases`,
    /// shared weights or one weight vector per row (then no biases, as in e3nn).
    ///
    /// ```
    /// use equivariant_core::o3::LinearPlan;
    /// use equivariant_core::o3::tensor_product::PathNormalization;
    /// let linear = LinearPlan::new(&"3x1o".parse()?, &"2x1o".parse()?, false, PathNormalization::Path, true)?;
    /// assert_eq!(linear.weight_numel(), 6);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(
        irreps_in: &Irreps,
        irreps_out: &Irreps,
        biases: bool,
        path_normalization: PathNormalization,
        shared_weights: bool,
    ) -> Result<Self> {
        let instructions = Self::all_instructions(irreps_in, irreps_out);
        let flags = Self::scalar_biases(irreps_out, biases);
        Self::with_instructions(
            irreps_in,
            irreps_out,
            &instructions,
            &flags,
            path_normalization,
            shared_weights,
        )
    }

    /// e3nn's default instructions: every pair `(i_in, i_out)` of blocks with equal irreps, in
    /// input-major order.
    ///
    /// ```
    /// use equivariant_core::o3::LinearPlan;
    /// let all = LinearPlan::all_instructions(&"1x0e+1x1o+2x0e".parse()?, &"1x1o+1x0e".parse()?);
    /// assert_eq!(all, [(0, 1), (1, 0), (2, 1)]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn all_instructions(irreps_in: &Irreps, irreps_out: &Irreps) -> Vec<(usize, usize)> {
        let mut instructions = Vec::new();
        for (i_in, a) in irreps_in.iter().enumerate() {
            for (i_out, b) in irreps_out.iter().enumerate() {
                if a.ir == b.ir {
                    instructions.push((i_in, i_out));
                }
            }
        }
        instructions
    }

    /// e3nn's bias flags for `biases=True` / `False`: `biases` on every `0e` output block.
    ///
    /// ```
    /// use equivariant_core::o3::LinearPlan;
    /// assert_eq!(LinearPlan::scalar_biases(&"2x0e+1x1o+1x0e".parse()?, true), [true, false, true]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn scalar_biases(irreps_out: &Irreps, biases: bool) -> Vec<bool> {
        irreps_out
            .iter()
            .map(|m| biases && m.ir.is_scalar())
            .collect()
    }

    /// The map with explicit `instructions` `(i_in, i_out)` (e3nn's `instructions=`: only
    /// these blocks connect, each its own `[mul_in, mul_out]` weights in this order, the fan
    /// counted over the instructions into each output) and a bias flag per output block
    /// (e3nn's `biases=[...]`: only `0e` outputs may have one).
    ///
    /// Errors: [`Error::IndexOutOfRange`] for an instruction naming a missing block;
    /// [`Error::InvalidArgument`] for one connecting different irreps, a bias flag count
    /// other than the output blocks', a bias on a non-scalar output, biases with per-row
    /// weights, or `PathNormalization::None`.
    ///
    /// ```
    /// use equivariant_core::o3::LinearPlan;
    /// // Only the second input block feeds the output: 3 x 2 weights, fan 3.
    /// let linear = LinearPlan::with_instructions(
    ///     &"2x0e + 3x0e".parse()?, &"2x0e".parse()?, &[(1, 0)], &[true], Default::default(), true)?;
    /// assert_eq!(linear.weight_numel(), 6);
    /// assert_eq!(linear.bias_numel(), 2);
    /// let (i_in, i_out, coefficient) = linear.instructions()[0];
    /// assert_eq!((i_in, i_out), (1, 0));
    /// assert!((coefficient - 1.0 / 3f64.sqrt()).abs() < 1e-15);
    /// assert!(LinearPlan::with_instructions(
    ///     &"1x0e".parse()?, &"1x1o".parse()?, &[(0, 0)], &[false], Default::default(), true).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn with_instructions(
        irreps_in: &Irreps,
        irreps_out: &Irreps,
        instructions: &[(usize, usize)],
        biases: &[bool],
        path_normalization: PathNormalization,
        shared_weights: bool,
    ) -> Result<Self> {
        if path_normalization == PathNormalization::None {
            return Err(Error::InvalidArgument {
                name: "path_normalization",
                reason: "Linear supports element or path".into(),
            });
        }
        if biases.len() != irreps_out.len() {
            return Err(Error::InvalidArgument {
                name: "biases",
                reason: format!(
                    "{} bias flags for the {} blocks of {irreps_out}",
                    biases.len(),
                    irreps_out.len()
                ),
            });
        }
        if let Some((i, m)) = irreps_out
            .iter()
            .zip(biases)
            .enumerate()
            .find_map(|(i, (m, &b))| (b && !m.ir.is_scalar()).then_some((i, m)))
        {
            return Err(Error::InvalidArgument {
                name: "biases",
                reason: format!("output block {i} ({m}) is not 0e: only scalars take a bias"),
            });
        }
        if biases.contains(&true) && !shared_weights {
            return Err(Error::InvalidArgument {
                name: "biases",
                reason: "no biases with per-row weights (shared_weights = false), as in e3nn"
                    .into(),
            });
        }
        let mut built = Vec::with_capacity(instructions.len());
        for &(i_in, i_out) in instructions {
            let (a, b) = (irreps_in.get(i_in)?, irreps_out.get(i_out)?);
            if a.ir != b.ir {
                return Err(Error::InvalidArgument {
                    name: "instructions",
                    reason: format!("({i_in}, {i_out}) connects {} to {}", a.ir, b.ir),
                });
            }
            built.push(Instruction::new(i_in, 0, i_out, ConnectionMode::Uvw, true));
        }
        let options = TensorProductOptions {
            path_normalization,
            shared_weights,
            ..Default::default()
        };
        let scalar: Irreps = Irrep::new(0, Parity::Even).into();
        let tp =
            TensorProductPlan::build("Linear", irreps_in, &scalar, irreps_out, built, options)?;
        let bias_blocks = irreps_out
            .iter()
            .zip(irreps_out.slices())
            .zip(biases)
            .filter(|((m, _), b)| **b && m.mul > 0)
            .map(|((m, s), _)| (s.start, m.mul))
            .collect();
        Ok(LinearPlan { tp, bias_blocks })
    }

    /// The input irreps.
    ///
    /// ```
    /// let linear = equivariant_core::o3::LinearPlan::new(&"2x0e".parse()?, &"0e".parse()?, false, Default::default(), true)?;
    /// assert_eq!(linear.irreps_in().to_string(), "2x0e");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn irreps_in(&self) -> &Irreps {
        self.tp.irreps_in1()
    }

    /// The output irreps.
    ///
    /// ```
    /// let linear = equivariant_core::o3::LinearPlan::new(&"2x0e".parse()?, &"3x0e".parse()?, false, Default::default(), true)?;
    /// assert_eq!(linear.irreps_out().to_string(), "3x0e");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn irreps_out(&self) -> &Irreps {
        self.tp.irreps_out()
    }

    /// `(i_in, i_out, coefficient)` of each instruction (e3nn's `instructions`, whose
    /// `path_weight` is `1 / sqrt(fan)`).
    ///
    /// ```
    /// let linear = equivariant_core::o3::LinearPlan::new(&"4x0e".parse()?, &"0e".parse()?, false, Default::default(), true)?;
    /// assert_eq!(linear.instructions(), vec![(0, 0, 0.5)]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn instructions(&self) -> Vec<(usize, usize, f64)> {
        // The tensor product's coefficient includes sqrt(2l+1), undone by C(l, 0, l) = I / sqrt(2l+1).
        self.tp
            .instructions()
            .iter()
            .map(|ins| {
                let d = self.tp.irreps_out()[ins.i_out].ir.dim() as f64;
                (ins.i_in1, ins.i_out, ins.path_weight / d.sqrt())
            })
            .collect()
    }

    /// Weights per weight vector.
    ///
    /// ```
    /// let linear = equivariant_core::o3::LinearPlan::new(&"4x0e".parse()?, &"3x0e".parse()?, false, Default::default(), true)?;
    /// assert_eq!(linear.weight_numel(), 12);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn weight_numel(&self) -> usize {
        self.tp.weight_numel()
    }

    /// Number of biases (0 without biases).
    ///
    /// ```
    /// let linear = equivariant_core::o3::LinearPlan::new(&"1x1o".parse()?, &"2x0e+1x1o".parse()?, true, Default::default(), true)?;
    /// assert_eq!(linear.bias_numel(), 2);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn bias_numel(&self) -> usize {
        self.bias_blocks.iter().map(|b| b.1).sum()
    }

    /// Whether one weight vector serves every row.
    ///
    /// ```
    /// let linear = equivariant_core::o3::LinearPlan::new(&"0e".parse()?, &"0e".parse()?, false, Default::default(), false)?;
    /// assert!(!linear.shared_weights());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn shared_weights(&self) -> bool {
        self.tp.shared_weights()
    }

    /// The tensor product this map runs: `x (x) 1` with the constant `0e` input `1`
    /// (`irreps_in2 = 1x0e`), mode `uvw`, one path per pair of equal irreps.
    ///
    /// ```
    /// let linear = equivariant_core::o3::LinearPlan::new(&"2x0e".parse()?, &"3x0e".parse()?, false, Default::default(), true)?;
    /// assert_eq!(linear.tensor_product().irreps_in2().to_string(), "1x0e");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn tensor_product(&self) -> &TensorProductPlan {
        &self.tp
    }

    /// `(start, len)` of each `0e` output block that gets a bias, in output order; the
    /// bias vector is their concatenation.
    ///
    /// ```
    /// let linear = equivariant_core::o3::LinearPlan::new(&"1x1o".parse()?, &"1x1o+2x0e".parse()?, true, Default::default(), true)?;
    /// assert_eq!(linear.bias_blocks(), [(3, 2)]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn bias_blocks(&self) -> &[(usize, usize)] {
        &self.bias_blocks
    }
}
