//! Return codes, the last error's message, and the guard that turns a Rust error or panic
//! into them: nothing unwinds into a C host.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Success.
pub const EQUIVARIANT_OK: i32 = 0;
/// A pointer argument that must not be NULL was NULL.
pub const EQUIVARIANT_ERROR_NULL_POINTER: i32 = 1;
/// An argument's value is wrong: a negative count, a species out of range or unknown, a NaN
/// position, a neighbour index out of range, two atoms at one place, a string not UTF-8.
pub const EQUIVARIANT_ERROR_INVALID_ARGUMENT: i32 = 2;
/// The checkpoint could not be loaded: missing, truncated, foreign or unreadable.
pub const EQUIVARIANT_ERROR_LOAD: i32 = 3;
/// A bug in the library (a caught panic).
pub const EQUIVARIANT_ERROR_INTERNAL: i32 = 4;

thread_local! {
    /// The message of the last failed call on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// A failed call: its code and message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: i32,
    pub(crate) message: String,
}

impl Failure {
    /// A null `what`.
    pub(crate) fn null(what: &str) -> Self {
        Failure {
            code: EQUIVARIANT_ERROR_NULL_POINTER,
            message: format!("{what} is a null pointer"),
        }
    }

    /// A wrong value, `message` saying which and why.
    pub(crate) fn invalid(message: String) -> Self {
        Failure {
            code: EQUIVARIANT_ERROR_INVALID_ARGUMENT,
            message,
        }
    }
}

impl From<equivariant_train::Error> for Failure {
    fn from(error: equivariant_train::Error) -> Self {
        Failure::invalid(error.to_string())
    }
}

/// Runs `body`, recording a failure's message for [`equivariant_last_error`] and returning
/// its code; a panic becomes [`EQUIVARIANT_ERROR_INTERNAL`].
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> i32 {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return EQUIVARIANT_OK,
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Failure {
                code: EQUIVARIANT_ERROR_INTERNAL,
                message: format!("internal error (please report it): {what}"),
            }
        }
    };
    // A message with an interior NUL (from a path, say) is cut there.
    let bytes: Vec<u8> = failure.message.bytes().take_while(|&b| b != 0).collect();
    let message = CString::new(bytes).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
    failure.code
}

/// The message of the last failed call on this thread (`""` if none), NUL-terminated; valid
/// until the next failed call on this thread.
///
/// ```
/// use std::ffi::CStr;
/// use equivariant_capi::*;
/// let mut model = std::ptr::null_mut();
/// // SAFETY: a NUL-terminated path and a place for the model.
/// let code = unsafe { equivariant_model_load(c"/no/such/checkpoint".as_ptr(), 0, &mut model) };
/// assert_eq!(code, EQUIVARIANT_ERROR_LOAD);
/// // SAFETY: the pointer is valid until the next failure on this thread.
/// let message = unsafe { CStr::from_ptr(equivariant_last_error()) }.to_str()?;
/// assert!(message.contains("/no/such/checkpoint"), "{message}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn equivariant_last_error() -> *const c_char {
    // The CString's buffer stays where it is until the next failure replaces it.
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}
