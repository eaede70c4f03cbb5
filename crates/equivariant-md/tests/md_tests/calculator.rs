//! The checkpoint calculator: what the model computes, forces and stress the derivatives of
//! its energy, periodic images of atoms outside the cell change nothing, and bad input is a
//! typed error naming what is wrong.

use std::path::PathBuf;

use burn::tensor::{DType, Device};
use equivariant::nn::models::nequip::Nequip;
use equivariant::potential::{AtomicGraph, Potential};
use equivariant_data::Frame;
use equivariant_md::calculator::Calculator;
use equivariant_train::Error;
use equivariant_train::checkpoint::{self, Header};
use equivariant_train::model::Trainable;
use equivariant_train::statistics::Statistics;

use super::common::fcc_positions;

/// An untrained two-species checkpoint (f32, as `equivariant train` writes by default) in a
/// folder of its own.
fn checkpoint(name: &str) -> PathBuf {
    // One folder per name, reused run after run (the target directory's, not the system's).
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("equivariant_md_calculator_{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let section: <Nequip as Trainable>::Config =
        toml::from_str("r_max = 3.5\nnum_layers = 2\nnum_features = 4\nl_max = 2").unwrap();
    let statistics = Statistics {
        avg_num_neighbors: 12.0,
        per_atom_energy_mean: -3.0,
        forces_rms: 0.5,
    };
    let model = Nequip::build(&section, 2, &statistics, &Device::flex()).unwrap();
    let header = Header {
        species: vec!["Au".into(), "Cu".into()],
        statistics,
        dtype: "f32".into(),
        model: section,
    };
    let path = dir.join("model.safetensors");
    checkpoint::save(&path, &model, &header).unwrap();
    path
}

/// A periodic fcc Cu3Au-like cell of 32 atoms (a = 3.75 Å), slightly sheared and off the
/// lattice sites.
fn crystal() -> Frame {
    let a = 3.75;
    let positions = fcc_positions(a, 0.07);
    let species = (0..positions.len())
        .map(|i| if i % 4 == 0 { "Au" } else { "Cu" }.to_string())
        .collect();
    let mut frame = Frame::new(species, positions);
    frame.cell = Some([
        [2.0 * a, 0.0, 0.0],
        [0.2, 2.0 * a, 0.0],
        [0.1, -0.15, 2.0 * a],
    ]);
    frame.pbc = [true; 3];
    frame
}

#[test]
fn it_computes_what_the_model_computes() {
    let path = checkpoint("model");
    let calculator = Calculator::<Nequip>::load(&path, Some(DType::F64)).unwrap();
    assert_eq!(calculator.species(), ["Au", "Cu"]);
    let frame = crystal();
    let result = calculator.compute(&frame).unwrap();
    let structure = calculator.structure(&frame).unwrap();
    assert_eq!(structure.species[..4], [0, 1, 1, 1]);
    let graph = AtomicGraph::new(
        &[structure],
        calculator.model().r_max(),
        calculator.device(),
        DType::F64,
    )
    .unwrap();
    let direct = calculator.model().energy_forces(&graph).unwrap();
    assert_eq!(result.energy, direct.energy.into_scalar::<f64>());
    let forces: Vec<f64> = direct.forces.into_data().iter::<f64>().collect();
    assert_eq!(result.forces.concat(), forces);
    // The checkpoint's own dtype: f32, close to f64.
    let f32 = Calculator::<Nequip>::load(&path, None).unwrap();
    assert_eq!(f32.dtype(), DType::F32);
    let low = f32.compute(&frame).unwrap();
    assert!((low.energy - result.energy).abs() < 1e-4 * result.energy.abs());
    let scale = result
        .forces
        .iter()
        .flatten()
        .fold(0.0f64, |m, f| m.max(f.abs()));
    for (a, b) in low
        .forces
        .iter()
        .flatten()
        .zip(result.forces.iter().flatten())
    {
        assert!((a - b).abs() < 1e-4 * scale, "f32 force {a} vs f64 {b}");
    }
    let (a, b) = (low.stress.unwrap(), result.stress.unwrap());
    let scale = b.iter().flatten().fold(0.0f64, |m, s| m.max(s.abs()));
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() < 1e-4 * scale, "f32 stress {x} vs f64 {y}");
    }
}

