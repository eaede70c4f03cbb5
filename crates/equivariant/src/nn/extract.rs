//! e3nn's `nn.Extract`: pick blocks of a direct sum of irreps into new direct sums.

use std::ops::Range;

use burn::module::Module;
use burn::tensor::Tensor;
use equivariant_core::o3::{Irrep, Irreps, MulIr};
use equivariant_core::{Error, Result};

use crate::ops::irreps::columns;
use crate::shape::{check_width, flatten_rows, unflatten_rows};

/// e3nn's `nn.Extract(irreps_in, irreps_outs, instructions)`: output `k` is the
/// concatenation of the input blocks `instructions[k]` (indices into `irreps_in`), in that
/// order; `irreps_outs[k]` lists those blocks.
///
/// # Shapes
///
/// `[..., irreps_in.dim] -> [[..., irreps_outs[k].dim] for each k]`, any leading axes `...`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::nn::Extract;
///
/// let extract = Extract::new(&"1x0e + 1x1o + 2x0e".parse()?,
///     &["2x0e + 1x0e".parse()?, "1x1o".parse()?], &[vec![2, 0], vec![1]])?;
/// let x = Tensor::<2>::from_floats([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]], &Device::flex());
/// let outs = extract.forward(x)?;
/// assert_eq!(outs[0].clone().into_data().try_into_vec::<f32>().unwrap(), [4.0, 5.0, 0.0]);
/// assert_eq!(outs[1].clone().into_data().try_into_vec::<f32>().unwrap(), [1.0, 2.0, 3.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Extract {
    #[module(skip)]
    irreps_in: Irreps,
    #[module(skip)]
    irreps_outs: Vec<Irreps>,
    /// Per output, the input column ranges to concatenate (adjacent blocks merged).
    #[module(skip)]
    ranges: Vec<Vec<Range<usize>>>,
}

impl Extract {
    /// The extraction of `instructions[k]` into output `k`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `irreps_outs` and `instructions` differ in length, if
    /// an output lists another number of blocks than its instruction, or a block other than
    /// the one it names; [`Error::IndexOutOfRange`] for an index past `irreps_in`.
    ///
    /// ```
    /// use equivariant::nn::Extract;
    /// let bad = Extract::new(&"1x0e".parse()?, &["1x1o".parse()?], &[vec![0]]);
    /// assert!(bad.is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(
        irreps_in: &Irreps,
        irreps_outs: &[Irreps],
        instructions: &[Vec<usize>],
    ) -> Result<Self> {
        if irreps_outs.len() != instructions.len() {
            return Err(Error::InvalidArgument {
                name: "instructions",
                reason: format!(
                    "{} instructions for {} outputs",
                    instructions.len(),
                    irreps_outs.len()
                ),
            });
        }
        let slices = irreps_in.slices();
        let mut ranges = Vec::with_capacity(instructions.len());
        for (irreps_out, ins) in irreps_outs.iter().zip(instructions) {
            if irreps_out.len() != ins.len() {
                return Err(Error::InvalidArgument {
                    name: "instructions",
                    reason: format!("{ins:?} names {} blocks for {irreps_out}", ins.len()),
                });
            }
            let mut merged: Vec<Range<usize>> = Vec::with_capacity(ins.len());
            for (entry, &i) in irreps_out.iter().zip(ins) {
                let block = irreps_in.get(i)?;
                if block != *entry {
                    return Err(Error::InvalidArgument {
                        name: "instructions",
                        reason: format!("block {i} of {irreps_in} is {block}, not {entry}"),
                    });
                }
                let range = slices[i].clone();
                match merged.last_mut() {
                    Some(last) if last.end == range.start => last.end = range.end,
                    _ => merged.push(range),
                }
            }
            ranges.push(merged);
        }
        Ok(Extract {
            irreps_in: irreps_in.clone(),
            irreps_outs: irreps_outs.to_vec(),
            ranges,
        })
    }

    /// Per output, the input column ranges it concatenates.
    pub(crate) fn ranges(&self) -> &[Vec<Range<usize>>] {
        &self.ranges
    }

    /// The input irreps.
    ///
    /// ```
    /// let e = equivariant::nn::Extract::new(&"2x0e".parse()?, &["2x0e".parse()?], &[vec![0]])?;
    /// assert_eq!(e.irreps_in().to_string(), "2x0e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_in(&self) -> &Irreps {
        &self.irreps_in
    }

    /// The irreps of each output.
    ///
    /// ```
    /// let e = equivariant::nn::Extract::new(&"2x0e".parse()?, &["2x0e".parse()?], &[vec![0]])?;
    /// assert_eq!(e.irreps_outs()[0].to_string(), "2x0e");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_outs(&self) -> &[Irreps] {
        &self.irreps_outs
    }

    /// The outputs, one tensor each.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` is not `[..., irreps_in.dim]`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::Extract;
    /// let e = Extract::new(&"1x0e+1x1o".parse()?, &["1x1o".parse()?], &[vec![1]])?;
    /// let outs = e.forward(Tensor::<2>::ones([5, 4], &Device::flex()))?;
    /// assert_eq!(outs[0].dims(), [5, 3]);
    /// assert!(e.forward(Tensor::<2>::ones([5, 3], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Vec<Tensor<D>>> {
        let (x, dims) = flatten_rows("Extract x [..., irreps_in.dim]", x)?;
        check_width("Extract x [..., irreps_in.dim]", &x, self.irreps_in.dim())?;
        Ok(self
            .ranges
            .iter()
            .map(|r| unflatten_rows(columns(&x, r), dims))
            .collect())
    }

    /// The only output, as e3nn's `Extract(..., squeeze_out=True)` returns it.
    ///
    /// # Errors
    ///
    /// As [`forward`](Extract::forward); [`Error::InvalidArgument`] unless there is exactly
    /// one output.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::Extract;
    /// let e = Extract::new(&"1x0e+1x1o".parse()?, &["1x1o".parse()?], &[vec![1]])?;
    /// let out = e.forward_squeezed(Tensor::<2>::ones([5, 4], &Device::flex()))?;
    /// assert_eq!(out.dims(), [5, 3]);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_squeezed<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        let outs = self.irreps_outs.len();
        let mut out = self.forward(x)?;
        match out.pop() {
            Some(only) if outs == 1 => Ok(only),
            _ => Err(Error::InvalidArgument {
                name: "Extract",
                reason: format!("squeezing needs exactly one output, this one has {outs}"),
            }),
        }
    }
}

