//! The trainer's AdamW (with global-norm clipping), weight average and learning-rate
//! schedules against `torch.optim.AdamW`, `clip_grad_norm_`, `torch_ema`,
//! `CosineAnnealingLR` and `ReduceLROnPlateau` (`tools/reference/training/
//! make_optimizer_fixture.py`), f64 to 1e-12; and a saved optimizer state restores the
//! same next step.

use burn::module::{Module, Param};
use burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant_testing::{f64s, load_fixture};
use equivariant_train::ema::ExponentialMovingAverage;
use equivariant_train::gradients::ParamGradients;
use equivariant_train::optimizer::AdamW;
use equivariant_train::schedule::{Plateau, cosine};
use serde_json::Value;

#[derive(Module, Debug)]
struct Two {
    a: Param<Tensor<1>>,
    b: Param<Tensor<2>>,
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn fixture() -> Value {
    load_fixture!("optimizer")
}

fn start(fixture: &Value, device: &Device) -> Two {
    let a = f64s(&fixture["initial"]["a"]);
    let b = f64s(&fixture["initial"]["b"]);
    Two {
        a: Param::from_tensor(Tensor::from_data(
            TensorData::new(a, [3]),
            (device, DType::F64),
        )),
        b: Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [2, 2]),
            (device, DType::F64),
        )),
    }
}

/// One step with the fixture's gradients `c` (those of `sum(c_a a) + sum(c_b b)`).
fn step(optim: &mut AdamW, lr: f64, model: Two, c: &Value, device: &Device) -> Two {
    let c_a = Tensor::<1>::from_data(TensorData::new(f64s(&c["a"]), [3]), (device, DType::F64));
    let c_b = Tensor::<2>::from_data(TensorData::new(f64s(&c["b"]), [2, 2]), (device, DType::F64));
    let loss = model
        .a
        .val()
        .mul(c_a)
        .sum()
        .add(model.b.val().mul(c_b).sum());
    let grads = ParamGradients::new(&model, &loss.backward());
    optim.step(lr, model, grads)
}

#[test]
fn adamw_and_the_average_match_torch() {
    let fixture = fixture();
    let device = Device::flex().autodiff();
    for case in fixture["cases"].as_array().unwrap() {
        let lr = case["lr"].as_f64().unwrap();
        let mut optim = AdamW::new(
            case["weight_decay"].as_f64().unwrap(),
            case["max_grad_norm"].as_f64(),
        );
        let mut model = start(&fixture, &device);
        let mut ema = ExponentialMovingAverage::new(&model, case["ema_decay"].as_f64().unwrap(), 0);
        for c in case["gradients"].as_array().unwrap() {
            model = step(&mut optim, lr, model, c, &device);
            ema.update(&model);
        }
        let close = |what: &str, got: Vec<f64>, want: Vec<f64>| {
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() < 1e-12,
                    "lr {lr} {what}[{k}]: {g} vs torch {w}"
                );
            }
        };
        close("a", values(model.a.val()), f64s(&case["params"]["a"]));
        close("b", values(model.b.val()), f64s(&case["params"]["b"]));
        close(
            "average a",
            values(ema.average().a.val()),
            f64s(&case["average"]["a"]),
        );
        close(
            "average b",
            values(ema.average().b.val()),
            f64s(&case["average"]["b"]),
        );
    }
}

#[test]
fn a_saved_state_gives_the_same_next_step() {
    let fixture = fixture();
    let case = &fixture["cases"][1];
    let device = Device::flex().autodiff();
    let gradients = case["gradients"].as_array().unwrap();
    let lr = case["lr"].as_f64().unwrap();
    let mut optim = AdamW::new(0.01, Some(1.0));
    let mut model = start(&fixture, &device);
    for c in &gradients[..2] {
        model = step(&mut optim, lr, model, c, &device);
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("optimizer_state");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("optimizer.safetensors");
    optim.save(&model, &path).unwrap();
    // A copy of the model with fresh parameter ids, as a resumed run loads it.
    let copy = Two {
        a: Param::from_tensor(model.a.val().detach()),
        b: Param::from_tensor(model.b.val().detach()),
    };
    let mut restored = AdamW::new(0.01, Some(1.0));
    restored.load(&copy, &path).unwrap();
    assert_eq!(restored.steps(), 2);
    let next = step(&mut optim, lr, model, &gradients[2], &device);
    let next_restored = step(&mut restored, lr, copy, &gradients[2], &device);
    assert_eq!(values(next.a.val()), values(next_restored.a.val()));
    assert_eq!(values(next.b.val()), values(next_restored.b.val()));
    // Not an optimizer state: a typed error naming the file.
    std::fs::write(&path, b"garbage").unwrap();
    let err = restored.load(&next_restored, &path).unwrap_err();
    assert!(err.to_string().contains("optimizer.safetensors"), "{err}");
}

#[test]
fn schedules_match_torch() {
    let fixture = fixture();
    let c = &fixture["schedules"]["cosine"];
    let (lr, lr_min) = (c["lr"].as_f64().unwrap(), c["lr_min"].as_f64().unwrap());
    let steps = c["steps"].as_u64().unwrap() as usize;
    for (k, want) in f64s(&c["lr_per_step"]).iter().enumerate() {
        let got = cosine(lr, lr_min, k, steps);
        assert!(
            (got - want).abs() < 1e-12,
            "cosine step {k}: {got} vs torch {want}"
        );
    }
    let p = &fixture["schedules"]["plateau"];
    let mut plateau = Plateau::new(
        p["factor"].as_f64().unwrap(),
        p["patience"].as_u64().unwrap() as usize,
    );
    let mut lr = p["lr"].as_f64().unwrap();
    for (k, (loss, want)) in f64s(&p["losses"])
        .iter()
        .zip(f64s(&p["lr_after"]))
        .enumerate()
    {
        lr = plateau.step(*loss, lr);
        assert!(
            (lr - want).abs() < 1e-15,
            "plateau epoch {k}: {lr} vs torch {want}"
        );
    }
}
