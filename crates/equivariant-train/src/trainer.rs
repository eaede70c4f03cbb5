//! The training loop: batches assembled on a second thread, from graphs built once, while
//! the model trains, each in parts trained at once ([`crate::parallel`]), the loss
//! `w_E mean_g ((E_g - E_ref_g) / n_g)^2 + w_F mean((F - F_ref)^2)` and its gradient through
//! the forces ([`loss_gradients`]), AdamW with optional gradient clipping, a
//! learning-rate schedule, an exponential moving average of the weights, per-epoch
//! validation, early stopping, a CSV of the metrics, checkpoints, and resuming.
//!
//! Deterministic for a seed: each epoch's order comes from `(seed, epoch)`, the kernels sum
//! in a fixed order, and a resumed run restores the weights, their average, the optimizer's
//! moments and the schedule, so it continues with the losses the uninterrupted run has.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use burn::module::{ModuleMapper, Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};
use equivariant::forces::{EnergyForces, LossDerivatives, training_gradients};
use equivariant::potential::AtomicGraph;
use equivariant::util::on_pool;
use equivariant_data::{extxyz, split};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Header};
use crate::config::TrainConfig;
use crate::dataset::{Batch, Dataset, Sample};
use crate::ema::ExponentialMovingAverage;
use crate::evaluate::{Evaluation, evaluate_batches};
use crate::files::write_atomically;
use crate::gradients::ParamGradients;
use crate::model::{Trainable, build_seeded};
use crate::optimizer::{AdamW, param_ids};
use crate::parallel;
use crate::schedule::{Plateau, cosine};
use crate::statistics::Statistics;
use crate::{Error, Result};

/// One epoch's figures.
///
/// ```
/// use std::sync::atomic::AtomicBool;
/// use equivariant::nn::models::nequip::Nequip;
/// use equivariant_train::{config::TrainConfig, trainer::{self, Progress}};
/// let dir = std::env::temp_dir().join("equivariant_doc_train_1");
/// std::fs::create_dir_all(&dir)?;
/// let frame = |d: f64, e: f64| format!("2\nProperties=species:S:1:pos:R:3:forces:R:3 energy={e} pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu {d} 0 0 -0.1 0 0\n");
/// let data: String = [(2.4, -1.0), (2.5, -1.1), (2.6, -1.05), (2.7, -0.9)].iter().map(|&(d, e)| frame(d, e)).collect();
/// std::fs::write(dir.join("dimers.xyz"), data)?;
/// std::fs::write(dir.join("config.toml"), "[data]\npath = \"dimers.xyz\"\nvalidation = 0.25\ntest = 0.0\n\
///     [model]\nr_max = 3.0\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 4\n\
///     [training]\nepochs = 2\nbatch_size = 2\noutput = \"run\"\n")?;
/// let config = TrainConfig::read(&dir.join("config.toml"))?;
/// let mut seen = Vec::new();
/// let outcome = trainer::train::<Nequip>(&config, false, &AtomicBool::new(false), |p| {
///     if let Progress::Epoch(m) = p {
///         seen.push(m.epoch);
///     }
/// })?;
/// assert!(outcome.epochs.iter().all(|m| m.val_force_mae.is_finite() && m.val_loss >= 0.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochMetrics {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// The validation loss (the training loss's weights on the validation errors).
    pub val_loss: f64,
    /// Validation energy-per-atom mean absolute error.
    pub val_energy_mae_per_atom: f64,
    /// Validation energy-per-atom root mean square error.
    pub val_energy_rmse_per_atom: f64,
    /// Validation force-component mean absolute error.
    pub val_force_mae: f64,
    /// Validation force-component root mean square error.
    pub val_force_rmse: f64,
    /// The learning rate at the epoch's end.
    pub learning_rate: f64,
    /// Seconds the epoch's training steps took.
    pub epoch_s: f64,
}

