//! `equivariant train CONFIG.toml` (see `equivariant_train`): a progress bar with the live
//! loss and the time left, each epoch's validation errors, the learning curves as a PNG;
//! Ctrl-C stops after the current step with the last epoch's checkpoint intact, and
//! `--resume` continues the run.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::Args;
use equivariant::nn::models::nequip::Nequip;
use equivariant_train::config::TrainConfig;
use equivariant_train::trainer::{self, Progress};

use crate::training_plots::learning_curves;

/// Options of `equivariant train`.
#[derive(Args)]
pub struct TrainArgs {
    /// The configuration file (`[data]`, `[model]`, `[training]`; see
    /// examples/potential/config.toml).
    config: PathBuf,
    /// Continue the run whose state is in the configuration's output folder.
    #[arg(long)]
    resume: bool,
}

/// Set by Ctrl-C: the trainer stops after its current step.
static STOP: AtomicBool = AtomicBool::new(false);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn on_interrupt(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
    // SAFETY: `signal` is async-signal-safe; restoring the default makes a second Ctrl-C
    // end the process at once.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// Routes Ctrl-C to [`STOP`] (elsewhere Ctrl-C ends the process; the checkpoints are
/// written atomically either way).
fn catch_interrupt() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: the handler only stores to an atomic and calls `signal`, both
    // async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
}

/// Runs `equivariant train`.
pub fn train(args: &TrainArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = TrainConfig::read(&args.config)?;
    let t = &config.training;
    println!(
        "training on {} ({} epochs, batches of {}, {}, lr {} {})",
        config.data.path.display(),
        t.epochs,
        t.batch_size,
        t.dtype,
        t.learning_rate,
        t.lr_schedule
    );
    catch_interrupt();
    let start = Instant::now();
    let total_epochs = t.epochs;
    let mut steps_done = 0usize;
    let outcome = trainer::train::<Nequip>(&config, args.resume, &STOP, |p| match p {
        Progress::Step {
            epoch,
            step,
            steps,
            loss,
        } => {
            steps_done += 1;
            let remaining_steps = (total_epochs - epoch) * steps + (steps - step);
            let per_step = start.elapsed().as_secs_f64() / steps_done as f64;
            let eta = per_step * remaining_steps as f64;
            let width = 24;
            let filled = width * step / steps.max(1);
            eprint!(
                "\repoch {epoch}/{total_epochs} [{}{}] {step}/{steps}  loss {loss:.3e}  ETA {}   ",
                "#".repeat(filled),
                ".".repeat(width - filled),
                clock(eta)
            );
            let _ = std::io::stderr().flush();
        }
        Progress::Epoch(m) => {
            eprint!("\r{}\r", " ".repeat(80));
            println!(
                "epoch {:>4}  loss {:.3e}  val E MAE {:.2} meV/atom  val F MAE {:.1} meV/Å (RMSE {:.1})  lr {:.2e}  {:.1} s",
                m.epoch,
                m.train_loss,
                1e3 * m.val_energy_mae_per_atom,
                1e3 * m.val_force_mae,
                1e3 * m.val_force_rmse,
                m.learning_rate,
                m.epoch_s
            );
        }
    })?;
    eprint!("\r{}\r", " ".repeat(80));
    let curves = t.output.join("learning_curves.png");
    if !outcome.epochs.is_empty() {
        learning_curves(&curves, &outcome.epochs)?;
    }
    if outcome.interrupted {
        println!(
            "interrupted: resume with `equivariant train {} --resume`",
            args.config.display()
        );
    } else if outcome.stopped_early {
        println!(
            "stopped early: no better validation loss for {:?} epochs",
            t.early_stopping_patience
        );
    }
    println!(
        "{} parameters; checkpoint {} (best: {}); metrics {}; curves {}",
        outcome.params,
        outcome.checkpoint.display(),
        outcome.best.display(),
        t.output.join("metrics.csv").display(),
        curves.display()
    );
    Ok(())
}

/// `1h02m`, `3m05s`, `12s`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}
