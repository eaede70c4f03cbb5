//! Operations on features laid out as a direct sum of irreps (`[batch, irreps.dim]`, each
//! entry `mul x ir` stored as `mul` consecutive copies of `2l + 1` components), composed of
//! burn tensor ops so they run, and differentiate, on every backend.

use std::ops::Range;

use burn::tensor::Tensor;
use equivariant_core::o3::Irreps;

/// The columns `ranges` of `x`, concatenated in order: `[batch, sum of lengths]`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::ops::irreps::columns;
/// let x = Tensor::<2>::from_floats([[0.0, 1.0, 2.0, 3.0]], &Device::flex());
/// let y = columns(&x, &[3..4, 0..2]);
/// assert_eq!(y.into_data().try_into_vec::<f32>().unwrap(), [3.0, 0.0, 1.0]);
/// // Adjacent ranges are one slice; all of them, `x` itself.
/// let all = columns(&x, &[0..1, 1..4]);
/// assert_eq!(all.into_data().try_into_vec::<f32>().unwrap(), [0.0, 1.0, 2.0, 3.0]);
/// ```
pub fn columns(x: &Tensor<2>, ranges: &[Range<usize>]) -> Tensor<2> {
    let [batch, _] = x.dims();
    // Adjacent ranges as one slice, and all of `x` as itself: each slice is an op, which
    // autodiff records.
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges.iter().filter(|r| !r.is_empty()) {
        match merged.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => merged.push(r.clone()),
        }
    }
    let parts: Vec<Tensor<2>> = merged
        .into_iter()
        .map(|r| column_range(x.clone(), r))
        .collect();
    concat_columns(parts, batch, x)
}

/// Columns `r` of `x`: a slice, or `x` itself when they are all of them (no op).
fn column_range(x: Tensor<2>, r: Range<usize>) -> Tensor<2> {
    let [batch, width] = x.dims();
    if r == (0..width) {
        x
    } else {
        x.slice([0..batch, r])
    }
}

/// The squared norm of every irrep instance, `|x_{u}|^2 = sum_m x_{u,m}^2`:
/// `[batch, irreps.dim] -> [batch, irreps.num_irreps]`, instances in layout order.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::ops::irreps::norms_squared;
/// let irreps = "1x0e + 1x1o".parse()?;
/// let x = Tensor::<2>::from_floats([[-2.0, 1.0, 2.0, 2.0]], &Device::flex());
/// let n = norms_squared(&x, &irreps);
/// assert_eq!(n.into_data().try_into_vec::<f32>().unwrap(), [4.0, 9.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn norms_squared(x: &Tensor<2>, irreps: &Irreps) -> Tensor<2> {
    let [batch, _] = x.dims();
    let mut parts = Vec::with_capacity(irreps.len());
    for (entry, range) in irreps.iter().zip(irreps.slices()) {
        if entry.mul == 0 {
            continue;
        }
        let d = entry.ir.dim();
        let block = column_range(x.clone(), range);
        let squares = block.clone().mul(block).reshape([batch, entry.mul, d]);
        parts.push(squares.sum_dim(2).reshape([batch, entry.mul]));
    }
    concat_columns(parts, batch, x)
}

/// The norm of every irrep instance, `|x_u|` (the square root of [`norms_squared`]), with a
/// zero gradient at a zero instance (where `sqrt`'s is infinite and e3nn's is NaN).
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::ops::irreps::norms;
/// let irreps = "1x0e + 1x1o".parse()?;
/// let x = Tensor::<2>::from_floats([[-2.0, 1.0, 2.0, 2.0]], &Device::flex());
/// assert_eq!(norms(&x, &irreps).into_data().try_into_vec::<f32>().unwrap(), [2.0, 3.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn norms(x: &Tensor<2>, irreps: &Irreps) -> Tensor<2> {
    sqrt_with_zero_gradient(norms_squared(x, irreps))
}

/// `sqrt(x)` of a tensor of non-negative entries, with a zero gradient where `x = 0`: the
/// zero entries are taken through a constant.
pub(crate) fn sqrt_with_zero_gradient(x: Tensor<2>) -> Tensor<2> {
    // Masking on `== 0` (not `> 0`) lets a NaN through as NaN.
    let zero = x.clone().equal_elem(0.0);
    let nonzero = zero.clone().bool_not().float().cast(x.dtype());
    x.mask_fill(zero, 1.0).sqrt().mul(nonzero)
}

/// Every irrep instance times its own scalar, `y_{u,m} = s_u x_{u,m}`: `x` is
/// `[batch, irreps.dim]`, `s` is `[batch, irreps.num_irreps]` (instances in layout order),
/// the result has `x`'s shape. This is e3nn's `ElementwiseTensorProduct` of `x` with
/// `num_irreps x 0e` in component normalization.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::ops::irreps::scale_instances;
/// let device = Device::flex();
/// let irreps = "1x0e + 1x1o".parse()?;
/// let x = Tensor::<2>::from_floats([[1.0, 1.0, 2.0, 3.0]], &device);
/// let s = Tensor::<2>::from_floats([[10.0, -1.0]], &device);
/// let y = scale_instances(x, &irreps, s);
/// assert_eq!(y.into_data().try_into_vec::<f32>().unwrap(), [10.0, -1.0, -2.0, -3.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn scale_instances(x: Tensor<2>, irreps: &Irreps, s: Tensor<2>) -> Tensor<2> {
    let [batch, _] = x.dims();
    let mut parts = Vec::with_capacity(irreps.len());
    let mut instance = 0;
    for (entry, range) in irreps.iter().zip(irreps.slices()) {
        if entry.mul == 0 {
            continue;
        }
        let d = entry.ir.dim();
        let block = column_range(x.clone(), range).reshape([batch, entry.mul, d]);
        let scale =
            column_range(s.clone(), instance..instance + entry.mul).reshape([batch, entry.mul, 1]);
        parts.push(block.mul(scale).reshape([batch, entry.mul * d]));
        instance += entry.mul;
    }
    if parts.is_empty() {
        return x;
    }
    concat_columns(parts, batch, &x)
}

/// The parts side by side (`[batch, sum of widths]`): one part as itself (a concatenation
/// of one is still an op autodiff records), `[batch, 0]` like `like` when there are none.
pub(crate) fn concat_columns(
    mut parts: Vec<Tensor<2>>,
    batch: usize,
    like: &Tensor<2>,
) -> Tensor<2> {
    match parts.len() {
        0 => Tensor::zeros([batch, 0], (&like.device(), like.dtype())),
        1 => parts.swap_remove(0),
        _ => Tensor::cat(parts, 1),
    }
}
