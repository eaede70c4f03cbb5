//! `equivariant`: the command-line front end.
//!
//! `equivariant guide` walks e3nn's convolution guide on its built-in example;
//! `equivariant bench` times the kernels; `equivariant train` trains a potential,
//! `equivariant evaluate` measures it, `equivariant predict` applies it to structures and
//! `equivariant md` runs it; `equivariant --help`
//! lists the options.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use equivariant::util::{InstructionSet, limit_instruction_set};

mod allocator;
mod bench;
mod bench_signals;
mod evaluate;
mod example;
mod guide;
mod md;
mod memory;
mod plots;
mod predict;
mod timing;
mod train;
mod training_plots;
mod worker;

#[global_allocator]
static ALLOCATOR: allocator::SizeRouted = allocator::SizeRouted;

#[derive(Parser)]
#[command(
    name = "equivariant",
    version,
    about = "E(3)-equivariant neural networks in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The most capable instruction set the kernels may use (they use no more than the CPU
    /// has): to compare the paths, or to keep a machine off AVX-512.
    #[arg(long, global = true, value_enum)]
    isa: Option<Isa>,
}

/// The kernels' instruction sets, as `--isa` names them.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Isa {
    /// The portable kernels (SSE2 on x86-64, NEON on aarch64).
    Portable,
    /// AVX2 with fused multiply-add.
    Avx2,
    /// AVX-512 (F, VL, BW, DQ) where a kernel has an instance for it, else AVX2.
    Avx512,
}

#[derive(Subcommand)]
enum Command {
    /// Walk e3nn's convolution guide on its built-in example (100 random nodes, radius 1.8).
    Guide(guide::GuideArgs),
    /// Time our kernels on the standard configurations (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Train a NequIP potential on extended XYZ data (energies and forces) from a
    /// configuration file.
    Train(train::TrainArgs),
    /// A trained potential's errors on extended XYZ data (energy per atom, forces, stress)
    /// and a parity plot of the forces.
    Evaluate(evaluate::EvaluateArgs),
    /// A trained potential's energies, forces and stress for extended XYZ structures,
    /// written as extended XYZ.
    Predict(predict::PredictArgs),
    /// Run molecular dynamics (NVE or Langevin NVT) with a trained potential from a
    /// structure in extended XYZ.
    Md(md::MdArgs),
}

fn main() -> ExitCode {
    allocator::keep_freed_memory();
    let cli = Cli::parse();
    if let Some(isa) = cli.isa {
        limit_instruction_set(match isa {
            Isa::Portable => InstructionSet::Portable,
            Isa::Avx2 => InstructionSet::Avx2Fma,
            Isa::Avx512 => InstructionSet::Avx512,
        });
    }
    let result = match cli.command {
        Command::Guide(args) => guide::guide(&args),
        Command::Bench(command) => bench::run(&command),
        Command::Train(args) => train::train(&args),
        Command::Evaluate(args) => evaluate::evaluate(&args),
        Command::Predict(args) => predict::predict(&args),
        Command::Md(args) => md::md(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
