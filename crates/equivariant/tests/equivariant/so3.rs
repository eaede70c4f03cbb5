//! Signals on SO(3) and batched Wigner D matrices on burn: `o3::SO3Grid`,
//! `nn::SO3Activation` and `ops::wigner_d` against e3nn 0.6.0 (fixture
//! `tests/fixtures/s2_modules.json`, from `tools/reference/fixtures_s2.py`) with their
//! gradients, round trips, equality with the core's `wigner_d`, finite differences and bad
//! input.

use burn::tensor::{Device, Tensor};
use equivariant::math::ActivationFunction;
use equivariant::nn::SO3Activation;
use equivariant::o3::{SO3Grid, wigner_d as core_wigner_d};
use equivariant::ops::wigner_d;
use equivariant_testing::{assert_close, f64s, load_fixture};

use super::support::{check_gradient, tracked, values};

fn tensor<const D: usize>(data: &[f64], shape: [usize; D]) -> Tensor<D> {
    tracked(data, shape, &Device::flex().autodiff())
}

fn usize_of(v: &serde_json::Value) -> usize {
    v.as_u64().unwrap() as usize
}

#[test]
fn so3_grid_matches_e3nn_both_ways_with_gradients() {
    let fixture = load_fixture!("s2_modules");
    for case in fixture["so3_grid"].as_array().unwrap() {
        let (lmax, resolution) = (
            usize_of(&case["lmax"]) as u32,
            usize_of(&case["resolution"]),
        );
        let grid = SO3Grid::new(lmax, resolution, 2.0).unwrap();
        let res: Vec<usize> = case["res"]
            .as_array()
            .unwrap()
            .iter()
            .map(usize_of)
            .collect();
        assert_eq!(grid.plan().res().to_vec(), res);
        let [a, b, c] = grid.plan().res();
        let dim = grid.plan().dim();
        let x = f64s(&case["x"]);
        let z = x.len() / dim;
        let xt = tensor(&x, [z, dim]);
        let samples = grid.to_grid(xt.clone()).unwrap();
        let what = format!("SO3Grid({lmax}, {resolution})");
        assert_close(
            &format!("{what} to_grid"),
            &values(samples.clone()),
            &f64s(&case["to_grid"]),
            1e-10,
        );
        let grads = samples
            .mul(tensor(&f64s(&case["g"]), [z, a, b, c]))
            .sum()
            .backward();
        assert_close(
            &format!("{what} to_grid gradient"),
            &values(xt.grad(&grads).unwrap()),
            &f64s(&case["grad_to"]),
            1e-10,
        );
        let yt = tensor(&f64s(&case["y"]), [z, a, b, c]);
        let back = grid.from_grid(yt.clone()).unwrap();
        assert_close(
            &format!("{what} from_grid"),
            &values(back.clone()),
            &f64s(&case["from_grid"]),
            1e-10,
        );
        let grads = back
            .mul(tensor(&f64s(&case["h"]), [z, dim]))
            .sum()
            .backward();
        assert_close(
            &format!("{what} from_grid gradient"),
            &values(yt.grad(&grads).unwrap()),
            &f64s(&case["grad_from"]),
            1e-10,
        );
        // from_grid inverts to_grid.
        let round = grid
            .from_grid(grid.to_grid(tensor(&x, [z, dim])).unwrap())
            .unwrap();
        assert_close(&format!("{what} round trip"), &values(round), &x, 1e-10);
    }
}

