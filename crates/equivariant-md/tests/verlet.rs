//! Velocity Verlet on a NequIP potential (f64): a graph with a skin gives the exact-cutoff
//! forces, the total energy is conserved with an error falling as dt^2, trajectories with
//! and without neighbour-list rebuilds agree, and bad input is a typed error.

use burn::tensor::{DType, Device};
use equivariant::Error;
use equivariant::graph::Cell;
use equivariant::nn::models::nequip::{Nequip, NequipConfig};
use equivariant::potential::{AtomicGraph, Potential, Structure};
use equivariant_md::masses::atomic_mass;
use equivariant_md::verlet::{State, VelocityVerlet};

/// A small NequIP in f64 with fixed parameters (burn's seed is process-wide and parameters
/// are drawn when first read: both under one lock, so tests running at once do not take
/// each other's random numbers).
fn model() -> Nequip {
    static DRAW: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _draw = DRAW.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    device.seed(7);
    let config = NequipConfig {
        num_layers: 2,
        num_features: 4,
        invariant_layers: 1,
        invariant_neurons: 8,
        avg_num_neighbors: 12.0,
        ..NequipConfig::new(2, 3.0)
    };
    // The cast reads (and so draws) every parameter.
    let model = equivariant::util::cast(config.init(&device).unwrap(), DType::F64);
    model.with_scale_shift(&[0.5, 0.5], &[-3.0, -3.5]).unwrap()
}

/// A 2x2x2 fcc Cu-Au cell (32 atoms, a = 3.7 Å), off the lattice sites, with deterministic
/// velocities of about `temperature` K and no net momentum.
fn state(temperature: f64) -> State {
    let a = 3.7;
    let base = [
        [0.0, 0.0, 0.0],
        [0.5, 0.5, 0.0],
        [0.5, 0.0, 0.5],
        [0.0, 0.5, 0.5],
    ];
    let mut positions = Vec::new();
    for i in 0..2 {
        for j in 0..2 {
            for k in 0..2 {
                for b in base {
                    let n = positions.len() as f64;
                    positions.push([
                        a * (i as f64 + b[0]) + 0.05 * (1.3 * n).sin(),
                        a * (j as f64 + b[1]) + 0.05 * (2.1 * n).cos(),
                        a * (k as f64 + b[2]) - 0.05 * (0.7 * n).sin(),
                    ]);
                }
            }
        }
    }
    let species: Vec<usize> = (0..positions.len())
        .map(|i| usize::from(i % 3 == 0))
        .collect();
    let masses: Vec<f64> = species
        .iter()
        .map(|&t| atomic_mass(["Cu", "Au"][t]).unwrap())
        .collect();
    let mut velocities: Vec<[f64; 3]> = (0..positions.len())
        .map(|i| {
            let x = i as f64;
            [
                (0.9 * x).sin(),
                (1.7 * x + 0.3).sin(),
                (2.3 * x + 0.6).sin(),
            ]
        })
        .collect();
    let total_mass: f64 = masses.iter().sum();
    for axis in 0..3 {
        let p: f64 = velocities
            .iter()
            .zip(&masses)
            .map(|(v, m)| m * v[axis])
            .sum();
        for v in &mut velocities {
            v[axis] -= p / total_mass;
        }
    }
    let mut state = State {
        positions,
        velocities,
        masses,
        species,
        cell: Some(Cell::orthorhombic([2.0 * a; 3], [true; 3]).unwrap()),
    };
    let scale = (temperature / state.temperature()).sqrt();
    state
        .velocities
        .iter_mut()
        .flatten()
        .for_each(|v| *v *= scale);
    state
}

/// The largest deviation of the total energy per atom from its start over `time_fs`, and
/// the number of neighbour-list rebuilds.
fn total_energy_drift(model: &Nequip, dt_fs: f64, time_fs: f64, skin: f64) -> (f64, usize) {
    let mut state = state(600.0);
    let device = Device::flex();
    let mut md = VelocityVerlet::new(model, &state, dt_fs, skin, &device, DType::F64).unwrap();
    let start = md.potential_energy() + state.kinetic_energy();
    let mut worst = 0.0f64;
    for _ in 0..(time_fs / dt_fs).round() as usize {
        md.step(&mut state).unwrap();
        let e = md.potential_energy() + state.kinetic_energy();
        worst = worst.max((e - start).abs());
    }
    (worst / state.positions.len() as f64, md.rebuilds())
}

