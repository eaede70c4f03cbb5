//! Velocity Verlet on a NequIP potential (f64): a graph with a skin gives the exact-cutoff
//! forces, the total energy is conserved with an error falling as dt^2, trajectories with
//! and without neighbour-list rebuilds agree, and bad input is a typed error.

use burn::tensor::{DType, Device};
use equivariant::Error;
use equivariant::nn::models::nequip::Nequip;
use equivariant::potential::{AtomicGraph, Potential, Structure};
use equivariant_md::integrator::Integrator;
use equivariant_md::masses::atomic_mass;
use equivariant_md::state::State;
use equivariant_md::verlet::VelocityVerlet;

use super::common::{model, state};

/// The largest deviation of the total energy per atom from its start over `time_fs`, the
/// drift per atom per ps (a least-squares slope of the total energy over time), and the
/// number of neighbour-list rebuilds.
fn total_energy_drift(model: &Nequip, dt_fs: f64, time_fs: f64, skin: f64) -> (f64, f64, usize) {
    let mut state = state(600.0);
    let device = Device::flex();
    let mut md = VelocityVerlet::new(model, &state, dt_fs, skin, &device, DType::F64).unwrap();
    let start = md.potential_energy() + state.kinetic_energy();
    let mut worst = 0.0f64;
    let mut series = vec![(0.0, start)];
    for step in 1..=(time_fs / dt_fs).round() as usize {
        md.step(&mut state).unwrap();
        let e = md.potential_energy() + state.kinetic_energy();
        worst = worst.max((e - start).abs());
        series.push((step as f64 * dt_fs * 1e-3, e));
    }
    let n = series.len() as f64;
    let (mean_t, mean_e) = (
        series.iter().map(|s| s.0).sum::<f64>() / n,
        series.iter().map(|s| s.1).sum::<f64>() / n,
    );
    let slope = series
        .iter()
        .map(|(t, e)| (t - mean_t) * (e - mean_e))
        .sum::<f64>()
        / series
            .iter()
            .map(|(t, _)| (t - mean_t).powi(2))
            .sum::<f64>();
    let atoms = state.positions.len() as f64;
    (worst / atoms, slope / atoms, md.rebuilds())
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
    let wide = AtomicGraph::new(
        std::slice::from_ref(&structure),
        model.r_max() + 1.0,
        &device,
        DType::F64,
    )
    .unwrap();
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
    let forces_a = values(a.forces);
    for (x, y) in forces_a.iter().zip(values(b.forces)) {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
    // The list cut back to the cutoff (what `ForceField` hands the model): the exact graph's
    // edges and numbers; at positions moved by up to 0.3 Å, the edges of a graph built there.
    let cut = wide
        .with_positions_within(&structure.positions, model.r_max())
        .unwrap();
    assert_eq!(cut.edges().num_edges(), exact.edges().num_edges());
    let c = model.energy_forces(&cut).unwrap();
    let ec = c.energy.into_scalar::<f64>();
    assert!((ea - ec).abs() < 1e-12 * ea.abs(), "{ea} vs {ec}");
    for (x, y) in forces_a.iter().zip(values(c.forces)) {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
    let moved: Vec<[f64; 3]> = structure
        .positions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let d = |k: usize| 0.3 * ((i * 3 + k) as f64 * 0.7).sin() / 3f64.sqrt();
            [p[0] + d(0), p[1] + d(1), p[2] + d(2)]
        })
        .collect();
    let built = AtomicGraph::new(
        &[Structure {
            positions: moved.clone(),
            ..structure.clone()
        }],
        model.r_max(),
        &device,
        DType::F64,
    )
    .unwrap();
    let cut = wide.with_positions_within(&moved, model.r_max()).unwrap();
    assert_eq!(cut.edges().num_edges(), built.edges().num_edges());
    let (e_built, e_cut) = (
        model
            .energy_forces(&built)
            .unwrap()
            .energy
            .into_scalar::<f64>(),
        model
            .energy_forces(&cut)
            .unwrap()
            .energy
            .into_scalar::<f64>(),
    );
    assert!(
        (e_built - e_cut).abs() < 1e-12 * e_built.abs(),
        "{e_built} vs {e_cut}"
    );
    assert!(wide.with_positions_within(&moved, f64::NAN).is_err());
}

/// NVE over 40 fs at 600 K with a 0.1 Å skin: the largest deviation of the total energy and
/// its drift per ps are small, the deviation falls 4x when the time step halves (velocity
/// Verlet is second order), and a run whose neighbour list never needs rebuilding (a 5 Å
/// skin) gives the same numbers.
#[test]
fn nve_conserves_energy_to_second_order() {
    let model = model();
    let (coarse, _, _) = total_energy_drift(&model, 2.0, 40.0, 0.1);
    let (fine, drift, rebuilds) = total_energy_drift(&model, 1.0, 40.0, 0.1);
    eprintln!(
        "largest |E(t) - E(0)| per atom over 40 fs: dt 2 fs {coarse:e} eV, dt 1 fs {fine:e} eV; drift {drift:+e} eV/atom/ps at dt 1 fs; {rebuilds} rebuilds"
    );
    assert!(fine < 1e-5, "{fine} eV/atom");
    assert!(drift.abs() < 1e-5, "drift {drift} eV/atom/ps");
    let order = (coarse / fine).log2();
    assert!(
        (1.9..2.1).contains(&order),
        "error {coarse} -> {fine} eV/atom: order {order}"
    );
    assert!(rebuilds > 0, "atoms at 600 K move a tenth of an Å in 40 fs");
    let (unbuilt, unbuilt_drift, none) = total_energy_drift(&model, 1.0, 40.0, 5.0);
    assert_eq!((unbuilt, unbuilt_drift, none), (fine, drift, 0));
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
