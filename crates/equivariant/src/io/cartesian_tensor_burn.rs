//! [`CartesianTensor`]'s conversions on burn tensors: products with its change of basis `Q`
//! (`[irreps.dim, 3^rank]`), so autodiff differentiates them like any matmul.

use burn::tensor::{Tensor, TensorData};
use equivariant_core::io::CartesianTensor;

use crate::Result;
use crate::shape::check_shape;

/// `Q` as `[irreps.dim, 3^rank]` on the device and in the dtype of `like`.
fn change_of_basis(tensor: &CartesianTensor, like: &Tensor<2>) -> Tensor<2> {
    let q = tensor.reduced_tensor_products();
    let d = tensor.irreps().dim();
    let entries = q.change_of_basis().len() / d.max(1);
    Tensor::<2>::from_data(
        TensorData::new(q.change_of_basis().to_vec(), [d, entries]),
        (&like.device(), like.dtype()),
    )
}

/// e3nn's `CartesianTensor.from_cartesian` on a batch: Cartesian tensors `[batch, 3^rank]`
/// (each row-major over its indices) to their irreps `[batch, irreps.dim]`, `data Q^T`.
///
/// Errors: [`crate::Error::ShapeMismatch`] unless `data` has `3^rank` columns.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::io::{CartesianTensor, from_cartesian, to_cartesian};
/// let stress = CartesianTensor::new("ij=ji")?;
/// let t = Tensor::<2>::from_floats([[1.0, 2.0, 3.0, 2.0, 4.0, 5.0, 3.0, 5.0, 6.0]], &Device::flex());
/// let irreps = from_cartesian(&stress, t.clone())?;
/// assert_eq!(irreps.dims(), [1, 6]);
/// let back = to_cartesian(&stress, irreps)?;
/// assert!(back.sub(t).abs().max().into_scalar::<f32>() < 1e-5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn from_cartesian(tensor: &CartesianTensor, data: Tensor<2>) -> Result<Tensor<2>> {
    let q = change_of_basis(tensor, &data);
    let [batch, _] = data.dims();
    check_shape(
        "Cartesian tensors [batch, 3^rank]",
        &data,
        [batch, q.dims()[1]],
    )?;
    Ok(data.matmul(q.transpose()))
}

/// e3nn's `CartesianTensor.to_cartesian` on a batch: irreps `[batch, irreps.dim]` to
/// Cartesian tensors `[batch, 3^rank]`, `data Q`.
///
/// Errors: [`crate::Error::ShapeMismatch`] unless `data` has `irreps.dim` columns.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::io::{CartesianTensor, to_cartesian};
/// let x = CartesianTensor::new("ij=-ji")?; // 1x1e
/// let t = to_cartesian(&x, Tensor::<2>::from_floats([[0.0, 0.0, 1.0]], &Device::flex()))?;
/// let t = t.into_data().try_into_vec::<f32>().unwrap();
/// assert!((t[1] + t[3]).abs() < 1e-6); // antisymmetric
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_cartesian(tensor: &CartesianTensor, data: Tensor<2>) -> Result<Tensor<2>> {
    let q = change_of_basis(tensor, &data);
    let [batch, _] = data.dims();
    check_shape("irreps [batch, irreps.dim]", &data, [batch, q.dims()[0]])?;
    Ok(data.matmul(q))
}
