//! `io::from_cartesian` / `to_cartesian` on burn tensors: the core's `CartesianTensor` (e3nn's,
//! fixture-tested there) on a batch, their gradients, equivariance and bad shapes.

use burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant::io::{CartesianTensor, from_cartesian, to_cartesian};
use equivariant::o3::rand_matrix;
use equivariant_testing::assert_close;

fn tensor(values: Vec<f64>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), (device, DType::F64))
}

fn values(t: Tensor<2>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

#[test]
fn batched_conversions_equal_the_core_and_differentiate() {
    let device = Device::flex();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
    for formula in ["ij=ji", "ij=-ji", "ij", "ijk=jik=ikj", "ijkl=jikl=klij"] {
        let x = CartesianTensor::new(formula).unwrap();
        let n = x.reduced_tensor_products().change_of_basis().len() / x.irreps().dim();
        let batch = 3;
        let data: Vec<f64> = (0..batch * n)
            .map(|_| rand::Rng::random_range(&mut rng, -1.0..1.0))
            .collect();
        let got = from_cartesian(&x, tensor(data.clone(), [batch, n], &device)).unwrap();
        assert_close(
            formula,
            &values(got.clone()),
            &x.from_cartesian(&data).unwrap(),
            1e-12,
        );
        let back = to_cartesian(&x, got.clone()).unwrap();
        let want = x.to_cartesian(&values(got)).unwrap();
        assert_close(formula, &values(back), &want, 1e-12);

        // d(sum w . from_cartesian(t))/dt = w Q, by autodiff.
        let ad = device.clone().autodiff();
        let t = tensor(data.clone(), [batch, n], &ad).require_grad();
        let w: Vec<f64> = (0..batch * x.irreps().dim())
            .map(|k| (k as f64 * 0.37).sin())
            .collect();
        let loss = from_cartesian(&x, t.clone())
            .unwrap()
            .mul(tensor(w.clone(), [batch, x.irreps().dim()], &ad))
            .sum();
        let grads = loss.backward();
        let grad: Vec<f64> = t.grad(&grads).unwrap().into_data().iter::<f64>().collect();
        let expected = x.to_cartesian(&w).unwrap();
        assert_close(&format!("{formula} gradient"), &grad, &expected, 1e-12);
    }

    // Equivariance of a rank-2 tensor: R T R^T maps to D(R) times the irreps.
    let x = CartesianTensor::new("ij").unwrap();
    let r = rand_matrix(&mut rng);
    let t: Vec<f64> = (0..9).map(|k| (k as f64 + 0.5).cos()).collect();
    let rotated: Vec<f64> = (0..9)
        .map(|k| {
            let (i, j) = (k / 3, k % 3);
            (0..3)
                .flat_map(|a| (0..3).map(move |b| (a, b)))
                .map(|(a, b)| r[i][a] * t[3 * a + b] * r[j][b])
                .sum()
        })
        .collect();
    let y = values(from_cartesian(&x, tensor(t, [1, 9], &device)).unwrap());
    let y_rotated = values(from_cartesian(&x, tensor(rotated, [1, 9], &device)).unwrap());
    let d = x.irreps().d_from_matrix(&r).unwrap();
    let dim = y.len();
    let expected: Vec<f64> = (0..dim)
        .map(|i| (0..dim).map(|j| d[i * dim + j] * y[j]).sum())
        .collect();
    assert_close("equivariance", &y_rotated, &expected, 1e-10);

    let bad = tensor(vec![0.0; 8], [1, 8], &device);
    assert!(from_cartesian(&x, bad.clone()).is_err());
    assert!(to_cartesian(&x, bad).is_err());
}

#[test]
fn reduced_tensor_products_forward_equals_the_core_differentiates_and_rotates() {
    use std::collections::BTreeMap;

    use equivariant::o3::{Irreps, ReducedTensorProducts, reduced_tensor_products_forward};
    let device = Device::flex().autodiff();
    let cases: [(&str, &[(char, &str)]); 4] = [
        ("ij=ji", &[('i', "1o")]),
        ("ijk=jik", &[('i', "1o"), ('k', "0e+1e")]),
        ("ij=-ji", &[('i', "1o+2e")]),
        ("ijkl=jikl=klij", &[('i', "1o")]),
    ];
    for (formula, irreps) in cases {
        let irreps: BTreeMap<char, Irreps> = irreps
            .iter()
            .map(|(c, s)| (*c, s.parse().unwrap()))
            .collect();
        let rtp = ReducedTensorProducts::new(formula, &irreps, None, None, 1e-9).unwrap();
        let (batch, k) = (3, rtp.irreps_in().len());
        let data: Vec<Vec<f64>> = rtp
            .irreps_in()
            .iter()
            .enumerate()
            .map(|(i, ir)| {
                (0..batch * ir.dim())
                    .map(|j| ((i * 31 + j) as f64 * 0.37).sin())
                    .collect()
            })
            .collect();
        let inputs: Vec<Tensor<2>> = data
            .iter()
            .zip(rtp.irreps_in())
            .map(|(d, ir)| tensor(d.clone(), [batch, ir.dim()], &device).require_grad())
            .collect();
        let out = reduced_tensor_products_forward(&rtp, &inputs).unwrap();
        let d_out = rtp.irreps_out().dim();
        let mut want = Vec::new();
        for z in 0..batch {
            let rows: Vec<&[f64]> = data
                .iter()
                .zip(rtp.irreps_in())
                .map(|(d, ir)| &d[z * ir.dim()..(z + 1) * ir.dim()])
                .collect();
            want.extend(rtp.forward(&rows).unwrap());
        }
        assert_close(formula, &values(out.clone()), &want, 1e-12);
        // The gradient of sum(out * w) for the first input, against finite differences.
        let w: Vec<f64> = (0..batch * d_out).map(|i| (i as f64 * 0.7).cos()).collect();
        let grads = out
            .mul(tensor(w.clone(), [batch, d_out], &device))
            .sum()
            .backward();
        let analytic = values(inputs[0].grad(&grads).unwrap());
        let loss = |first: &[f64]| -> f64 {
            let mut xs: Vec<Tensor<2>> = inputs.iter().map(|x| x.clone().detach()).collect();
            xs[0] = tensor(first.to_vec(), [batch, rtp.irreps_in()[0].dim()], &device);
            let out = reduced_tensor_products_forward(&rtp, &xs).unwrap();
            values(out).iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        for i in 0..data[0].len() {
            let (mut p, mut m) = (data[0].clone(), data[0].clone());
            p[i] += 1e-6;
            m[i] -= 1e-6;
            let numeric = (loss(&p) - loss(&m)) / 2e-6;
            assert!((analytic[i] - numeric).abs() < 1e-7, "{formula} d/dx[{i}]");
        }
        // Equivariance: rotating every input rotates the output.
        let r = rand_matrix(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3));
        let rotate = |irreps: &Irreps, x: &[f64]| -> Vec<f64> {
            let d = irreps.d_from_matrix(&r).unwrap();
            let n = irreps.dim();
            x.chunks_exact(n)
                .flat_map(|row| {
                    (0..n)
                        .map(|i| (0..n).map(|j| d[i * n + j] * row[j]).sum::<f64>())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let rotated: Vec<Tensor<2>> = data
            .iter()
            .zip(rtp.irreps_in())
            .map(|(d, ir)| tensor(rotate(ir, d), [batch, ir.dim()], &device))
            .collect();
        let got = values(reduced_tensor_products_forward(&rtp, &rotated).unwrap());
        assert_close(
            &format!("{formula} equivariance"),
            &got,
            &rotate(rtp.irreps_out(), &want),
            1e-10,
        );
        assert!(reduced_tensor_products_forward(&rtp, &inputs[..k - 1]).is_err());
    }
}