/// Forces are `-dE/dx` and stress is `(1/V) dE/dε` (ASE's sign: the positions and cell
/// strained by `1 + ε`), by central differences in f64.
#[test]
fn forces_and_stress_are_derivatives_of_the_energy() {
    let calculator =
        Calculator::<Nequip>::load(&checkpoint("derivatives"), Some(DType::F64)).unwrap();
    let frame = crystal();
    let result = calculator.compute(&frame).unwrap();
    let energy = |f: &Frame| calculator.compute(f).unwrap().energy;
    let h = 1e-5;
    for (atom, axis) in [(0, 0), (5, 1), (17, 2), (31, 0)] {
        let (mut plus, mut minus) = (frame.clone(), frame.clone());
        plus.positions[atom][axis] += h;
        minus.positions[atom][axis] -= h;
        let numeric = -(energy(&plus) - energy(&minus)) / (2.0 * h);
        let analytic = result.forces[atom][axis];
        assert!(
            (numeric - analytic).abs() < 1e-7,
            "force ({atom}, {axis}): {analytic} vs {numeric}"
        );
    }
    let stress = result.stress.expect("periodic");
    let volume = calculator.structure(&frame).unwrap().cell.unwrap().volume();
    let strained = |i: usize, j: usize, e: f64| {
        let mut f = frame.clone();
        let apply = |x: [f64; 3]| -> [f64; 3] {
            let mut y = x;
            // Symmetric strain: ε_ij = ε_ji = e / 2 off the diagonal.
            if i == j {
                y[i] += e * x[i];
            } else {
                y[i] += 0.5 * e * x[j];
                y[j] += 0.5 * e * x[i];
            }
            y
        };
        f.positions = f.positions.iter().map(|&x| apply(x)).collect();
        f.cell = f.cell.map(|c| c.map(apply));
        energy(&f)
    };
    for (i, j) in [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)] {
        let numeric = (strained(i, j, h) - strained(i, j, -h)) / (2.0 * h) / volume;
        let analytic = if i == j {
            stress[i][j]
        } else {
            0.5 * (stress[i][j] + stress[j][i])
        };
        assert!(
            (numeric - analytic).abs() < 1e-8,
            "stress ({i}, {j}): {analytic} vs {numeric}"
        );
    }
}

