//! A loaded checkpoint and what a host asks of it before computing: its cutoff, its number of
//! layers (how far ghost atoms must reach), its species.

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use equivariant::burn::tensor::DType;
use equivariant::nn::models::nequip::Nequip;
use equivariant_md::calculator::Calculator;

use crate::error::{EQUIVARIANT_ERROR_LOAD, Failure, guard};

/// A checkpoint of `equivariant train` loaded to compute (opaque to C).
pub struct EquivariantModel {
    /// The calculator; burn's modules are `Send` but not `Sync`, so calls take turns.
    calculator: Mutex<Calculator<Nequip>>,
    /// The chemical symbol of each type index, NUL-terminated for C.
    symbols: Vec<CString>,
    cutoff: f64,
    num_layers: i32,
}

impl EquivariantModel {
    /// The calculator, for one call (a call that panicked leaves it usable: it holds no
    /// state between calls).
    pub(crate) fn calculator(&self) -> MutexGuard<'_, Calculator<Nequip>> {
        self.calculator
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The number of species.
    pub(crate) fn num_species(&self) -> usize {
        self.symbols.len()
    }
}

/// The model behind `model`, or a failure for NULL.
///
/// # Safety
/// `model` is NULL or a live pointer from [`equivariant_model_load`].
pub(crate) unsafe fn model_ref<'a>(
    model: *const EquivariantModel,
) -> Result<&'a EquivariantModel, Failure> {
    // SAFETY: the caller passes NULL or a live model.
    unsafe { model.as_ref() }.ok_or_else(|| Failure::null("model"))
}

/// Writes `value` to `out`, or a failure for NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
pub(crate) unsafe fn write<T>(out: *mut T, what: &str, value: T) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL, and the caller guarantees it is valid for a write.
    unsafe { out.write(value) };
    Ok(())
}

/// The UTF-8 string at `s`, or a failure naming `what`.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string.
unsafe fn string<'a>(s: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if s.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL, and NUL-terminated by the caller's guarantee.
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| Failure::invalid(format!("{what} is not UTF-8")))
}

