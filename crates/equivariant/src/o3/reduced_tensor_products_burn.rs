//! [`ReducedTensorProducts`]' forward on burn tensors: the outer product of its inputs,
//! contracted with the change of basis `Q` (`[irreps_out.dim, d_1 ... d_k]`), so autodiff
//! differentiates it like any product.

use burn::tensor::{Tensor, TensorData};
use equivariant_core::o3::ReducedTensorProducts;
use equivariant_core::{Error, Result};

use crate::shape::{check_dtype, check_rows, check_width};

/// e3nn's `ReducedTensorProducts.forward(*xs)` on a batch: `out[z, i] = sum Q[i, j_1 ...
/// j_k] x_1[z, j_1] ... x_k[z, j_k]`, one input `[z, d_k]` per index of the formula.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for another number of inputs, [`Error::ShapeMismatch`] for
/// inputs of other widths or row counts, or of different dtypes.
///
/// ```
/// use std::collections::BTreeMap;
/// use burn::tensor::{Device, Tensor};
/// use equivariant::o3::{ReducedTensorProducts, reduced_tensor_products_forward};
/// let rtp = ReducedTensorProducts::new("ij=ji", &BTreeMap::from([('i', "1o".parse()?)]), None, None, 1e-9)?;
/// let device = Device::flex();
/// let x = Tensor::<2>::from_floats([[1.0, 0.0, 0.0]], &device);
/// let y = Tensor::<2>::from_floats([[0.0, 1.0, 0.0]], &device);
/// let out = reduced_tensor_products_forward(&rtp, &[x.clone(), y.clone()])?;
/// assert_eq!(out.dims(), [1, 6]); // 0e + 2e
/// // Symmetric in its two inputs.
/// let swapped = reduced_tensor_products_forward(&rtp, &[y, x])?;
/// assert!(out.sub(swapped).abs().max().into_scalar::<f32>() < 1e-6);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn reduced_tensor_products_forward(
    rtp: &ReducedTensorProducts,
    inputs: &[Tensor<2>],
) -> Result<Tensor<2>> {
    let dims: Vec<usize> = rtp.irreps_in().iter().map(|irreps| irreps.dim()).collect();
    if inputs.len() != dims.len() {
        return Err(Error::InvalidArgument {
            name: "inputs",
            reason: format!(
                "{} inputs for a formula of {} indices",
                inputs.len(),
                dims.len()
            ),
        });
    }
    let Some(first) = inputs.first() else {
        return Err(Error::InvalidArgument {
            name: "inputs",
            reason: "a formula without indices".into(),
        });
    };
    let z = first.dims()[0];
    for (x, &d) in inputs.iter().zip(&dims) {
        check_width("ReducedTensorProducts input [z, d_k]", x, d)?;
        check_rows("ReducedTensorProducts input (the rows of the first)", x, z)?;
        check_dtype(
            "ReducedTensorProducts input (the dtype of the first)",
            x,
            first,
        )?;
    }
    let mut outer = first.clone();
    let mut width = dims[0];
    for (x, &d) in inputs.iter().zip(&dims).skip(1) {
        outer = outer
            .reshape([z, width, 1])
            .mul(x.clone().reshape([z, 1, d]))
            .reshape([z, width * d]);
        width *= d;
    }
    let out_dim = rtp.irreps_out().dim();
    let q = Tensor::<2>::from_data(
        TensorData::new(rtp.change_of_basis().to_vec(), [out_dim, width]),
        (&first.device(), first.dtype()),
    );
    Ok(outer.matmul(q.transpose()))
}
