//! The burn modules `o3::Linear`, `o3::SphericalHarmonics`, `nn::Gate`,
//! `nn::NormActivation`, `nn::BatchNorm` and `nn::Extract` against e3nn 0.6.0 fixtures
//! (`tools/reference/fixtures_modules.py`), outputs and gradients in f64; an e3nn model's
//! state dict loaded through safetensors (`tools/reference/export_state_dict.py`); save/load
//! round trips; gradients against finite differences; equivariance through
//! `util::test::assert_equivariant`.

use burn::module::{Module, Param, RunningState};
use burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant::math::ActivationFunction;
use equivariant::nn::{
    Activation, BatchNorm, BatchNormConfig, Extract, ExtractIr, FullyConnectedNet, Gate, Identity,
    NormActivation, Reduce,
};
use equivariant::o3::tensor_product::PathNormalization;
use equivariant::o3::{
    FullyConnectedTensorProduct, Irreps, Linear, LinearConfig, Norm, Normalization,
    SphericalHarmonics, TensorProduct,
};
use equivariant::store::{ModuleSnapshot, SafetensorsStore, e3nn_safetensors};
use equivariant::util::cast;
use equivariant::util::test::{Representation, assert_equivariant};
use equivariant_testing::{assert_close, f64s, load_fixture};
use serde_json::Value;

use super::support::{check_gradient, tensor, values};

fn irreps(v: &Value) -> Irreps {
    v.as_str().unwrap().parse().unwrap()
}

fn function(v: &Value) -> Option<ActivationFunction> {
    v.as_str().map(|s| s.parse().unwrap())
}

fn functions(v: &Value) -> Vec<Option<ActivationFunction>> {
    v.as_array().unwrap().iter().map(function).collect()
}

fn param(data: &[f64], device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(tensor(data, [data.len()], device).require_grad())
}

/// `x` of the case as a tracked `[batch, width]` tensor.
fn input(case: &Value, key: &str, device: &Device) -> Tensor<2> {
    let x = f64s(&case[key]);
    let batch = case["batch"].as_u64().unwrap() as usize;
    tensor(&x, [batch, x.len() / batch], device).require_grad()
}

/// `sum(out * g)`.
fn loss(out: Tensor<2>, case: &Value, key: &str) -> Tensor<1> {
    let g = tensor(&f64s(&case[key]), out.dims(), &out.device());
    out.mul(g).sum()
}

#[test]
fn linear_matches_e3nn() {
    let fixture = load_fixture!("modules");
    for key in ["linear", "linear_instructions"] {
        for (k, case) in fixture[key].as_array().unwrap().iter().enumerate() {
            check_linear(&format!("{key} {k}"), case);
        }
    }
}

/// One `o3.Linear` case: its config (default or explicit instructions, one bias flag or one
/// per output block), e3nn's parameters loaded; output and gradients at 1e-10.
fn check_linear(k: &str, case: &Value) {
    let device = Device::flex().autodiff();
    {
        let normalization = match case["path_normalization"].as_str().unwrap() {
            "path" => PathNormalization::Path,
            _ => PathNormalization::Element,
        };
        let mut config =
            LinearConfig::new(&irreps(&case["irreps_in"]), &irreps(&case["irreps_out"]))
                .with_path_normalization(normalization);
        config = match &case["biases"] {
            Value::Bool(b) => config.with_biases(*b),
            flags => config.with_output_biases(
                flags
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b.as_bool().unwrap())
                    .collect(),
            ),
        };
        if let Some(instructions) = case["instructions"].as_array() {
            config = config.with_instructions(
                instructions
                    .iter()
                    .map(|i| {
                        let i = f64s(i);
                        (i[0] as usize, i[1] as usize)
                    })
                    .collect(),
            );
        }
        let mut linear = config.init(&device).unwrap();
        linear.weight = Some(param(&f64s(&case["weight"]), &device));
        let bias = f64s(&case["bias"]);
        if !bias.is_empty() {
            linear.bias = Some(param(&bias, &device));
        }
        let x = input(case, "x", &device);
        let out = linear.forward(x.clone(), None).unwrap();
        assert_close(
            &format!("linear {k} out"),
            &values(out.clone()),
            &f64s(&case["out"]),
            1e-10,
        );
        let grads = loss(out, case, "g").backward();
        assert_close(
            &format!("linear {k} grad x"),
            &values(x.grad(&grads).unwrap()),
            &f64s(&case["grad_x"]),
            1e-10,
        );
        let w = linear.weight.as_ref().unwrap().val();
        assert_close(
            &format!("linear {k} grad w"),
            &values(w.grad(&grads).unwrap()),
            &f64s(&case["grad_weight"]),
            1e-10,
        );
        if let Some(b) = &linear.bias {
            let g = values(b.val().grad(&grads).unwrap());
            assert_close(
                &format!("linear {k} grad bias"),
                &g,
                &f64s(&case["grad_bias"]),
                1e-10,
            );
        }
    }
}

