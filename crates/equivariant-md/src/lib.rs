//! Running a trained potential of `equivariant`: single-point calculations and molecular
//! dynamics, in ASE's units (Å, eV, amu; time in `Å sqrt(amu / eV)`, converted from
//! femtoseconds by [`units::FS`]):
//!
//! - [`calculator`]: a checkpoint loaded for energies, forces and stress of structures;
//! - [`state`]: the atoms of a simulation;
//! - [`neighbor_list`]: the graph of a moving structure from a list built at the model's
//!   cutoff plus a skin and rebuilt only when an atom has moved half the skin;
//! - [`force_field`]: a potential along a trajectory, on such a list;
//! - [`integrator`]: what an MD driver needs of an integrator;
//! - [`verlet`]: velocity Verlet (NVE);
//! - [`langevin`]: Langevin dynamics (NVT), ASE's integrator;
//! - [`masses`]: atomic masses by chemical symbol (ASE's IUPAC 2016 table);
//! - [`velocities`]: Maxwell-Boltzmann initial velocities, seeded.

pub mod calculator;
pub mod force_field;
pub mod integrator;
pub mod langevin;
pub mod masses;
pub mod neighbor_list;
pub mod state;
pub mod units;
pub mod velocities;
pub mod verlet;
