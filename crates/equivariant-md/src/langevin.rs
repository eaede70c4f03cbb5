//! Langevin dynamics (NVT), ASE's `Langevin` integrator (Vanden-Eijnden and Ciccotti's
//! second-order scheme, with the centre of mass fixed): with friction `γ`, `kT`, and per
//! atom `σ = sqrt(2 kT γ / m)`,
//!
//! `c1 = dt/2 - dt² γ/8`, `c2 = dt γ/2 - dt² γ²/8`, `c3 = sqrt(dt) σ/2 - dt^1.5 γ σ/8`,
//! `c5 = dt^1.5 σ / (2 sqrt 3)`, `c4 = γ c5 / 2`;
//!
//! each step draws `ξ, η ~ N(0, 1)` per atom and axis, takes `δx = c5 η`, `δv = c3 ξ - c4 η`
//! (the mean of `δx` and the momentum of `δv` removed, both then scaled by `sqrt(n/(n-1))` to
//! keep their variance, so the bath moves no centre of mass; a lone atom keeps its noise,
//! where ASE divides by zero), and does
//!
//! `v += c1 F/m - c2 v + δv; x += dt v + δx; F = F(x); v += c1 F/m - c2 v + δv`.
//!
//! With `γ = 0` this is velocity Verlet.

use burn::tensor::{DType, Device};
use equivariant::potential::Potential;
use equivariant::{Error, Result};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::force_field::ForceField;
use crate::integrator::Integrator;
use crate::state::State;
use crate::units::{FS, KB};
use crate::verlet::{kick, time_step};

/// Mixed into the bath's seed, so that the random forces of a seed are not the normal draws
/// that [`maxwell_boltzmann`](crate::velocities::maxwell_boltzmann) makes from the same seed.
const RANDOM_FORCE_STREAM: u64 = 0x4c61_6e67_6576_696e; // "Langevin"

/// The heat bath: its temperature (K), the friction `γ` (per fs; ASE's examples use 0.01 to
/// 0.02) and the seed of the random forces.
///
/// ```
/// let bath = equivariant_md::langevin::HeatBath { temperature: 300.0, friction: 0.01, seed: 0 };
/// assert_eq!(bath.friction, 0.01);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeatBath {
    /// The temperature, in K.
    pub temperature: f64,
    /// The friction `γ`, per fs.
    pub friction: f64,
    /// The seed of the random forces.
    pub seed: u64,
}

/// A Langevin integrator of `model`'s forces in a [`HeatBath`].
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant::nn::models::nequip::NequipConfig;
/// use equivariant_md::integrator::Integrator;
/// use equivariant_md::langevin::{HeatBath, Langevin};
/// use equivariant_md::state::State;
/// let device = Device::flex();
/// let model = NequipConfig { num_layers: 1, num_features: 4, ..NequipConfig::new(1, 3.0) }.init(&device)?;
/// let model = equivariant::util::cast(model, DType::F64);
/// let mut state = State {
///     positions: vec![[0.0; 3], [2.0, 0.0, 0.0], [0.0, 2.1, 0.0]],
///     velocities: vec![[0.0; 3]; 3],
///     masses: vec![63.546; 3],
///     species: vec![0; 3],
///     cell: None,
/// };
/// let bath = HeatBath { temperature: 300.0, friction: 0.05, seed: 1 };
/// let mut md = Langevin::new(&model, &state, 1.0, 0.5, bath, &device, DType::F64)?;
/// for _ in 0..5 {
///     md.step(&mut state)?;
/// }
/// // Three atoms: their centre of mass stays at rest (the bath adds no net momentum).
/// let p: f64 = state.velocities.iter().map(|v| 63.546 * v[0]).sum();
/// assert!(p.abs() < 1e-12, "{p}");
/// # Ok::<(), equivariant::Error>(())
/// ```
pub struct Langevin<'a, P: Potential> {
    field: ForceField<'a, P>,
    dt: f64,
    c1: f64,
    c2: f64,
    /// `c3`, `c4`, `c5` per atom (they scale with `1/sqrt(m)`).
    c3: Vec<f64>,
    c4: Vec<f64>,
    c5: Vec<f64>,
    rng: StdRng,
}