#[test]
fn gate_matches_e3nn() {
    let fixture = load_fixture!("modules");
    let device = Device::flex().autodiff();
    for (k, case) in fixture["gate"].as_array().unwrap().iter().enumerate() {
        let gate = Gate::new(
            &irreps(&case["irreps_scalars"]),
            &functions(&case["act_scalars"]),
            &irreps(&case["irreps_gates"]),
            &functions(&case["act_gates"]),
            &irreps(&case["irreps_gated"]),
        )
        .unwrap();
        assert_eq!(
            gate.irreps_in().to_string(),
            case["irreps_in"].as_str().unwrap(),
            "gate {k}"
        );
        assert_eq!(
            gate.irreps_out().to_string(),
            case["irreps_out"].as_str().unwrap(),
            "gate {k}"
        );
        let x = input(case, "x", &device);
        let out = gate.forward(x.clone()).unwrap();
        assert_close(
            &format!("gate {k} out"),
            &values(out.clone()),
            &f64s(&case["out"]),
            1e-10,
        );
        let grads = loss(out, case, "g").backward();
        assert_close(
            &format!("gate {k} grad x"),
            &values(x.grad(&grads).unwrap()),
            &f64s(&case["grad_x"]),
            1e-10,
        );
    }
}

#[test]
fn norm_activation_matches_e3nn() {
    let fixture = load_fixture!("modules");
    let device = Device::flex().autodiff();
    for (k, case) in fixture["norm_activation"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let mut act = NormActivation::new(
            &irreps(&case["irreps_in"]),
            function(&case["nonlinearity"]).unwrap(),
            case["normalize"].as_bool().unwrap(),
            case["epsilon"].as_f64(),
            case["bias"].as_bool().unwrap(),
            &device,
        )
        .unwrap();
        if act.biases.is_some() {
            act.biases = Some(param(&f64s(&case["biases"]), &device));
        }
        let x = input(case, "x", &device);
        let out = act.forward(x.clone()).unwrap();
        assert_close(
            &format!("norm activation {k} out"),
            &values(out.clone()),
            &f64s(&case["out"]),
            1e-10,
        );
        let grads = loss(out, case, "g").backward();
        // A clamped norm (|x| < epsilon) gives gradients of order f(epsilon) / epsilon: compare
        // relative to the largest.
        let expected = f64s(&case["grad_x"]);
        let scale = expected.iter().fold(1.0f64, |m, g| m.max(g.abs()));
        let got = values(x.grad(&grads).unwrap());
        assert_close(
            &format!("norm activation {k} grad x"),
            &got,
            &expected,
            1e-10 * scale,
        );
        if let Some(b) = &act.biases {
            let g = values(b.val().grad(&grads).unwrap());
            assert_close(
                &format!("norm activation {k} grad biases"),
                &g,
                &f64s(&case["grad_biases"]),
                1e-10 * scale,
            );
        }
    }
}

/// The e3nn BatchNorm of a fixture case, with its weights and running statistics.
fn batch_norm(case: &Value, device: &Device) -> BatchNorm {
    let mut config = BatchNormConfig::new(&irreps(&case["irreps"]));
    config.eps = case["eps"].as_f64().unwrap();
    config.momentum = case["momentum"].as_f64().unwrap();
    config.affine = case["affine"].as_bool().unwrap();
    config.reduce = match case["reduce"].as_str().unwrap() {
        "max" => Reduce::Max,
        _ => Reduce::Mean,
    };
    config.normalization = case["normalization"].as_str().unwrap().parse().unwrap();
    let mut bn = config.init(device).unwrap();
    if config.affine {
        bn.weight = Some(param(&f64s(&case["weight"]), device));
        bn.bias = Some(param(&f64s(&case["bias"]), device));
    }
    let running = |key: &str| {
        let v = f64s(&case[key]);
        Some(RunningState::new(tensor(&v, [v.len()], device)))
    };
    bn.running_mean = running("running_mean_init");
    bn.running_var = running("running_var_init");
    bn
}

