//! Gather, scatter-sum and scatter-mean over the first axis, composed of burn's `select` and
//! `select_assign` (differentiable on any backend: the gradient of a gather is a scatter-sum
//! and vice versa). The core's [`graph::scatter_sum`](crate::graph::scatter_sum) is the
//! slice version.

use burn::tensor::IndexingUpdateOp;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// An index list as the `Tensor<1, Int>` that [`gather`] and the scatters take (e.g. a
/// graph's `src` or `dst`).
///
/// ```
/// use burn::tensor::Device;
/// use equivariant::ops::index_tensor;
/// let index = index_tensor(&[2, 0, 2], &Device::flex());
/// assert_eq!(index.into_data().iter::<i64>().collect::<Vec<_>>(), [2, 0, 2]);
/// ```
pub fn index_tensor(index: &[usize], device: &Device) -> Tensor<1, Int> {
    let ints: Vec<i64> = index.iter().map(|&i| i as i64).collect();
    Tensor::<1, Int>::from_data(TensorData::new(ints, [index.len()]), device)
}

/// `out[e] = x[index[e]]`: the rows of `x` picked by `index` (PyTorch's `x[index]`).
///
/// # Shapes
///
/// - `x`: `[n, d]`, `index`: `[e]` with values in `0..n`
/// - output: `[e, d]`
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use equivariant::ops::gather;
/// let device = Device::flex();
/// let x = Tensor::<2>::from_floats([[1.0], [2.0], [3.0]], &device);
/// let index = Tensor::<1, Int>::from_ints([2, 0, 2], &device);
/// let out = gather(x, index).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(out, [3.0, 1.0, 3.0]);
/// ```
pub fn gather(x: Tensor<2>, index: Tensor<1, Int>) -> Tensor<2> {
    x.select(0, index)
}

/// `out[i] = sum_{e : index[e] = i} x[e]` for `i` in `0..dim_size`: torch_scatter's
/// `scatter(x, index, dim=0, dim_size=dim_size)` with the default sum. Rows of the output
/// that no edge names are zero.
///
/// # Shapes
///
/// - `x`: `[e, d]`, `index`: `[e]` with values in `0..dim_size`
/// - output: `[dim_size, d]`
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use equivariant::ops::scatter_sum;
/// let device = Device::flex();
/// let x = Tensor::<2>::from_floats([[1.0], [2.0], [4.0]], &device);
/// let index = Tensor::<1, Int>::from_ints([1, 1, 0], &device);
/// let out = scatter_sum(x, index, 3).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(out, [4.0, 3.0, 0.0]);
/// ```
pub fn scatter_sum(x: Tensor<2>, index: Tensor<1, Int>, dim_size: usize) -> Tensor<2> {
    let [_, d] = x.dims();
    let zeros = Tensor::<2>::zeros([dim_size, d], (&x.device(), x.dtype()));
    zeros.select_assign(0, index, x, IndexingUpdateOp::Add)
}

/// `out[i] = mean_{e : index[e] = i} x[e]` for `i` in `0..dim_size` (torch_scatter's
/// `scatter(..., reduce="mean")`): the sum divided by the count; rows no edge names are
/// zero.
///
/// # Shapes
///
/// As [`scatter_sum`].
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use equivariant::ops::scatter_mean;
/// let device = Device::flex();
/// let x = Tensor::<2>::from_floats([[1.0], [2.0], [4.0]], &device);
/// let index = Tensor::<1, Int>::from_ints([1, 1, 0], &device);
/// let out = scatter_mean(x, index, 3).into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(out, [4.0, 1.5, 0.0]);
/// ```
pub fn scatter_mean(x: Tensor<2>, index: Tensor<1, Int>, dim_size: usize) -> Tensor<2> {
    let [e, _] = x.dims();
    let ones = Tensor::<2>::ones([e, 1], (&x.device(), x.dtype()));
    // Counts are not differentiated; clamped at 1 so empty rows stay zero.
    let counts = scatter_sum(ones, index.clone(), dim_size).clamp_min(1.0);
    scatter_sum(x, index, dim_size).div(counts)
}
