//! The binary end to end: `equivariant guide` tells the guide's story with a passing
//! equivariance check and writes both pictures (into `guide-out/` by default), says so on
//! a graph without edges, and refuses or skips what would not fit in its memory budget;
//! `bench conv --json` prints one JSON line and `--positions` reads a graph's positions;
//! `--isa` takes the instruction sets; `train` and `evaluate` run a small potential, and
//! Ctrl-C then `--resume` give the uninterrupted run. `allocator` tests the binary's
//! allocator directly.

mod allocator;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_equivariant"))
        .args(args)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "equivariant {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A fresh, empty folder under the system's temp folder, for a run that writes files;
/// removed with what is in it when the test ends, passed or failed.
struct FreshDir(PathBuf);

impl std::ops::Deref for FreshDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for FreshDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for FreshDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn fresh_dir(name: &str) -> FreshDir {
    let dir = std::env::temp_dir().join(format!("equivariant-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    FreshDir(dir)
}

/// Runs the binary in `dir`; its stdout and stderr as text, and whether it succeeded.
fn run_in(dir: &Path, args: &[&str]) -> (String, String, Output) {
    let out = Command::new(env!("CARGO_BIN_EXE_equivariant"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (stdout, stderr, out)
}

/// Both pictures, SVG and PNG, are in `dir`.
fn assert_pictures(dir: &Path) {
    for name in ["radial_basis", "tensor_product"] {
        let svg = std::fs::read_to_string(dir.join(format!("{name}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("</svg>"),
            "{name}.svg"
        );
        let png = std::fs::read(dir.join(format!("{name}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "{name}.png"
        );
    }
}

/// The value printed after `key` on the line containing it, e.g. `f_in.pow(2).mean() = 1.01`.
fn value_after(text: &str, key: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no line with {key:?} in:\n{text}"));
    let rest = &line[line.find(key).unwrap() + key.len()..];
    rest.trim_start_matches([' ', '='])
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in {line:?}"))
}

#[test]
fn guide_tells_the_story_and_draws_the_pictures() {
    let dir = fresh_dir("guide");
    let out = run(&[
        "guide",
        "--seed",
        "1",
        "--reps",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.contains("needs 400 weights"), "{out}");
    assert!(out.contains("irreps_sh = 1x0e+1x1o+1x2e"), "{out}");
    assert!(
        out.contains("allclose(rtol=1e-4, atol=1e-4) = PASS"),
        "{out}"
    );
    // The guide's normalization: second moments close to 1.
    for key in ["f_in.pow(2).mean()", "sh.pow(2).mean()", "second moment"] {
        let v = value_after(&out, key);
        assert!((0.8..1.25).contains(&v), "{key} = {v}");
    }
    for key in [
        "summand.pow(2).mean()",
        "f_out.pow(2).mean()",
        "weight.std()",
    ] {
        let v = value_after(&out, key);
        assert!((0.3..3.0).contains(&v), "{key} = {v}");
    }
    assert!(value_after(&out, "weight.mean()").abs() < 0.5);
    assert!(value_after(&out, "max |diff|") < 1e-4);
    for stage in [
        "radius_graph",
        "harmonics",
        "embedding",
        "mlp",
        "tensor_product",
        "scatter",
    ] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(stage)),
            "no {stage} timing"
        );
    }
    assert_pictures(&dir);
}

#[test]
fn guide_rejects_bad_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_equivariant"))
        .args(["guide", "--radius=-1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_radius"));
}

#[test]
fn bench_train_step_prints_one_json_line() {
    let out = run(&[
        "bench",
        "train-step",
        "--nodes",
        "30",
        "--reps",
        "1",
        "--warmup",
        "0",
        "--json",
    ]);
    let line = out.trim();
    assert!(
        line.starts_with('{') && line.ends_with('}') && !line.contains('\n'),
        "{out}"
    );
    for key in [
        "\"nodes\": 30",
        "\"step_ms\"",
        "\"energy_fwd_bwd_ms\"",
        "\"step_over_energy\"",
        "\"step_peak_mib\"",
    ] {
        assert!(line.contains(key), "{key} missing in {line}");
    }
    assert!(value_after(line, "\"step_ms\":") > 0.0);
}

#[test]
fn bench_conv_prints_one_json_line() {
    let out = run(&[
        "bench", "conv", "--nodes", "50", "--reps", "1", "--warmup", "0", "--json",
    ]);
    let line = out.trim();
    assert!(
        line.starts_with('{') && line.ends_with('}') && !line.contains('\n'),
        "{out}"
    );
    for key in ["\"nodes\": 50", "\"edges\"", "\"fwd_ms\"", "\"fwd_bwd_ms\""] {
        assert!(line.contains(key), "{key} missing in {line}");
    }
}

/// `bench conv --positions` times the graph of the given positions (four points within the
/// guide's radius of one another: 12 directed edges), and names what is wrong with a file
/// that is missing, short or not numbers.
#[test]
fn bench_conv_reads_positions() {
    let dir = fresh_dir("positions");
    let file = dir.join("positions.txt");
    std::fs::write(&file, "0 0 0\n1 0 0\n0 1 0\n0 0 1\n").unwrap();
    let path = file.to_str().unwrap();
    let args = [
        "bench", "conv", "--nodes", "4", "--reps", "1", "--warmup", "0", "--json",
    ];
    let out = run(&[&args[..], &["--positions", path]].concat());
    assert!(out.contains("\"edges\": 12"), "{out}");
    // Each bad file: the run fails, naming what is wrong.
    let fails_naming = |nodes: &str, file: &str, named: &str| {
        let (_, err, out) = run_in(
            &dir,
            &["bench", "conv", "--nodes", nodes, "--positions", file],
        );
        assert!(
            !out.status.success() && err.contains(named),
            "{named}: {err}"
        );
    };
    std::fs::write(&file, "0 0 0\n1 0 x\n").unwrap();
    fails_naming("2", path, "\"x\" is not a finite number");
    std::fs::write(&file, "0 0 0\n1 0 0\n").unwrap();
    fails_naming("4", path, "6 numbers, but --nodes 4 needs 12");
    std::fs::write(&file, "0 0 0\n1 0 1e39\n").unwrap();
    fails_naming("2", path, "\"1e39\" is not a finite number");
    fails_naming("4", "missing.txt", "missing.txt");
}

/// `--isa` takes each instruction set (one the CPU lacks runs what it has), and names the
/// choices when given an unknown one.
#[test]
fn isa_takes_each_instruction_set_and_refuses_others() {
    for isa in ["portable", "avx2", "avx512"] {
        let out = run(&[
            "bench", "tp", "--isa", isa, "--config", "guide", "--batch", "16", "--reps", "1",
            "--warmup", "0", "--json",
        ]);
        assert!(out.contains("\"ours_fwd_ms\""), "{isa}: {out}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_equivariant"))
        .args(["bench", "tp", "--isa", "avx1024"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("avx1024") && err.contains("avx512"), "{err}");
}

#[test]
fn guide_draws_the_pictures_into_guide_out_by_default() {
    let dir = fresh_dir("guide-default");
    let (out, err, status) = run_in(&dir, &["guide", "--reps", "1"]);
    assert!(status.status.success(), "{out}\n{err}");
    assert!(out.contains("pictures, in guide-out:"), "{out}");
    assert!(out.contains("guide-out/radial_basis.png"), "{out}");
    assert_pictures(&dir.join("guide-out"));
}

#[test]
fn guide_without_edges_says_so_and_prints_no_statistic_of_nothing() {
    let dir = fresh_dir("guide-no-edges");
    let (out, err, status) = run_in(
        &dir,
        &["guide", "--nodes", "2", "--radius", "1e-9", "--reps", "1"],
    );
    assert!(status.status.success(), "{out}\n{err}");
    assert!(out.contains("edge_src.shape = [0]"), "{out}");
    assert!(out.contains("no edges"), "{out}");
    for misleading in ["NaN", "-0.0000", "num_neighbors ="] {
        assert!(!out.contains(misleading), "{misleading:?} in:\n{out}");
    }
    // The pictures do not depend on the graph.
    assert_pictures(&dir.join("guide-out"));
}

#[test]
fn guide_refuses_up_front_what_exceeds_the_memory_budget() {
    let dir = fresh_dir("guide-refused");
    let (out, err, status) = run_in(&dir, &["guide", "--memory-budget-mib", "1"]);
    // A clear error and exit code 1, not a signal.
    assert_eq!(status.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("needs about") && err.contains("MiB"), "{err}");
    assert!(
        err.contains("more than the 1 MiB of --memory-budget-mib"),
        "{err}"
    );
    assert!(!out.contains("sh.pow(2)"), "{out}");
}

#[test]
fn guide_skips_the_timing_breakdown_over_the_memory_budget() {
    let dir = fresh_dir("guide-skipped");
    // 1000 nodes (~50k edges): the story, in chunks of 1024 edges, and the fused
    // convolution fit in 160 MiB; the unfused breakdown (~2.3 kB per edge) does not.
    let (out, err, status) = run_in(
        &dir,
        &[
            "guide",
            "--nodes",
            "1000",
            "--reps",
            "1",
            "--chunk-edges",
            "1024",
            "--memory-budget-mib",
            "160",
        ],
    );
    assert!(status.status.success(), "{out}\n{err}");
    assert!(out.contains("timing breakdown skipped"), "{out}");
    assert!(out.contains("more than the 160 MiB"), "{out}");
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with("mlp")),
        "{out}"
    );
    assert!(
        out.contains("allclose(rtol=1e-4, atol=1e-4) = PASS"),
        "{out}"
    );
    assert!(out.contains("the same convolution fused"), "{out}");
}

#[test]
fn guide_statistics_in_chunks_match_the_whole_graph() {
    let dir = fresh_dir("guide-chunks");
    let args = ["guide", "--seed", "2", "--reps", "1"];
    let (whole, err, status) = run_in(&dir, &args);
    assert!(status.status.success(), "{whole}\n{err}");
    let (chunked, err, status) = run_in(&dir, &[&args[..], &["--chunk-edges", "700"]].concat());
    assert!(status.status.success(), "{chunked}\n{err}");
    for key in [
        "sh.pow(2).mean()",
        "second moment",
        "weight.mean()",
        "weight.std()",
        "summand.pow(2).mean()",
        "f_out.pow(2).mean()",
    ] {
        let (a, b) = (value_after(&whole, key), value_after(&chunked, key));
        assert!((a - b).abs() <= 1e-4, "{key}: {a} whole, {b} in chunks");
    }
}

/// A configuration training a one-layer model on 12 small frames of the shipped slice, in
/// `dir`.
fn small_training_run(dir: &Path, epochs: usize) -> PathBuf {
    let slice = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/cuau_emt_slice.extxyz");
    let frames = equivariant_data::extxyz::read(slice).unwrap();
    let small: Vec<_> = frames
        .into_iter()
        .filter(|f| f.len() <= 40)
        .take(12)
        .collect();
    equivariant_data::extxyz::write(dir.join("small.extxyz"), &small).unwrap();
    let config = format!(
        "[data]\npath = \"small.extxyz\"\nvalidation = 0.25\ntest = 0.0\n\
         [model]\nr_max = 3.5\nnum_layers = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 8\n\
         [training]\nepochs = {epochs}\nbatch_size = 3\nlearning_rate = 0.05\nlr_schedule = \"cosine\"\noutput = \"run\"\n"
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// `train` prints a line per epoch and writes the checkpoints, the metrics and the learning
/// curves; `evaluate` prints the errors and draws the parity plot; a file that is not a
/// checkpoint is an error naming it.
#[test]
fn train_then_evaluate() {
    let dir = fresh_dir("train");
    small_training_run(&dir, 2);
    let (stdout, stderr, out) = run_in(&dir, &["train", "config.toml"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("epoch")).count(),
        2,
        "{stdout}"
    );
    for file in [
        "checkpoint.safetensors",
        "best.safetensors",
        "metrics.csv",
        "learning_curves.png",
    ] {
        assert!(dir.join("run").join(file).exists(), "run/{file}");
    }
    let (stdout, stderr, out) = run_in(&dir, &["evaluate", "run/best.safetensors", "small.extxyz"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("12 frames") && stdout.contains("forces") && stdout.contains("stress"),
        "{stdout}"
    );
    let png = std::fs::read(dir.join("run/parity.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let (_, stderr, out) = run_in(&dir, &["evaluate", "run/metrics.csv", "small.extxyz"]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("run/metrics.csv") && stderr.contains("not a safetensors file"),
        "{stderr}"
    );
}

/// Ctrl-C (SIGINT) after the first epoch stops the run with its checkpoint intact; `--resume`
/// finishes it, and the metrics equal an uninterrupted run's.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn ctrl_c_then_resume_gives_the_uninterrupted_run() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let whole = fresh_dir("train-whole");
    small_training_run(&whole, 4);
    let (stdout, stderr, out) = run_in(&whole, &["train", "config.toml"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let parts = fresh_dir("train-parts");
    small_training_run(&parts, 4);
    let mut child = Command::new(env!("CARGO_BIN_EXE_equivariant"))
        .args(["train", "config.toml"])
        .current_dir(&parts)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first_epoch = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.starts_with("epoch"))
        .unwrap();
    assert!(first_epoch.starts_with("epoch    1"), "{first_epoch}");
    // SAFETY: `kill` with the child's pid and SIGINT has no memory effects here.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(child.wait().unwrap().success());
    let rest = rest.join("\n");
    // Epoch 2 takes far longer than the signal's delivery: the run stops inside it.
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(!rest.contains("epoch    2"), "{rest}");
    assert!(parts.join("run/checkpoint.safetensors").exists());
    let (stdout, stderr, out) = run_in(&parts, &["train", "config.toml", "--resume"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("epoch    2") && stdout.contains("epoch    4"),
        "{stdout}"
    );
    // Every column but the time.
    let figures = |dir: &Path| -> Vec<String> {
        let csv = std::fs::read_to_string(dir.join("run/metrics.csv")).unwrap();
        csv.lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(figures(&parts), figures(&whole));
}

/// `md` on a trained checkpoint: a thermo line and a trajectory frame every `--every` steps,
/// the trajectory readable as extended XYZ, the total energy nearly constant in f64; a
/// species the model does not know is an error naming it.
#[test]
fn md_runs_a_trained_potential() {
    let dir = fresh_dir("md");
    small_training_run(&dir, 1);
    let (stdout, stderr, out) = run_in(&dir, &["train", "config.toml"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let frames = equivariant_data::extxyz::read(dir.join("small.extxyz")).unwrap();
    equivariant_data::extxyz::write(dir.join("start.extxyz"), &frames[..1]).unwrap();
    let args = [
        "md",
        "run/best.safetensors",
        "start.extxyz",
        "--steps",
        "20",
        "--every",
        "5",
        "--dt",
        "0.5",
        "--temperature",
        "300",
        "--f64",
    ];
    let (stdout, stderr, out) = run_in(&dir, &args);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let thermo = std::fs::read_to_string(dir.join("md/thermo.csv")).unwrap();
    let rows: Vec<Vec<f64>> = thermo
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        [0.0, 5.0, 10.0, 15.0, 20.0]
    );
    let atoms = frames[0].len() as f64;
    for r in &rows {
        assert!(
            (r[4] - rows[0][4]).abs() / atoms < 1e-5,
            "total energy {} vs {}",
            r[4],
            rows[0][4]
        );
    }
    let trajectory = equivariant_data::extxyz::read(dir.join("md/trajectory.extxyz")).unwrap();
    assert_eq!(trajectory.len(), 5);
    assert_eq!(trajectory[4].energy, Some(rows[4][2]));
    // ASE's momenta: a frame restarts the run; they give the thermo's kinetic energy.
    let last = &trajectory[4];
    let Some((_, equivariant_data::Column::Real(momenta))) =
        last.arrays.iter().find(|(name, _)| name == "momenta")
    else {
        panic!("no momenta in the trajectory")
    };
    let kinetic: f64 = momenta
        .iter()
        .zip(&last.species)
        .map(|(p, s)| {
            let m = equivariant_md::masses::atomic_mass(s).unwrap();
            p.iter().map(|x| x * x).sum::<f64>() / (2.0 * m)
        })
        .sum();
    assert!(
        (kinetic - rows[4][3]).abs() <= 1e-12 * kinetic,
        "{kinetic} {}",
        rows[4][3]
    );

    let mut alien = frames[0].clone();
    alien.species[3] = "Ag".into();
    equivariant_data::extxyz::write(dir.join("alien.extxyz"), &[alien]).unwrap();
    let (_, stderr, out) = run_in(
        &dir,
        &["md", "run/best.safetensors", "alien.extxyz", "--steps", "1"],
    );
    assert!(!out.status.success());
    assert!(stderr.contains("species Ag"), "{stderr}");

    // NVT: Langevin from the same start, twice with one seed: one trajectory, not NVE's.
    let run = |ensemble: &str, output: &str| {
        let args = [
            "md",
            "run/best.safetensors",
            "start.extxyz",
            "--ensemble",
            ensemble,
            "--friction",
            "0.02",
            "--steps",
            "6",
            "--every",
            "3",
            "--seed",
            "4",
            "--output",
            output,
        ];
        let (stdout, stderr, out) = run_in(&dir, &args);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        std::fs::read_to_string(dir.join(output).join("thermo.csv")).unwrap()
    };
    let (first, second) = (run("nvt", "nvt_a"), run("nvt", "nvt_b"));
    assert_eq!(first.lines().count(), 4);
    assert_eq!(first, second);
    let nve = run("nve", "nve");
    assert_eq!(nve.lines().nth(1), first.lines().nth(1), "one start");
    assert_ne!(nve.lines().nth(3), first.lines().nth(3), "the bath acts");
}

/// `equivariant predict` writes what the library's calculator computes, to the last bit.
#[test]
fn predict_matches_the_calculator() {
    use equivariant::nn::models::nequip::Nequip;
    use equivariant_data::Column;
    use equivariant_md::calculator::Calculator;
    let dir = fresh_dir("predict");
    small_training_run(&dir, 1);
    let (stdout, stderr, out) = run_in(&dir, &["train", "config.toml"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let args = [
        "predict",
        "run/best.safetensors",
        "small.extxyz",
        "--output",
        "predicted.extxyz",
        "--f64",
    ];
    let (stdout, stderr, out) = run_in(&dir, &args);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let frames = equivariant_data::extxyz::read(dir.join("small.extxyz")).unwrap();
    let predicted = equivariant_data::extxyz::read(dir.join("predicted.extxyz")).unwrap();
    assert_eq!(predicted.len(), frames.len());
    let calculator = Calculator::<Nequip>::load(
        &dir.join("run/best.safetensors"),
        Some(equivariant::burn::tensor::DType::F64),
    )
    .unwrap();
    for (frame, written) in frames.iter().zip(&predicted) {
        let result = calculator.compute(frame).unwrap();
        assert_eq!(written.positions, frame.positions);
        assert_eq!(written.energy, Some(result.energy));
        assert_eq!(written.forces.as_ref(), Some(&result.forces));
        assert_eq!(written.stress, result.stress);
        assert!(result.stress.is_some(), "the frames are periodic");
        let energies: Vec<Vec<f64>> = result.energies.iter().map(|&e| vec![e]).collect();
        let column = written.arrays.iter().find(|(name, _)| name == "energies");
        assert_eq!(column.map(|(_, c)| c), Some(&Column::Real(energies)));
        let sum: f64 = result.energies.iter().sum();
        assert!((sum - result.energy).abs() < 1e-10 * frame.len() as f64);
        let shares: Vec<Vec<f64>> = result
            .atom_virials
            .iter()
            .map(|w| w.iter().flatten().copied().collect())
            .collect();
        let column = written.arrays.iter().find(|(name, _)| name == "virials");
        assert_eq!(column.map(|(_, c)| c), Some(&Column::Real(shares)));
    }
}