/// A fixture input `[batch, dim]` or `[batch, samples, dim]` as `[batch, samples, dim]`.
fn samples(case: &Value, key: &str, shape_key: &str, device: &Device) -> Tensor<3> {
    let shape: Vec<usize> = f64s(&case[shape_key]).iter().map(|&s| s as usize).collect();
    let shape = match shape[..] {
        [b, d] => [b, 1, d],
        [b, s, d] => [b, s, d],
        _ => panic!("shape {shape:?}"),
    };
    tensor(&f64s(&case[key]), shape, device).require_grad()
}

#[test]
fn batch_norm_matches_e3nn() {
    let fixture = load_fixture!("modules");
    let device = Device::flex().autodiff();
    for (k, case) in fixture["batch_norm"].as_array().unwrap().iter().enumerate() {
        let bn = batch_norm(case, &device);
        // Training: batch statistics, rolled into the running ones.
        let x = samples(case, "x_train", "shape_train", &device);
        let out = bn.forward_samples(x.clone()).unwrap();
        let [b, s, d] = out.dims();
        let flat = |t: Tensor<3>| t.reshape([b * s, d]);
        assert_close(
            &format!("bn {k} train out"),
            &values(out.clone()),
            &f64s(&case["out_train"]),
            1e-10,
        );
        let mean = values(bn.running_mean.as_ref().unwrap().value_sync());
        let var = values(bn.running_var.as_ref().unwrap().value_sync());
        assert_close(
            &format!("bn {k} running mean"),
            &mean,
            &f64s(&case["running_mean"]),
            1e-12,
        );
        assert_close(
            &format!("bn {k} running var"),
            &var,
            &f64s(&case["running_var"]),
            1e-12,
        );
        let g = tensor(&f64s(&case["g_train"]), [b * s, d], &device);
        let grads = flat(out).mul(g).sum().backward();
        assert_close(
            &format!("bn {k} grad x"),
            &values(x.grad(&grads).unwrap()),
            &f64s(&case["grad_x_train"]),
            1e-10,
        );
        if let (Some(w), Some(bias)) = (&bn.weight, &bn.bias) {
            assert_close(
                &format!("bn {k} grad weight"),
                &values(w.val().grad(&grads).unwrap()),
                &f64s(&case["grad_weight"]),
                1e-10,
            );
            assert_close(
                &format!("bn {k} grad bias"),
                &values(bias.val().grad(&grads).unwrap()),
                &f64s(&case["grad_bias"]),
                1e-10,
            );
        }
        // Inference (the training flag off): the running statistics after that step.
        let mut bn = bn;
        bn.training = bn.training.with_value(false);
        let x = samples(case, "x_eval", "shape_eval", &device);
        let out = bn.forward_samples(x.clone()).unwrap();
        let [b, s, d] = out.dims();
        assert_close(
            &format!("bn {k} eval out"),
            &values(out.clone()),
            &f64s(&case["out_eval"]),
            1e-10,
        );
        let g = tensor(&f64s(&case["g_eval"]), [b * s, d], &device);
        let grads = out.reshape([b * s, d]).mul(g).sum().backward();
        assert_close(
            &format!("bn {k} eval grad x"),
            &values(x.grad(&grads).unwrap()),
            &f64s(&case["grad_x_eval"]),
            1e-10,
        );
        if let (Some(w), Some(bias)) = (&bn.weight, &bn.bias) {
            let gw = values(w.val().grad(&grads).unwrap());
            assert_close(
                &format!("bn {k} eval grad weight"),
                &gw,
                &f64s(&case["grad_weight_eval"]),
                1e-10,
            );
            let gb = values(bias.val().grad(&grads).unwrap());
            assert_close(
                &format!("bn {k} eval grad bias"),
                &gb,
                &f64s(&case["grad_bias_eval"]),
                1e-10,
            );
        }
    }
}

