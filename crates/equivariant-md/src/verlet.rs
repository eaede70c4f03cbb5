//! Velocity Verlet (NVE):
//!
//! `v += dt/2 F/m; x += dt v; F = F(x); v += dt/2 F/m`,
//!
//! with the model's graph built at `r_max + skin` and only its edge vectors updated between
//! rebuilds; a rebuild happens once an atom has moved more than `skin / 2` since the last one
//! (no pair can then have come from beyond `r_max + skin` to within `r_max`). Edges beyond
//! `r_max` cost work but change nothing: a potential's cutoff makes their terms zero.

use burn::tensor::{DType, Device};
use equivariant::graph::Cell;
use equivariant::potential::{AtomicGraph, Potential, Structure};
use equivariant::{Error, Result};

use crate::units::{FS, KB};

/// The atoms: positions (Å), velocities (Å per ASE time unit), masses (amu), the model's
/// species indices, and the cell of a periodic system.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Positions, `[n][3]`.
    pub positions: Vec<[f64; 3]>,
    /// Velocities, `[n][3]`.
    pub velocities: Vec<[f64; 3]>,
    /// Masses, `[n]`.
    pub masses: Vec<f64>,
    /// Species (type indices of the model), `[n]`.
    pub species: Vec<usize>,
    /// The cell, if periodic.
    pub cell: Option<Cell>,
}

impl State {
    /// The kinetic energy `sum m v^2 / 2` (eV).
    ///
    /// ```
    /// use equivariant_md::verlet::State;
    /// let state = State { positions: vec![[0.0; 3]], velocities: vec![[1.0, 0.0, 0.0]], masses: vec![2.0], species: vec![0], cell: None };
    /// assert_eq!(state.kinetic_energy(), 1.0);
    /// ```
    pub fn kinetic_energy(&self) -> f64 {
        self.velocities
            .iter()
            .zip(&self.masses)
            .map(|(v, m)| 0.5 * m * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]))
            .sum()
    }

    /// The temperature `2 K / (3 n k_B)` (K; no degrees of freedom removed).
    ///
    /// ```
    /// use equivariant_md::verlet::State;
    /// let state = State { positions: vec![[0.0; 3]], velocities: vec![[0.0; 3]], masses: vec![1.0], species: vec![0], cell: None };
    /// assert_eq!(state.temperature(), 0.0);
    /// ```
    pub fn temperature(&self) -> f64 {
        let n = self.positions.len().max(1) as f64;
        2.0 * self.kinetic_energy() / (3.0 * n * KB)
    }

    fn structure(&self) -> Structure {
        Structure {
            positions: self.positions.clone(),
            species: self.species.clone(),
            cell: self.cell.clone(),
        }
    }
}

/// A velocity Verlet integrator of `model`'s forces.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant::nn::models::nequip::NequipConfig;
/// use equivariant_md::verlet::{State, VelocityVerlet};
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
    model: &'a P,
    dt: f64,
    skin: f64,
    device: Device,
    dtype: DType,
    graph: AtomicGraph,
    built_at: Vec<[f64; 3]>,
    forces: Vec<[f64; 3]>,
    energy: f64,
    rebuilds: usize,
}

