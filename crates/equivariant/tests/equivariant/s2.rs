//! The sphere-grid modules on burn: `o3::ToS2Grid` / `FromS2Grid` equal to the core's plans
//! (e3nn's, fixture-tested there), native and composed, with autodiff gradients;
//! `nn::S2Activation` against e3nn 0.6.0 (fixture `tests/fixtures/s2_modules.json`, from
//! `tools/reference/fixtures_s2.py`), its gradient against finite differences, its exact
//! equivariance under the grid's rotations, and bad input.

use std::sync::Arc;

use burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant::math::ActivationFunction;
use equivariant::nn::S2Activation;
use equivariant::o3::{FromS2Grid, FromS2GridPlan, Irreps, Normalization, ToS2Grid, ToS2GridPlan};
use equivariant::ops::composed;
use equivariant::ops::grid_transform::{GridTransform, grid_transform};
use equivariant_testing::{assert_close, f64s, load_fixture};
use serde_json::Value;

use super::support::{check_gradient, tracked as tensor, values, wavy};

#[test]
fn grid_modules_equal_the_core_plans_with_their_gradients_natively_and_composed() {
    let device = Device::flex().autodiff();
    let (lmax, rb, ra, z) = (3u32, 10, 9, 5);
    let norm = Normalization::Norm;
    let to_plan = ToS2GridPlan::new(Some(lmax), Some(rb), Some(ra), norm).unwrap();
    let from_plan = FromS2GridPlan::new(Some(rb), Some(ra), Some(lmax), norm, Some(4)).unwrap();
    let (x, g) = (wavy(z * 16, 0.3), wavy(z * rb * ra, 1.1));

    let to = ToS2Grid::new(Some(lmax), Some(rb), Some(ra), norm).unwrap();
    let xt = tensor(&x, [z, 16], &device);
    let grid = to.forward(xt.clone()).unwrap();
    let mut want = vec![0.0; z * rb * ra];
    to_plan.forward(&x, &mut want).unwrap();
    assert_close("ToS2Grid", &values(grid.clone()), &want, 1e-12);
    let grads = grid.mul(tensor(&g, [z, rb, ra], &device)).sum().backward();
    let mut want = vec![0.0; z * 16];
    to_plan.backward(&g, &mut want).unwrap();
    assert_close(
        "ToS2Grid backward",
        &values(xt.grad(&grads).unwrap()),
        &want,
        1e-12,
    );

    let from = FromS2Grid::new(Some(rb), Some(ra), Some(lmax), norm, Some(4)).unwrap();
    let gt = tensor(&g, [z, rb, ra], &device);
    let coefficients = from.forward(gt.clone()).unwrap();
    let mut want = vec![0.0; z * 16];
    from_plan.forward(&g, &mut want).unwrap();
    assert_close("FromS2Grid", &values(coefficients.clone()), &want, 1e-12);
    let grads = coefficients
        .mul(tensor(&x, [z, 16], &device))
        .sum()
        .backward();
    let mut want = vec![0.0; z * rb * ra];
    from_plan.backward(&x, &mut want).unwrap();
    assert_close(
        "FromS2Grid backward",
        &values(gt.grad(&grads).unwrap()),
        &want,
        1e-12,
    );

    // The composed fallback (a dense matrix) gives the same values and gradients.
    for (transform, input, output) in [
        (GridTransform::ToS2(to_plan.clone()), &x, &g),
        (GridTransform::FromS2(from_plan.clone()), &g, &x),
    ] {
        let transform = Arc::new(transform);
        let (n_in, n_out) = (transform.in_len(), transform.out_len());
        let a = tensor(input, [z, n_in], &device);
        let b = tensor(input, [z, n_in], &device);
        let (native, dense) = (
            grid_transform(&transform, a.clone(), false),
            composed::grid_transform(&transform, b.clone(), false),
        );
        assert_close(
            "composed forward",
            &values(dense.clone()),
            &values(native.clone()),
            1e-12,
        );
        let w = tensor(output, [z, n_out], &device);
        let (ga, gb) = (
            native.mul(w.clone()).sum().backward(),
            dense.mul(w).sum().backward(),
        );
        assert_close(
            "composed backward",
            &values(b.grad(&gb).unwrap()),
            &values(a.grad(&ga).unwrap()),
            1e-12,
        );
    }
}

fn activation(name: &str) -> ActivationFunction {
    name.parse().unwrap()
}

fn s2_activation(case: &Value) -> S2Activation {
    let irreps: Irreps = case["irreps"].as_str().unwrap().parse().unwrap();
    let (rb, ra) = match &case["res"] {
        Value::Array(r) => (
            r[0].as_u64().unwrap() as usize,
            Some(r[1].as_u64().unwrap() as usize),
        ),
        r => (r.as_u64().unwrap() as usize, None),
    };
    S2Activation::new(
        &irreps,
        activation(case["act"].as_str().unwrap()),
        rb,
        ra,
        case["normalization"].as_str().unwrap().parse().unwrap(),
        case["lmax_out"].as_u64().map(|l| l as u32),
    )
    .unwrap()
}