#[test]
fn extract_matches_e3nn() {
    let fixture = load_fixture!("modules");
    let device = Device::flex().autodiff();
    for (k, case) in fixture["extract"].as_array().unwrap().iter().enumerate() {
        let outs: Vec<Irreps> = case["irreps_outs"]
            .as_array()
            .unwrap()
            .iter()
            .map(irreps)
            .collect();
        let instructions: Vec<Vec<usize>> = case["instructions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ins| f64s(ins).iter().map(|&i| i as usize).collect())
            .collect();
        let extract = Extract::new(&irreps(&case["irreps_in"]), &outs, &instructions).unwrap();
        let got = extract.forward(input(case, "x", &device)).unwrap();
        let expected = case["outs"].as_array().unwrap();
        assert_eq!(got.len(), expected.len());
        for (i, (y, e)) in got.into_iter().zip(expected).enumerate() {
            assert_close(&format!("extract {k} out {i}"), &values(y), &f64s(e), 0.0);
        }
    }
}

#[test]
fn norm_matches_e3nn() {
    let fixture = load_fixture!("modules");
    let device = Device::flex().autodiff();
    for (k, case) in fixture["norm"].as_array().unwrap().iter().enumerate() {
        let norm = Norm::new(
            &case["irreps_in"].as_str().unwrap().parse().unwrap(),
            case["squared"].as_bool().unwrap(),
        );
        assert_eq!(
            norm.irreps_in().to_string(),
            case["simplified"].as_str().unwrap()
        );
        assert_eq!(
            norm.irreps_out().to_string(),
            case["irreps_out"].as_str().unwrap()
        );
        let x = input(case, "x", &device);
        let out = norm.forward(x.clone()).unwrap();
        assert_close(
            &format!("norm {k} out"),
            &values(out.clone()),
            &f64s(&case["out"]),
            1e-10,
        );
        let grads = loss(out, case, "g").backward();
        assert_close(
            &format!("norm {k} grad x"),
            &values(x.grad(&grads).unwrap()),
            &f64s(&case["grad_x"]),
            1e-10,
        );
    }
    // A zero instance: norm 0 with a zero gradient (e3nn's is NaN).
    let norm = Norm::new(&"1x1o".parse().unwrap(), false);
    let x = tensor(&[0.0, 0.0, 0.0], [1, 3], &device).require_grad();
    let grads = norm.forward(x.clone()).unwrap().sum().backward();
    assert_eq!(values(x.grad(&grads).unwrap()), [0.0; 3]);
    let norm = Norm::new(&"2x1o+1x2e".parse().unwrap(), false);
    assert_equivariant(
        |args: &[Tensor<2>]| vec![norm.forward(args[0].clone()).unwrap()],
        None,
        &[Representation::Irreps("2x1o+1x2e".parse().unwrap())],
        &[Representation::Irreps("3x0e".parse().unwrap())],
        None,
        &Device::flex(),
        DType::F64,
        7,
    )
    .unwrap();
}

#[test]
fn extract_ir_and_identity_match_e3nn() {
    let fixture = load_fixture!("modules");
    let device = Device::flex().autodiff();
    for (k, case) in fixture["extract_ir"].as_array().unwrap().iter().enumerate() {
        let ex = ExtractIr::new(
            &irreps(&case["irreps_in"]),
            case["ir"].as_str().unwrap().parse().unwrap(),
        );
        assert_eq!(
            ex.irreps_out().to_string(),
            case["irreps_out"].as_str().unwrap()
        );
        let out = ex.forward(input(case, "x", &device)).unwrap();
        assert_close(
            &format!("extract_ir {k}"),
            &values(out),
            &f64s(&case["out"]),
            0.0,
        );
    }
    let extract = Extract::new(
        &"1x0e+1x1o".parse().unwrap(),
        &["1x0e".parse().unwrap(), "1x1o".parse().unwrap()],
        &[vec![0], vec![1]],
    )
    .unwrap();
    let x = tensor(&[1.0, 2.0, 3.0, 4.0], [1, 4], &device);
    assert!(extract.forward_squeezed(x.clone()).is_err(), "two outputs");
    let id = Identity::new(
        &"2x0e+1x1o".parse().unwrap(),
        &"1x0e+1x0e+1x1o".parse().unwrap(),
    )
    .unwrap();
    assert_eq!(
        values(id.forward(x.clone().pad((0, 1, 0, 0), 0.0)).unwrap()),
        [1.0, 2.0, 3.0, 4.0, 0.0]
    );
    assert!(id.forward(x).is_err());
    assert!(Identity::new(&"1x1o".parse().unwrap(), &"1x1e".parse().unwrap()).is_err());
}

#[test]
fn spherical_harmonics_module_matches_e3nn() {
    let fixture = load_fixture!("modules");
    let device = Device::flex().autodiff();
    for (k, case) in fixture["spherical_harmonics"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let sh = SphericalHarmonics::new(
            &irreps(&case["irreps_out"]),
            case["normalize"].as_bool().unwrap(),
            case["normalization"]
                .as_str()
                .unwrap()
                .parse::<Normalization>()
                .unwrap(),
        )
        .unwrap();
        let x = input(case, "x", &device);
        let out = sh.forward(x.clone()).unwrap();
        assert_close(
            &format!("sh {k} out"),
            &values(out.clone()),
            &f64s(&case["out"]),
            1e-10,
        );
        let grads = loss(out, case, "g").backward();
        assert_close(
            &format!("sh {k} grad x"),
            &values(x.grad(&grads).unwrap()),
            &f64s(&case["grad_x"]),
            1e-10,
        );
    }
}

/// The model of `tools/reference/export_state_dict.py`, field names as its submodules.
#[derive(Module, Debug)]
struct E3nnModel {
    lin1: Linear,
    gate: Gate,
    tp: TensorProduct,
    bn: BatchNorm,
    fc: FullyConnectedNet,
}

impl E3nnModel {
    fn new(device: &Device) -> Self {
        let gate = Gate::new(
            &"8x0e".parse().unwrap(),
            &[Some(ActivationFunction::Silu)],
            &"4x0e".parse().unwrap(),
            &[Some(ActivationFunction::Sigmoid)],
            &"4x1o".parse().unwrap(),
        )
        .unwrap();
        let lin1 = LinearConfig::new(
            &"4x0e+2x1o".parse().unwrap(),
            &"8x0e+4x0e+4x1o".parse().unwrap(),
        )
        .with_biases(true)
        .init(device)
        .unwrap();
        let tp = FullyConnectedTensorProduct::new(
            gate.irreps_out(),
            &"0e+1o".parse().unwrap(),
            &"6x0e+2x1o".parse().unwrap(),
        )
        .init(device)
        .unwrap();
        let bn = BatchNormConfig::new(&"6x0e+2x1o".parse().unwrap())
            .init(device)
            .unwrap();
        let fc =
            FullyConnectedNet::new(&[3, 8, 6], Some(ActivationFunction::Silu), device).unwrap();
        E3nnModel {
            lin1,
            gate,
            tp,
            bn,
            fc,
        }
    }

    fn forward(&self, x: Tensor<2>, y: Tensor<2>, z: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let h = self
            .gate
            .forward(self.lin1.forward(x, None).unwrap())
            .unwrap();
        (
            self.bn
                .forward(self.tp.forward(h, y, None).unwrap())
                .unwrap(),
            self.fc.forward(z).unwrap(),
        )
    }
}

#[test]
fn e3nn_state_dict_gives_e3nn_outputs() {
    let fixture = load_fixture!("e3nn_model");
    let device = Device::flex();
    let mut model = E3nnModel::new(&device);
    let path = format!(
        "{}/tests/fixtures/e3nn_model.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    let result = model.load_from(&mut e3nn_safetensors(path)).unwrap();
    assert!(result.missing.is_empty(), "missing {:?}", result.missing);
    assert!(result.unused.is_empty(), "unused {:?}", result.unused);
    let input = |key: &str, width: usize| {
        let v = f64s(&fixture[key]);
        tensor(&v, [v.len() / width, width], &device)
    };
    let (out, fc_out) = model.forward(input("x", 10), input("y", 4), input("z", 3));
    assert_close(
        "e3nn model out",
        &values(out),
        &f64s(&fixture["out"]),
        1e-10,
    );
    assert_close(
        "e3nn model fc out",
        &values(fc_out),
        &f64s(&fixture["fc_out"]),
        1e-10,
    );
}

#[test]
fn safetensors_round_trip_keeps_every_parameter() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let model = cast(E3nnModel::new(&device), DType::F64);
    let mut saved = SafetensorsStore::from_bytes(None);
    model.save_into(&mut saved).unwrap();
    device.seed(4);
    let mut loaded = cast(E3nnModel::new(&device), DType::F64);
    let mut store = SafetensorsStore::from_bytes(Some(saved.get_bytes().unwrap()));
    let result = loaded.load_from(&mut store).unwrap();
    assert!(
        result.missing.is_empty() && result.errors.is_empty(),
        "{result:?}"
    );
    let x = tensor(
        &(0..40).map(|i| (i as f64 * 0.37).sin()).collect::<Vec<_>>(),
        [4, 10],
        &device,
    );
    let y = tensor(
        &(0..16).map(|i| (i as f64 * 0.11).cos()).collect::<Vec<_>>(),
        [4, 4],
        &device,
    );
    let z = tensor(
        &(0..12).map(|i| i as f64 * 0.1).collect::<Vec<_>>(),
        [4, 3],
        &device,
    );
    let (a, fa) = model.forward(x.clone(), y.clone(), z.clone());
    let (b, fb) = loaded.forward(x, y, z);
    assert_eq!(values(a), values(b));
    assert_eq!(values(fa), values(fb));
    let running = |m: &E3nnModel| values(m.bn.running_var.as_ref().unwrap().value_sync());
    assert_eq!(running(&model), running(&loaded));
}

fn wavy(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (i as f64 * 0.73 + 0.2).sin() * 1.3)
        .collect()
}

