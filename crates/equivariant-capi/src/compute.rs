//! Energies, per-atom energies, forces and virials: of a domain's local and ghost atoms with
//! the host's neighbour lists, or of a whole structure with a cell.

use equivariant_data::Frame;
use equivariant_md::calculator::Prediction;

use crate::error::{Failure, guard};
use crate::model::{EquivariantModel, model_ref};

/// The `len` values at `ptr` (NULL allowed only for `len == 0`).
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` values.
unsafe fn input<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL, and valid for `len` reads by the caller's guarantee.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A count from C, checked not negative.
fn count(n: i32, what: &str) -> Result<usize, Failure> {
    usize::try_from(n).map_err(|_| Failure::invalid(format!("{what} is {n}, a negative count")))
}

/// The atoms' type indices, checked against the model's species.
fn species(model: &EquivariantModel, species: &[i32]) -> Result<Vec<usize>, Failure> {
    let k = model.num_species();
    species
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            usize::try_from(t).ok().filter(|&t| t < k).ok_or_else(|| {
                Failure::invalid(format!(
                    "atom {i} has species index {t}, but the model knows {k} species (0..{k})"
                ))
            })
        })
        .collect()
}

/// Positions `[n * 3]` as rows.
fn rows(flat: &[f64]) -> Vec<[f64; 3]> {
    flat.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect()
}

/// Writes the outputs a caller asked for (each NULL or valid for its length).
///
/// # Safety
/// `atom_energies` is NULL or valid for `n` writes, `forces` for `3 n`, `virial` for 9,
/// `atom_virials` for `9 n`, `energy` for one.
unsafe fn store(
    result: &Prediction,
    energy: *mut f64,
    atom_energies: *mut f64,
    forces: *mut f64,
    virial: *mut f64,
    atom_virials: *mut f64,
) {
    let n = result.energies.len();
    let copy = |out: *mut f64, values: &mut dyn Iterator<Item = f64>, len: usize| {
        if !out.is_null() {
            // SAFETY: not NULL and valid for `len` writes (the caller's guarantee).
            let out = unsafe { std::slice::from_raw_parts_mut(out, len) };
            for (o, v) in out.iter_mut().zip(values) {
                *o = v;
            }
        }
    };
    copy(energy, &mut std::iter::once(result.energy), 1);
    copy(atom_energies, &mut result.energies.iter().copied(), n);
    copy(forces, &mut result.forces.iter().flatten().copied(), 3 * n);
    copy(virial, &mut result.virial.iter().flatten().copied(), 9);
    let mut shares = result.atom_virials.iter().flatten().flatten().copied();
    copy(atom_virials, &mut shares, 9 * n);
}

/// The energy of the contributing atoms, each atom's energy, the forces on every atom (ghosts
/// included), the virial and each atom's share of it (ghosts' shares belong to the atoms they
/// copy), for `num_atoms` local and ghost atoms with full neighbour lists
/// in CSR form (`num_neighbors[i]` entries of `neighbors` for atom `i`, in turn). Pairs at
/// or beyond the cutoff are ignored; ghosts' neighbour lists are needed out to the model's
/// influence distance (see `include/equivariant.h`). `contributing` NULL: all atoms count.
/// Outputs may be NULL. No atoms: zero energy and virial.
///
/// Errors: `EQUIVARIANT_ERROR_NULL_POINTER` for a required array that is NULL;
/// `EQUIVARIANT_ERROR_INVALID_ARGUMENT` for a negative count, a species index out of range,
/// a neighbour index out of range, a NaN position, two atoms at one place.
///
/// # Safety
/// Each pointer is NULL or valid for the length the header gives it.
///
/// ```
/// use equivariant_capi::*;
/// # let path = std::ffi::CString::new(equivariant_capi::doc_checkpoint()?.to_str().unwrap())?;
/// # let mut model = std::ptr::null_mut();
/// # assert_eq!(unsafe { equivariant_model_load(path.as_ptr(), 64, &mut model) }, EQUIVARIANT_OK);
/// // A Au-Cu dimer where atom 1 is a ghost: only atom 0's energy counts.
/// let (species, positions) = ([0, 1], [0.0, 0.0, 0.0, 2.5, 0.0, 0.0]);
/// let (counts, neighbors, contributing) = ([1, 1], [1, 0], [1, 0]);
/// let (mut energy, mut atom_energies, mut virial) = (0.0, [0.0; 2], [0.0; 9]);
/// let null = std::ptr::null_mut();
/// // SAFETY: every array has the header's length.
/// let code = unsafe {
///     equivariant_model_compute(model, 2, species.as_ptr(), positions.as_ptr(), contributing.as_ptr(),
///         counts.as_ptr(), neighbors.as_ptr(), &mut energy, atom_energies.as_mut_ptr(), null, virial.as_mut_ptr(), null)
/// };
/// assert_eq!(code, EQUIVARIANT_OK);
/// assert_eq!(energy, atom_energies[0]);
/// let bad = [0, 7];
/// // SAFETY: as above.
/// let code = unsafe {
///     equivariant_model_compute(model, 2, bad.as_ptr(), positions.as_ptr(), std::ptr::null(),
///         counts.as_ptr(), neighbors.as_ptr(), &mut energy, null, null, null, null)
/// };
/// assert_eq!(code, EQUIVARIANT_ERROR_INVALID_ARGUMENT);
/// # unsafe { equivariant_model_free(model) };
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the C signature: one array per argument
pub unsafe extern "C" fn equivariant_model_compute(
    model: *const EquivariantModel,
    num_atoms: i32,
    species: *const i32,
    positions: *const f64,
    contributing: *const i32,
    num_neighbors: *const i32,
    neighbors: *const i32,
    energy: *mut f64,
    atom_energies: *mut f64,
    forces: *mut f64,
    virial: *mut f64,
    atom_virials: *mut f64,
) -> i32 {
    guard(|| {
        // SAFETY: the caller passes NULL or a live model.
        let model = unsafe { model_ref(model) }?;
        let n = count(num_atoms, "num_atoms")?;
        if n == 0 {
            let nothing = Prediction {
                energy: 0.0,
                energies: Vec::new(),
                forces: Vec::new(),
                virial: [[0.0; 3]; 3],
                atom_virials: Vec::new(),
                stress: None,
            };
            // SAFETY: outputs NULL or valid for their lengths.
            unsafe {
                store(
                    &nothing,
                    energy,
                    atom_energies,
                    forces,
                    virial,
                    atom_virials,
                )
            };
            return Ok(());
        }
        // SAFETY: NULL or valid for its length (the caller's guarantee).
        let types = self::species(model, unsafe { input(species, n, "species") }?)?;
        // SAFETY: NULL or valid for its length (the caller's guarantee).
        let positions = rows(unsafe { input(positions, 3 * n, "positions") }?);
        // SAFETY: NULL or valid for its length (the caller's guarantee).
        let counts = unsafe { input(num_neighbors, n, "num_neighbors") }?;
        // One flat copy of the lists (usize indices), then a slice per atom: two allocations
        // per call, whatever the number of atoms.
        let mut ends = Vec::with_capacity(n);
        let mut total = 0usize;
        for (i, &c) in counts.iter().enumerate() {
            if c < 0 {
                return Err(Failure::invalid(format!(
                    "num_neighbors[{i}] is {c}, a negative count"
                )));
            }
            total += c as usize;
            ends.push(total);
        }
        // SAFETY: NULL or valid for its length (the caller's guarantee).
        let flat = unsafe { input(neighbors, total, "neighbors") }?;
        let flat: Vec<usize> = flat
            .iter()
            .enumerate()
            .map(|(k, &j)| {
                usize::try_from(j).map_err(|_| {
                    let i = ends.partition_point(|&end| end <= k);
                    Failure::invalid(format!("atom {i} lists neighbour {j}, a negative index"))
                })
            })
            .collect::<Result<_, _>>()?;
        let lists: Vec<&[usize]> = (0..n)
            .map(|i| &flat[if i == 0 { 0 } else { ends[i - 1] }..ends[i]])
            .collect();
        let counted: Option<Vec<bool>> = if contributing.is_null() {
            None
        } else {
            Some(
                // SAFETY: NULL or valid for its length (the caller's guarantee).
                unsafe { input(contributing, n, "contributing") }?
                    .iter()
                    .map(|&c| c != 0)
                    .collect(),
            )
        };
        let result =
            model
                .calculator()
                .compute_neighbors(&positions, types, counted.as_deref(), &lists)?;
        // SAFETY: outputs NULL or valid for their lengths.
        unsafe { store(&result, energy, atom_energies, forces, virial, atom_virials) };
        Ok(())
    })
}