/// What [`train`] reports as it goes.
///
/// ```
/// use std::sync::atomic::AtomicBool;
/// use equivariant::nn::models::nequip::Nequip;
/// use equivariant_train::{config::TrainConfig, trainer::{self, Progress}};
/// let dir = std::env::temp_dir().join("equivariant_doc_train_2");
/// std::fs::create_dir_all(&dir)?;
/// let frame = |d: f64, e: f64| format!("2\nProperties=species:S:1:pos:R:3:forces:R:3 energy={e} pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu {d} 0 0 -0.1 0 0\n");
/// let data: String = [(2.4, -1.0), (2.5, -1.1), (2.6, -1.05), (2.7, -0.9)].iter().map(|&(d, e)| frame(d, e)).collect();
/// std::fs::write(dir.join("dimers.xyz"), data)?;
/// std::fs::write(dir.join("config.toml"), "[data]\npath = \"dimers.xyz\"\nvalidation = 0.25\ntest = 0.0\n\
///     [model]\nr_max = 3.0\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 4\n\
///     [training]\nepochs = 2\nbatch_size = 2\noutput = \"run\"\n")?;
/// let config = TrainConfig::read(&dir.join("config.toml"))?;
/// let mut seen = Vec::new();
/// let outcome = trainer::train::<Nequip>(&config, false, &AtomicBool::new(false), |p| {
///     if let Progress::Epoch(m) = p {
///         seen.push(m.epoch);
///     }
/// })?;
/// assert_eq!(seen, [1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress {
    /// A training step of `epoch` is done.
    Step {
        /// The epoch, from 1.
        epoch: usize,
        /// Steps done in this epoch.
        step: usize,
        /// Steps in the epoch.
        steps: usize,
        /// The step's loss.
        loss: f64,
    },
    /// An epoch and its validation are done.
    Epoch(EpochMetrics),
}

/// What a run leaves behind.
///
/// ```
/// use std::sync::atomic::AtomicBool;
/// use equivariant::nn::models::nequip::Nequip;
/// use equivariant_train::{config::TrainConfig, trainer::{self, Progress}};
/// let dir = std::env::temp_dir().join("equivariant_doc_train_3");
/// std::fs::create_dir_all(&dir)?;
/// let frame = |d: f64, e: f64| format!("2\nProperties=species:S:1:pos:R:3:forces:R:3 energy={e} pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu {d} 0 0 -0.1 0 0\n");
/// let data: String = [(2.4, -1.0), (2.5, -1.1), (2.6, -1.05), (2.7, -0.9)].iter().map(|&(d, e)| frame(d, e)).collect();
/// std::fs::write(dir.join("dimers.xyz"), data)?;
/// std::fs::write(dir.join("config.toml"), "[data]\npath = \"dimers.xyz\"\nvalidation = 0.25\ntest = 0.0\n\
///     [model]\nr_max = 3.0\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 4\n\
///     [training]\nepochs = 2\nbatch_size = 2\noutput = \"run\"\n")?;
/// let config = TrainConfig::read(&dir.join("config.toml"))?;
/// let mut seen = Vec::new();
/// let outcome = trainer::train::<Nequip>(&config, false, &AtomicBool::new(false), |p| {
///     if let Progress::Epoch(m) = p {
///         seen.push(m.epoch);
///     }
/// })?;
/// assert!(outcome.checkpoint.exists() && outcome.best.exists());
/// assert!(!outcome.interrupted && !outcome.stopped_early);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Outcome<M> {
    /// Every epoch's metrics (a resumed run: the earlier epochs' too).
    pub epochs: Vec<EpochMetrics>,
    /// The checkpoint of the last epoch (the averaged weights, with EMA).
    pub checkpoint: PathBuf,
    /// The checkpoint of the epoch with the best validation loss.
    pub best: PathBuf,
    /// The number of parameters.
    pub params: usize,
    /// The model at the end of the run (the averaged weights, with EMA): the last
    /// checkpoint's, unless `stop` ended the run inside an epoch.
    pub model: M,
    /// Whether `stop` ended the run before its last epoch.
    pub interrupted: bool,
    /// Whether early stopping ended it.
    pub stopped_early: bool,
}

