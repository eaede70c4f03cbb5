//! `equivariant md CHECKPOINT STRUCTURE.xyz`: molecular dynamics with a trained potential,
//! NVE (velocity Verlet) or NVT (Langevin), from Maxwell-Boltzmann velocities, writing an
//! extended XYZ trajectory and a thermo log (`equivariant_md`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::DType;
use clap::{Args, ValueEnum};
use equivariant::burn;
use equivariant::nn::models::nequip::Nequip;
use equivariant_data::{Column, Frame, extxyz};
use equivariant_md::calculator::Calculator;
use equivariant_md::integrator::Integrator;
use equivariant_md::langevin::{HeatBath, Langevin};
use equivariant_md::masses::atomic_mass;
use equivariant_md::state::State;
use equivariant_md::units::FS;
use equivariant_md::velocities::maxwell_boltzmann;
use equivariant_md::verlet::VelocityVerlet;

use crate::worker::on_worker;

/// The statistical ensemble, and so the integrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Ensemble {
    /// Constant energy: velocity Verlet.
    Nve,
    /// Constant temperature: Langevin dynamics (ASE's integrator) at --temperature.
    Nvt,
}

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
    /// NVE (velocity Verlet) or NVT (Langevin).
    #[arg(long, value_enum, default_value_t = Ensemble::Nve)]
    ensemble: Ensemble,
    /// The temperature of the initial Maxwell-Boltzmann velocities and of the NVT heat
    /// bath, in K.
    #[arg(long, default_value_t = 300.0)]
    temperature: f64,
    /// The Langevin friction (NVT), per fs.
    #[arg(long, default_value_t = 0.01)]
    friction: f64,
    /// The neighbour list's skin beyond the model's cutoff, in Å.
    #[arg(long, default_value_t = 0.5)]
    skin: f64,
    /// The seed of the initial velocities and of the Langevin random forces.
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
    let calculator = Calculator::<Nequip>::load(&args.checkpoint, args.f64.then_some(DType::F64))?;
    let frames = extxyz::read(&args.structure)?;
    let frame = frames
        .first()
        .ok_or_else(|| format!("{}: no frames", args.structure.display()))?;
    let structure = calculator
        .structure(frame)
        .map_err(|e| format!("{}: {e}", args.structure.display()))?;
    let masses = frame
        .species
        .iter()
        .map(|s| atomic_mass(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut state = State {
        positions: structure.positions,
        velocities: maxwell_boltzmann(&masses, args.temperature, args.seed),
        masses,
        species: structure.species,
        cell: structure.cell,
    };
    let (model, device, dtype) = (calculator.model(), calculator.device(), calculator.dtype());
    let mut md: Box<dyn Integrator + Send> = match args.ensemble {
        Ensemble::Nve => Box::new(VelocityVerlet::new(
            model, &state, args.dt, args.skin, device, dtype,
        )?),
        Ensemble::Nvt => {
            let bath = HeatBath {
                temperature: args.temperature,
                friction: args.friction,
                seed: args.seed,
            };
            Box::new(Langevin::new(
                model, &state, args.dt, args.skin, bath, device, dtype,
            )?)
        }
    };
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
                  md: &dyn Integrator,
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
        // ASE's momenta (amu Å per ASE time unit): a frame restarts a run where it was.
        let mut arrays = frame.arrays.clone();
        arrays.retain(|(name, _)| name != "momenta");
        let momenta = state
            .velocities
            .iter()
            .zip(&state.masses)
            .map(|(v, m)| v.iter().map(|x| m * x).collect())
            .collect();
        arrays.push(("momenta".into(), Column::Real(momenta)));
        let snapshot = Frame {
            positions: state.positions.clone(),
            energy: Some(potential),
            forces: Some(md.forces().to_vec()),
            arrays,
            ..frame.clone()
        };
        trajectory.write_all(extxyz::to_string(&[snapshot])?.as_bytes())?;
        Ok(potential + kinetic)
    };
    let start_energy = record(0, &state, md.as_ref(), &mut trajectory, &mut thermo)?;
    let start = Instant::now();
    // The whole run on rayon's pool: each step's force call would otherwise hand its work
    // to the pool and wait for it (`on_pool`), two thread wake-ups per step, a third of a
    // step on 4 atoms.
    let last_energy = on_worker(|| {
        let mut last_energy = start_energy;
        for step in 1..=args.steps {
            md.step(&mut state)?;
            if step % args.every == 0 || step == args.steps {
                last_energy = record(step, &state, md.as_ref(), &mut trajectory, &mut thermo)?;
                let rate = step as f64 / start.elapsed().as_secs_f64().max(1e-9);
                eprint!(
                    "\rstep {step}/{}  T {:.0} K  E {last_energy:.6} eV  {rate:.1} steps/s   ",
                    args.steps,
                    state.temperature()
                );
            }
        }
        Ok(last_energy)
    })?;
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