#[test]
fn the_skin_graph_gives_the_exact_cutoff_forces() {
    let model = model();
    let state = state(300.0);
    let device = Device::flex();
    let structure = Structure {
        positions: state.positions.clone(),
        species: state.species.clone(),
        cell: state.cell.clone(),
    };
    let exact = AtomicGraph::new(
        std::slice::from_ref(&structure),
        model.r_max(),
        &device,
        DType::F64,
    )
    .unwrap();
    let wide = AtomicGraph::new(&[structure], model.r_max() + 1.0, &device, DType::F64).unwrap();
    assert!(
        wide.edges().num_edges() > exact.edges().num_edges() + 100,
        "the skin adds edges"
    );
    let (a, b) = (
        model.energy_forces(&exact).unwrap(),
        model.energy_forces(&wide).unwrap(),
    );
    let values = |t: burn::tensor::Tensor<2>| -> Vec<f64> { t.into_data().iter::<f64>().collect() };
    let (ea, eb) = (a.energy.into_scalar::<f64>(), b.energy.into_scalar::<f64>());
    assert!((ea - eb).abs() < 1e-12 * ea.abs(), "{ea} vs {eb}");
    for (x, y) in values(a.forces).iter().zip(values(b.forces)) {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
}

/// NVE over 40 fs at 600 K with a 0.1 Å skin: the largest deviation of the total energy is
/// small, it falls 4x when the time step halves (velocity Verlet is second order), and a run
/// whose neighbour list never needs rebuilding (a 5 Å skin) gives the same numbers.
#[test]
fn nve_conserves_energy_to_second_order() {
    let model = model();
    let (coarse, _) = total_energy_drift(&model, 2.0, 40.0, 0.1);
    let (fine, rebuilds) = total_energy_drift(&model, 1.0, 40.0, 0.1);
    eprintln!(
        "largest |E(t) - E(0)| per atom over 40 fs: dt 2 fs {coarse:e} eV, dt 1 fs {fine:e} eV; {rebuilds} rebuilds"
    );
    assert!(fine < 1e-5, "{fine} eV/atom");
    let order = (coarse / fine).log2();
    assert!(
        (1.9..2.1).contains(&order),
        "error {coarse} -> {fine} eV/atom: order {order}"
    );
    assert!(rebuilds > 0, "atoms at 600 K move a tenth of an Å in 40 fs");
    let (unbuilt, none) = total_energy_drift(&model, 1.0, 40.0, 5.0);
    assert_eq!((unbuilt, none), (fine, 0));
}

/// A skin of 0.05 Å (many rebuilds) and of 1.5 Å (none): the same trajectory.
#[test]
fn rebuilding_the_neighbour_list_does_not_change_the_trajectory() {
    let model = model();
    let device = Device::flex();
    let run = |skin: f64| {
        let mut state = state(600.0);
        let mut md = VelocityVerlet::new(&model, &state, 1.0, skin, &device, DType::F64).unwrap();
        for _ in 0..25 {
            md.step(&mut state).unwrap();
        }
        (state, md.rebuilds())
    };
    let ((a, many), (b, none)) = (run(0.05), run(1.5));
    assert!(many > 2 && none == 0, "{many} and {none} rebuilds");
    for (x, y) in a
        .positions
        .iter()
        .flatten()
        .zip(b.positions.iter().flatten())
    {
        assert!((x - y).abs() < 1e-10, "{x} vs {y}");
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let model = model();
    let device = Device::flex();
    let good = state(300.0);
    let md = |s: &State, dt: f64, skin: f64| {
        VelocityVerlet::new(&model, s, dt, skin, &device, DType::F64).map(|_| ())
    };
    assert!(matches!(
        md(&good, 0.0, 0.5),
        Err(Error::InvalidArgument { name: "dt", .. })
    ));
    assert!(matches!(
        md(&good, 1.0, f64::NAN),
        Err(Error::InvalidArgument { name: "skin", .. })
    ));
    let mut short = good.clone();
    short.masses.pop();
    assert!(matches!(
        md(&short, 1.0, 0.5),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut massless = good.clone();
    massless.masses[3] = 0.0;
    assert!(matches!(
        md(&massless, 1.0, 0.5),
        Err(Error::InvalidArgument { name: "masses", .. })
    ));
    let mut unknown = good.clone();
    unknown.species[0] = 5;
    assert!(matches!(
        md(&unknown, 1.0, 0.5),
        Err(Error::InvalidArgument {
            name: "species",
            ..
        })
    ));
    let mut nan = good;
    nan.positions[1][2] = f64::NAN;
    assert!(matches!(md(&nan, 1.0, 0.5), Err(Error::NonFinite { .. })));
    assert!(atomic_mass("Qq").is_err());
}