/// Where a run's files go, under the output folder.
struct Paths {
    checkpoint: PathBuf,
    best: PathBuf,
    metrics: PathBuf,
    test: PathBuf,
    /// The state to resume from: `model.safetensors`, `ema.safetensors`,
    /// `optimizer.safetensors`, `trainer.toml`.
    state: PathBuf,
    /// Where the next state is written before it replaces `state`.
    state_new: PathBuf,
    /// Where the previous state waits while the next one moves in.
    state_old: PathBuf,
}

impl Paths {
    fn new(output: &Path) -> Self {
        Paths {
            checkpoint: output.join("checkpoint.safetensors"),
            best: output.join("best.safetensors"),
            metrics: output.join("metrics.csv"),
            test: output.join("test.extxyz"),
            state: output.join("state"),
            state_new: output.join("state.new"),
            state_old: output.join("state.old"),
        }
    }
}

/// The files of a state folder.
struct StateFiles {
    model: PathBuf,
    ema: PathBuf,
    optimizer: PathBuf,
    trainer: PathBuf,
}

impl StateFiles {
    fn of(dir: &Path) -> Self {
        StateFiles {
            model: dir.join("model.safetensors"),
            ema: dir.join("ema.safetensors"),
            optimizer: dir.join("optimizer.safetensors"),
            trainer: dir.join("trainer.toml"),
        }
    }
}

/// The schedule's and early stopping's state, as saved after each epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TrainerState {
    epoch: usize,
    learning_rate: f64,
    best_val_loss: f64,
    epochs_since_best: usize,
    ema_updates: usize,
    plateau: Option<Plateau>,
}