/// e3nn's `nn.ExtractIr`: every block of one irrep, in order, as one tensor.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::nn::ExtractIr;
/// let e = ExtractIr::new(&"2x0e+1x1o+3x0e".parse()?, "0e".parse()?);
/// assert_eq!(e.irreps_out().to_string(), "2x0e+3x0e");
/// let x = Tensor::<2>::from_floats([[1.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0, 5.0]], &Device::flex());
/// let y = e.forward(x)?.into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(y, [1.0, 2.0, 3.0, 4.0, 5.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct ExtractIr {
    extract: Extract,
}

impl ExtractIr {
    /// Extracts the blocks of `irreps_in` whose irrep is `ir` (none: an empty output).
    ///
    /// ```
    /// use equivariant::nn::ExtractIr;
    /// let e = ExtractIr::new(&"1x1o".parse()?, "2e".parse()?);
    /// assert_eq!(e.irreps_out().dim(), 0);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(irreps_in: &Irreps, ir: Irrep) -> Self {
        let (blocks, picked): (Vec<usize>, Vec<MulIr>) = irreps_in
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.ir == ir)
            .map(|(i, entry)| (i, *entry))
            .unzip();
        let irreps_out = Irreps::from_entries(picked);
        let extract = Extract::new(irreps_in, &[irreps_out], &[blocks])
            .expect("one output whose blocks are the named ones");
        ExtractIr { extract }
    }

    /// The output irreps.
    ///
    /// ```
    /// use equivariant::nn::ExtractIr;
    /// let e = ExtractIr::new(&"1x1o+1x0e+2x1o".parse()?, "1o".parse()?);
    /// assert_eq!(e.irreps_out().to_string(), "1x1o+2x1o");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn irreps_out(&self) -> &Irreps {
        &self.extract.irreps_outs()[0]
    }

    /// The blocks of the irrep, `[..., irreps_in.dim] -> [..., irreps_out.dim]`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `x` is not `[..., irreps_in.dim]`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::ExtractIr;
    /// let e = ExtractIr::new(&"1x0e+1x1o".parse()?, "1o".parse()?);
    /// assert!(e.forward(Tensor::<2>::ones([2, 3], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>> {
        self.extract.forward_squeezed(x)
    }
}
