//! What the test modules share: f64 tensors from slices and back, and a fixed wavy input.

use burn::tensor::{DType, Device, Tensor, TensorData};

/// An f64 tensor of `data` with `shape` on `device`.
pub fn tensor<const D: usize>(data: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), (device, DType::F64))
}

/// [`tensor`], tracked for gradients (`device` must be an autodiff device).
pub fn tracked<const D: usize>(data: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    tensor(data, shape, device).require_grad()
}

/// The values of an f64 tensor, row-major.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// `n` smooth, irregular values (no RNG needed): `1.2 sin(0.61 i + phase)`.
pub fn wavy(n: usize, phase: f64) -> Vec<f64> {
    (0..n)
        .map(|i| (i as f64 * 0.61 + phase).sin() * 1.2)
        .collect()
}
