//! `equivariant evaluate CHECKPOINT DATA.xyz`: a trained potential's errors on labelled
//! structures (energy per atom, forces, stress) and a parity plot of the forces.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::Device;
use clap::Args;
use equivariant::burn;
use equivariant::nn::models::nequip::Nequip;
use equivariant_data::extxyz;
use equivariant_train::checkpoint;
use equivariant_train::dataset::Dataset;
use equivariant_train::evaluate::evaluate as errors;

use crate::training_plots::force_parity;

/// Options of `equivariant evaluate`.
#[derive(Args)]
pub struct EvaluateArgs {
    /// A checkpoint written by `equivariant train`.
    checkpoint: PathBuf,
    /// Extended XYZ frames with energies and forces.
    data: PathBuf,
    /// Structures per batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Where to write the parity plot (default: beside the checkpoint, `parity.png`).
    #[arg(long)]
    png: Option<PathBuf>,
}

/// Runs `equivariant evaluate`.
pub fn evaluate(args: &EvaluateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex().autodiff();
    let (model, header) = checkpoint::load::<Nequip>(&args.checkpoint, &device)?;
    // Forces only: on frozen parameters the backward skips their gradients.
    let model = model.no_grad();
    let frames = extxyz::read(&args.data)?;
    let data = Dataset::from_frames(
        &frames,
        &args.data.display().to_string(),
        Some(&header.species),
    )?;
    let samples: Vec<_> = data.samples.iter().collect();
    let dtype = checkpoint::dtype(&header.dtype)?;
    let result = errors(&model, &samples, args.batch_size, &device, dtype)?;
    println!("{} frames of {}", samples.len(), args.data.display());
    let e = result.energy_per_atom;
    println!(
        "energy per atom  MAE {:.3} meV/atom  RMSE {:.3} meV/atom",
        1e3 * e.mae,
        1e3 * e.rmse
    );
    let f = result.forces;
    println!(
        "forces           MAE {:.2} meV/Å     RMSE {:.2} meV/Å",
        1e3 * f.mae,
        1e3 * f.rmse
    );
    let s = result.stress;
    if s.count > 0 {
        println!(
            "stress           MAE {:.4} meV/Å³    RMSE {:.4} meV/Å³ ({} components)",
            1e3 * s.mae,
            1e3 * s.rmse,
            s.count
        );
    }
    let png = args
        .png
        .clone()
        .unwrap_or_else(|| args.checkpoint.with_file_name("parity.png"));
    force_parity(&png, &result.force_pairs, f.mae)?;
    println!("parity plot {}", png.display());
    Ok(())
}
