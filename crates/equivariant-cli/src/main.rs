//! `equivariant`: the command-line front end.
//!
//! `equivariant guide` walks e3nn's convolution guide on its built-in example;
//! `equivariant bench` times the kernels; `equivariant --help` lists the options.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod example;
mod guide;
mod plots;

#[derive(Parser)]
#[command(
    name = "equivariant",
    version,
    about = "E(3)-equivariant neural networks in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk e3nn's convolution guide on its built-in example (100 random nodes, radius 1.8).
    Guide(guide::GuideArgs),
    /// Time our kernels on the standard configurations (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Keeps freed memory in the process: burn's eager ops allocate a fresh output per op, and
/// glibc serves large blocks straight from `mmap` and unmaps them on free, so each op of a
/// large convolution page-faults its output in again (measured here: relu over 19M floats
/// 89 ms with the defaults, 14 ms with this). `M_MMAP_MAX = 0` serves every block from the
/// heap and `M_TRIM_THRESHOLD = -1` never gives the heap back. The earlier settings
/// (`M_MMAP_THRESHOLD` and `M_TRIM_THRESHOLD` at `i32::MAX`) still left a tensor-product
/// module's forward + backward with ~30% of its time in page faults (mace-medium 261 ms,
/// 242 ms with these; nequip-benzene 3505 ms, 1782 ms).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, -1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Guide(args) => guide::guide(&args),
        Command::Bench(command) => bench::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