#[test]
fn module_gradients_match_finite_differences() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let linear = LinearConfig::new(
        &"3x0e + 2x1o".parse().unwrap(),
        &"2x0e + 1x1o".parse().unwrap(),
    )
    .with_biases(true)
    .init(&device)
    .unwrap();
    let linear = cast(linear, DType::F64);
    check_gradient(
        "linear",
        |x| linear.forward(x, None).unwrap(),
        &wavy(4 * 9),
        [4, 9],
        1e-6,
    );
    let gate = Gate::new(
        &"2x0e + 1x0o".parse().unwrap(),
        &[
            Some(ActivationFunction::Silu),
            Some(ActivationFunction::Tanh),
        ],
        &"1x0e + 1x0o".parse().unwrap(),
        &[
            Some(ActivationFunction::Sigmoid),
            Some(ActivationFunction::Tanh),
        ],
        &"1x1o + 1x2e".parse().unwrap(),
    )
    .unwrap();
    let dim = gate.irreps_in().dim();
    check_gradient(
        "gate",
        |x| gate.forward(x).unwrap(),
        &wavy(3 * dim),
        [3, dim],
        1e-6,
    );
    let act = Activation::new(
        &"2x0e + 1x0o + 1x1o".parse().unwrap(),
        &[
            Some(ActivationFunction::Gelu),
            Some(ActivationFunction::Tanh),
            None,
        ],
    )
    .unwrap();
    check_gradient(
        "activation",
        |x| act.forward(x).unwrap(),
        &wavy(3 * 6),
        [3, 6],
        1e-6,
    );
    let extract = Extract::new(
        &"1x0e + 1x1o + 1x2e".parse().unwrap(),
        &["1x2e + 1x0e".parse().unwrap(), "1x1o".parse().unwrap()],
        &[vec![2, 0], vec![1]],
    )
    .unwrap();
    check_gradient(
        "extract",
        |x| Tensor::cat(extract.forward(x).unwrap(), 1),
        &wavy(3 * 9),
        [3, 9],
        1e-6,
    );
    let norm_act = NormActivation::new(
        &"2x0e + 2x1o + 1x2e".parse().unwrap(),
        ActivationFunction::Silu,
        true,
        None,
        true,
        &device,
    )
    .unwrap();
    let norm_act = cast(norm_act, DType::F64);
    check_gradient(
        "norm activation",
        |x| norm_act.forward(x).unwrap(),
        &wavy(3 * 13),
        [3, 13],
        1e-6,
    );
    let bn = BatchNormConfig::new(&"2x0e + 1x0o + 2x1o".parse().unwrap())
        .init(&device)
        .unwrap();
    let bn = cast(bn, DType::F64);
    check_gradient(
        "batch norm (training)",
        |x| bn.forward(x).unwrap(),
        &wavy(5 * 9),
        [5, 9],
        1e-6,
    );
    let sh = SphericalHarmonics::new(
        &"0e + 1o + 2e + 3o".parse().unwrap(),
        true,
        Normalization::Norm,
    )
    .unwrap();
    check_gradient(
        "spherical harmonics",
        |x| sh.forward(x).unwrap(),
        &wavy(4 * 3),
        [4, 3],
        1e-6,
    );
}

