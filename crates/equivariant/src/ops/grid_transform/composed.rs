//! [`grid_transform`](super::grid_transform) of burn tensor ops, for any backend: a product with
//! the dense matrix of the map (built by the core kernel from the identity, in f64), so
//! autodiff differentiates it as it does any matmul.

use std::sync::Arc;

use burn::tensor::Tensor;

use super::GridTransform;
use crate::ops::composed::constant;

/// `x map` (`[z, in_len]` to `[z, out_len]`), or `x map^T` when `transpose`.
///
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{Normalization, ToS2GridPlan};
/// use equivariant::ops::composed;
/// use equivariant::ops::grid_transform::GridTransform;
/// let t = Arc::new(GridTransform::ToS2(ToS2GridPlan::new(Some(0), None, None, Normalization::Integral)?));
/// let x = Tensor::<2>::from_floats([[2.0]], &Device::flex());
/// let grid = composed::grid_transform(&t, x, false).into_data().try_into_vec::<f32>().unwrap();
/// assert!(grid.iter().all(|g| (g - 0.5641896).abs() < 1e-6)); // 2 / sqrt(4 pi)
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn grid_transform(transform: &Arc<GridTransform>, x: Tensor<2>, transpose: bool) -> Tensor<2> {
    let (rows, cols) = (transform.in_len(), transform.out_len());
    let mut identity = vec![0.0f64; rows * rows];
    for i in 0..rows {
        identity[i * rows + i] = 1.0;
    }
    let mut matrix = vec![0.0f64; rows * cols];
    transform
        .apply(&identity, &mut matrix, false)
        .unwrap_or_else(|err| panic!("grid_transform: {err}"));
    let matrix = constant(matrix, [rows, cols], &x);
    if transpose {
        x.matmul(matrix.transpose())
    } else {
        x.matmul(matrix)
    }
}