/// Trains the model `config` describes on its data, reporting to `progress`; with
/// `resume`, continues the run whose state is in the output folder. The output folder gets
/// `checkpoint.safetensors` (the last epoch), `best.safetensors` (the best validation loss),
/// `metrics.csv`, `test.extxyz` (the held-out test frames) and `state/` (for resuming). Setting `stop` (e.g.
/// on Ctrl-C) ends the run after the current step, leaving the last epoch's checkpoint and
/// state (a resumed run redoes the unfinished epoch).
///
/// Errors: those of reading the data, building graphs and writing the output;
/// [`Error::Data`] for a split that leaves no training or validation frames;
/// [`Error::Checkpoint`] for a state to resume from that is missing or unreadable.
///
/// ```
/// use std::sync::atomic::AtomicBool;
/// use equivariant::nn::models::nequip::Nequip;
/// use equivariant_train::{config::TrainConfig, trainer::{self, Progress}};
/// let dir = std::env::temp_dir().join("equivariant_doc_train_4");
/// std::fs::create_dir_all(&dir)?;
/// let frame = |d: f64, e: f64| format!("2\nProperties=species:S:1:pos:R:3:forces:R:3 energy={e} pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu {d} 0 0 -0.1 0 0\n");
/// let data: String = [(2.4, -1.0), (2.5, -1.1), (2.6, -1.05), (2.7, -0.9)].iter().map(|&(d, e)| frame(d, e)).collect();
/// std::fs::write(dir.join("dimers.xyz"), data)?;
/// std::fs::write(dir.join("config.toml"), "[data]\npath = \"dimers.xyz\"\nvalidation = 0.25\ntest = 0.0\n\
///     [model]\nr_max = 3.0\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 4\n\
///     [training]\nepochs = 2\nbatch_size = 2\noutput = \"run\"\n")?;
/// let config = TrainConfig::read(&dir.join("config.toml"))?;
/// let mut seen = Vec::new();
/// let outcome = trainer::train::<Nequip>(&config, false, &AtomicBool::new(false), |p| {
///     if let Progress::Epoch(m) = p {
///         seen.push(m.epoch);
///     }
/// })?;
/// assert_eq!(outcome.epochs.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn train<M: Trainable>(
    config: &TrainConfig,
    resume: bool,
    stop: &AtomicBool,
    mut progress: impl FnMut(Progress),
) -> Result<Outcome<M>> {
    let section: M::Config = config.model_section()?;
    let file = config.data.path.display().to_string();
    let mut frames = extxyz::read(&config.data.path)?;
    // With a validation file, its frames follow the training frames: the split is fixed.
    let parts = match &config.data.validation_path {
        Some(path) => {
            let validation = extxyz::read(path)?;
            // Checked on their own first, so that an error names their file.
            Dataset::from_frames(&validation, &path.display().to_string(), None)?;
            let train = frames.len();
            frames.extend(validation);
            split::Split {
                train: (0..train).collect(),
                validation: (train..frames.len()).collect(),
                test: Vec::new(),
            }
        }
        None => split::split(
            frames.len(),
            config.data.validation,
            config.data.test,
            config.data.seed,
        )?,
    };
    let dataset = Dataset::from_frames(&frames, &file, None)?;
    if parts.train.is_empty() || parts.validation.is_empty() {
        return Err(Error::Data {
            file,
            reason: format!(
                "the split leaves {} training and {} validation frames; both need one",
                parts.train.len(),
                parts.validation.len()
            ),
        });
    }
    let pick = |indices: &[usize]| -> Vec<&Sample> {
        indices.iter().map(|&i| &dataset.samples[i]).collect()
    };
    let (train_set, validation_set) = (pick(&parts.train), pick(&parts.validation));
    let t = &config.training;
    let r_max = M::configured_r_max(&section);
    let device = Device::flex().autodiff();
    let dtype = checkpoint::dtype(&t.dtype)?;
    let paths = Paths::new(&t.output);
    std::fs::create_dir_all(&t.output).map_err(|source| Error::Io {
        path: t.output.display().to_string(),
        source,
    })?;

    let mut optim = AdamW::new(t.weight_decay, t.max_grad_norm);
    let (mut model, mut ema, mut state, header, mut epochs) = if resume {
        recover_state(&paths)?;
        let files = StateFiles::of(&paths.state);
        let (model, header) = checkpoint::load::<M>(&files.model, &device)?;
        // A resumed run continues the run it was: the model and its dtype cannot change.
        if header.model != section || header.dtype != t.dtype {
            return Err(Error::Checkpoint {
                file: files.model.display().to_string(),
                reason: format!(
                    "the run was {:?} in {}; the configuration now says {:?} in {}: resume with the run's [model] and dtype",
                    header.model, header.dtype, section, t.dtype
                ),
            });
        }
        if header.species != dataset.species {
            return Err(Error::Checkpoint {
                file: files.model.display().to_string(),
                reason: format!(
                    "trained on species {:?}, but the data has {:?}",
                    header.species, dataset.species
                ),
            });
        }
        let state = read_state(&files.trainer)?;
        let ema = if t.ema_decay > 0.0 {
            let (average, _) = checkpoint::load::<M>(&files.ema, &device)?;
            // The average's parameters take the model's ids, which the updates match.
            let average = average.map(&mut AssignIds {
                ids: param_ids(&model),
                next: 0,
            });
            Some(ExponentialMovingAverage::new(
                &average,
                t.ema_decay,
                state.ema_updates,
            ))
        } else {
            None
        };
        optim.load(&model, &files.optimizer)?;
        let epochs = read_metrics(&paths.metrics, state.epoch)?;
        (model, ema, state, header, epochs)
    } else {
        let statistics = Statistics::of(&train_set, r_max)?;
        let num_types = dataset.species.len();
        let model = build_seeded::<M>(&section, num_types, &statistics, &device, Some(t.seed))?;
        let model = equivariant::util::cast(model, dtype);
        let header = Header {
            species: dataset.species.clone(),
            statistics,
            dtype: t.dtype.clone(),
            model: section.clone(),
        };
        let ema =
            (t.ema_decay > 0.0).then(|| ExponentialMovingAverage::new(&model, t.ema_decay, 0));
        let state = TrainerState {
            epoch: 0,
            learning_rate: t.learning_rate,
            best_val_loss: f64::INFINITY,
            epochs_since_best: 0,
            ema_updates: 0,
            plateau: (t.lr_schedule == "plateau").then(|| Plateau::new(t.lr_factor, t.lr_patience)),
        };
        (model, ema, state, header, Vec::new())
    };
    let params = model.num_params();
    write_metrics(&paths.metrics, &epochs)?;
    // The held-out frames, for `equivariant evaluate` after training.
    let test_frames: Vec<_> = parts.test.iter().map(|&i| frames[i].clone()).collect();
    if !test_frames.is_empty() {
        write_atomically(&paths.test, extxyz::to_string(&test_frames)?.as_bytes())?;
    }

    // Each training structure's graph once: a step's batches join their structures' graphs
    // instead of searching their neighbours again every epoch (as NequIP's datasets keep
    // theirs; ~70 bytes an edge, 0.14 MB for 108 atoms of ~18 neighbours).
    let graphs: Vec<AtomicGraph> = on_pool(|| {
        train_set
            .par_iter()
            .map(|s| s.graph(r_max, &device, dtype))
            .collect::<Result<_>>()
    })?;
    // The validation batches once, too: every epoch evaluates the same ones.
    let validation_batches = Batch::chunks(&validation_set, t.batch_size, r_max, &device, dtype)?;
    let steps_per_epoch = train_set.len().div_ceil(t.batch_size);
    let total_steps = steps_per_epoch * t.epochs;
    let mut interrupted = false;
    let mut stopped_early = false;
    for epoch in state.epoch + 1..=t.epochs {
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        // Each epoch's order from (seed, epoch) alone: a resumed run draws the same.
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            t.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        order.shuffle(&mut rng);
        let chunks: Vec<&[usize]> = order.chunks(t.batch_size).collect();
        let start = Instant::now();
        let mut loss_sum = 0.0;
        let mut lr = state.learning_rate;
        // The next batches are assembled on a second thread while this one trains.
        let finished = std::thread::scope(|scope| -> Result<bool> {
            let (sender, receiver) = mpsc::sync_channel::<Result<Vec<Batch>>>(2);
            let (chunks, graphs, train_set) = (&chunks, &graphs, &train_set);
            scope.spawn(move || {
                for chunk in chunks {
                    let sizes: Vec<usize> = chunk
                        .iter()
                        .map(|&i| train_set[i].structure.positions.len())
                        .collect();
                    let parts = parallel::balanced_parts(&sizes)
                        .into_iter()
                        .map(|part| {
                            let (samples, part_graphs): (Vec<&Sample>, Vec<&AtomicGraph>) = part
                                .iter()
                                .map(|&k| (train_set[chunk[k]], &graphs[chunk[k]]))
                                .unzip();
                            Batch::from_graphs(&samples, &part_graphs)
                        })
                        .collect();
                    if sender.send(parts).is_err() {
                        break;
                    }
                }
            });
            for (k, parts) in receiver.into_iter().enumerate() {
                let parts = parts?;
                if t.lr_schedule == "cosine" {
                    let step = (epoch - 1) * steps_per_epoch + k;
                    lr = cosine(t.learning_rate, t.lr_min, step, total_steps);
                }
                // The whole step on rayon's pool: one hand-over per step, not one per
                // parallel kernel, nor one per phase (each wakes the workers again).
                let (optimizer, average) = (&mut optim, ema.as_mut());
                let (loss, updated) = on_pool(|| -> Result<_> {
                    let (loss, gradients) =
                        loss_gradients(&model, &parts, t.energy_weight, t.force_weight)?;
                    let updated = optimizer.step(lr, model.clone(), gradients);
                    if let Some(average) = average {
                        average.update(&updated);
                    }
                    Ok((loss, updated))
                })?;
                loss_sum += loss;
                model = updated;
                progress(Progress::Step {
                    epoch,
                    step: k + 1,
                    steps: chunks.len(),
                    loss,
                });
                if stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        if !finished {
            interrupted = true;
            break;
        }
        let epoch_s = start.elapsed().as_secs_f64();
        let averaged = ema.as_ref().map_or(&model, |e| e.average());
        // Forces only: on frozen parameters the backward skips their gradients.
        let frozen = averaged.clone().no_grad();
        let validation = evaluate_batches(&frozen, &validation_batches)?;
        let val_loss = validation_loss(&validation, t.energy_weight, t.force_weight);
        if val_loss < state.best_val_loss {
            state.best_val_loss = val_loss;
            state.epochs_since_best = 0;
            checkpoint::save(&paths.best, averaged, &header)?;
        } else {
            state.epochs_since_best += 1;
        }
        let epoch_lr = lr;
        if let Some(plateau) = state.plateau.as_mut() {
            lr = plateau.step(val_loss, lr);
        }
        state.learning_rate = lr;
        let metrics = EpochMetrics {
            epoch,
            train_loss: loss_sum / chunks.len().max(1) as f64,
            val_loss,
            val_energy_mae_per_atom: validation.energy_per_atom.mae,
            val_energy_rmse_per_atom: validation.energy_per_atom.rmse,
            val_force_mae: validation.forces.mae,
            val_force_rmse: validation.forces.rmse,
            learning_rate: epoch_lr,
            epoch_s,
        };
        epochs.push(metrics);
        write_metrics(&paths.metrics, &epochs)?;
        checkpoint::save(&paths.checkpoint, averaged, &header)?;
        state.epoch = epoch;
        state.ema_updates = ema.as_ref().map_or(0, |e| e.updates());
        save_state(&paths, &state, &model, ema.as_ref(), &optim, &header)?;
        progress(Progress::Epoch(metrics));
        if let Some(patience) = t.early_stopping_patience
            && state.epochs_since_best >= patience
        {
            stopped_early = true;
            break;
        }
    }
    let model = match ema {
        Some(ema) => ema.average().clone(),
        None => model,
    };
    Ok(Outcome {
        epochs,
        checkpoint: paths.checkpoint,
        best: paths.best,
        params,
        model,
        interrupted,
        stopped_early,
    })
}

/// A step's loss and the gradient of every trained parameter, for a batch given as `parts`
/// (trained at once, see [`crate::parallel`]): the loss `w_E mean_g ((E_g - E_ref_g) /
/// n_g)^2 + w_F mean((F - F_ref)^2)` over all the parts' structures and force components,
/// through the forces ([`training_gradients`]).
///
/// Errors: those of the model's passes (a non-finite energy or loss derivative, ...).
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant_train::dataset::{Batch, Dataset};
/// use equivariant_train::trainer::loss_gradients;
/// let frame = |d: f64| format!("2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu {d} 0 0 -0.1 0 0\n");
/// let text: String = [2.4, 2.6].iter().map(|&d| frame(d)).collect();
/// let data = Dataset::from_frames(&equivariant_data::extxyz::parse(&text, "d.xyz")?, "d.xyz", None)?;
/// let section: equivariant_train::config::ModelConfig =
///     toml::from_str("r_max = 3.0\nnum_layers = 1\nnum_features = 4").unwrap();
/// let device = Device::flex().autodiff();
/// let model = section.nequip(2, 1.0).init(&device)?;
/// let parts: Vec<Batch> = data.samples.iter()
///     .map(|s| Batch::new(&[s], 3.0, &device, DType::F32))
///     .collect::<Result<_, _>>()?;
/// let (loss, gradients) = loss_gradients(&model, &parts, 1.0, 1.0)?;
/// let weight = model.layers[0].conv.linear_1.weight.as_ref().expect("a weight");
/// assert!(loss > 0.0 && gradients.get(weight.id).is_some());
/// # Ok::<(), equivariant_train::Error>(())
/// ```
pub fn loss_gradients<M: Trainable>(
    model: &M,
    parts: &[Batch],
    energy_weight: f64,
    force_weight: f64,
) -> Result<(f64, ParamGradients)> {
    let totals = Totals::of(parts);
    parallel::summed_gradients(model, parts, |model: &M, batch: &Batch| {
        let graph = &batch.graph;
        // The force pass differentiates the energies in the edge vectors only: on frozen
        // parameters its backward skips their gradients (the tangent pass gives them).
        let frozen = model.clone().no_grad();
        let mut loss = 0.0;
        let step = training_gradients(
            graph.edges(),
            graph.batch(),
            graph.edge_vec().clone(),
            |r| frozen.energy(graph, r),
            |result| {
                let (value, derivatives) =
                    loss_and_derivatives(result, batch, totals, energy_weight, force_weight);
                loss = value;
                Ok(derivatives)
            },
            |r, s| model.energy_tangent(graph, r, s),
            false,
        )?;
        Ok((loss, step.gradients))
    })
}

/// The sizes a step's loss averages over: its structures and force components, in all of its
/// parts.
#[derive(Debug, Clone, Copy)]
struct Totals {
    graphs: usize,
    components: usize,
}

impl Totals {
    fn of(parts: &[Batch]) -> Self {
        Totals {
            graphs: parts.iter().map(|b| b.energies.len()).sum(),
            components: parts.iter().map(|b| b.forces.len()).sum(),
        }
    }
}

/// A part's share of the step's loss (its structures' terms, averaged over the step's
/// `totals`) and its derivatives in the part's energies and forces.
fn loss_and_derivatives(
    result: &EnergyForces,
    batch: &Batch,
    totals: Totals,
    w_e: f64,
    w_f: f64,
) -> (f64, LossDerivatives) {
    let energies: Vec<f64> = result.energy.to_data().iter::<f64>().collect();
    let forces: Vec<f64> = result.forces.to_data().iter::<f64>().collect();
    let g = totals.graphs.max(1) as f64;
    let mut value = 0.0;
    let mut d_energy = Vec::with_capacity(energies.len());
    for ((e, e_ref), &n) in energies.iter().zip(&batch.energies).zip(&batch.counts) {
        let n = n.max(1) as f64;
        let residual = (e - e_ref) / n;
        value += w_e * residual * residual / g;
        d_energy.push(2.0 * w_e * residual / (n * g));
    }
    let components = totals.components.max(1) as f64;
    let mut d_forces = Vec::with_capacity(forces.len());
    for (f, f_ref) in forces.iter().zip(&batch.forces) {
        let residual = f - f_ref;
        value += w_f * residual * residual / components;
        d_forces.push(2.0 * w_f * residual / components);
    }
    let like = &result.forces;
    let d_forces = Tensor::<2>::from_data(
        TensorData::new(d_forces, like.dims()),
        (&like.device(), like.dtype()),
    );
    (
        value,
        LossDerivatives {
            energy: d_energy,
            forces: d_forces,
            virial: None,
        },
    )
}

/// The training loss's weights on the validation set's mean square errors.
fn validation_loss(validation: &Evaluation, w_e: f64, w_f: f64) -> f64 {
    w_e * validation.energy_per_atom.rmse.powi(2) + w_f * validation.forces.rmse.powi(2)
}

/// Gives the float parameters, in visiting order, the given ids.
struct AssignIds {
    ids: Vec<ParamId>,
    next: usize,
}

impl ModuleMapper for AssignIds {
    fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if let Some(&id) = self.ids.get(self.next) {
            param.id = id;
        }
        self.next += 1;
        param
    }
}

const METRICS_HEADER: &str = "epoch,train_loss,val_loss,val_energy_mae_per_atom,val_energy_rmse_per_atom,val_force_mae,val_force_rmse,learning_rate,epoch_s";

/// Writes the metrics CSV (through a temporary file).
fn write_metrics(path: &Path, epochs: &[EpochMetrics]) -> Result<()> {
    let mut text = String::from(METRICS_HEADER);
    text.push('\n');
    for m in epochs {
        text.push_str(&format!(
            "{},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:.3}\n",
            m.epoch,
            m.train_loss,
            m.val_loss,
            m.val_energy_mae_per_atom,
            m.val_energy_rmse_per_atom,
            m.val_force_mae,
            m.val_force_rmse,
            m.learning_rate,
            m.epoch_s
        ));
    }
    write_atomically(path, text.as_bytes())
}

/// The metrics CSV's rows up to `epoch`.
fn read_metrics(path: &Path, epoch: usize) -> Result<Vec<EpochMetrics>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: file.clone(),
        source,
    })?;
    let bad = |line: usize| Error::Checkpoint {
        file: file.clone(),
        reason: format!("line {line} is not a row of metrics"),
    };
    let mut epochs = Vec::new();
    for (k, line) in text.lines().enumerate().skip(1) {
        let v: Vec<f64> = line
            .split(',')
            .map(|x| x.parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad(k + 1))?;
        if v.len() != 9 {
            return Err(bad(k + 1));
        }
        let m = EpochMetrics {
            epoch: v[0] as usize,
            train_loss: v[1],
            val_loss: v[2],
            val_energy_mae_per_atom: v[3],
            val_energy_rmse_per_atom: v[4],
            val_force_mae: v[5],
            val_force_rmse: v[6],
            learning_rate: v[7],
            epoch_s: v[8],
        };
        if m.epoch <= epoch {
            epochs.push(m);
        }
    }
    Ok(epochs)
}

