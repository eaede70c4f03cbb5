//! Velocity Verlet (NVE):
//!
//! `v += dt/2 F/m; x += dt v; F = F(x); v += dt/2 F/m`,
//!
//! with the forces of a [`ForceField`] (a neighbour list with a skin).

use burn::tensor::{DType, Device};
use equivariant::potential::Potential;
use equivariant::{Error, Result};

use crate::force_field::ForceField;
use crate::integrator::Integrator;
use crate::state::State;
use crate::units::FS;

/// A velocity Verlet integrator of `model`'s forces.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant::nn::models::nequip::NequipConfig;
/// use equivariant_md::integrator::Integrator;
/// use equivariant_md::state::State;
/// use equivariant_md::verlet::VelocityVerlet;
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
/// let mut md = VelocityVerlet::new(&model, &state, 0.5, 0.5, &device, DType::F64)?;
/// let start = md.potential_energy() + state.kinetic_energy();
/// for _ in 0..10 {
///     md.step(&mut state)?;
/// }
/// // The total energy is conserved (to O(dt^2)) while potential turns into kinetic.
/// let end = md.potential_energy() + state.kinetic_energy();
/// assert!((end - start).abs() < 1e-4 * (1.0 + start.abs()), "{start} -> {end}");
/// # Ok::<(), equivariant::Error>(())
/// ```
pub struct VelocityVerlet<'a, P: Potential> {
    field: ForceField<'a, P>,
    dt: f64,
}

/// The time step in ASE's unit: [`Error::InvalidArgument`] unless `dt_fs` is finite and
/// positive.
pub(crate) fn time_step(dt_fs: f64) -> Result<f64> {
    if !(dt_fs.is_finite() && dt_fs > 0.0) {
        return Err(Error::InvalidArgument {
            name: "dt",
            reason: format!("must be finite and positive, got {dt_fs} fs"),
        });
    }
    Ok(dt_fs * FS)
}

/// `v += scale F / m` for every atom.
pub(crate) fn kick(state: &mut State, forces: &[[f64; 3]], scale: f64) {
    for ((v, f), m) in state.velocities.iter_mut().zip(forces).zip(&state.masses) {
        for a in 0..3 {
            v[a] += scale * f[a] / m;
        }
    }
}

impl<'a, P: Potential> VelocityVerlet<'a, P> {
    /// An integrator with time step `dt_fs` femtoseconds and neighbour-list skin `skin` Å,
    /// the model run in `dtype` on `device`; computes the forces at `state`.
    ///
    /// Errors: [`Error::InvalidArgument`] for a time step that is not finite and positive;
    /// those of [`State::check`], [`ForceField::new`], the graph and the model.
    pub fn new(
        model: &'a P,
        state: &State,
        dt_fs: f64,
        skin: f64,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let dt = time_step(dt_fs)?;
        state.check()?;
        let field = ForceField::new(model, &state.structure(), skin, device, dtype)?;
        Ok(VelocityVerlet { field, dt })
    }
}

impl<P: Potential> Integrator for VelocityVerlet<'_, P> {
    /// One step of `dt` from `state` (the state the last call left, or `new` computed the
    /// forces at).
    ///
    /// Errors: those of the model and the graph (e.g. atoms on top of each other).
    fn step(&mut self, state: &mut State) -> Result<()> {
        kick(state, self.field.forces(), 0.5 * self.dt);
        for (x, v) in state.positions.iter_mut().zip(&state.velocities) {
            for a in 0..3 {
                x[a] += self.dt * v[a];
            }
        }
        self.field.update(&state.positions)?;
        kick(state, self.field.forces(), 0.5 * self.dt);
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
