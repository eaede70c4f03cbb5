//! `equivariant md CHECKPOINT STRUCTURE.xyz`: NVE molecular dynamics (velocity Verlet) with
//! a trained potential from Maxwell-Boltzmann velocities, writing an extended XYZ trajectory
//! and a thermo log (`equivariant_md`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::{DType, Device};
use clap::Args;
use equivariant::burn;
use equivariant::graph::Cell;
use equivariant::nn::models::nequip::Nequip;
use equivariant_data::{Frame, extxyz};
use equivariant_md::masses::atomic_mass;
use equivariant_md::units::FS;
use equivariant_md::velocities::maxwell_boltzmann;
use equivariant_md::verlet::{State, VelocityVerlet};
use equivariant_train::checkpoint;

/// Options of `equivariant md`.
#[derive(Args)]
pub struct MdArgs {
    /// A checkpoint written by `equivariant train`.
    checkpoint: PathBuf,
    /// The starting structure: the first frame of an extended XYZ file.
    structure: PathBuf,
    /// Time steps to run.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// The time step, in fs.
    #[arg(long, default_value_t = 1.0)]
    dt: f64,
    /// The temperature of the initial Maxwell-Boltzmann velocities, in K.
    #[arg(long, default_value_t = 300.0)]
    temperature: f64,
    /// The neighbour list's skin beyond the model's cutoff, in Å.
    #[arg(long, default_value_t = 0.5)]
    skin: f64,
    /// The seed of the initial velocities.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a trajectory frame and a thermo line every this many steps.
    #[arg(long, default_value_t = 10)]
    every: usize,
    /// The output folder (`trajectory.extxyz`, `thermo.csv`).
    #[arg(long, default_value = "md")]
    output: PathBuf,
    /// Run in f64 (default: the checkpoint's dtype).
    #[arg(long)]
    f64: bool,
}

/// Runs `equivariant md`.
pub fn md(args: &MdArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.every == 0 {
        return Err("--every must be at least 1".into());
    }
    let device = Device::flex();
    let (model, header) = checkpoint::load::<Nequip>(&args.checkpoint, &device)?;
    let dtype = if args.f64 {
        DType::F64
    } else {
        checkpoint::dtype(&header.dtype)?
    };
    let model = equivariant::util::cast(model, dtype);
    let frames = extxyz::read(&args.structure)?;
    let frame = frames
        .first()
        .ok_or_else(|| format!("{}: no frames", args.structure.display()))?;
    let species = frame
        .species
        .iter()
        .map(|s| {
            header.species.iter().position(|t| t == s).ok_or_else(|| {
                format!(
                    "{}: species {s} is not one the model knows ({:?})",
                    args.structure.display(),
                    header.species
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let masses = frame
        .species
        .iter()
        .map(|s| atomic_mass(s))
        .collect::<Result<Vec<_>, _>>()?;
    let cell = match frame.cell {
        Some(lattice) if frame.pbc.iter().any(|&p| p) => Some(Cell::new(lattice, frame.pbc)?),
        _ => None,
    };
    let mut state = State {
        positions: frame.positions.clone(),
        velocities: maxwell_boltzmann(&masses, args.temperature, args.seed),
        masses,
        species,
        cell,
    };
    let mut md = VelocityVerlet::new(&model, &state, args.dt, args.skin, &device, dtype)?;
    std::fs::create_dir_all(&args.output)?;
    let trajectory_path = args.output.join("trajectory.extxyz");
    let thermo_path = args.output.join("thermo.csv");
    let mut trajectory = std::io::BufWriter::new(std::fs::File::create(&trajectory_path)?);
    let mut thermo = std::io::BufWriter::new(std::fs::File::create(&thermo_path)?);
    writeln!(
        thermo,
        "step,time_fs,potential_ev,kinetic_ev,total_ev,temperature_k"
    )?;
    let record = |step: usize,
                  state: &State,
                  md: &VelocityVerlet<Nequip>,
                  trajectory: &mut dyn Write,
                  thermo: &mut dyn Write|
     -> Result<f64, Box<dyn std::error::Error>> {
        let (potential, kinetic) = (md.potential_energy(), state.kinetic_energy());
        writeln!(
            thermo,
            "{step},{},{potential:e},{kinetic:e},{:e},{}",
            step as f64 * args.dt,
            potential + kinetic,
            state.temperature()
        )?;
        let snapshot = Frame {
            positions: state.positions.clone(),
            energy: Some(potential),
            forces: Some(md.forces().to_vec()),
            ..frame.clone()
        };
        trajectory.write_all(extxyz::to_string(&[snapshot])?.as_bytes())?;
        Ok(potential + kinetic)
    };
    let start_energy = record(0, &state, &md, &mut trajectory, &mut thermo)?;
    let mut last_energy = start_energy;
    let start = Instant::now();
    for step in 1..=args.steps {
        md.step(&mut state)?;
        if step % args.every == 0 || step == args.steps {
            last_energy = record(step, &state, &md, &mut trajectory, &mut thermo)?;
            let rate = step as f64 / start.elapsed().as_secs_f64().max(1e-9);
            eprint!(
                "\rstep {step}/{}  T {:.0} K  E {last_energy:.6} eV  {rate:.1} steps/s   ",
                args.steps,
                state.temperature()
            );
        }
    }
    eprintln!();
    trajectory.flush()?;
    thermo.flush()?;
    let seconds = start.elapsed().as_secs_f64();
    let n = state.positions.len() as f64;
    println!(
        "{} steps of {} fs on {} atoms: {:.1} steps/s; total energy {start_energy:.6} -> {last_energy:.6} eV ({:+.3e} eV/atom); {} neighbour-list rebuilds",
        args.steps,
        args.dt,
        state.positions.len(),
        args.steps as f64 / seconds.max(1e-9),
        (last_energy - start_energy) / n,
        md.rebuilds()
    );
    println!(
        "trajectory {}; thermo {} (time unit: {} fs = 1 ASE unit)",
        trajectory_path.display(),
        thermo_path.display(),
        1.0 / FS
    );
    Ok(())
}
