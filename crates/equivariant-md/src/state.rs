//! The atoms of a simulation: positions, velocities, masses, species and cell.

use equivariant::graph::Cell;
use equivariant::potential::Structure;

use equivariant::{Error, Result};

use crate::units::KB;

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
    /// use equivariant_md::state::State;
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
    /// use equivariant_md::state::State;
    /// let state = State { positions: vec![[0.0; 3]], velocities: vec![[0.0; 3]], masses: vec![1.0], species: vec![0], cell: None };
    /// assert_eq!(state.temperature(), 0.0);
    /// ```
    pub fn temperature(&self) -> f64 {
        let n = self.positions.len().max(1) as f64;
        2.0 * self.kinetic_energy() / (3.0 * n * KB)
    }

    /// The structure the potential sees: positions, species and cell.
    ///
    /// ```
    /// use equivariant_md::state::State;
    /// let state = State { positions: vec![[0.0; 3]], velocities: vec![[0.0; 3]], masses: vec![1.0], species: vec![0], cell: None };
    /// assert_eq!(state.structure().species, [0]);
    /// ```
    pub fn structure(&self) -> Structure {
        Structure {
            positions: self.positions.clone(),
            species: self.species.clone(),
            cell: self.cell.clone(),
        }
    }
}

impl State {
    /// Checks that velocities, masses and species are one per atom and the masses positive.
    ///
    /// Errors: [`Error::ShapeMismatch`] naming the array of the wrong length;
    /// [`Error::InvalidArgument`] for a mass that is not finite and positive.
    ///
    /// ```
    /// use equivariant_md::state::State;
    /// let state = State { positions: vec![[0.0; 3]], velocities: vec![], masses: vec![1.0], species: vec![0], cell: None };
    /// assert!(state.check().unwrap_err().to_string().contains("velocities"));
    /// ```
    pub fn check(&self) -> Result<()> {
        let n = self.positions.len();
        for (what, len) in [
            ("velocities (one per atom)", self.velocities.len()),
            ("masses (one per atom)", self.masses.len()),
            ("species (one per atom)", self.species.len()),
        ] {
            if len != n {
                return Err(Error::ShapeMismatch {
                    what,
                    expected: n,
                    got: len,
                });
            }
        }
        if let Some(m) = self.masses.iter().find(|m| !(m.is_finite() && **m > 0.0)) {
            return Err(Error::InvalidArgument {
                name: "masses",
                reason: format!("must be finite and positive, got {m}"),
            });
        }
        Ok(())
    }
}