/// The energy, each atom's energy, the forces, the virial and each atom's share of it of a
/// whole structure, the
/// library building its neighbour list: `cell` the lattice vectors as rows (`[9]`; NULL for
/// an isolated structure), periodic along the axes where `pbc[axis]` is 1 (`[3]`; NULL: all
/// three when there is a cell). Outputs may be NULL.
///
/// Errors: as [`equivariant_model_compute`], and `EQUIVARIANT_ERROR_INVALID_ARGUMENT` for no
/// atoms, a periodic axis without a cell, a singular cell.
///
/// # Safety
/// Each pointer is NULL or valid for the length the header gives it.
///
/// ```
/// use equivariant_capi::*;
/// # let path = std::ffi::CString::new(equivariant_capi::doc_checkpoint()?.to_str().unwrap())?;
/// # let mut model = std::ptr::null_mut();
/// # assert_eq!(unsafe { equivariant_model_load(path.as_ptr(), 64, &mut model) }, EQUIVARIANT_OK);
/// // One Cu atom in a periodic 2.5 Å cube: it sees its own images.
/// let cell = [2.5, 0.0, 0.0, 0.0, 2.5, 0.0, 0.0, 0.0, 2.5];
/// let (mut energy, mut forces) = (0.0, [1.0; 3]);
/// let null = std::ptr::null_mut();
/// // SAFETY: every array has the header's length.
/// let code = unsafe {
///     equivariant_model_compute_structure(model, 1, [1].as_ptr(), [0.0; 3].as_ptr(), cell.as_ptr(),
///         std::ptr::null(), &mut energy, null, forces.as_mut_ptr(), null, null)
/// };
/// assert_eq!(code, EQUIVARIANT_OK);
/// assert!(forces.iter().all(|f| f.abs() < 1e-12)); // a perfect lattice
/// # unsafe { equivariant_model_free(model) };
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the C signature: one array per argument
pub unsafe extern "C" fn equivariant_model_compute_structure(
    model: *const EquivariantModel,
    num_atoms: i32,
    species: *const i32,
    positions: *const f64,
    cell: *const f64,
    pbc: *const i32,
    energy: *mut f64,
    atom_energies: *mut f64,
    forces: *mut f64,
    virial: *mut f64,
    atom_virials: *mut f64,
) -> i32 {
    guard(|| {
        // SAFETY: the caller passes NULL or a live model.
        let model = unsafe { model_ref(model) }?;
        let n = count(num_atoms, "num_atoms")?;
        // SAFETY: NULL or valid for its length (the caller's guarantee).
        let types = self::species(model, unsafe { input(species, n, "species") }?)?;
        // SAFETY: NULL or valid for its length (the caller's guarantee).
        let positions = rows(unsafe { input(positions, 3 * n, "positions") }?);
        let calculator = model.calculator();
        let symbols = types
            .iter()
            .map(|&t| calculator.species()[t].clone())
            .collect();
        let mut frame = Frame::new(symbols, positions);
        if !cell.is_null() {
            // SAFETY: NULL or valid for its length (the caller's guarantee).
            let lattice = rows(unsafe { input(cell, 9, "cell") }?);
            frame.cell = Some([lattice[0], lattice[1], lattice[2]]);
            frame.pbc = [true; 3];
        }
        if !pbc.is_null() {
            // SAFETY: NULL or valid for its length (the caller's guarantee).
            let flags = unsafe { input(pbc, 3, "pbc") }?;
            frame.pbc = [flags[0] != 0, flags[1] != 0, flags[2] != 0];
            if frame.cell.is_none() && frame.pbc.contains(&true) {
                return Err(Failure::invalid(
                    "pbc has a periodic axis but cell is NULL".into(),
                ));
            }
        }
        let result = calculator.compute(&frame)?;
        // SAFETY: outputs NULL or valid for their lengths.
        unsafe { store(&result, energy, atom_energies, forces, virial, atom_virials) };
        Ok(())
    })
}