#[test]
fn modules_are_equivariant() {
    let device = Device::flex();
    let irreps = |s: &str| Representation::Irreps(s.parse().unwrap());
    let check = |f: &dyn Fn(&[Tensor<2>]) -> Vec<Tensor<2>>,
                 ins: &[Representation],
                 outs: &[Representation],
                 dtype: DType| {
        assert_equivariant(f, None, ins, outs, None, &device, dtype, 7).unwrap();
    };
    let linear = LinearConfig::new(
        &"3x0e + 2x1o + 1x2e".parse().unwrap(),
        &"2x0e + 3x1o + 1x2e".parse().unwrap(),
    )
    .with_biases(true)
    .init(&device)
    .unwrap();
    let gate = Gate::new(
        &"2x0e + 2x0o".parse().unwrap(),
        &[
            Some(ActivationFunction::Relu),
            Some(ActivationFunction::Tanh),
        ],
        &"1x0e + 1x0o".parse().unwrap(),
        &[
            Some(ActivationFunction::Sigmoid),
            Some(ActivationFunction::Abs),
        ],
        &"1x1o + 1x2e".parse().unwrap(),
    )
    .unwrap();
    let (gin, gout) = (gate.irreps_in().to_string(), gate.irreps_out().to_string());
    let norm_act = NormActivation::new(
        &"1x0o + 2x1o + 1x2e".parse().unwrap(),
        ActivationFunction::Sigmoid,
        true,
        None,
        true,
        &device,
    )
    .unwrap();
    let training = device.clone().autodiff();
    let bn = BatchNormConfig::new(&"2x0e + 1x0o + 2x1o".parse().unwrap())
        .init(&training)
        .unwrap();
    let sh = SphericalHarmonics::new(
        &"0e + 1o + 2e + 3o".parse().unwrap(),
        false,
        Normalization::Component,
    )
    .unwrap();
    let tp = TensorProduct::square(
        &"2x0e + 1x1o".parse().unwrap(),
        Some(&"1x0e + 1x1e + 1x2e".parse().unwrap()),
        None,
        Default::default(),
        &device,
    )
    .unwrap();
    let extract = Extract::new(
        &"1x0e + 1x1o + 1x2e".parse().unwrap(),
        &["1x2e + 1x0e".parse().unwrap()],
        &[vec![2, 0]],
    )
    .unwrap();
    for dtype in [DType::F64, DType::F32] {
        let linear = cast(linear.clone(), dtype);
        check(
            &|x| vec![linear.forward(x[0].clone(), None).unwrap()],
            &[irreps("3x0e + 2x1o + 1x2e")],
            &[irreps("2x0e + 3x1o + 1x2e")],
            dtype,
        );
        check(
            &|x| vec![gate.forward(x[0].clone()).unwrap()],
            &[irreps(&gin)],
            &[irreps(&gout)],
            dtype,
        );
        let norm_act = cast(norm_act.clone(), dtype);
        check(
            &|x| vec![norm_act.forward(x[0].clone()).unwrap()],
            &[irreps("1x0o + 2x1o + 1x2e")],
            &[irreps("1x0o + 2x1o + 1x2e")],
            dtype,
        );
        // Training mode: batch statistics.
        let bn = cast(bn.clone(), dtype);
        check(
            &|x| vec![bn.forward(x[0].clone().to_device(&training)).unwrap()],
            &[irreps("2x0e + 1x0o + 2x1o")],
            &[irreps("2x0e + 1x0o + 2x1o")],
            dtype,
        );
        check(
            &|x| vec![sh.forward(x[0].clone()).unwrap()],
            &[irreps("1o")],
            &[irreps("0e + 1o + 2e + 3o")],
            dtype,
        );
        let tp = cast(tp.clone(), dtype);
        check(
            &|x| vec![tp.forward_square(x[0].clone(), None).unwrap()],
            &[irreps("2x0e + 1x1o")],
            &[irreps("1x0e + 1x1e + 1x2e")],
            dtype,
        );
        check(
            &|x| extract.forward(x[0].clone()).unwrap(),
            &[irreps("1x0e + 1x1o + 1x2e")],
            &[irreps("1x2e + 1x0e")],
            dtype,
        );
    }
    // A function that is not equivariant fails.
    let wrong = assert_equivariant(
        |x| vec![x[0].clone()],
        None,
        &[irreps("1x1o")],
        &[irreps("1x1e")],
        None,
        &device,
        DType::F64,
        7,
    );
    assert!(wrong.is_err());
}

