//! The burn tensor product (`ops::tensor_product` and the `o3::TensorProduct` module) against
//! the core kernels: forward in f32 and f64, gradients through burn's autodiff against the
//! core backward and f64 central differences, per-row and external weights, plans without
//! weights, and an Adam step on a module holding one.

use std::sync::Arc;

use burn::backend::Dispatch;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{DType, Device, Element, Tensor, TensorData};
use equivariant::o3::tensor_product::{
    ConnectionMode, Instruction, TensorProductGradients, TensorProductOptions, TensorProductPlan,
    benchmark_config, elementwise_tensor_product, fully_connected_tensor_product,
};
use equivariant::o3::{FullyConnectedTensorProduct, Irreps, TensorProduct};
use equivariant::ops::tensor_product::{TensorProductBackend, tensor_product};
use equivariant::{Error, Real};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn irreps(s: &str) -> Irreps {
    s.parse().unwrap()
}

fn options(shared_weights: bool) -> TensorProductOptions {
    TensorProductOptions {
        shared_weights,
        ..Default::default()
    }
}

/// Plans covering `uvw` (fully connected), `uvu` with weighted and unweighted paths, and a
/// plan without weights.
fn plans(shared_weights: bool) -> Vec<TensorProductPlan> {
    let uvu = |mode: &str, w| Instruction::new(0, 0, 0, mode.parse::<ConnectionMode>().unwrap(), w);
    vec![
        fully_connected_tensor_product(
            &irreps("2x0e+3x1o+1x2e"),
            &irreps("0e+1o+2e"),
            &irreps("2x0e+2x1o+2x1e+1x2e"),
            options(shared_weights),
        )
        .unwrap(),
        TensorProductPlan::new(
            &irreps("3x1o+2x2e"),
            &irreps("2x1o+1x2e"),
            &irreps("3x0e+3x1e+3x2o+2x2e"),
            vec![
                uvu("uvu", true),
                Instruction::new(0, 0, 1, ConnectionMode::Uvu, false),
                Instruction::new(0, 1, 2, ConnectionMode::Uvu, true),
                Instruction::new(1, 1, 3, ConnectionMode::Uvu, true),
            ],
            options(shared_weights),
        )
        .unwrap(),
        elementwise_tensor_product(
            &irreps("3x1o+2x2e"),
            &irreps("3x1e+2x1o"),
            None,
            options(shared_weights),
        )
        .unwrap(),
    ]
}

