//! Activations given as any function ([`ScalarFunction`]) and inputs with leading axes,
//! against e3nn 0.6.0 (`tools/reference/fixtures_functions.py`): torch's normal samples,
//! e3nn's `normalize2mom` constants and parities of closures, the modules built on them, and
//! `[2, 3, dim]` inputs with 1-D shared weights; outputs and gradients at 1e-10 in f64.

use burn::module::Param;
use burn::tensor::{DType, Device, Tensor, activation};
use equivariant::Error;
use equivariant::math::torch_randn;
use equivariant::nn::{Activation, FullyConnectedNet, Gate, NormActivation, ScalarFunction};
use equivariant::o3::{
    FullyConnectedTensorProduct, Irreps, LinearConfig, Parity, SphericalHarmonics,
};
use equivariant::util::test::{Representation, assert_equivariant};
use equivariant_testing::{assert_close, f64s, load_fixture};
use serde_json::Value;

use super::support::{tensor, values};

/// The fixture's functions, written with burn ops as the script writes them with torch's.
fn function(name: &str) -> ScalarFunction {
    let f = match name {
        "sin" => ScalarFunction::new(name, |x| x.sin()),
        "square" => ScalarFunction::new(name, |x| x.clone().mul(x)),
        "softsign" => ScalarFunction::new(name, |x| x.clone().div(x.abs().add_scalar(1.0))),
        "softplus" => ScalarFunction::new(name, |x| x.exp().add_scalar(1.0).log()),
        "silu_closure" => ScalarFunction::new(name, |x| x.clone().mul(activation::sigmoid(x))),
        "cube" => ScalarFunction::new(name, |x| x.clone().mul(x.clone()).mul(x)),
        "near_identity" => ScalarFunction::new(name, |x| x.mul_scalar(1.0011306)),
        other => panic!("no function {other}"),
    };
    f.unwrap()
}

/// `case[key]` as a tracked `[2, 3, width]` input (the fixture's `shape` leading axes).
fn input(case: &Value, key: &str, device: &Device) -> Tensor<3> {
    let data = f64s(&case[key]);
    let shape = &case["shape"];
    let [a, b] = [0, 1].map(|i| shape[i].as_u64().unwrap() as usize);
    tensor(&data, [a, b, data.len() / (a * b)], device).require_grad()
}

fn param(case: &Value, key: &str, device: &Device) -> Param<Tensor<1>> {
    let data = f64s(&case[key]);
    Param::from_tensor(tensor(&data, [data.len()], device).require_grad())
}

fn irreps(case: &Value, key: &str) -> Irreps {
    case[key].as_str().unwrap().parse().unwrap()
}

/// `sum(out * g)`, the fixture's loss.
fn loss(out: Tensor<3>, case: &Value) -> Tensor<1> {
    let g = tensor(&f64s(&case["g"]), out.dims(), &out.device());
    out.mul(g).sum()
}

#[test]
fn torch_randn_matches_torch() {
    let fixture = load_fixture!("functions");
    let randn = &fixture["randn"];
    let z = torch_randn(0, 1_000_000).unwrap();
    assert_close("randn head", &z[..40], &f64s(&randn["head"]), 1e-15);
    for pair in randn["at"].as_array().unwrap() {
        let i = pair[0].as_u64().unwrap() as usize;
        assert_close(
            &format!("randn[{i}]"),
            &[z[i]],
            &[pair[1].as_f64().unwrap()],
            1e-15,
        );
    }
    let short = torch_randn(0, 21).unwrap();
    assert_close("randn(21)", &short, &f64s(&randn["short"]), 1e-15);
}

#[test]
fn closures_get_e3nns_constant_and_parity() {
    let fixture = load_fixture!("functions");
    for (name, expected) in fixture["functions"].as_object().unwrap() {
        let f = function(name);
        // e3nn skips the product (a constant of one) when |cst - 1| < 1e-4.
        let cst = if expected["is_id"].as_bool().unwrap() {
            1.0
        } else {
            expected["cst"].as_f64().unwrap()
        };
        assert_close(
            &format!("{name} normalize2mom"),
            &[f.normalize2mom_constant()],
            &[cst],
            1e-12,
        );
        let parity = match expected["parity"].as_i64().unwrap() {
            1 => Some(Parity::Even),
            -1 => Some(Parity::Odd),
            _ => None,
        };
        assert_eq!(f.parity(), parity, "{name} parity");
    }
}

