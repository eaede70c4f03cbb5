//! What the test modules share: f64 tensors from slices and back, a fixed wavy input, and
//! a gradient check against central differences.

use burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant_testing::assert_close;

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

/// `d sum(f(x) * g) / dx` by burn's autodiff against central differences (step 1e-6) in f64,
/// within `tol`, for a fixed irregular `g` of the output's shape.
pub fn check_gradient(
    what: &str,
    f: impl Fn(Tensor<2>) -> Tensor<2>,
    x: &[f64],
    shape: [usize; 2],
    tol: f64,
) {
    let device = Device::flex().autodiff();
    let xt = tracked(x, shape, &device);
    let out = f(xt.clone());
    let g: Vec<f64> = (0..out.dims().iter().product::<usize>())
        .map(|i| ((i * 7 + 3) % 11) as f64 / 11.0 - 0.4)
        .collect();
    let scalar = |y: Tensor<2>| {
        let g = tensor(&g, y.dims(), &y.device());
        y.mul(g).sum().into_scalar::<f64>()
    };
    let grads = out
        .clone()
        .mul(tensor(&g, out.dims(), &device))
        .sum()
        .backward();
    let analytic = values(xt.grad(&grads).unwrap());
    let h = 1e-6;
    let numeric: Vec<f64> = (0..x.len())
        .map(|i| {
            let mut plus = x.to_vec();
            let mut minus = x.to_vec();
            plus[i] += h;
            minus[i] -= h;
            (scalar(f(tensor(&plus, shape, &device))) - scalar(f(tensor(&minus, shape, &device))))
                / (2.0 * h)
        })
        .collect();
    assert_close(what, &analytic, &numeric, tol);
}
