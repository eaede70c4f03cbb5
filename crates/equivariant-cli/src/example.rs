//! The guide's built-in example: random positions at the guide's density and random
//! component-normalized input features, drawn from one seeded generator.

use equivariant::burn::tensor::{Device, Tensor, TensorData};
use equivariant::o3::Irreps;
use equivariant::o3::irreps::RandnNormalization;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// Positions `randn(n, 3) * (n / 100)^(1/3)`: the guide's 100 nodes of `torch.randn` and,
/// for other sizes, the same density.
pub fn positions(n: usize, rng: &mut StdRng) -> Vec<f32> {
    let scale = (n as f64 / 100.0).cbrt();
    (0..3 * n)
        .map(|_| {
            let x: f64 = StandardNormal.sample(rng);
            (x * scale) as f32
        })
        .collect()
}

/// `irreps.randn(n, -1)`: features with unit second moment per component.
pub fn features(irreps: &Irreps, n: usize, rng: &mut StdRng) -> Vec<f32> {
    irreps.randn(n, RandnNormalization::Component, rng)
}

/// `n` draws of the standard normal, in f32.
pub fn randn(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let x: f64 = StandardNormal.sample(rng);
            x as f32
        })
        .collect()
}

/// A `[rows, cols]` f32 tensor on `device`.
pub fn tensor(data: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// The second moment `mean(x^2)` of a tensor.
pub fn second_moment(x: &Tensor<2>) -> f64 {
    x.clone().powi_scalar(2).mean().into_scalar::<f32>() as f64
}