#[test]
fn so3_activation_matches_e3nn_with_its_gradient() {
    let fixture = load_fixture!("s2_modules");
    for case in fixture["so3_activation"].as_array().unwrap() {
        let (lmax_in, lmax_out) = (
            usize_of(&case["lmax_in"]) as u32,
            usize_of(&case["lmax_out"]) as u32,
        );
        let f: ActivationFunction = case["act"].as_str().unwrap().parse().unwrap();
        let act =
            SO3Activation::new(lmax_in, lmax_out, f, usize_of(&case["resolution"]), 2.0).unwrap();
        let dim = |l: u32| {
            (0..=l as usize)
                .map(|l| (2 * l + 1) * (2 * l + 1))
                .sum::<usize>()
        };
        let x = f64s(&case["x"]);
        let z = x.len() / dim(lmax_in);
        let xt = tensor(&x, [z, dim(lmax_in)]);
        let out = act.forward(xt.clone()).unwrap();
        let what = format!("SO3Activation({lmax_in}, {lmax_out}, {f:?})");
        assert_close(&what, &values(out.clone()), &f64s(&case["out"]), 1e-10);
        let grads = out
            .mul(tensor(&f64s(&case["g"]), [z, dim(lmax_out)]))
            .sum()
            .backward();
        assert_close(
            &format!("{what} gradient"),
            &values(xt.grad(&grads).unwrap()),
            &f64s(&case["grad"]),
            1e-10,
        );
    }
}

#[test]
fn batched_wigner_d_matches_e3nn_and_the_core_with_gradients() {
    let fixture = load_fixture!("s2_modules");
    for case in fixture["wigner_d"].as_array().unwrap() {
        let l = usize_of(&case["l"]) as u32;
        let (a, b, c) = (
            f64s(&case["alpha"]),
            f64s(&case["beta"]),
            f64s(&case["gamma"]),
        );
        let n = a.len();
        let (at, bt, ct) = (tensor(&a, [n]), tensor(&b, [n]), tensor(&c, [n]));
        let d = wigner_d(l, at.clone(), bt.clone(), ct.clone()).unwrap();
        let got = values(d.clone());
        assert_close(&format!("wigner_D({l})"), &got, &f64s(&case["out"]), 1e-10);
        let core: Vec<f64> = (0..n)
            .flat_map(|i| core_wigner_d(l, a[i], b[i], c[i]))
            .collect();
        assert_close(&format!("wigner_D({l}) = core"), &got, &core, 1e-12);
        let k = 2 * l as usize + 1;
        let grads = d.mul(tensor(&f64s(&case["g"]), [n, k, k])).sum().backward();
        for (name, t) in [("alpha", &at), ("beta", &bt), ("gamma", &ct)] {
            // D^0 = 1 does not depend on the angles: burn gives no gradient, e3nn zeros.
            let grad = t.grad(&grads).map_or(vec![0.0; n], values);
            assert!(l == 0 || t.grad(&grads).is_some());
            assert_close(
                &format!("wigner_D({l}) d/d{name}"),
                &grad,
                &f64s(&case[&format!("grad_{name}")]),
                1e-10,
            );
        }
    }
}

#[test]
fn batched_wigner_d_gradient_matches_finite_differences_at_high_degree() {
    let l = 6u32;
    let k = 2 * l as usize + 1;
    let (a, b, c) = (vec![0.3, -2.0], vec![1.1, 2.9], vec![-0.4, 0.8]);
    let w: Vec<f64> = (0..2 * k * k).map(|i| (i as f64 * 0.37).sin()).collect();
    let loss = |a: &[f64], b: &[f64], c: &[f64]| -> f64 {
        let d = wigner_d(l, tensor(a, [2]), tensor(b, [2]), tensor(c, [2])).unwrap();
        values(d).iter().zip(&w).map(|(x, y)| x * y).sum()
    };
    let (at, bt, ct) = (tensor(&a, [2]), tensor(&b, [2]), tensor(&c, [2]));
    let grads = wigner_d(l, at.clone(), bt.clone(), ct.clone())
        .unwrap()
        .mul(tensor(&w, [2, k, k]))
        .sum()
        .backward();
    let h = 1e-6;
    for (which, t) in [(0, &at), (1, &bt), (2, &ct)] {
        let analytic = values(t.grad(&grads).unwrap());
        for i in 0..2 {
            let mut args = [a.clone(), b.clone(), c.clone()];
            args[which][i] += h;
            let plus = loss(&args[0], &args[1], &args[2]);
            args[which][i] -= 2.0 * h;
            let minus = loss(&args[0], &args[1], &args[2]);
            let numeric = (plus - minus) / (2.0 * h);
            assert!(
                (analytic[i] - numeric).abs() < 1e-6,
                "angle {which} row {i}: {} vs {numeric}",
                analytic[i]
            );
        }
    }
}