#[test]
fn activation_and_gate_with_closures_match_e3nn() {
    let fixture = load_fixture!("functions");
    let device = Device::flex().autodiff();
    let names = |v: &Value| -> Vec<Option<ScalarFunction>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().map(function))
            .collect()
    };

    let case = &fixture["activation"];
    let act =
        Activation::from_functions(&irreps(case, "irreps_in"), &names(&case["acts"])).unwrap();
    assert_eq!(act.irreps_out(), &irreps(case, "irreps_out"));
    let x = input(case, "x", &device);
    let out = act.forward(x.clone()).unwrap();
    assert_eq!(out.dims(), x.dims());
    assert_close(
        "activation out",
        &values(out.clone()),
        &f64s(&case["out"]),
        1e-10,
    );
    let grads = loss(out, case).backward();
    let gx = x.grad(&grads).unwrap();
    assert_close(
        "activation grad x",
        &values(gx),
        &f64s(&case["grad_x"]),
        1e-10,
    );

    let case = &fixture["gate"];
    let gate = Gate::from_functions(
        &irreps(case, "irreps_scalars"),
        &names(&case["act_scalars"]),
        &irreps(case, "irreps_gates"),
        &names(&case["act_gates"]),
        &irreps(case, "irreps_gated"),
    )
    .unwrap();
    assert_eq!(gate.irreps_in(), &irreps(case, "irreps_in"));
    assert_eq!(gate.irreps_out(), &irreps(case, "irreps_out"));
    let x = input(case, "x", &device);
    let out = gate.forward(x.clone()).unwrap();
    assert_close("gate out", &values(out.clone()), &f64s(&case["out"]), 1e-10);
    let grads = loss(out, case).backward();
    let gx = x.grad(&grads).unwrap();
    assert_close("gate grad x", &values(gx), &f64s(&case["grad_x"]), 1e-10);
}

