//! The model and atoms the MD tests share: a small NequIP in f64 and a 32-atom Cu-Au cell.

use burn::tensor::{DType, Device};
use equivariant::graph::Cell;
use equivariant::nn::models::nequip::{Nequip, NequipConfig};
use equivariant_md::masses::atomic_mass;
use equivariant_md::state::State;

/// A small NequIP in f64 with fixed parameters (burn's seed is process-wide and parameters
/// are drawn when first read: both under one lock, so tests running at once do not take
/// each other's random numbers).
pub fn model() -> Nequip {
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

/// The 32 sites of a 2x2x2 fcc cell of lattice constant `a`, each moved off its site by up to
/// `amplitude` Å (a deterministic pattern).
pub fn fcc_positions(a: f64, amplitude: f64) -> Vec<[f64; 3]> {
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
                        a * (i as f64 + b[0]) + amplitude * (1.3 * n).sin(),
                        a * (j as f64 + b[1]) + amplitude * (2.1 * n).cos(),
                        a * (k as f64 + b[2]) - amplitude * (0.7 * n).sin(),
                    ]);
                }
            }
        }
    }
    positions
}

/// A 2x2x2 fcc Cu-Au cell (32 atoms, a = 3.7 Å), off the lattice sites, with deterministic
/// velocities of about `temperature` K and no net momentum.
pub fn state(temperature: f64) -> State {
    let a = 3.7;
    let positions = fcc_positions(a, 0.05);
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