/// Loads the checkpoint at `path` to run in f32 (`dtype_bits` 32), f64 (64) or the
/// checkpoint's own dtype (0); `*model` then owns it (free it with
/// [`equivariant_model_free`]).
///
/// Errors: `EQUIVARIANT_ERROR_LOAD` for a missing, truncated or foreign checkpoint;
/// `EQUIVARIANT_ERROR_INVALID_ARGUMENT` for another `dtype_bits` or a path not UTF-8;
/// `EQUIVARIANT_ERROR_NULL_POINTER`.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `model` is NULL or valid for a write.
///
/// ```
/// use std::ffi::CString;
/// use equivariant_capi::*;
/// # let path = equivariant_capi::doc_checkpoint()?;
/// let path = CString::new(path.to_str().unwrap())?;
/// let mut model = std::ptr::null_mut();
/// // SAFETY: a NUL-terminated path and a place for the model.
/// assert_eq!(unsafe { equivariant_model_load(path.as_ptr(), 32, &mut model) }, EQUIVARIANT_OK);
/// // SAFETY: as above.
/// assert_eq!(unsafe { equivariant_model_load(path.as_ptr(), 16, &mut model) }, EQUIVARIANT_ERROR_INVALID_ARGUMENT);
/// // SAFETY: the model came from equivariant_model_load and is freed once.
/// unsafe { equivariant_model_free(model) };
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn equivariant_model_load(
    path: *const c_char,
    dtype_bits: i32,
    model: *mut *mut EquivariantModel,
) -> i32 {
    guard(|| {
        if model.is_null() {
            return Err(Failure::null("model"));
        }
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let path = unsafe { string(path, "path") }?;
        let dtype = match dtype_bits {
            0 => None,
            32 => Some(DType::F32),
            64 => Some(DType::F64),
            other => {
                return Err(Failure::invalid(format!(
                    "dtype_bits {other}: 0 (the checkpoint's), 32 or 64"
                )));
            }
        };
        let calculator =
            Calculator::<Nequip>::load(Path::new(path), dtype).map_err(|e| Failure {
                code: EQUIVARIANT_ERROR_LOAD,
                message: e.to_string(),
            })?;
        let symbols = calculator
            .species()
            .iter()
            .map(|s| CString::new(s.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Failure::invalid(format!("{path}: a species name holds a NUL")))?;
        let config = calculator.model().config();
        let loaded = EquivariantModel {
            cutoff: config.r_max,
            num_layers: i32::try_from(config.num_layers)
                .map_err(|_| Failure::invalid(format!("{path}: too many layers")))?,
            symbols,
            calculator: Mutex::new(calculator),
        };
        // SAFETY: checked not NULL above; valid for a write by the caller's guarantee.
        unsafe { model.write(Box::into_raw(Box::new(loaded))) };
        Ok(())
    })
}

/// Frees a model from [`equivariant_model_load`] (NULL is ignored).
///
/// # Safety
/// `model` is NULL or a model from [`equivariant_model_load`] not freed before.
///
/// ```
/// // SAFETY: NULL is ignored.
/// unsafe { equivariant_capi::equivariant_model_free(std::ptr::null_mut()) };
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn equivariant_model_free(model: *mut EquivariantModel) {
    if !model.is_null() {
        // SAFETY: a model from equivariant_model_load (Box::into_raw), freed once.
        let model = unsafe { Box::from_raw(model) };
        // Dropping burn's tensors does not panic; if it did, it must not unwind into C.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(model)));
    }
}

/// The cutoff radius `r_max` of the model's radius graph (Å).
///
/// # Safety
/// `model` is NULL or a live model; `cutoff` is NULL or valid for a write.
///
/// ```
/// use equivariant_capi::*;
/// # let path = std::ffi::CString::new(equivariant_capi::doc_checkpoint()?.to_str().unwrap())?;
/// # let mut model = std::ptr::null_mut();
/// # assert_eq!(unsafe { equivariant_model_load(path.as_ptr(), 0, &mut model) }, EQUIVARIANT_OK);
/// let (mut cutoff, mut layers) = (0.0, 0);
/// // SAFETY: a live model and places for the answers.
/// unsafe {
///     assert_eq!(equivariant_model_cutoff(model, &mut cutoff), EQUIVARIANT_OK);
///     assert_eq!(equivariant_model_num_layers(model, &mut layers), EQUIVARIANT_OK);
///     assert_eq!(equivariant_model_cutoff(std::ptr::null(), &mut cutoff), EQUIVARIANT_ERROR_NULL_POINTER);
///     equivariant_model_free(model);
/// }
/// assert_eq!((cutoff, layers), (3.0, 2)); // ghosts must reach 6 Å
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn equivariant_model_cutoff(
    model: *const EquivariantModel,
    cutoff: *mut f64,
) -> i32 {
    // SAFETY: the caller's guarantees on both pointers.
    guard(|| unsafe { write(cutoff, "cutoff", model_ref(model)?.cutoff) })
}

/// The number of message-passing layers `L`: an atom's energy depends on the atoms within
/// `L * r_max` of it, so a domain's ghost atoms must reach that far.
///
/// # Safety
/// `model` is NULL or a live model; `num_layers` is NULL or valid for a write.
///
/// ```
/// use equivariant_capi::*;
/// # let path = std::ffi::CString::new(equivariant_capi::doc_checkpoint()?.to_str().unwrap())?;
/// # let mut model = std::ptr::null_mut();
/// # assert_eq!(unsafe { equivariant_model_load(path.as_ptr(), 0, &mut model) }, EQUIVARIANT_OK);
/// let mut layers = 0;
/// // SAFETY: a live model and a place for the answer.
/// assert_eq!(unsafe { equivariant_model_num_layers(model, &mut layers) }, EQUIVARIANT_OK);
/// assert_eq!(layers, 2);
/// # unsafe { equivariant_model_free(model) };
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn equivariant_model_num_layers(
    model: *const EquivariantModel,
    num_layers: *mut i32,
) -> i32 {
    // SAFETY: the caller's guarantees on both pointers.
    guard(|| unsafe { write(num_layers, "num_layers", model_ref(model)?.num_layers) })
}

/// The number of species the model knows; their type indices are `0..num_species`.
///
/// # Safety
/// `model` is NULL or a live model; `num_species` is NULL or valid for a write.
///
/// ```
/// use equivariant_capi::*;
/// # let path = std::ffi::CString::new(equivariant_capi::doc_checkpoint()?.to_str().unwrap())?;
/// # let mut model = std::ptr::null_mut();
/// # assert_eq!(unsafe { equivariant_model_load(path.as_ptr(), 0, &mut model) }, EQUIVARIANT_OK);
/// let mut n = 0;
/// // SAFETY: a live model and a place for the answer.
/// assert_eq!(unsafe { equivariant_model_num_species(model, &mut n) }, EQUIVARIANT_OK);
/// assert_eq!(n, 2);
/// # unsafe { equivariant_model_free(model) };
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn equivariant_model_num_species(
    model: *const EquivariantModel,
    num_species: *mut i32,
) -> i32 {
    guard(|| {
        // SAFETY: the caller passes NULL or a live model.
        let n = unsafe { model_ref(model) }?.num_species();
        let n = i32::try_from(n).map_err(|_| Failure::invalid("too many species".into()))?;
        // SAFETY: NULL or valid for a write.
        unsafe { write(num_species, "num_species", n) }
    })
}

/// The chemical symbol of type index `index`, NUL-terminated, owned by the model.
///
/// # Safety
/// `model` is NULL or a live model; `symbol` is NULL or valid for a write.
///
/// ```
/// use std::ffi::CStr;
/// use equivariant_capi::*;
/// # let path = std::ffi::CString::new(equivariant_capi::doc_checkpoint()?.to_str().unwrap())?;
/// # let mut model = std::ptr::null_mut();
/// # assert_eq!(unsafe { equivariant_model_load(path.as_ptr(), 0, &mut model) }, EQUIVARIANT_OK);
/// let mut symbol = std::ptr::null();
/// // SAFETY: a live model and a place for the answer; the symbol lives as long as the model.
/// unsafe {
///     assert_eq!(equivariant_model_species_symbol(model, 1, &mut symbol), EQUIVARIANT_OK);
///     assert_eq!(CStr::from_ptr(symbol).to_str()?, "Cu");
///     assert_eq!(equivariant_model_species_symbol(model, 2, &mut symbol), EQUIVARIANT_ERROR_INVALID_ARGUMENT);
///     equivariant_model_free(model);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn equivariant_model_species_symbol(
    model: *const EquivariantModel,
    index: i32,
    symbol: *mut *const c_char,
) -> i32 {
    guard(|| {
        // SAFETY: the caller passes NULL or a live model.
        let model = unsafe { model_ref(model) }?;
        let name = usize::try_from(index)
            .ok()
            .and_then(|i| model.symbols.get(i))
            .ok_or_else(|| {
                Failure::invalid(format!(
                    "species index {index}: the model knows {} species",
                    model.num_species()
                ))
            })?;
        // SAFETY: NULL or valid for a write.
        unsafe { write(symbol, "symbol", name.as_ptr()) }
    })
}