#[test]
fn norm_activation_and_fully_connected_net_with_closures_match_e3nn() {
    let fixture = load_fixture!("functions");
    let device = Device::flex().autodiff();

    let case = &fixture["norm_activation"];
    let mut norm_act = NormActivation::new(
        &irreps(case, "irreps_in"),
        function(case["nonlinearity"].as_str().unwrap()),
        true,
        None,
        true,
        &device,
    )
    .unwrap();
    norm_act.biases = Some(param(case, "biases", &device));
    let x = input(case, "x", &device);
    let out = norm_act.forward(x.clone()).unwrap();
    assert_close(
        "norm activation out",
        &values(out.clone()),
        &f64s(&case["out"]),
        1e-10,
    );
    let grads = loss(out, case).backward();
    let gx = x.grad(&grads).unwrap();
    assert_close(
        "norm activation grad x",
        &values(gx),
        &f64s(&case["grad_x"]),
        1e-10,
    );
    let gb = norm_act.biases.as_ref().unwrap().grad(&grads).unwrap();
    assert_close(
        "norm activation grad biases",
        &values(gb),
        &f64s(&case["grad_biases"]),
        1e-10,
    );

    let case = &fixture["fully_connected_net"];
    let hs: Vec<usize> = case["hs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_u64().unwrap() as usize)
        .collect();
    let act = function(case["act"].as_str().unwrap());
    let mut fc =
        FullyConnectedNet::from_function(&hs, Some(act), 1.0, 1.0, false, &device).unwrap();
    for (i, w) in fc.weights.iter_mut().enumerate() {
        let data = f64s(&case[&format!("weight{i}")]);
        *w = Param::from_tensor(tensor(&data, [hs[i], hs[i + 1]], &device).require_grad());
    }
    let x = input(case, "x", &device);
    let out = fc.forward(x.clone()).unwrap();
    assert_close(
        "fully connected net out",
        &values(out.clone()),
        &f64s(&case["out"]),
        1e-10,
    );
    let grads = loss(out, case).backward();
    let gx = x.grad(&grads).unwrap();
    assert_close(
        "fully connected net grad x",
        &values(gx),
        &f64s(&case["grad_x"]),
        1e-10,
    );
    for (i, w) in fc.weights.iter().enumerate() {
        let gw = w.grad(&grads).unwrap();
        let expected = f64s(&case[&format!("grad_weight{i}")]);
        assert_close(
            &format!("fully connected net grad weight{i}"),
            &values(gw),
            &expected,
            1e-10,
        );
    }
    // Without a derivative a closure cannot enter a tangent pass: a typed error.
    let flat = Tensor::<2>::ones([1, hs[0]], &device).cast(DType::F64);
    assert!(matches!(
        fc.forward_hidden_tangent(flat.clone(), flat),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn leading_axes_and_one_dimensional_weights_match_e3nn() {
    let fixture = load_fixture!("functions");
    let device = Device::flex().autodiff();

    let case = &fixture["linear"];
    let mut linear = LinearConfig::new(&irreps(case, "irreps_in"), &irreps(case, "irreps_out"))
        .with_biases(true)
        .init(&device)
        .unwrap();
    linear.weight = Some(param(case, "weight", &device));
    linear.bias = Some(param(case, "bias", &device));
    let x = input(case, "x", &device);
    let out = linear.forward(x.clone(), None).unwrap();
    assert_eq!(out.dims()[..2], [2, 3]);
    assert_close(
        "linear out",
        &values(out.clone()),
        &f64s(&case["out"]),
        1e-10,
    );
    let grads = loss(out, case).backward();
    let gx = x.grad(&grads).unwrap();
    assert_close("linear grad x", &values(gx), &f64s(&case["grad_x"]), 1e-10);
    let gw = linear.weight.as_ref().unwrap().grad(&grads).unwrap();
    assert_close(
        "linear grad weight",
        &values(gw),
        &f64s(&case["grad_weight"]),
        1e-10,
    );
    let gb = linear.bias.as_ref().unwrap().grad(&grads).unwrap();
    assert_close(
        "linear grad bias",
        &values(gb),
        &f64s(&case["grad_bias"]),
        1e-10,
    );

    let case = &fixture["tensor_product"];
    let tp = FullyConnectedTensorProduct::new(
        &irreps(case, "irreps_in1"),
        &irreps(case, "irreps_in2"),
        &irreps(case, "irreps_out"),
    )
    .with_internal_weights(false)
    .init(&device)
    .unwrap();
    let (x1, x2) = (input(case, "x1", &device), input(case, "x2", &device));
    let w = param(case, "weight", &device).val();
    let out = tp
        .forward_shared(x1.clone(), x2.clone(), w.clone())
        .unwrap();
    assert_close(
        "tensor product out",
        &values(out.clone()),
        &f64s(&case["out"]),
        1e-10,
    );
    let grads = loss(out, case).backward();
    for (what, t, key) in [("x1", &x1, "grad_x1"), ("x2", &x2, "grad_x2")] {
        let g = t.grad(&grads).unwrap();
        assert_close(
            &format!("tensor product grad {what}"),
            &values(g),
            &f64s(&case[key]),
            1e-10,
        );
    }
    let gw = w.grad(&grads).unwrap();
    assert_close(
        "tensor product grad weight",
        &values(gw),
        &f64s(&case["grad_weight"]),
        1e-10,
    );
    // The same weights as [1, 1, weight_numel] through forward: the same product.
    let numel = tp.weight_numel();
    let as_rows = tp
        .forward(
            x1.clone(),
            x2.clone(),
            Some(w.clone().reshape([1, 1, numel])),
        )
        .unwrap();
    assert_close(
        "tensor product [1, 1, n] weights",
        &values(as_rows),
        &f64s(&case["out"]),
        1e-10,
    );
    // Leading axes that differ between the inputs are a typed error.
    let x2_short = x2.clone().slice([0..1, 0..3]);
    assert!(matches!(
        tp.forward_shared(x1.clone(), x2_short, w.clone()),
        Err(Error::ShapeMismatch { .. })
    ));

    let case = &fixture["spherical_harmonics"];
    let sh = SphericalHarmonics::new(&"1x2e".parse().unwrap(), true, Default::default()).unwrap();
    let x = input(case, "x", &device);
    let out = sh.forward(x.clone()).unwrap();
    assert_close(
        "spherical harmonics out",
        &values(out.clone()),
        &f64s(&case["out"]),
        1e-10,
    );
    let grads = loss(out, case).backward();
    let gx = x.grad(&grads).unwrap();
    assert_close(
        "spherical harmonics grad x",
        &values(gx),
        &f64s(&case["grad_x"]),
        1e-10,
    );
}

#[test]
fn modules_with_closures_are_equivariant() {
    let device = Device::flex();
    let gate = Gate::from_functions(
        &"2x0e".parse().unwrap(),
        &[Some(function("softplus"))],
        &"1x0o+1x0e".parse().unwrap(),
        &[Some(function("softsign")), Some(function("sin"))],
        &"1x1o+1x2e".parse().unwrap(),
    )
    .unwrap();
    let errors = assert_equivariant(
        |inputs| vec![gate.forward(inputs[0].clone()).unwrap()],
        None,
        &[Representation::Irreps(gate.irreps_in().clone())],
        &[Representation::Irreps(gate.irreps_out().clone())],
        None,
        &device,
        DType::F64,
        7,
    )
    .unwrap();
    assert!(!errors.is_empty());
}
