//! What an MD driver needs of an integrator, whichever ensemble it samples.

use equivariant::Result;

use crate::state::State;

/// A time-stepping scheme with its force field: [`VelocityVerlet`](crate::verlet::VelocityVerlet)
/// (NVE) or [`Langevin`](crate::langevin::Langevin) (NVT).
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
///     positions: vec![[0.0; 3], [2.0, 0.0, 0.0]],
///     velocities: vec![[0.0; 3]; 2],
///     masses: vec![63.546; 2],
///     species: vec![0; 2],
///     cell: None,
/// };
/// let mut md: Box<dyn Integrator> =
///     Box::new(VelocityVerlet::new(&model, &state, 1.0, 0.5, &device, DType::F64)?);
/// md.step(&mut state)?;
/// assert_eq!(md.forces().len(), 2);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub trait Integrator {
    /// One time step from `state`.
    ///
    /// Errors: those of the model and the graph (e.g. atoms on top of each other).
    fn step(&mut self, state: &mut State) -> Result<()>;

    /// The potential energy at the current positions (eV).
    fn potential_energy(&self) -> f64;

    /// The forces at the current positions (eV/Å), `[n][3]`.
    fn forces(&self) -> &[[f64; 3]];

    /// How many times the neighbour list was rebuilt after the first.
    fn rebuilds(&self) -> usize;
}
