//! Langevin dynamics (ASE's integrator) on a NequIP potential (f64): without friction it is
//! velocity Verlet; with friction it heats atoms at rest to the bath's temperature, adds no
//! momentum, and repeats itself for a seed.

use burn::tensor::{DType, Device};
use equivariant::Error;
use equivariant_md::integrator::Integrator;
use equivariant_md::langevin::{HeatBath, Langevin};
use equivariant_md::state::State;
use equivariant_md::verlet::VelocityVerlet;

use super::common::{model, state};

#[test]
fn without_friction_it_is_velocity_verlet() {
    let model = model();
    let device = Device::flex();
    let (mut a, mut b) = (state(600.0), state(600.0));
    let bath = HeatBath {
        temperature: 600.0,
        friction: 0.0,
        seed: 3,
    };
    let mut langevin = Langevin::new(&model, &a, 1.0, 0.3, bath, &device, DType::F64).unwrap();
    let mut verlet = VelocityVerlet::new(&model, &b, 1.0, 0.3, &device, DType::F64).unwrap();
    for _ in 0..20 {
        langevin.step(&mut a).unwrap();
        verlet.step(&mut b).unwrap();
    }
    for (x, y) in a
        .positions
        .iter()
        .chain(&a.velocities)
        .flatten()
        .zip(b.positions.iter().chain(&b.velocities).flatten())
    {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
}

/// `steps` Langevin steps of 2 fs from rest in a bath at 600 K with friction 0.05 / fs (a
/// relaxation time `1 / 2γ` of 10 fs): the state and the temperature at each step.
fn heat(seed: u64, steps: usize) -> (State, Vec<f64>) {
    let model = model();
    let device = Device::flex();
    let mut state = state(0.0);
    let bath = HeatBath {
        temperature: 600.0,
        friction: 0.05,
        seed,
    };
    let mut md = Langevin::new(&model, &state, 2.0, 0.5, bath, &device, DType::F64).unwrap();
    let temperatures = (0..steps)
        .map(|_| {
            md.step(&mut state).unwrap();
            state.temperature()
        })
        .collect();
    (state, temperatures)
}

/// From rest, 150 steps of 2 fs: the temperature averaged over the last 100 (ten relaxation
/// times in) is the bath's within the fluctuations of 32 atoms (one step's standard
/// deviation is `600 sqrt(2 / 96)` = 87 K, the average's about 25 K with its ~5-step
/// correlation; bound 3 of those): the `sqrt(n/(n-1))` of the fixed centre of mass restores
/// the 3 degrees of freedom it takes, as in ASE; the momentum stays zero; a seed gives one
/// trajectory, another seed another.
#[test]
fn the_bath_sets_the_temperature() {
    let (state, temperatures) = heat(11, 150);
    let mean = temperatures[50..].iter().sum::<f64>() / 100.0;
    let expected = 600.0;
    eprintln!("mean temperature over steps 50-150: {mean:.1} K (expected {expected:.1} K)");
    assert!(
        (mean - expected).abs() < 75.0,
        "{mean} K against {expected} K"
    );
    for axis in 0..3 {
        let p: f64 = state
            .velocities
            .iter()
            .zip(&state.masses)
            .map(|(v, m)| m * v[axis])
            .sum();
        assert!(p.abs() < 1e-10, "momentum {p} along {axis}");
    }
    let (again, _) = heat(11, 5);
    let (other, _) = heat(12, 5);
    let (first, _) = heat(11, 5);
    assert_eq!(again, first);
    assert_ne!(other.positions, first.positions);
}

#[test]
fn bad_input_is_a_typed_error() {
    let model = model();
    let device = Device::flex();
    let good = state(300.0);
    let run = |temperature: f64, friction: f64| {
        let bath = HeatBath {
            temperature,
            friction,
            seed: 0,
        };
        Langevin::new(&model, &good, 1.0, 0.5, bath, &device, DType::F64).map(|_| ())
    };
    assert!(run(300.0, 0.01).is_ok());
    assert!(matches!(
        run(-1.0, 0.01),
        Err(Error::InvalidArgument {
            name: "temperature",
            ..
        })
    ));
    assert!(matches!(
        run(300.0, f64::NAN),
        Err(Error::InvalidArgument {
            name: "friction",
            ..
        })
    ));
}