/// Writes the whole state into `state.new`, then swaps it for `state` (through `state.old`):
/// a crash at any point leaves one complete state, which [`recover_state`] finds.
fn save_state<M: Trainable>(
    paths: &Paths,
    state: &TrainerState,
    model: &M,
    ema: Option<&ExponentialMovingAverage<M>>,
    optim: &AdamW,
    header: &Header<M::Config>,
) -> Result<()> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    };
    if paths.state_new.exists() {
        std::fs::remove_dir_all(&paths.state_new).map_err(io(&paths.state_new))?;
    }
    std::fs::create_dir_all(&paths.state_new).map_err(io(&paths.state_new))?;
    let files = StateFiles::of(&paths.state_new);
    checkpoint::save(&files.model, model, header)?;
    if let Some(ema) = ema {
        checkpoint::save(&files.ema, ema.average(), header)?;
    }
    optim.save(model, &files.optimizer)?;
    write_state(&files.trainer, state)?;
    if paths.state.exists() {
        std::fs::rename(&paths.state, &paths.state_old).map_err(io(&paths.state))?;
    }
    std::fs::rename(&paths.state_new, &paths.state).map_err(io(&paths.state_new))?;
    if paths.state_old.exists() {
        std::fs::remove_dir_all(&paths.state_old).map_err(io(&paths.state_old))?;
    }
    Ok(())
}

/// After a crash inside [`save_state`]'s swap (`state` gone, `state.old` complete), puts the
/// old state back; errors unless there is a state to resume from.
fn recover_state(paths: &Paths) -> Result<()> {
    if !paths.state.exists() && paths.state_old.exists() {
        std::fs::rename(&paths.state_old, &paths.state).map_err(|source| Error::Io {
            path: paths.state_old.display().to_string(),
            source,
        })?;
    }
    if !paths.state.exists() {
        return Err(Error::Checkpoint {
            file: paths.state.display().to_string(),
            reason: "no state to resume from: the run never finished an epoch".into(),
        });
    }
    Ok(())
}

fn write_state(path: &Path, state: &TrainerState) -> Result<()> {
    let text = toml::to_string(state).map_err(|e| Error::Checkpoint {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    write_atomically(path, text.as_bytes())
}

fn read_state(path: &Path) -> Result<TrainerState> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: file.clone(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| Error::Checkpoint {
        file,
        reason: format!("not a training state: {e}"),
    })
}