fn randn(rng: &mut impl Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

/// Random `(x1, x2, weight)` for `batch` rows of `plan`.
fn inputs(plan: &TensorProductPlan, batch: usize, rng: &mut impl Rng) -> [Vec<f64>; 3] {
    let rows = if plan.shared_weights() { 1 } else { batch };
    [
        randn(rng, batch * plan.irreps_in1().dim()),
        randn(rng, batch * plan.irreps_in2().dim()),
        randn(rng, rows * plan.weight_numel()),
    ]
}

/// The weight's shape as the module takes it: `[rows, weight_numel]`.
fn weight_shape(plan: &TensorProductPlan, batch: usize) -> [usize; 2] {
    let rows = if plan.shared_weights() { 1 } else { batch };
    [rows, plan.weight_numel()]
}

fn dtype<T: Element>() -> DType {
    T::dtype()
}

fn tensor<T: Element, const D: usize>(
    data: &[f64],
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(
        TensorData::new(data.to_vec(), shape),
        (device, dtype::<T>()),
    )
}

fn values<T: Element, const D: usize>(t: Tensor<D>) -> Vec<T> {
    assert_eq!(t.dtype(), dtype::<T>());
    t.into_data().try_into_vec::<T>().unwrap()
}

fn cast<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn core_forward<T: Real>(
    plan: &TensorProductPlan,
    x1: &[T],
    x2: &[T],
    w: &[T],
    batch: usize,
) -> Vec<T> {
    let mut out = vec![T::zero(); batch * plan.irreps_out().dim()];
    plan.forward(x1, x2, w, &mut out).unwrap();
    out
}

/// The core gradients `(x1, x2, weight)` of `<g, out>`.
fn core_backward<T: Real>(plan: &TensorProductPlan, x: &[Vec<T>; 3], g: &[T]) -> [Vec<T>; 3] {
    let mut grads = x.clone().map(|v| vec![T::zero(); v.len()]);
    let [g1, g2, gw] = &mut grads;
    plan.backward(
        &x[0],
        &x[1],
        &x[2],
        g,
        TensorProductGradients {
            x1: Some(g1),
            x2: Some(g2),
            weight: Some(gw),
        },
    )
    .unwrap();
    grads
}

/// The op and the module give bit-for-bit the core kernel's output (same kernel, same data).
fn forward_matches_core<T: Real + Element>() {
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(0);
    let batch = 37;
    for shared in [true, false] {
        for plan in plans(shared) {
            let [x1, x2, w] = inputs(&plan, batch, &mut rng);
            let expected = core_forward::<T>(&plan, &cast(&x1), &cast(&x2), &cast(&w), batch);
            let (d1, d2) = (plan.irreps_in1().dim(), plan.irreps_in2().dim());
            let t1 = tensor::<T, 2>(&x1, [batch, d1], &device);
            let t2 = tensor::<T, 2>(&x2, [batch, d2], &device);
            let tw = tensor::<T, 2>(&w, weight_shape(&plan, batch), &device);

            let plan = Arc::new(plan);
            let out = tensor_product(&plan, t1.clone(), t2.clone(), tw.clone());
            assert_eq!(out.dims(), [batch, plan.irreps_out().dim()]);
            assert_eq!(values::<T, 2>(out), expected, "op, {plan}");

            let module = TensorProduct::with_external_weights(Arc::clone(&plan));
            let weight = (plan.weight_numel() > 0).then_some(tw);
            assert_eq!(
                values::<T, 2>(module.forward(t1, t2, weight).unwrap()),
                expected,
                "module, {plan}"
            );
        }
    }
}

#[test]
fn forward_matches_core_f32() {
    forward_matches_core::<f32>();
}

#[test]
fn forward_matches_core_f64() {
    forward_matches_core::<f64>();
}

/// The module's internal weights are the core's shared weight vector.
#[test]
fn internal_weights_match_core() {
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(1);
    let batch = 5;
    let module = FullyConnectedTensorProduct::new(
        &irreps("2x0e+3x1o+1x2e"),
        &irreps("0e+1o+2e"),
        &irreps("2x0e+2x1o+1x2e"),
    )
    .init(&device)
    .unwrap();
    let plan = module.plan().clone();
    let weight = values::<f32, 1>(module.weight.as_ref().unwrap().val());
    assert_eq!(weight.len(), plan.weight_numel());
    let [x1, x2, _] = inputs(&plan, batch, &mut rng);
    let expected = core_forward::<f32>(&plan, &cast(&x1), &cast(&x2), &weight, batch);
    let out = module
        .forward(
            tensor::<f32, 2>(&x1, [batch, plan.irreps_in1().dim()], &device),
            tensor::<f32, 2>(&x2, [batch, plan.irreps_in2().dim()], &device),
            None,
        )
        .unwrap();
    assert_eq!(values::<f32, 2>(out), expected);
}

/// Gradients of `<g, out>` through burn's autodiff, for every plan and weight kind.
/// `transposed` makes the upstream gradient a strided view (the loss reads `out^T`).
fn autodiff_gradients<T: Real + Element>(
    plan: &Arc<TensorProductPlan>,
    x: &[Vec<f64>; 3],
    g: &[f64],
    batch: usize,
    track: [bool; 3],
    transposed: bool,
) -> [Option<Vec<T>>; 3] {
    let device = Device::flex().autodiff();
    let (d1, d2, d_out) = (
        plan.irreps_in1().dim(),
        plan.irreps_in2().dim(),
        plan.irreps_out().dim(),
    );
    let leaf = |t: Tensor<2>, track: bool| if track { t.require_grad() } else { t };
    let t1 = leaf(tensor::<T, 2>(&x[0], [batch, d1], &device), track[0]);
    let t2 = leaf(tensor::<T, 2>(&x[1], [batch, d2], &device), track[1]);
    let tw = leaf(
        tensor::<T, 2>(&x[2], weight_shape(plan, batch), &device),
        track[2],
    );
    let out = tensor_product(plan, t1.clone(), t2.clone(), tw.clone());
    let g = tensor::<T, 2>(g, [batch, d_out], &device);
    let loss = if transposed {
        out.transpose().mul(g.transpose()).sum()
    } else {
        out.mul(g).sum()
    };
    let grads = loss.backward();
    [t1, t2, tw].map(|t| t.grad(&grads).map(values::<T, 2>))
}

#[test]
fn gradients_match_core_backward_f32_and_f64() {
    let mut rng = StdRng::seed_from_u64(2);
    let batch = 11;
    for shared in [true, false] {
        for plan in plans(shared) {
            let x = inputs(&plan, batch, &mut rng);
            let g = randn(&mut rng, batch * plan.irreps_out().dim());
            let plan = Arc::new(plan);
            for transposed in [false, true] {
                let got = autodiff_gradients::<f64>(&plan, &x, &g, batch, [true; 3], transposed);
                let expected = core_backward::<f64>(&plan, &x.clone().map(|v| cast(&v)), &cast(&g));
                for (got, expected) in got.into_iter().zip(expected) {
                    assert_eq!(got.unwrap(), expected, "f64, {plan}");
                }
                let got = autodiff_gradients::<f32>(&plan, &x, &g, batch, [true; 3], transposed);
                let expected = core_backward::<f32>(&plan, &x.clone().map(|v| cast(&v)), &cast(&g));
                for (got, expected) in got.into_iter().zip(expected) {
                    assert_eq!(got.unwrap(), expected, "f32, {plan}");
                }
            }
        }
    }
}

/// The backward primitive called directly through `Dispatch` (plain and autodiff devices):
/// the core's gradients, only those asked for.
#[test]
fn backward_primitive_through_dispatch() {
    let mut rng = StdRng::seed_from_u64(8);
    let batch = 7;
    let plan = Arc::new(plans(false).remove(1));
    let x = inputs(&plan, batch, &mut rng);
    let g = randn(&mut rng, batch * plan.irreps_out().dim());
    let expected = core_backward::<f64>(&plan, &x, &g);
    let shapes = [
        [batch, plan.irreps_in1().dim()],
        [batch, plan.irreps_in2().dim()],
        weight_shape(&plan, batch),
    ];
    for device in [Device::flex(), Device::flex().autodiff()] {
        let t = |k: usize| tensor::<f64, 2>(&x[k], shapes[k], &device).into_dispatch();
        let grad_out = tensor::<f64, 2>(&g, [batch, plan.irreps_out().dim()], &device);
        let (g1, g2, gw) = <Dispatch as TensorProductBackend>::tensor_product_backward(
            Arc::clone(&plan),
            t(0),
            t(1),
            t(2),
            grad_out.into_dispatch(),
            [true, false, true],
        );
        assert!(g2.is_none());
        let read = |g: Option<_>| values::<f64, 2>(Tensor::<2>::from_dispatch(g.unwrap()));
        assert_eq!(read(g1), expected[0]);
        assert_eq!(read(gw), expected[2]);
    }
}

/// Untracked parents get no gradient; the tracked ones are unchanged.
#[test]
fn only_tracked_parents_get_gradients() {
    let mut rng = StdRng::seed_from_u64(3);
    let batch = 4;
    let plan = Arc::new(plans(false).remove(0));
    let x = inputs(&plan, batch, &mut rng);
    let g = randn(&mut rng, batch * plan.irreps_out().dim());
    let all = autodiff_gradients::<f64>(&plan, &x, &g, batch, [true; 3], false);
    for track in [
        [true, false, false],
        [false, true, false],
        [false, false, true],
        [true, false, true],
    ] {
        let got = autodiff_gradients::<f64>(&plan, &x, &g, batch, track, false);
        for ((got, all), track) in got.into_iter().zip(&all).zip(track) {
            assert_eq!(got.is_some(), track);
            if let Some(got) = got {
                assert_eq!(&got, all.as_ref().unwrap());
            }
        }
    }
}

/// Central differences of `<g, out>` in f64 against the autodiff gradients, every coordinate.
#[test]
fn gradients_match_finite_differences_f64() {
    let mut rng = StdRng::seed_from_u64(4);
    let batch = 3;
    let eps = 1e-6;
    for shared in [true, false] {
        for plan in plans(shared) {
            let x = inputs(&plan, batch, &mut rng);
            let g = randn(&mut rng, batch * plan.irreps_out().dim());
            let loss = |x: &[Vec<f64>; 3]| -> f64 {
                let out = core_forward(&plan, &x[0], &x[1], &x[2], batch);
                out.iter().zip(&g).map(|(o, g)| o * g).sum()
            };
            let plan_arc = Arc::new(plan.clone());
            let grads = autodiff_gradients::<f64>(&plan_arc, &x, &g, batch, [true; 3], false);
            for (k, grad) in grads.iter().enumerate() {
                let grad = grad.as_ref().unwrap();
                assert_eq!(grad.len(), x[k].len());
                for (i, &analytic) in grad.iter().enumerate() {
                    let (mut plus, mut minus) = (x.clone(), x.clone());
                    plus[k][i] += eps;
                    minus[k][i] -= eps;
                    let numeric = (loss(&plus) - loss(&minus)) / (2.0 * eps);
                    assert!(
                        (numeric - analytic).abs() <= 1e-6 * (1.0 + analytic.abs()),
                        "operand {k}, index {i}: numeric {numeric}, autodiff {analytic} ({plan})"
                    );
                }
            }
        }
    }
}

/// Per-row weights through the module: output and weight gradient per row, as the core.
#[test]
fn per_row_external_weights() {
    let device = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(5);
    let batch = 9;
    let module = FullyConnectedTensorProduct::new(
        &irreps("10x0e+10x1e"),
        &irreps("0e+1o+2e"),
        &irreps("20x0e+10x1e"),
    )
    .with_shared_weights(false)
    .init(&device)
    .unwrap();
    assert!(module.weight.is_none());
    let plan = module.plan().clone();
    assert_eq!(plan.weight_numel(), 400);
    let x = inputs(&plan, batch, &mut rng);
    let g = randn(&mut rng, batch * plan.irreps_out().dim());
    let w = tensor::<f64, 2>(&x[2], [batch, 400], &device).require_grad();
    let out = module
        .forward(
            tensor::<f64, 2>(&x[0], [batch, plan.irreps_in1().dim()], &device),
            tensor::<f64, 2>(&x[1], [batch, plan.irreps_in2().dim()], &device),
            Some(w.clone()),
        )
        .unwrap();
    assert_eq!(
        values::<f64, 2>(out.clone()),
        core_forward(&plan, &x[0], &x[1], &x[2], batch)
    );
    let grads = out
        .mul(tensor::<f64, 2>(
            &g,
            [batch, plan.irreps_out().dim()],
            &device,
        ))
        .sum()
        .backward();
    let gw = w.grad(&grads).unwrap();
    assert_eq!(gw.dims(), [batch, 400]);
    assert_eq!(values::<f64, 2>(gw), core_backward(&plan, &x, &g)[2]);
}

/// The benchmark configuration of the guide (per-row weights) runs through the op.
#[test]
fn guide_config_matches_core() {
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(6);
    let batch = 64;
    let plan = Arc::new(benchmark_config("guide").unwrap());
    let x = inputs(&plan, batch, &mut rng);
    let out = tensor_product(
        &plan,
        tensor::<f32, 2>(&x[0], [batch, plan.irreps_in1().dim()], &device),
        tensor::<f32, 2>(&x[1], [batch, plan.irreps_in2().dim()], &device),
        tensor::<f32, 2>(&x[2], weight_shape(&plan, batch), &device),
    );
    let expected = core_forward::<f32>(&plan, &cast(&x[0]), &cast(&x[1]), &cast(&x[2]), batch);
    assert_eq!(values::<f32, 2>(out), expected);
}

#[test]
fn wrong_input_shapes_are_errors_with_the_expected_shape() {
    let device = Device::flex();
    let plan = plans(true).remove(0);
    let module = TensorProduct::new(plan, &device);
    let forward = |x1: [usize; 2], x2: [usize; 2]| {
        module.forward(
            Tensor::<2>::zeros(x1, &device),
            Tensor::zeros(x2, &device),
            None,
        )
    };
    let mismatch = |x1, x2, (what, expected, got): (&str, usize, usize)| match forward(x1, x2) {
        Err(Error::ShapeMismatch {
            what: w,
            expected: x,
            got: g,
        }) => w.contains(what) && x == expected && g == got,
        _ => false,
    };
    assert!(mismatch([2, 15], [2, 9], ("x1", 16, 15)));
    assert!(mismatch([2, 16], [2, 8], ("x2", 9, 8)));
    assert!(mismatch([2, 16], [3, 9], ("x2", 2, 3)));
    assert!(forward([2, 16], [2, 9]).is_ok());
}

#[test]
fn misused_weights_are_errors() {
    let device = Device::flex();
    let plan = Arc::new(plans(true).remove(0));
    let numel = plan.weight_numel();
    let (x1, x2) = (
        Tensor::<2>::zeros([2, 16], &device),
        Tensor::<2>::zeros([2, 9], &device),
    );
    let internal = TensorProduct::new(Arc::clone(&plan), &device);
    let given = Some(Tensor::zeros([1, numel], &device));
    let err = internal.forward(x1.clone(), x2.clone(), given).unwrap_err();
    assert!(
        err.to_string().contains("this module has internal weights"),
        "{err}"
    );

    let external = TensorProduct::with_external_weights(Arc::clone(&plan));
    let err = external.forward(x1.clone(), x2.clone(), None).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    let rows = if plan.shared_weights() { 1 } else { 2 };
    let short = Some(Tensor::zeros([rows, numel - 1], &device));
    let err = external.forward(x1.clone(), x2.clone(), short).unwrap_err();
    assert!(
        matches!(err, Error::ShapeMismatch { expected, got, .. } if expected == numel && got == numel - 1)
    );
    let f64_weight = Some(Tensor::zeros([rows, numel], (&device, DType::F64)));
    let err = external
        .forward(x1.clone(), x2.clone(), f64_weight)
        .unwrap_err();
    assert!(err.to_string().contains("share one dtype"), "{err}");
    let f64_x2 = Tensor::<2>::zeros([2, 9], (&device, DType::F64));
    let weight = Some(Tensor::zeros([rows, numel], &device));
    assert!(external.forward(x1, f64_x2, weight).is_err());
}

#[test]
#[should_panic(expected = "all operands must share one dtype")]
fn mixed_dtypes_panic() {
    let device = Device::flex();
    let plan = Arc::new(plans(true).remove(0));
    let numel = plan.weight_numel();
    let _ = tensor_product(
        &plan,
        Tensor::<2>::zeros([2, 16], (&device, DType::F64)),
        Tensor::<2>::zeros([2, 9], (&device, DType::F64)),
        Tensor::<1>::zeros([numel], (&device, DType::F32)),
    );
}

/// A model holding a tensor product; one Adam step moves its weights as the gradient says.
#[derive(Module, Debug)]
struct Model {
    tp: TensorProduct,
}

#[test]
fn adam_step_updates_internal_weights() {
    let device = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(7);
    let batch = 6;
    let model = Model {
        tp: FullyConnectedTensorProduct::new(
            &irreps("2x0e+1x1o"),
            &irreps("0e+1o"),
            &irreps("1x0e+1x1o"),
        )
        .init(&device)
        .unwrap(),
    };
    let plan = model.tp.plan().clone();
    let before = values::<f32, 1>(model.tp.weight.as_ref().unwrap().val());
    let x = inputs(&plan, batch, &mut rng);
    let target = randn(&mut rng, batch * plan.irreps_out().dim());
    let out = model
        .tp
        .forward(
            tensor::<f32, 2>(&x[0], [batch, plan.irreps_in1().dim()], &device),
            tensor::<f32, 2>(&x[1], [batch, plan.irreps_in2().dim()], &device),
            None,
        )
        .unwrap();
    let target_t = tensor::<f32, 2>(&target, [batch, plan.irreps_out().dim()], &device);
    let diff = out.clone().sub(target_t);
    let loss = diff.clone().mul(diff).sum();
    let grads = loss.backward();

    // The weight gradient is the core's for grad_out = 2 (out - target).
    let out = values::<f32, 2>(out);
    let grad_out: Vec<f32> = out
        .iter()
        .zip(&target)
        .map(|(o, t)| 2.0 * (o - *t as f32))
        .collect();
    let expected = core_backward::<f32>(
        &plan,
        &[cast(&x[0]), cast(&x[1]), before.clone()],
        &grad_out,
    )[2]
    .clone();
    let got = values::<f32, 1>(model.tp.weight.as_ref().unwrap().grad(&grads).unwrap());
    for (g, e) in got.iter().zip(&expected) {
        assert!(
            (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
            "{got:?} vs {expected:?}"
        );
    }

    let lr = 0.1;
    let mut optim = AdamConfig::new().init();
    let grads = GradientsParams::from_grads(grads, &model);
    let model = optim.step(lr, model, grads);
    let after = values::<f32, 1>(model.tp.weight.as_ref().unwrap().val());
    // Adam's first step moves each weight by about lr against the sign of its gradient
    // (exactly lr g / (|g| + epsilon)).
    assert_ne!(before, after);
    let mut checked = 0;
    for ((b, a), g) in before.iter().zip(&after).zip(&expected) {
        if g.abs() > 0.1 {
            assert!(
                (b - a - lr as f32 * g.signum()).abs() < 1e-4,
                "{b} -> {a}, gradient {g}"
            );
            checked += 1;
        }
    }
    assert!(
        checked > expected.len() / 2,
        "{checked} of {} weights checked",
        expected.len()
    );
}

/// `TensorProduct::forward_tangent` against central differences of `forward` along the
/// tangents of both inputs and the (external) weights at once, for every plan in `plans`,
/// shared and per-row weights; a weight tangent on a module with internal weights is an
/// error.
#[test]
fn tangent_matches_central_differences() {
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(17);
    let batch = 4;
    for shared in [false, true] {
        for plan in plans(shared) {
            let tp = equivariant::util::cast(TensorProduct::new(plan.clone(), &device), DType::F64);
            // Shared weights live in the module (internal, no tangent); per-row ones are
            // given, with their tangent.
            let weighted = plan.weight_numel() > 0 && !shared;
            let [x1, x2, w] = inputs(&plan, batch, &mut rng);
            let [dx1, dx2, dw] = inputs(&plan, batch, &mut rng);
            let at = |step: f64| {
                let moved = |x: &[f64], d: &[f64]| -> Vec<f64> {
                    x.iter().zip(d).map(|(a, b)| a + step * b).collect()
                };
                let (d1, d2) = (plan.irreps_in1().dim(), plan.irreps_in2().dim());
                [
                    tensor::<f64, 2>(&moved(&x1, &dx1), [batch, d1], &device),
                    tensor::<f64, 2>(&moved(&x2, &dx2), [batch, d2], &device),
                    tensor::<f64, 2>(&moved(&w, &dw), weight_shape(&plan, batch), &device),
                ]
            };
            let [a1, a2, aw] = at(0.0);
            let [t1, t2, tw] = {
                let [p1, p2, pw] = at(1.0);
                [p1.sub(a1.clone()), p2.sub(a2.clone()), pw.sub(aw.clone())]
            };
            let (weight, dweight) = if weighted {
                (Some(aw), Some(tw))
            } else {
                (None, None)
            };
            let (out, d_out) = tp
                .forward_tangent(a1, Some(t1), a2, Some(t2), weight, dweight)
                .unwrap();
            let h = 1e-5;
            let f = |step: f64| {
                let [p1, p2, pw] = at(step);
                values::<f64, 2>(tp.forward(p1, p2, weighted.then_some(pw)).unwrap())
            };
            let slope: Vec<f64> = f(h)
                .iter()
                .zip(f(-h))
                .map(|(p, m)| (p - m) / (2.0 * h))
                .collect();
            let scale = 1.0
                + values::<f64, 2>(out)
                    .iter()
                    .fold(0.0f64, |m, x| m.max(x.abs()));
            for (got, fd) in values::<f64, 2>(d_out).iter().zip(&slope) {
                assert!(
                    (got - fd).abs() < 1e-7 * scale,
                    "{plan}: tangent {got} vs {fd}"
                );
            }
        }
    }
    let internal = FullyConnectedTensorProduct::new(&irreps("0e"), &irreps("0e"), &irreps("0e"))
        .init(&device)
        .unwrap();
    let one = Tensor::<2>::ones([1, 1], &device);
    assert!(matches!(
        internal.forward_tangent(one.clone(), None, one.clone(), None, None, Some(one)),
        Err(Error::InvalidArgument { .. })
    ));
}

/// `right` and `weight_views` against e3nn 0.6.0 (`fixtures_modules.py`): a plan mixing
/// weighted and unweighted `uvw` / `uvu` instructions, shared (internal) and per-row
/// (external) weights; f64 at 1e-10.
#[test]
fn right_and_weight_views_match_e3nn() {
    use burn::module::Param;
    use equivariant_testing::{assert_close, f64s, load_fixture};
    let fixture = load_fixture!("modules");
    let device = Device::flex();
    for case in fixture["tp_views"].as_array().unwrap() {
        let shared = case["shared"].as_bool().unwrap();
        let batch = case["batch"].as_u64().unwrap() as usize;
        let instructions: Vec<Instruction> = case["instructions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let i = i.as_array().unwrap();
                let index = |k: usize| i[k].as_u64().unwrap() as usize;
                let mode: ConnectionMode = i[3].as_str().unwrap().parse().unwrap();
                Instruction::new(index(0), index(1), index(2), mode, i[4].as_bool().unwrap())
            })
            .collect();
        let parse = |k: &str| irreps(case[k].as_str().unwrap());
        let plan = TensorProductPlan::new(
            &parse("irreps_in1"),
            &parse("irreps_in2"),
            &parse("irreps_out"),
            instructions,
            options(shared),
        )
        .unwrap();
        let (d1, d2, numel) = (
            plan.irreps_in1().dim(),
            plan.irreps_in2().dim(),
            plan.weight_numel(),
        );
        let weight = f64s(&case["weight"]);
        let mut tp = equivariant::util::cast(TensorProduct::new(plan, &device), DType::F64);
        let external = if shared {
            let w = Tensor::<1>::from_data(TensorData::new(weight, [numel]), (&device, DType::F64));
            tp.weight = Some(Param::from_tensor(w));
            None
        } else {
            Some(tensor::<f64, 2>(&weight, [batch, numel], &device))
        };
        let x = tensor::<f64, 2>(&f64s(&case["x"]), [batch, d1], &device);
        let y = tensor::<f64, 2>(&f64s(&case["y"]), [batch, d2], &device);
        let out = tp.forward(x, y.clone(), external.clone()).unwrap();
        let what = format!("shared {shared}");
        assert_close(
            &format!("{what} out"),
            &values::<f64, 2>(out),
            &f64s(&case["out"]),
            1e-10,
        );
        let right = tp.right(y, external.clone()).unwrap();
        let right: Vec<f64> = right.into_data().iter::<f64>().collect();
        assert_close(
            &format!("{what} right"),
            &right,
            &f64s(&case["right"]),
            1e-10,
        );
        let views = tp.weight_views(external).unwrap();
        let expected = case["views"].as_array().unwrap();
        assert_eq!(views.len(), expected.len());
        for (view, e) in views.iter().zip(expected) {
            assert_eq!(view.instruction as u64, e["instruction"].as_u64().unwrap());
            let shape: Vec<usize> = f64s(&e["path_shape"]).iter().map(|&s| s as usize).collect();
            assert_eq!(view.path_shape, shape);
            let got = values::<f64, 2>(view.weight.clone());
            assert_close(
                &format!("{what} view {}", view.instruction),
                &got,
                &f64s(&e["weight"]),
                0.0,
            );
        }
    }
}

/// `forward_square` is `forward(x, x, w)` on a tensor square, and an error on a product of
/// two different inputs.
#[test]
fn forward_square_is_the_product_of_x_with_itself() {
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(4);
    let square = TensorProduct::square(
        &irreps("2x0e+2x1o+1x2e"),
        None,
        None,
        options(true),
        &device,
    )
    .unwrap();
    let d = square.plan().irreps_in1().dim();
    let x = tensor::<f32, 2>(&randn(&mut rng, 3 * d), [3, d], &device);
    assert_eq!(
        values::<f32, 2>(square.forward_square(x.clone(), None).unwrap()),
        values::<f32, 2>(square.forward(x.clone(), x, None).unwrap())
    );
    let fc = FullyConnectedTensorProduct::new(&irreps("1x0e"), &irreps("1x1o"), &irreps("1x1o"))
        .init(&device)
        .unwrap();
    assert!(matches!(
        fc.forward_square(Tensor::<2>::ones([1, 1], &device), None),
        Err(Error::InvalidArgument { .. })
    ));
}
