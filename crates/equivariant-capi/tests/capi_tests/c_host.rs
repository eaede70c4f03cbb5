//! A C program (`tests/c/abi_check.c`) compiled against `include/equivariant.h` and linked
//! to the library's cdylib: the results it prints are the Rust calculator's to the last bit,
//! and bad input is an error code with a message, the host alive.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use equivariant_md::calculator::Prediction;

use super::common::{NUM_LAYERS, R_MAX, calculator, checkpoint, domain, frame, fresh_dir};

/// The folder holding `libequivariant_capi.so`: cargo builds the cdylib next to the test
/// binary's dependencies (`target/<profile>/deps`).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    assert!(
        deps.join("libequivariant_capi.so").exists(),
        "{}: no libequivariant_capi.so",
        deps.display()
    );
    deps
}

/// Compiles the C host into `dir`, warnings as errors.
fn compile(dir: &Path) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = library_dir();
    let exe = dir.join("abi_check");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests/c/abi_check.c"))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lequivariant_capi", "-lm"])
        .output()
        .unwrap_or_else(|e| panic!("{cc}: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// The C host's lines `<prefix>_energy`, `_atom_energies`, `_forces`, `_virial` and
/// `_atom_virials` are `result`'s numbers, bit for bit.
#[track_caller]
fn assert_printed(values: &HashMap<&str, Vec<f64>>, prefix: &str, result: &Prediction) {
    let flat = |rows: &mut dyn Iterator<Item = f64>| rows.collect::<Vec<_>>();
    let expected = [
        ("energy", vec![result.energy]),
        ("atom_energies", result.energies.clone()),
        ("forces", flat(&mut result.forces.iter().flatten().copied())),
        ("virial", flat(&mut result.virial.iter().flatten().copied())),
        (
            "atom_virials",
            flat(&mut result.atom_virials.iter().flatten().flatten().copied()),
        ),
    ];
    for (name, want) in expected {
        assert_eq!(
            values[format!("{prefix}_{name}").as_str()],
            want,
            "{prefix}_{name}"
        );
    }
}

fn push_all(text: &mut String, values: impl IntoIterator<Item = impl std::fmt::Display>) {
    for v in values {
        write!(text, "{v} ").unwrap();
    }
    text.push('\n');
}

#[test]
fn a_c_host_gets_the_calculators_results_and_typed_errors() {
    let dir = fresh_dir("c_host");
    let path = checkpoint(&dir);
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    let calculator = calculator(&path);
    let frame = frame(108);
    let species = calculator.structure(&frame).unwrap().species;
    let half = domain(&frame, &species, 0.0, 0.5);

    let mut input = format!(
        "{} {}\n{}\n",
        path.display(),
        garbage.display(),
        frame.len()
    );
    push_all(&mut input, &species);
    push_all(&mut input, frame.positions.iter().flatten());
    push_all(&mut input, frame.cell.unwrap().iter().flatten());
    writeln!(input, "{}", half.positions.len()).unwrap();
    push_all(&mut input, half.contributing.iter().map(|&c| i32::from(c)));
    push_all(&mut input, &half.species);
    push_all(&mut input, half.positions.iter().flatten());
    push_all(&mut input, half.neighbors.iter().map(Vec::len));
    push_all(&mut input, half.neighbors.iter().flatten());
    std::fs::write(dir.join("input.txt"), input).unwrap();

    let exe = compile(&dir);
    let out = Command::new(&exe)
        .arg(dir.join("input.txt"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut values: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut errors: HashMap<&str, (i32, String)> = HashMap::new();
    for line in stdout.lines() {
        let mut words = line.split(' ');
        let key = words.next().unwrap();
        if key == "error" {
            let case = words.next().unwrap();
            let code = words.next().unwrap().parse().unwrap();
            errors.insert(case, (code, words.collect::<Vec<_>>().join(" ")));
        } else if key != "species" {
            values.insert(key, words.map(|w| w.parse().unwrap()).collect());
        }
    }
    assert!(
        stdout.contains("species 0 Au 0\nspecies 1 Cu 1\n"),
        "{stdout}"
    );
    assert_eq!(values["cutoff"], [R_MAX]);
    assert_eq!(values["num_layers"], [NUM_LAYERS as f64]);

    // The whole structure, and the domain through the calculator's neighbour-list path:
    // the calculator's numbers, bit for bit.
    let whole = calculator.compute(&frame).unwrap();
    assert_printed(&values, "structure", &whole);
    assert_eq!(values["structure_energy_again"], [whole.energy]);
    let part = calculator
        .compute_neighbors(
            &half.positions,
            half.species.clone(),
            Some(&half.contributing),
            &half.neighbors,
        )
        .unwrap();
    assert_printed(&values, "domain", &part);
    assert_eq!(values["domain_energy_only"], [part.energy]);

    // Bad input: the code and a message naming the problem.
    let expect = [
        ("missing_checkpoint", 3, "/no/such/checkpoint"),
        ("garbage_checkpoint", 3, "garbage.safetensors"),
        ("null_path", 1, "path"),
        ("null_model", 1, "model"),
        ("unknown_species", 2, "Xx"),
        ("negative_atoms", 2, "-1"),
        ("species_out_of_range", 2, "species index 2"),
        ("null_positions", 1, "positions"),
        ("nan_position", 2, "non-finite"),
        ("neighbor_out_of_range", 2, "neighbour"),
    ];
    assert_eq!(errors.len(), expect.len(), "{stdout}");
    for (case, code, needle) in expect {
        let (got, message) = &errors[case];
        assert_eq!(*got, code, "{case}: {message}");
        assert!(message.contains(needle), "{case}: {message}");
    }
}
