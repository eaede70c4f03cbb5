//! `equivariant._native`: the Rust half of the Python package `equivariant`. One class,
//! [`Potential`], a checkpoint of `equivariant train` loaded for energies, forces and stress
//! ([`equivariant_md::calculator::Calculator`]); the ASE calculator around it is Python
//! (`python/equivariant/calculator.py`). Errors reach Python as `EquivariantError` (a
//! `ValueError`) naming what is wrong, `FileNotFoundError` for a missing checkpoint, or
//! another `OSError` for a checkpoint that cannot be read.

use std::path::PathBuf;
use std::sync::Mutex;

use equivariant::burn::tensor::DType;
use equivariant::nn::models::nequip::Nequip;
use equivariant_data::Frame;
use equivariant_md::calculator::{Calculator, Prediction};
use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The extension's own allocator: a call's large tensors (tens of MB at 10 000 atoms) are
/// above glibc's largest mmap threshold, so under Python's malloc every call mapped and
/// unmapped them; mimalloc keeps them. Python's own allocations are untouched.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(
    _native,
    EquivariantError,
    PyValueError,
    "Bad input to equivariant: an unknown species, arrays of the wrong length, NaN positions, a checkpoint that does not load."
);

/// The Python exception for an error of the calculator.
fn to_python(error: equivariant_train::Error) -> PyErr {
    match &error {
        equivariant_train::Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(error.to_string()),
            _ => PyOSError::new_err(error.to_string()),
        },
        _ => EquivariantError::new_err(error.to_string()),
    }
}

/// A trained potential: `Potential(checkpoint, dtype=None, skin=0.5)` loads a checkpoint of
/// `equivariant train`, run in its own dtype or in `dtype` (`"float32"` or `"float64"`), with
/// a neighbour list kept between calls at the model's cutoff plus `skin` Å (built again only
/// when an atom has moved more than `skin / 2`, or the atoms, species or cell changed; 0
/// builds a graph per call; the results are the same to the bit).
#[pyclass(frozen, module = "equivariant._native")]
pub struct Potential {
    /// The calculator; burn's modules are `Send` but not `Sync`, so calls take turns. Boxed:
    /// it holds 64-byte-aligned parts (burn's device), and Python allocates objects at
    /// 16 bytes, so it must not live inside the Python object itself.
    calculator: Mutex<Box<Calculator<Nequip>>>,
    species: Vec<String>,
    dtype: &'static str,
    r_max: f64,
    skin: f64,
}

#[pymethods]
impl Potential {
    /// Loads `checkpoint`, to run in `dtype` (`None`: the checkpoint's own) with a neighbour
    /// list of skin `skin` Å.
    #[new]
    #[pyo3(signature = (checkpoint, dtype=None, skin=0.5))]
    fn new(py: Python<'_>, checkpoint: PathBuf, dtype: Option<&str>, skin: f64) -> PyResult<Self> {
        let dtype = match dtype {
            None => None,
            Some("float32" | "f32") => Some(DType::F32),
            Some("float64" | "f64") => Some(DType::F64),
            Some(other) => {
                return Err(EquivariantError::new_err(format!(
                    "dtype {other:?} is not \"float32\" or \"float64\""
                )));
            }
        };
        let calculator = py
            .detach(|| Calculator::<Nequip>::load(&checkpoint, dtype)?.with_skin(skin))
            .map_err(to_python)?;
        Ok(Potential {
            species: calculator.species().to_vec(),
            dtype: if calculator.dtype() == DType::F64 {
                "float64"
            } else {
                "float32"
            },
            r_max: {
                use equivariant::potential::Potential as _;
                calculator.model().r_max()
            },
            skin,
            calculator: Mutex::new(Box::new(calculator)),
        })
    }

    /// The chemical symbols the model knows, in its type-index order.
    #[getter]
    fn species(&self) -> Vec<String> {
        self.species.clone()
    }

    /// `"float32"` or `"float64"`: the dtype the model runs in.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype
    }

    /// The model's cutoff radius (Å).
    #[getter]
    fn r_max(&self) -> f64 {
        self.r_max
    }

    /// The neighbour list's skin (Å).
    #[getter]
    fn skin(&self) -> f64 {
        self.skin
    }

    /// How many times the neighbour list was built (waits for a call in progress).
    #[getter]
    fn list_builds(&self, py: Python<'_>) -> usize {
        py.detach(|| {
            self.calculator
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .list_builds()
        })
    }

    /// The energy (eV), the energy of each atom (eV, `energies`), forces (eV/Å, `n` rows of
    /// 3), virial (eV, 3x3) and stress (eV/Å³,
    /// 3x3, ASE's sign; `None` unless all three axes are periodic) of atoms `symbols` at
    /// `positions` (`n` rows of 3, Å), in `cell` (3 rows of 3, Å; a zero row along a
    /// non-periodic axis, as in ASE's slabs, is allowed) with periodic axes `pbc`.
    ///
    /// Raises `EquivariantError` for symbols and positions of different lengths, a species
    /// the model does not know, NaN positions, two atoms at one place, a singular cell.
    #[pyo3(signature = (symbols, positions, cell=None, pbc=None))]
    fn compute<'py>(
        &self,
        py: Python<'py>,
        symbols: Vec<String>,
        positions: Vec<[f64; 3]>,
        cell: Option<[[f64; 3]; 3]>,
        pbc: Option<[bool; 3]>,
    ) -> PyResult<Bound<'py, PyDict>> {
        if symbols.len() != positions.len() {
            return Err(EquivariantError::new_err(format!(
                "{} chemical symbols for {} positions",
                symbols.len(),
                positions.len()
            )));
        }
        let pbc = pbc.unwrap_or([false; 3]);
        if pbc.contains(&true) && cell.is_none() {
            return Err(EquivariantError::new_err(
                "periodic boundary conditions need a cell",
            ));
        }
        let mut frame = Frame::new(symbols, positions);
        frame.cell = cell;
        frame.pbc = pbc;
        let prediction: Prediction = py
            .detach(|| {
                let calculator = self
                    .calculator
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                calculator.compute(&frame)
            })
            .map_err(to_python)?;
        let result = PyDict::new(py);
        result.set_item("energy", prediction.energy)?;
        result.set_item("energies", prediction.energies)?;
        result.set_item("forces", prediction.forces)?;
        result.set_item("virial", prediction.virial)?;
        result.set_item("stress", prediction.stress)?;
        Ok(result)
    }

    fn __repr__(&self) -> String {
        format!(
            "Potential(species={:?}, dtype={:?}, r_max={}, skin={})",
            self.species, self.dtype, self.r_max, self.skin
        )
    }
}

/// The module `equivariant._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Potential>()?;
    m.add("EquivariantError", m.py().get_type::<EquivariantError>())?;
    Ok(())
}