/// The type index of chemical symbol `symbol`.
///
/// Errors: `EQUIVARIANT_ERROR_INVALID_ARGUMENT` for a species the model does not know.
///
/// # Safety
/// `model` is NULL or a live model; `symbol` NULL or NUL-terminated; `index` NULL or valid
/// for a write.
///
/// ```
/// use equivariant_capi::*;
/// # let path = std::ffi::CString::new(equivariant_capi::doc_checkpoint()?.to_str().unwrap())?;
/// # let mut model = std::ptr::null_mut();
/// # assert_eq!(unsafe { equivariant_model_load(path.as_ptr(), 0, &mut model) }, EQUIVARIANT_OK);
/// let mut index = -1;
/// // SAFETY: a live model, NUL-terminated symbols, a place for the answer.
/// unsafe {
///     assert_eq!(equivariant_model_species_index(model, c"Au".as_ptr(), &mut index), EQUIVARIANT_OK);
///     assert_eq!(index, 0);
///     assert_eq!(equivariant_model_species_index(model, c"O".as_ptr(), &mut index), EQUIVARIANT_ERROR_INVALID_ARGUMENT);
///     equivariant_model_free(model);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn equivariant_model_species_index(
    model: *const EquivariantModel,
    symbol: *const c_char,
    index: *mut i32,
) -> i32 {
    guard(|| {
        // SAFETY: the caller passes NULL or a live model.
        let model = unsafe { model_ref(model) }?;
        // SAFETY: NULL or NUL-terminated.
        let wanted = unsafe { string(symbol, "symbol") }?;
        let found = model
            .symbols
            .iter()
            .position(|s| s.to_bytes() == wanted.as_bytes())
            .ok_or_else(|| {
                let known: Vec<_> = model.symbols.iter().map(|s| s.to_string_lossy()).collect();
                Failure::invalid(format!(
                    "species {wanted} is not one the model knows ({known:?})"
                ))
            })?;
        // Fewer species than i32::MAX: num_species checked it.
        let found =
            i32::try_from(found).map_err(|_| Failure::invalid("too many species".into()))?;
        // SAFETY: NULL or valid for a write.
        unsafe { write(index, "index", found) }
    })
}
