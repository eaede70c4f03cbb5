//! ASE's units: lengths in Å, energies in eV, masses in amu, so time in
//! `Å sqrt(amu / eV)` (about 10.18 fs).

/// One femtosecond in ASE's time unit (`ase.units.fs`).
///
/// ```
/// assert!((1.0 / equivariant_md::units::FS - 10.1805).abs() < 1e-4);
/// ```
pub const FS: f64 = 0.09822694788464063;

/// Boltzmann's constant in eV/K (`ase.units.kB`).
///
/// ```
/// // About 25.85 meV at 300 K.
/// assert!((equivariant_md::units::KB * 300.0 - 0.02585).abs() < 1e-4);
/// ```
pub const KB: f64 = 8.617330337217213e-05;
