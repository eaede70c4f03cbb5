//! Molecular dynamics on any [`Potential`](equivariant::potential::Potential) of
//! `equivariant`, in ASE's units (Å, eV, amu; time in `Å sqrt(amu / eV)`, converted from
//! femtoseconds by [`units::FS`]):
//!
//! - [`masses`]: atomic masses by chemical symbol (ASE's IUPAC 2016 table);
//! - [`velocities`]: Maxwell-Boltzmann initial velocities, seeded;
//! - [`verlet`]: velocity Verlet (NVE) with a neighbour list built at the model's cutoff
//!   plus a skin, rebuilt only when an atom has moved half the skin.

pub mod masses;
pub mod units;
pub mod velocities;
pub mod verlet;
