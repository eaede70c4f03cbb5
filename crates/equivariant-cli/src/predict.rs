//! `equivariant predict CHECKPOINT STRUCTURES.xyz --output OUT.xyz`: a trained potential's
//! energy, per-atom energies and virials, forces and (for periodic frames) stress for every
//! frame of an extended XYZ file, written as extended XYZ (the input's other columns and keys
//! kept).

use std::path::PathBuf;

use burn::tensor::DType;
use clap::Args;
use equivariant::burn;
use equivariant::nn::models::nequip::Nequip;
use equivariant_data::{Column, Frame, extxyz};
use equivariant_md::calculator::Calculator;

/// Options of `equivariant predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// A checkpoint written by `equivariant train`.
    checkpoint: PathBuf,
    /// Structures: extended XYZ frames (labels, if any, are replaced).
    structures: PathBuf,
    /// Where to write the frames with the predicted energy, forces and stress.
    #[arg(long)]
    output: PathBuf,
    /// Run in f64 (default: the checkpoint's dtype).
    #[arg(long)]
    f64: bool,
}

/// Runs `equivariant predict`.
pub fn predict(args: &PredictArgs) -> Result<(), Box<dyn std::error::Error>> {
    let calculator = Calculator::<Nequip>::load(&args.checkpoint, args.f64.then_some(DType::F64))?;
    let frames = extxyz::read(&args.structures)?;
    let predicted = frames
        .into_iter()
        .enumerate()
        .map(|(k, frame)| {
            let result = calculator
                .compute(&frame)
                .map_err(|e| format!("{} frame {k}: {e}", args.structures.display()))?;
            // ASE's name for the per-atom energies (`atoms.get_potential_energies()`).
            let mut arrays = frame.arrays;
            // Each atom's share of the virial, row-major 3x3 (LAMMPS's per-atom virial).
            arrays.retain(|(name, _)| name != "energies" && name != "virials");
            arrays.push((
                "energies".into(),
                Column::Real(result.energies.iter().map(|&e| vec![e]).collect()),
            ));
            let virials = result.atom_virials.iter();
            arrays.push((
                "virials".into(),
                Column::Real(
                    virials
                        .map(|w| w.iter().flatten().copied().collect())
                        .collect(),
                ),
            ));
            Ok(Frame {
                energy: Some(result.energy),
                arrays,
                forces: Some(result.forces),
                stress: result.stress,
                virial: None,
                ..frame
            })
        })
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
    extxyz::write(&args.output, &predicted)?;
    println!(
        "{} frames of {}: energies, forces{} in {}",
        predicted.len(),
        args.structures.display(),
        if predicted.iter().any(|f| f.stress.is_some()) {
            " and stress"
        } else {
            ""
        },
        args.output.display()
    );
    Ok(())
}