#[test]
fn s2_activation_matches_e3nn_forward_and_gradient_in_f64_and_f32() {
    let fixture = load_fixture!("s2_modules");
    for case in fixture["s2_activation"].as_array().unwrap() {
        let act = s2_activation(case);
        let what = format!("S2Activation({}, {})", case["irreps"], case["act"]);
        assert_eq!(
            act.irreps_out().to_string(),
            case["irreps_out"].as_str().unwrap(),
            "{what}"
        );
        let x = f64s(&case["x"]);
        let dim = act.irreps_in().dim();
        let z = x.len() / dim;
        let device = Device::flex().autodiff();
        let xt = tensor(&x, [z, dim], &device);
        let out = act.forward(xt.clone()).unwrap();
        assert_close(&what, &values(out.clone()), &f64s(&case["out"]), 1e-10);
        let g = f64s(&case["g"]);
        let grads = out
            .mul(tensor(&g, [z, act.irreps_out().dim()], &device))
            .sum()
            .backward();
        assert_close(
            &format!("{what} gradient"),
            &values(xt.grad(&grads).unwrap()),
            &f64s(&case["grad"]),
            1e-10,
        );
        // f32.
        let x32 = Tensor::<2>::from_data(
            TensorData::new(x.clone(), [z, dim]),
            (&Device::flex(), DType::F64),
        )
        .cast(DType::F32);
        let out32: Vec<f64> = act
            .forward(x32)
            .unwrap()
            .into_data()
            .iter::<f32>()
            .map(f64::from)
            .collect();
        assert_close(&format!("{what} f32"), &out32, &f64s(&case["out"]), 1e-4);
    }
}

#[test]
fn s2_activation_gradient_matches_finite_differences() {
    let act = S2Activation::new(
        &"0e+1o+2e".parse().unwrap(),
        ActivationFunction::Silu,
        12,
        None,
        Normalization::Component,
        Some(3),
    )
    .unwrap();
    check_gradient(
        "S2Activation finite differences",
        |x| act.forward(x).unwrap(),
        &wavy(2 * 9, 0.2),
        [2, 9],
        1e-7,
    );
}

#[test]
fn s2_activation_commutes_with_the_grid_rotations_exactly() {
    // A rotation about y by one alpha step permutes the grid's points, so the pointwise
    // nonlinearity commutes with it exactly: act(D_in x) = D_out act(x).
    let (rb, ra) = (12, 11);
    for (irreps, f) in [
        ("0e+1o+2e", ActivationFunction::Silu),
        ("0o+1e+2o+3e", ActivationFunction::Tanh),
    ] {
        let irreps: Irreps = irreps.parse().unwrap();
        let act =
            S2Activation::new(&irreps, f, rb, Some(ra), Normalization::Component, Some(4)).unwrap();
        let step = 2.0 * std::f64::consts::PI / ra as f64;
        let rotate = |irreps: &Irreps, x: &[f64]| -> Vec<f64> {
            let d = irreps.d_from_angles(step, 0.0, 0.0, 0);
            let n = irreps.dim();
            (0..n)
                .map(|i| (0..n).map(|j| d[i * n + j] * x[j]).sum())
                .collect()
        };
        let x = wavy(irreps.dim(), 0.4);
        let device = Device::flex().autodiff();
        let out = values(act.forward(tensor(&x, [1, irreps.dim()], &device)).unwrap());
        let rotated_in = values(
            act.forward(tensor(&rotate(&irreps, &x), [1, irreps.dim()], &device))
                .unwrap(),
        );
        assert_close(
            &format!("{irreps}"),
            &rotated_in,
            &rotate(act.irreps_out(), &out),
            1e-10,
        );
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let n = Normalization::Component;
    let silu = ActivationFunction::Silu;
    for irreps in ["2x0e+1x1o", "0e+1o+1o", "0e+2e", "0e+1e+2o", "1o"] {
        let irreps: Irreps = irreps.parse().unwrap();
        assert!(
            S2Activation::new(&irreps, silu, 12, None, n, None).is_err(),
            "{irreps}"
        );
    }
    // An odd signal with a function neither even nor odd; a grid that does not resolve it.
    assert!(S2Activation::new(&"0o+1e".parse().unwrap(), silu, 12, None, n, None).is_err());
    assert!(S2Activation::new(&"0e+1o+2e".parse().unwrap(), silu, 4, None, n, None).is_err());
    assert!(S2Activation::new(&"0e+1o+2e".parse().unwrap(), silu, 11, None, n, None).is_err());
    let act = S2Activation::new(&"0e+1o".parse().unwrap(), silu, 8, None, n, None).unwrap();
    assert!(
        act.forward(Tensor::<2>::zeros([2, 5], &Device::flex()))
            .is_err()
    );
    let from = FromS2Grid::new(Some(8), Some(7), None, n, None).unwrap();
    assert!(
        from.forward(Tensor::<3>::zeros([1, 8, 8], &Device::flex()))
            .is_err()
    );
    let to = ToS2Grid::new(Some(2), None, None, n).unwrap();
    assert!(
        to.forward(Tensor::<2>::zeros([1, 4], &Device::flex()))
            .is_err()
    );
}