/// Atoms outside the cell: moved by lattice vectors along periodic axes, the same energy,
/// forces and stress; without periodicity a cell changes nothing and there is no stress; a
/// slab with no vector along its vacuum axis works.
#[test]
fn atoms_outside_the_cell() {
    let calculator = Calculator::<Nequip>::load(&checkpoint("outside"), Some(DType::F64)).unwrap();
    let frame = crystal();
    let inside = calculator.compute(&frame).unwrap();
    let cell = frame.cell.unwrap();
    let mut outside = frame.clone();
    for (k, x) in outside.positions.iter_mut().enumerate() {
        let shift = [(k % 3) as f64 - 1.0, 2.0 * ((k % 2) as f64), -3.0];
        for c in 0..3 {
            for a in 0..3 {
                x[a] += shift[c] * cell[c][a];
            }
        }
    }
    let moved = calculator.compute(&outside).unwrap();
    assert!((moved.energy - inside.energy).abs() < 1e-10 * inside.energy.abs());
    for (a, b) in moved
        .forces
        .iter()
        .flatten()
        .zip(inside.forces.iter().flatten())
    {
        assert!((a - b).abs() < 1e-10, "{a} vs {b}");
    }
    let (a, b) = (moved.stress.unwrap(), inside.stress.unwrap());
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
    // A cluster: the same cell but no periodic axis.
    let mut cluster = crystal();
    cluster.pbc = [false; 3];
    let mut bare = cluster.clone();
    bare.cell = None;
    cluster.positions[0] = [-20.0, 30.0, 5.0]; // far outside the cell: a lone atom
    bare.positions[0] = cluster.positions[0];
    let (with_cell, without) = (
        calculator.compute(&cluster).unwrap(),
        calculator.compute(&bare).unwrap(),
    );
    assert_eq!(with_cell, without);
    assert!(with_cell.stress.is_none());
    assert_eq!(with_cell.forces[0], [0.0; 3]);
    // A slab as ASE builds it (no vector along its vacuum axis): what a cell with one gives,
    // and no stress.
    let mut slab = crystal();
    slab.pbc = [true, true, false];
    let mut boxed = slab.clone();
    slab.cell = slab.cell.map(|c| [c[0], c[1], [0.0; 3]]);
    boxed.cell = boxed.cell.map(|c| [c[0], c[1], [0.0, 0.0, 30.0]]);
    let (a, b) = (
        calculator.compute(&slab).unwrap(),
        calculator.compute(&boxed).unwrap(),
    );
    assert!((a.energy - b.energy).abs() < 1e-12 * b.energy.abs());
    for (x, y) in a.forces.iter().flatten().zip(b.forces.iter().flatten()) {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
    assert!(a.stress.is_none() && b.stress.is_none());
}

#[test]
fn bad_input_is_a_typed_error() {
    let path = checkpoint("errors");
    let calculator = Calculator::<Nequip>::load(&path, None).unwrap();
    let mut alien = crystal();
    alien.species[2] = "Ag".into();
    let err = calculator.compute(&alien).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownSpecies { species, .. } if species == "Ag"),
        "{err}"
    );
    let mut nan = crystal();
    nan.positions[3][1] = f64::NAN;
    assert!(matches!(
        calculator.compute(&nan),
        Err(Error::Model(equivariant::Error::NonFinite { .. }))
    ));
    let empty = Frame::new(vec![], vec![]);
    assert!(matches!(calculator.compute(&empty), Err(Error::Model(_))));
    let mut stacked = crystal();
    stacked.positions[1] = stacked.positions[0];
    let err = calculator.compute(&stacked).unwrap_err();
    assert!(err.to_string().contains("same place"), "{err}");
    let mut flat = crystal();
    flat.cell = Some([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]);
    assert!(calculator.compute(&flat).is_err());

    let missing = path.with_file_name("missing.safetensors");
    let err = Calculator::<Nequip>::load(&missing, None).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    let truncated = path.with_file_name("truncated.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = Calculator::<Nequip>::load(&truncated, None).unwrap_err();
    assert!(
        matches!(err, Error::Checkpoint { .. }) && err.to_string().contains("truncated"),
        "{err}"
    );
}

#[test]
fn a_kept_neighbour_list_gives_the_same_bits() {
    let path = checkpoint("skin");
    let fresh = Calculator::<Nequip>::load(&path, Some(DType::F64)).unwrap();
    let kept = Calculator::<Nequip>::load(&path, Some(DType::F64))
        .unwrap()
        .with_skin(0.5)
        .unwrap();
    assert_eq!((fresh.skin(), kept.skin()), (0.0, 0.5));
    let mut frame = crystal();
    for step in 0..6 {
        // Small moves, one atom across the cell's face, then a move that builds again.
        for (i, p) in frame.positions.iter_mut().enumerate() {
            p[i % 3] += 0.02 * (1.0 + step as f64) * ((i + step) as f64).sin();
        }
        if step == 2 {
            frame.positions[0][0] = -0.05;
        }
        if step == 4 {
            frame.positions[7][1] += 0.5;
        }
        assert_eq!(
            kept.compute(&frame).unwrap(),
            fresh.compute(&frame).unwrap()
        );
    }
    // Kept for the small moves, built again for the larger ones; a graph per call without.
    assert!(
        kept.list_builds() > 1 && kept.list_builds() < 6,
        "{}",
        kept.list_builds()
    );
    assert_eq!(fresh.list_builds(), 6);
    // Bad input as without the list, and the list still serves.
    let mut nan = frame.clone();
    nan.positions[3][1] = f64::NAN;
    assert!(matches!(
        kept.compute(&nan),
        Err(Error::Model(equivariant::Error::NonFinite { .. }))
    ));
    assert_eq!(
        kept.compute(&frame).unwrap(),
        fresh.compute(&frame).unwrap()
    );
    for skin in [-0.5, f64::NAN] {
        let err = Calculator::<Nequip>::load(&path, None)
            .unwrap()
            .with_skin(skin)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Model(equivariant::Error::InvalidArgument { .. })
            ),
            "{err}"
        );
    }
}
