//! `trainer::train` on 12 frames of the shipped Cu-Au slice with a tiny model: the training
//! loss falls, the metrics CSV has a row per epoch, the checkpoint reloads to the same
//! predictions, an interrupted run resumes to the uninterrupted run's numbers, the
//! schedules and early stopping act, and bad checkpoints and configurations are typed
//! errors.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::Module;
use burn::tensor::{DType, Device};
use equivariant::nn::models::nequip::{Nequip, NequipConfig};
use equivariant::potential::Potential;
use equivariant_data::extxyz;
use equivariant_train::dataset::{Batch, Dataset};
use equivariant_train::trainer::{EpochMetrics, Progress};
use equivariant_train::{Error, checkpoint, config::TrainConfig, trainer};

use super::{f64_model, slice};

/// A fresh folder under the target directory, named for the test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 12 frames of the slice (the 36-atom surface and vacancy frames come first in each
/// condition) and a configuration training a one-layer model on them.
fn small_run(dir: &Path, epochs: usize, extra: &str) -> PathBuf {
    let frames = extxyz::read(slice()).unwrap();
    let small: Vec<_> = frames
        .iter()
        .filter(|f| f.len() <= 40)
        .take(12)
        .cloned()
        .collect();
    assert_eq!(small.len(), 12);
    extxyz::write(dir.join("small.extxyz"), &small).unwrap();
    let config = format!(
        r#"
[data]
path = "small.extxyz"
validation = 0.25
test = 0.0
seed = 3

[model]
r_max = 3.5
num_layers = 1
l_max = 1
num_features = 4
invariant_layers = 1
invariant_neurons = 8

[training]
epochs = {epochs}
batch_size = 3
learning_rate = 0.05
energy_weight = 1.0
force_weight = 1.0
dtype = "f64"
seed = 1
output = "run"
{extra}
"#
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The trained and the loaded model give the same energies and forces (to the bit) on the
/// first two frames of `small_run`'s data in `dir`.
fn assert_same_energies_forces(dir: &Path, species: &[String], trained: &Nequip, loaded: &Nequip) {
    let device = Device::flex().autodiff();
    let frames = extxyz::read(dir.join("small.extxyz")).unwrap();
    let data = Dataset::from_frames(&frames, "small", Some(species)).unwrap();
    let samples: Vec<_> = data.samples.iter().take(2).collect();
    let batch = Batch::new(&samples, loaded.r_max(), &device, DType::F64).unwrap();
    let a = trained.energy_forces(&batch.graph).unwrap();
    let b = loaded.energy_forces(&batch.graph).unwrap();
    assert_eq!(a.energy.into_data(), b.energy.into_data());
    assert_eq!(a.forces.into_data(), b.forces.into_data());
}

#[test]
fn training_lowers_the_loss_and_the_checkpoint_round_trips() {
    let dir = scratch("train_round_trip");
    let config = TrainConfig::read(&small_run(&dir, 10, "ema_decay = 0.0")).unwrap();
    let mut seen = Vec::new();
    let outcome = trainer::train::<Nequip>(&config, false, &AtomicBool::new(false), |p| {
        if let Progress::Epoch(m) = p {
            seen.push(m.epoch)
        }
    })
    .unwrap();
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    let losses: Vec<f64> = outcome.epochs.iter().map(|m| m.train_loss).collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses[9] < 0.6 * losses[0], "the loss falls: {losses:?}");
    let csv = std::fs::read_to_string(dir.join("run/metrics.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        11,
        "a header and a row per epoch:\n{csv}"
    );

    // The checkpoint rebuilds the model: the same energies and forces.
    let device = Device::flex().autodiff();
    let (loaded, header) = checkpoint::load::<Nequip>(&outcome.checkpoint, &device).unwrap();
    assert_eq!(header.species, ["Au", "Cu"]);
    assert_same_energies_forces(&dir, &header.species, &outcome.model, &loaded);
    assert!(!dir.join("run/checkpoint.safetensors.tmp").exists());
}

/// A model with only scalars out of its last layer (`scalar_last_layer`, NequIP 0.7's
/// layout) trains; its checkpoint says so and rebuilds the same model, smaller than the
/// full layout.
#[test]
fn a_scalar_last_layer_trains_and_round_trips() {
    let dir = scratch("train_scalar_last_layer");
    let path = small_run(&dir, 2, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("num_layers = 1", "num_layers = 2\nscalar_last_layer = true");
    std::fs::write(&path, text).unwrap();
    let config = TrainConfig::read(&path).unwrap();
    let outcome =
        trainer::train::<Nequip>(&config, false, &AtomicBool::new(false), |_| {}).unwrap();
    let device = Device::flex().autodiff();
    let (loaded, header) = checkpoint::load::<Nequip>(&outcome.checkpoint, &device).unwrap();
    assert!(header.model.scalar_last_layer);
    assert_eq!(
        loaded.layers[1].equivariant_nonlin.irreps_out().to_string(),
        "4x0e"
    );
    let full = NequipConfig {
        scalar_last_layer: false,
        ..loaded.config().clone()
    }
    .init(&device)
    .unwrap();
    assert!(loaded.num_params() < full.num_params());
    assert_same_energies_forces(&dir, &header.species, &outcome.model, &loaded);
}

#[test]
fn bad_checkpoints_and_configs_are_typed_errors() {
    let dir = scratch("train_bad_input");
    let device = Device::flex().autodiff();
    let foreign = dir.join("foreign.safetensors");
    std::fs::write(&foreign, b"not a checkpoint at all").unwrap();
    assert!(matches!(
        checkpoint::load::<Nequip>(&foreign, &device),
        Err(Error::Checkpoint { .. })
    ));
    assert!(matches!(
        checkpoint::load::<Nequip>(&dir.join("missing"), &device),
        Err(Error::Io { .. })
    ));

    // A truncated checkpoint.
    let config = TrainConfig::read(&small_run(&dir, 1, "")).unwrap();
    let outcome =
        trainer::train::<Nequip>(&config, false, &AtomicBool::new(false), |_| {}).unwrap();
    let bytes = std::fs::read(&outcome.checkpoint).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = checkpoint::load::<Nequip>(&truncated, &device).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("truncated.safetensors"), "{err}");

    // Configurations: an unknown key, an impossible value, a missing section.
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for (bad, what) in [
        (
            text.replace("epochs = 1", "epochs = 1\nepoch = 3"),
            "unknown field",
        ),
        (
            text.replace("learning_rate = 0.05", "learning_rate = -1.0"),
            "learning_rate",
        ),
        (text.replace("dtype = \"f64\"", "dtype = \"f16\""), "dtype"),
        (
            text.replace("epochs = 1", "epochs = 1\nearly_stopping_patience = 0"),
            "early_stopping_patience",
        ),
        (text.replace("[model]", "[modle]"), "modle"),
    ] {
        std::fs::write(&path, bad).unwrap();
        let err = TrainConfig::read(&path).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
        assert!(err.to_string().contains(what), "{err} should name {what}");
    }
    // Data without labels.
    let frames = extxyz::read(dir.join("small.extxyz")).unwrap();
    let mut unlabelled = frames.clone();
    unlabelled[4].forces = None;
    let err = Dataset::from_frames(&unlabelled, "small.extxyz", None).unwrap_err();
    assert!(err.to_string().contains("frame 4 has no forces"), "{err}");
}

/// Every figure of the metrics but the time.
fn figures(epochs: &[EpochMetrics]) -> Vec<[f64; 7]> {
    epochs
        .iter()
        .map(|m| {
            [
                m.epoch as f64,
                m.train_loss,
                m.val_loss,
                m.val_energy_mae_per_atom,
                m.val_force_mae,
                m.val_force_rmse,
                m.learning_rate,
            ]
        })
        .collect()
}

/// A run stopped in its second epoch (as Ctrl-C does) and resumed gives the uninterrupted
/// run's losses, errors and rates exactly, with the cosine and the plateau schedules, the
/// moving average, clipping and weight decay.
#[test]
fn a_resumed_run_continues_exactly() {
    let common = "ema_decay = 0.9\nmax_grad_norm = 1.0\nweight_decay = 0.01";
    for (name, schedule) in [
        ("cosine", "lr_schedule = \"cosine\"\nlr_min = 0.001"),
        (
            "plateau",
            "lr_schedule = \"plateau\"\nlr_patience = 0\nlr_factor = 0.5",
        ),
    ] {
        let extra = format!("{common}\n{schedule}");
        let dir = scratch(&format!("train_resume_whole_{name}"));
        let config = TrainConfig::read(&small_run(&dir, 3, &extra)).unwrap();
        let whole =
            trainer::train::<Nequip>(&config, false, &AtomicBool::new(false), |_| {}).unwrap();
        assert!(!whole.interrupted);

        let dir = scratch(&format!("train_resume_parts_{name}"));
        let config = TrainConfig::read(&small_run(&dir, 3, &extra)).unwrap();
        let stop = AtomicBool::new(false);
        let first = trainer::train::<Nequip>(&config, false, &stop, |p| {
            if let Progress::Step {
                epoch: 2, step: 2, ..
            } = p
            {
                stop.store(true, Ordering::Relaxed);
            }
        })
        .unwrap();
        assert!(first.interrupted);
        assert_eq!(
            first.epochs.len(),
            1,
            "the unfinished epoch is not recorded"
        );
        assert!(checkpoint::load::<Nequip>(&first.checkpoint, &Device::flex().autodiff()).is_ok());
        let resumed =
            trainer::train::<Nequip>(&config, true, &AtomicBool::new(false), |_| {}).unwrap();
        assert_eq!(figures(&resumed.epochs), figures(&whole.epochs), "{name}");
        let lr: Vec<f64> = whole.epochs.iter().map(|m| m.learning_rate).collect();
        if name == "cosine" {
            // From 0.05 towards 0.001 over the 9 steps (3 per epoch); each epoch's last.
            for (k, lr) in lr.iter().enumerate() {
                let expected = equivariant_train::schedule::cosine(0.05, 0.001, 3 * k + 2, 9);
                assert_eq!(*lr, expected, "epoch {}", k + 1);
            }
        } else {
            // Patience 0: halved after each epoch that does not improve on the best.
            let val: Vec<f64> = whole.epochs.iter().map(|m| m.val_loss).collect();
            let mut expected = 0.05;
            let mut best = f64::INFINITY;
            for (k, v) in val.iter().enumerate() {
                assert_eq!(lr[k], expected, "epoch {}", k + 1);
                if *v < best * (1.0 - 1e-4) {
                    best = *v;
                } else {
                    expected *= 0.5;
                }
            }
        }
    }
}

/// A rate too small to change a weight: the validation loss never improves after the first
/// epoch, so early stopping ends the run after its patience.
#[test]
fn early_stopping_ends_a_run_that_stopped_improving() {
    let dir = scratch("train_early_stop");
    let extra = "ema_decay = 0.0\nearly_stopping_patience = 2";
    let text = std::fs::read_to_string(small_run(&dir, 6, extra)).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        text.replace("learning_rate = 0.05", "learning_rate = 1e-30"),
    )
    .unwrap();
    let config = TrainConfig::read(&dir.join("config.toml")).unwrap();
    let outcome =
        trainer::train::<Nequip>(&config, false, &AtomicBool::new(false), |_| {}).unwrap();
    assert!(outcome.stopped_early);
    assert_eq!(
        outcome.epochs.len(),
        3,
        "epoch 1 sets the best; 2 and 3 do not improve"
    );
}

/// Resuming checks what it resumes: a changed model or dtype is refused, a run that never
/// finished an epoch has nothing to resume, and a state caught mid-swap (`state` gone,
/// `state.old` complete) is recovered.
#[test]
fn resume_refuses_a_changed_run_and_recovers_a_mid_swap_state() {
    let dir = scratch("train_resume_checks");
    let path = small_run(&dir, 2, "ema_decay = 0.0");
    let config = TrainConfig::read(&path).unwrap();
    let err = trainer::train::<Nequip>(&config, true, &AtomicBool::new(false), |_| {}).unwrap_err();
    assert!(err.to_string().contains("no state to resume from"), "{err}");
    let stop = AtomicBool::new(false);
    trainer::train::<Nequip>(&config, false, &stop, |p| {
        if let Progress::Epoch(_) = p {
            stop.store(true, Ordering::Relaxed);
        }
    })
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    for (changed, what) in [
        (
            text.replace("num_features = 4", "num_features = 6"),
            "num_features: 6",
        ),
        (text.replace("dtype = \"f64\"", "dtype = \"f32\""), "f32"),
    ] {
        std::fs::write(&path, changed).unwrap();
        let config = TrainConfig::read(&path).unwrap();
        let err =
            trainer::train::<Nequip>(&config, true, &AtomicBool::new(false), |_| {}).unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
        assert!(err.to_string().contains(what), "{err} should name {what}");
    }
    std::fs::write(&path, &text).unwrap();
    std::fs::rename(dir.join("run/state"), dir.join("run/state.old")).unwrap();
    let config = TrainConfig::read(&path).unwrap();
    let outcome = trainer::train::<Nequip>(&config, true, &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(outcome.epochs.len(), 2);
    assert!(!dir.join("run/state.old").exists());
}

/// Frames the trainer cannot use: no atoms, forces of another length, two atoms at one place.
#[test]
fn unusable_frames_are_typed_errors() {
    let frames = extxyz::read(slice()).unwrap();
    let mut frame = frames[0].clone();
    frame.forces.as_mut().unwrap().pop();
    let err = Dataset::from_frames(&[frame], "f.xyz", None).unwrap_err();
    assert!(
        err.to_string()
            .contains("frame 0 has 108 atoms but 107 forces"),
        "{err}"
    );
    let mut empty = frames[0].clone();
    empty.species.clear();
    empty.positions.clear();
    empty.forces = Some(Vec::new());
    let err = Dataset::from_frames(&[frames[0].clone(), empty], "f.xyz", None).unwrap_err();
    assert!(err.to_string().contains("frame 1 has no atoms"), "{err}");
    let mut doubled = frames[0].clone();
    doubled.positions[5] = doubled.positions[9];
    let data = Dataset::from_frames(&[doubled], "f.xyz", None).unwrap();
    let err = Batch::new(&[&data.samples[0]], 4.0, &Device::flex(), DType::F64).unwrap_err();
    assert!(
        err.to_string().contains("atoms 9 and 5") || err.to_string().contains("atoms 5 and 9"),
        "{err}"
    );
}

/// Validation frames from their own file: every frame of `path` trains, the validation
/// errors are those of the other file's frames (checked against `evaluate` on them), and a
/// fraction given beside the file is a configuration error.
#[test]
fn validation_frames_from_their_own_file() {
    let dir = scratch("train_validation_file");
    let config_path = small_run(&dir, 1, "ema_decay = 0.0");
    let frames = extxyz::read(dir.join("small.extxyz")).unwrap();
    extxyz::write(dir.join("train.extxyz"), &frames[..9]).unwrap();
    extxyz::write(dir.join("valid.extxyz"), &frames[9..]).unwrap();
    let text = std::fs::read_to_string(&config_path).unwrap();
    let text = text
        .replace(
            "path = \"small.extxyz\"",
            "path = \"train.extxyz\"\nvalidation_path = \"valid.extxyz\"",
        )
        .replace("validation = 0.25", "validation = 0.0");
    std::fs::write(&config_path, &text).unwrap();
    let config = TrainConfig::read(&config_path).unwrap();
    let outcome =
        trainer::train::<Nequip>(&config, false, &AtomicBool::new(false), |_| {}).unwrap();
    let device = Device::flex().autodiff();
    let data = Dataset::from_frames(
        &frames[9..],
        "valid",
        Some(&["Au".to_string(), "Cu".to_string()]),
    )
    .unwrap();
    let samples: Vec<_> = data.samples.iter().collect();
    let errors =
        equivariant_train::evaluate::evaluate(&outcome.model, &samples, 3, &device, DType::F64)
            .unwrap();
    let last = outcome.epochs.last().unwrap();
    assert_eq!(
        errors.forces.count,
        3 * frames[9..].iter().map(|f| f.len()).sum::<usize>()
    );
    assert!((last.val_force_mae - errors.forces.mae).abs() < 1e-12 * (1.0 + errors.forces.mae));
    assert!(!dir.join("run/test.extxyz").exists(), "no test frames");

    std::fs::write(
        &config_path,
        text.replace("validation = 0.0", "validation = 0.2"),
    )
    .unwrap();
    let err = TrainConfig::read(&config_path).unwrap_err();
    assert!(err.to_string().contains("validation_path"), "{err}");
}

/// `evaluate` against labels made from the model's own predictions: zero errors; then with
/// every label moved by a known amount, errors of exactly that amount (energy per atom,
/// force and stress components; the stress only of the periodic frames).
#[test]
fn evaluate_measures_the_errors_it_reports() {
    let device = Device::flex().autodiff();
    let model = f64_model(
        "r_max = 3.5\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 8",
        &device,
    );
    let frames: Vec<_> = extxyz::read(slice())
        .unwrap()
        .into_iter()
        .filter(|f| f.len() <= 40)
        .take(3)
        .collect();
    let data = Dataset::from_frames(
        &frames,
        "slice",
        Some(&["Au".to_string(), "Cu".to_string()]),
    )
    .unwrap();
    // The model's own predictions as labels.
    let mut samples = data.samples.clone();
    for sample in &mut samples {
        let batch = Batch::new(&[&*sample], model.r_max(), &device, DType::F64).unwrap();
        let result = model.energy_forces(&batch.graph).unwrap();
        sample.energy = result.energy.clone().into_scalar::<f64>();
        let forces: Vec<f64> = result.forces.clone().into_data().iter::<f64>().collect();
        sample.forces = forces.chunks(3).map(|f| [f[0], f[1], f[2]]).collect();
        let volume = batch.graph.volumes()[0].expect("the slice's frames are periodic");
        let stress: Vec<f64> = result
            .stress(&[volume])
            .unwrap()
            .into_data()
            .iter::<f64>()
            .collect();
        sample.stress = Some([
            [stress[0], stress[1], stress[2]],
            [stress[3], stress[4], stress[5]],
            [stress[6], stress[7], stress[8]],
        ]);
    }
    let refs: Vec<_> = samples.iter().collect();
    let exact =
        equivariant_train::evaluate::evaluate(&model, &refs, 2, &device, DType::F64).unwrap();
    for (what, e) in [
        ("energy", exact.energy_per_atom),
        ("forces", exact.forces),
        ("stress", exact.stress),
    ] {
        assert!(e.mae < 1e-12 && e.rmse < 1e-12, "{what}: {e:?}");
    }
    assert_eq!(exact.stress.count, 27);
    // Labels moved: energy by 0.5 eV per atom, forces by 0.2, stress by 0.01.
    for sample in &mut samples {
        sample.energy += 0.5 * sample.structure.positions.len() as f64;
        sample.forces.iter_mut().flatten().for_each(|f| *f -= 0.2);
        sample
            .stress
            .as_mut()
            .unwrap()
            .iter_mut()
            .flatten()
            .for_each(|s| *s += 0.01);
    }
    let refs: Vec<_> = samples.iter().collect();
    let moved =
        equivariant_train::evaluate::evaluate(&model, &refs, 2, &device, DType::F64).unwrap();
    for (what, e, by) in [
        ("energy", moved.energy_per_atom, 0.5),
        ("forces", moved.forces, 0.2),
        ("stress", moved.stress, 0.01),
    ] {
        assert!(
            (e.mae - by).abs() < 1e-12 && (e.rmse - by).abs() < 1e-12,
            "{what}: {e:?}"
        );
    }
}