#[test]
fn scatter_mean_matches_core_and_finite_differences() {
    use burn::tensor::Int;
    use equivariant::ops::scatter_mean;
    let device = Device::flex().autodiff();
    let index = [3usize, 0, 3, 3, 1, 0];
    let x = wavy(6 * 2);
    let index_tensor = || {
        let v: Vec<i64> = index.iter().map(|&i| i as i64).collect();
        Tensor::<1, Int>::from_data(TensorData::new(v, [6]), &device)
    };
    let out = scatter_mean(tensor(&x, [6, 2], &device), index_tensor(), 5);
    let expected = equivariant::graph::scatter_mean(&x, &index, 5, 2).unwrap();
    assert_close("scatter_mean", &values(out), &expected, 1e-15);
    check_gradient(
        "scatter_mean",
        |t| scatter_mean(t, index_tensor(), 5),
        &x,
        [6, 2],
        1e-6,
    );
}

/// Equivariant dropout: every irrep instance is kept whole (scaled by `1 / (1 - p)`) or
/// zeroed whole, about a fraction `p` of them dropped; with the same random draws, rotating
/// the input rotates the output; `p = 1` drops everything; evaluation is the identity.
#[test]
fn dropout_drops_whole_irreps_and_commutes_with_rotations() {
    use equivariant::nn::Dropout;
    use equivariant::o3::rand_matrix;
    let device = Device::flex().autodiff();
    let irreps: Irreps = "3x0e+2x1o+1x2e".parse().unwrap();
    let dim = irreps.dim();
    let (p, batch) = (0.3, 2000);
    let dropout = Dropout::new(&irreps, p).unwrap();
    let x = tensor(&vec![1.0; batch * dim], [batch, dim], &device);
    device.seed(5);
    let y = values(dropout.forward(x).unwrap());
    let (mut dropped, mut total) = (0usize, 0usize);
    for row in y.chunks(dim) {
        let mut start = 0;
        for entry in irreps.iter() {
            for _ in 0..entry.mul {
                let d = entry.ir.dim();
                let block = &row[start..start + d];
                let kept = block.iter().all(|&v| (v - 1.0 / (1.0 - p)).abs() < 1e-12);
                let zero = block.iter().all(|&v| v == 0.0);
                assert!(kept || zero, "a partly dropped instance: {block:?}");
                dropped += usize::from(zero);
                total += 1;
                start += d;
            }
        }
    }
    let fraction = dropped as f64 / total as f64;
    // 12000 instances: the fraction's standard deviation is 0.004.
    assert!((fraction - p).abs() < 0.025, "dropped {fraction}, p = {p}");

    let n = 4;
    let x = wavy(n * dim);
    let rotation = rand_matrix(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3));
    let d = irreps.d_from_matrix(&rotation).unwrap();
    let d = &d;
    let rotate = |v: &[f64]| -> Vec<f64> {
        v.chunks(dim)
            .flat_map(|row| {
                (0..dim).map(move |i| (0..dim).map(|j| d[i * dim + j] * row[j]).sum::<f64>())
            })
            .collect()
    };
    let run = |v: &[f64]| {
        device.seed(11);
        values(dropout.forward(tensor(v, [n, dim], &device)).unwrap())
    };
    assert_close(
        "dropout(R x) = R dropout(x)",
        &run(&rotate(&x)),
        &rotate(&run(&x)),
        1e-12,
    );

    let all = Dropout::new(&irreps, 1.0).unwrap();
    assert_eq!(
        values(all.forward(tensor(&x, [n, dim], &device)).unwrap()),
        vec![0.0; n * dim]
    );
    let eval = dropout.training(false);
    assert_eq!(
        values(eval.forward(tensor(&x, [n, dim], &device)).unwrap()),
        x
    );
}

/// `o3.Linear` with bad instructions or bias flags: typed errors naming the problem.
#[test]
fn linear_instructions_and_bias_flags_are_checked() {
    let device = Device::flex();
    let config = || LinearConfig::new(&"2x0e+1x1o".parse().unwrap(), &"1x0e+1x1o".parse().unwrap());
    assert!(matches!(
        config().with_instructions(vec![(2, 0)]).init(&device),
        Err(equivariant::Error::IndexOutOfRange { index: 2, len: 2 })
    ));
    assert!(matches!(
        config().with_instructions(vec![(0, 1)]).init(&device),
        Err(equivariant::Error::InvalidArgument {
            name: "instructions",
            ..
        })
    ));
    assert!(matches!(
        config().with_output_biases(vec![true, true]).init(&device),
        Err(equivariant::Error::InvalidArgument { name: "biases", .. })
    ));
    assert!(matches!(
        config().with_output_biases(vec![true]).init(&device),
        Err(equivariant::Error::InvalidArgument { name: "biases", .. })
    ));
    let linear = config().with_instructions(vec![]).init(&device).unwrap();
    assert_eq!(linear.weight_numel(), 0);
}