impl<'a, P: Potential> Langevin<'a, P> {
    /// An integrator with time step `dt_fs` femtoseconds and neighbour-list skin `skin` Å in
    /// `bath`, the model run in `dtype` on `device`; computes the forces at `state`.
    ///
    /// Errors: [`Error::InvalidArgument`] for a time step that is not finite and positive,
    /// or a temperature or friction that is not finite and `>= 0`; those of
    /// [`State::check`], [`ForceField::new`], the graph and the model.
    pub fn new(
        model: &'a P,
        state: &State,
        dt_fs: f64,
        skin: f64,
        bath: HeatBath,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let dt = time_step(dt_fs)?;
        for (name, value) in [
            ("temperature", bath.temperature),
            ("friction", bath.friction),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::InvalidArgument {
                    name,
                    reason: format!("must be finite and >= 0, got {value}"),
                });
            }
        }
        state.check()?;
        let field = ForceField::new(model, &state.structure(), skin, device, dtype)?;
        let gamma = bath.friction / FS;
        let kt = KB * bath.temperature;
        let sigma: Vec<f64> = state
            .masses
            .iter()
            .map(|m| (2.0 * kt * gamma / m).sqrt())
            .collect();
        let c5: Vec<f64> = sigma
            .iter()
            .map(|s| dt.powf(1.5) * s / (2.0 * 3f64.sqrt()))
            .collect();
        Ok(Langevin {
            field,
            dt,
            c1: dt / 2.0 - dt * dt * gamma / 8.0,
            c2: dt * gamma / 2.0 - dt * dt * gamma * gamma / 8.0,
            c3: sigma
                .iter()
                .map(|s| dt.sqrt() * s / 2.0 - dt.powf(1.5) * gamma * s / 8.0)
                .collect(),
            c4: c5.iter().map(|c| gamma / 2.0 * c).collect(),
            c5,
            rng: StdRng::seed_from_u64(bath.seed ^ RANDOM_FORCE_STREAM),
        })
    }

    /// `v += c1 F/m - c2 v + δv`.
    fn half_step(&self, state: &mut State, dv: &[[f64; 3]]) {
        for (v, d) in state.velocities.iter_mut().zip(dv) {
            for a in 0..3 {
                v[a] += d[a] - self.c2 * v[a];
            }
        }
        kick(state, self.field.forces(), self.c1);
    }
}

impl<P: Potential> Integrator for Langevin<'_, P> {
    /// One step of `dt` from `state` (the state the last call left, or `new` computed the
    /// forces at).
    ///
    /// Errors: those of the model and the graph (e.g. atoms on top of each other).
    fn step(&mut self, state: &mut State) -> Result<()> {
        let n = self.c3.len();
        state.check()?;
        if state.positions.len() != n {
            return Err(Error::ShapeMismatch {
                what: "positions (as many atoms as the integrator was made for)",
                expected: n,
                got: state.positions.len(),
            });
        }
        let mut normal =
            || -> [f64; 3] { std::array::from_fn(|_| StandardNormal.sample(&mut self.rng)) };
        let xi: Vec<[f64; 3]> = (0..n).map(|_| normal()).collect();
        let eta: Vec<[f64; 3]> = (0..n).map(|_| normal()).collect();
        let mut dx: Vec<[f64; 3]> = (0..n).map(|i| eta[i].map(|e| self.c5[i] * e)).collect();
        let mut dv: Vec<[f64; 3]> = (0..n)
            .map(|i| std::array::from_fn(|a| self.c3[i] * xi[i][a] - self.c4[i] * eta[i][a]))
            .collect();
        if n > 1 {
            // Remove the centre of mass's share of the random displacements and momenta
            // (ASE's `fix_com`), then restore the variance the removal took away.
            let factor = (n as f64 / (n as f64 - 1.0)).sqrt();
            for a in 0..3 {
                let mean_dx = dx.iter().map(|d| d[a]).sum::<f64>() / n as f64;
                let momentum: f64 = dv.iter().zip(&state.masses).map(|(d, m)| m * d[a]).sum();
                for ((x, v), m) in dx.iter_mut().zip(&mut dv).zip(&state.masses) {
                    x[a] = (x[a] - mean_dx) * factor;
                    v[a] = (v[a] - momentum / (m * n as f64)) * factor;
                }
            }
        }
        self.half_step(state, &dv);
        for ((x, v), d) in state.positions.iter_mut().zip(&state.velocities).zip(&dx) {
            for a in 0..3 {
                x[a] += self.dt * v[a] + d[a];
            }
        }
        self.field.update(&state.positions)?;
        self.half_step(state, &dv);
        Ok(())
    }

    fn potential_energy(&self) -> f64 {
        self.field.energy()
    }

    fn forces(&self) -> &[[f64; 3]] {
        self.field.forces()
    }

    fn rebuilds(&self) -> usize {
        self.field.rebuilds()
    }
}
