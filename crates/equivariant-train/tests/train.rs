//! `trainer::train` on 12 frames of the shipped Cu-Au slice with a tiny model: the training
//! loss falls, the metrics CSV has a row per epoch, the checkpoint reloads to the same
//! predictions, an interrupted run resumes to the uninterrupted run's numbers, the
//! schedules and early stopping act, and bad checkpoints and configurations are typed
//! errors.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::{DType, Device};
use equivariant::potential::Potential;
use equivariant_data::extxyz;
use equivariant_train::dataset::{Batch, Dataset};
use equivariant_train::trainer::{EpochMetrics, Progress};
use equivariant_train::{Error, checkpoint, config::TrainConfig, trainer};

/// A fresh folder under the target directory, named for the test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn slice() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/cuau_emt_slice.extxyz")
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

#[test]
fn training_lowers_the_loss_and_the_checkpoint_round_trips() {
    let dir = scratch("train_round_trip");
    let config = TrainConfig::read(&small_run(&dir, 10, "ema_decay = 0.0")).unwrap();
    let mut seen = Vec::new();
    let outcome = trainer::train(&config, false, &AtomicBool::new(false), |p| {
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
    let (loaded, header) = checkpoint::load(&outcome.checkpoint, &device).unwrap();
    assert_eq!(header.species, ["Au", "Cu"]);
    let frames = extxyz::read(dir.join("small.extxyz")).unwrap();
    let data = Dataset::from_frames(&frames, "small", Some(&header.species)).unwrap();
    let samples: Vec<_> = data.samples.iter().take(2).collect();
    let batch = Batch::new(&samples, loaded.r_max(), &device, DType::F64).unwrap();
    let a = outcome.model.energy_forces(&batch.graph).unwrap();
    let b = loaded.energy_forces(&batch.graph).unwrap();
    assert_eq!(a.energy.into_data(), b.energy.into_data());
    assert_eq!(a.forces.into_data(), b.forces.into_data());
    assert!(!dir.join("run/checkpoint.safetensors.tmp").exists());
}

#[test]
fn bad_checkpoints_and_configs_are_typed_errors() {
    let dir = scratch("train_bad_input");
    let device = Device::flex().autodiff();
    let foreign = dir.join("foreign.safetensors");
    std::fs::write(&foreign, b"not a checkpoint at all").unwrap();
    assert!(matches!(
        checkpoint::load(&foreign, &device),
        Err(Error::Checkpoint { .. })
    ));
    assert!(matches!(
        checkpoint::load(&dir.join("missing"), &device),
        Err(Error::Io { .. })
    ));

    // A truncated checkpoint.
    let config = TrainConfig::read(&small_run(&dir, 1, "")).unwrap();
    let outcome = trainer::train(&config, false, &AtomicBool::new(false), |_| {}).unwrap();
    let bytes = std::fs::read(&outcome.checkpoint).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = checkpoint::load(&truncated, &device).unwrap_err();
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
/// run's losses, errors and rates exactly, with the cosine schedule and the moving average.
#[test]
fn a_resumed_run_continues_exactly() {
    let extra = "lr_schedule = \"cosine\"\nlr_min = 0.001\nema_decay = 0.9\nmax_grad_norm = 1.0\nweight_decay = 0.01";
    let dir = scratch("train_resume_whole");
    let config = TrainConfig::read(&small_run(&dir, 3, extra)).unwrap();
    let whole = trainer::train(&config, false, &AtomicBool::new(false), |_| {}).unwrap();
    assert!(!whole.interrupted);

    let dir = scratch("train_resume_parts");
    let config = TrainConfig::read(&small_run(&dir, 3, extra)).unwrap();
    let stop = AtomicBool::new(false);
    let first = trainer::train(&config, false, &stop, |p| {
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
    assert!(checkpoint::load(&first.checkpoint, &Device::flex().autodiff()).is_ok());
    let resumed = trainer::train(&config, true, &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(figures(&resumed.epochs), figures(&whole.epochs));
    // The cosine schedule: from 0.05 towards 0.001 over the 9 steps (3 per epoch).
    let lr: Vec<f64> = whole.epochs.iter().map(|m| m.learning_rate).collect();
    for (k, lr) in lr.iter().enumerate() {
        let done = (3 * k + 2) as f64 / 9.0;
        let expected = 0.001 + 0.5 * (0.05 - 0.001) * (1.0 + (std::f64::consts::PI * done).cos());
        assert!(
            (lr - expected).abs() < 1e-12,
            "epoch {}: {lr} vs {expected}",
            k + 1
        );
    }
}

/// A rate too small to change a weight: the validation loss never improves after the first
/// epoch, so early stopping ends the run after its patience, and the plateau schedule
/// halves the rate each `lr_patience` epochs without improvement.
#[test]
fn early_stopping_and_the_plateau_schedule() {
    let dir = scratch("train_early_stop");
    let extra = "lr_schedule = \"plateau\"\nlr_patience = 1\nlr_factor = 0.5\nema_decay = 0.0\nearly_stopping_patience = 2";
    let text = std::fs::read_to_string(small_run(&dir, 6, extra)).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        text.replace("learning_rate = 0.05", "learning_rate = 1e-30"),
    )
    .unwrap();
    let config = TrainConfig::read(&dir.join("config.toml")).unwrap();
    let outcome = trainer::train(&config, false, &AtomicBool::new(false), |_| {}).unwrap();
    assert!(outcome.stopped_early);
    assert_eq!(
        outcome.epochs.len(),
        3,
        "epoch 1 sets the best; 2 and 3 do not improve"
    );
    let lr: Vec<f64> = outcome.epochs.iter().map(|m| m.learning_rate).collect();
    assert_eq!(lr, [1e-30, 0.5e-30, 0.25e-30]);
}
