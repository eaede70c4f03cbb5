//! Initial velocities: Maxwell-Boltzmann at a temperature, seeded, with the centre of mass
//! at rest (ASE's `MaxwellBoltzmannDistribution` then `Stationary`).

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::units::KB;

/// Velocities (Å per ASE time unit) drawn from the Maxwell-Boltzmann distribution at
/// `temperature` K for atoms of `masses` (amu), seeded by `seed`, then shifted so that the
/// total momentum is zero.
///
/// ```
/// use equivariant_md::velocities::maxwell_boltzmann;
/// let masses = vec![63.546; 4000];
/// let v = maxwell_boltzmann(&masses, 300.0, 1);
/// let kinetic: f64 = v.iter().map(|v| 0.5 * 63.546 * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2])).sum();
/// let temperature = 2.0 * kinetic / (3.0 * 4000.0 * equivariant_md::units::KB);
/// assert!((temperature - 300.0).abs() < 15.0, "{temperature}");
/// let p: f64 = v.iter().map(|v| v[0]).sum();
/// assert!(p.abs() < 1e-10);
/// ```
pub fn maxwell_boltzmann(masses: &[f64], temperature: f64, seed: u64) -> Vec<[f64; 3]> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut velocities: Vec<[f64; 3]> = masses
        .iter()
        .map(|m| {
            let sigma = (KB * temperature.max(0.0) / m).sqrt();
            std::array::from_fn(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                sigma * z
            })
        })
        .collect();
    let total: f64 = masses.iter().sum();
    if total > 0.0 {
        for axis in 0..3 {
            let p: f64 = velocities
                .iter()
                .zip(masses)
                .map(|(v, m)| m * v[axis])
                .sum();
            for v in &mut velocities {
                v[axis] -= p / total;
            }
        }
    }
    velocities
}