#[test]
fn so3_activation_gradient_matches_finite_differences() {
    let act = SO3Activation::new(1, 2, ActivationFunction::Tanh, 2, 2.0).unwrap();
    let x: Vec<f64> = (0..2 * 10).map(|i| (i as f64 * 0.47).cos()).collect();
    check_gradient(
        "SO3Activation finite differences",
        |x| act.forward(x).unwrap(),
        &x,
        [2, 10],
        1e-7,
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let t = |n: usize| tensor(&vec![0.1; n], [n]);
    assert!(wigner_d(2, t(3), t(2), t(3)).is_err());
    assert!(wigner_d(2, t(3), t(3), t(4)).is_err());
    assert!(SO3Grid::new(1, 0, 2.0).is_err());
    assert!(SO3Grid::new(1, 2, 0.0).is_err());
    let act = SO3Activation::new(1, 1, ActivationFunction::Silu, 2, 2.0).unwrap();
    assert!(act.forward(tensor(&[0.0; 8], [1, 8])).is_err());
}

#[test]
fn so3_activation_commutes_with_the_grid_rotations_exactly() {
    // f(R) = sum_l sqrt(2l+1) tr(F^l D^l(R)^T) / sqrt(dim): left-multiplying each F^l by
    // D^l(g), g a rotation about y by one alpha step of the grid, shifts the samples by one
    // alpha, so the pointwise nonlinearity commutes with it exactly.
    let (lmax_in, lmax_out, resolution) = (2u32, 2u32, 3usize);
    let act =
        SO3Activation::new(lmax_in, lmax_out, ActivationFunction::Silu, resolution, 2.0).unwrap();
    let na = SO3Grid::new(lmax_in, resolution, 2.0).unwrap().plan().res()[0];
    let step = 2.0 * std::f64::consts::PI / na as f64;
    let rotate = |lmax: u32, angle: f64, x: &[f64]| -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        let mut at = 0;
        for l in 0..=lmax {
            let d = 2 * l as usize + 1;
            let dl = core_wigner_d(l, angle, 0.0, 0.0);
            for i in 0..d {
                for j in 0..d {
                    out[at + i * d + j] = (0..d).map(|k| dl[i * d + k] * x[at + k * d + j]).sum();
                }
            }
            at += d * d;
        }
        out
    };
    let dim_in = (0..=lmax_in as usize)
        .map(|l| (2 * l + 1) * (2 * l + 1))
        .sum::<usize>();
    let x: Vec<f64> = (0..dim_in).map(|i| (i as f64 * 0.83).sin()).collect();
    let out = values(act.forward(tensor(&x, [1, dim_in])).unwrap());
    let rotated = values(
        act.forward(tensor(&rotate(lmax_in, step, &x), [1, dim_in]))
            .unwrap(),
    );
    assert_close(
        "SO3Activation(D x) = D SO3Activation(x)",
        &rotated,
        &rotate(lmax_out, step, &out),
        1e-10,
    );
    // A rotation the grid does not contain (half a step) is only approximately
    // equivariant, so the check above can tell.
    let moved = values(
        act.forward(tensor(&rotate(lmax_in, step / 2.0, &x), [1, dim_in]))
            .unwrap(),
    );
    let deviation = moved
        .iter()
        .zip(rotate(lmax_out, step / 2.0, &out))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(deviation > 1e-6, "half a step: {deviation}");
}