impl<'a, P: Potential> VelocityVerlet<'a, P> {
    /// An integrator with time step `dt_fs` femtoseconds and neighbour-list skin `skin` Å,
    /// the model run in `dtype` on `device`; computes the forces at `state`.
    ///
    /// Errors: [`Error::InvalidArgument`] for a time step or skin that is not finite and
    /// positive (the skin may be 0), or masses that are not positive;
    /// [`Error::ShapeMismatch`] for velocities, masses or species not one per atom; those of
    /// the graph and the model.
    pub fn new(
        model: &'a P,
        state: &State,
        dt_fs: f64,
        skin: f64,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        if !(dt_fs.is_finite() && dt_fs > 0.0) {
            return Err(Error::InvalidArgument {
                name: "dt",
                reason: format!("must be finite and positive, got {dt_fs} fs"),
            });
        }
        if !(skin.is_finite() && skin >= 0.0) {
            return Err(Error::InvalidArgument {
                name: "skin",
                reason: format!("must be finite and >= 0, got {skin}"),
            });
        }
        let n = state.positions.len();
        for (what, len) in [
            ("velocities (one per atom)", state.velocities.len()),
            ("masses (one per atom)", state.masses.len()),
            ("species (one per atom)", state.species.len()),
        ] {
            if len != n {
                return Err(Error::ShapeMismatch {
                    what,
                    expected: n,
                    got: len,
                });
            }
        }
        if let Some(m) = state.masses.iter().find(|m| !(m.is_finite() && **m > 0.0)) {
            return Err(Error::InvalidArgument {
                name: "masses",
                reason: format!("must be finite and positive, got {m}"),
            });
        }
        let graph = Self::neighbour_graph(model, state, skin, device, dtype)?;
        let mut md = VelocityVerlet {
            model,
            dt: dt_fs * FS,
            skin,
            device: device.clone(),
            dtype,
            graph,
            built_at: state.positions.clone(),
            forces: Vec::new(),
            energy: 0.0,
            rebuilds: 0,
        };
        md.compute()?;
        Ok(md)
    }

    /// The potential energy at the current positions (eV).
    pub fn potential_energy(&self) -> f64 {
        self.energy
    }

    /// The forces at the current positions (eV/Å), `[n][3]`.
    pub fn forces(&self) -> &[[f64; 3]] {
        &self.forces
    }

    /// How many times the neighbour list was rebuilt after the first.
    pub fn rebuilds(&self) -> usize {
        self.rebuilds
    }

    /// One step of `dt` from `state` (the state the last call left, or `new` computed the
    /// forces at).
    ///
    /// Errors: those of the model and the graph (e.g. atoms on top of each other).
    pub fn step(&mut self, state: &mut State) -> Result<()> {
        self.half_kick(state);
        for (x, v) in state.positions.iter_mut().zip(&state.velocities) {
            for a in 0..3 {
                x[a] += self.dt * v[a];
            }
        }
        let moved = state
            .positions
            .iter()
            .zip(&self.built_at)
            .map(|(x, y)| {
                ((x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2)).sqrt()
            })
            .fold(0.0f64, f64::max);
        self.graph = if moved > 0.5 * self.skin {
            self.rebuilds += 1;
            self.built_at = state.positions.clone();
            Self::neighbour_graph(self.model, state, self.skin, &self.device, self.dtype)?
        } else {
            self.graph.with_positions(&state.positions)?
        };
        self.compute()?;
        self.half_kick(state);
        Ok(())
    }

    /// `v += dt/2 F/m` with the current forces.
    fn half_kick(&self, state: &mut State) {
        let half = 0.5 * self.dt;
        for ((v, f), m) in state
            .velocities
            .iter_mut()
            .zip(&self.forces)
            .zip(&state.masses)
        {
            for a in 0..3 {
                v[a] += half * f[a] / m;
            }
        }
    }

    /// The graph of `state` at the model's cutoff plus the skin.
    fn neighbour_graph(
        model: &P,
        state: &State,
        skin: f64,
        device: &Device,
        dtype: DType,
    ) -> Result<AtomicGraph> {
        AtomicGraph::new(&[state.structure()], model.r_max() + skin, device, dtype)
    }

    /// The energy and forces on the current graph.
    fn compute(&mut self) -> Result<()> {
        let result = self.model.energy_forces(&self.graph)?;
        self.energy = result.energy.to_data().iter::<f64>().sum();
        let forces: Vec<f64> = result.forces.to_data().iter::<f64>().collect();
        self.forces = forces.chunks(3).map(|f| [f[0], f[1], f[2]]).collect();
        Ok(())
    }
}
