//! The error type of every fallible operation in `equivariant-core`.

use thiserror::Error as ThisError;

/// Every way user input can be rejected. Each variant names the offending values.
///
/// ```
/// use equivariant_core::{o3::Irreps, Error};
/// let err = "10x0e + 3q".parse::<Irreps>().unwrap_err();
/// assert!(matches!(err, Error::InvalidIrreps { .. }));
/// assert!(err.to_string().contains("3q"));
/// ```
#[derive(Debug, Clone, PartialEq, ThisError)]
pub enum Error {
    /// A string that is not an irrep (`l` followed by `e`, `o` or `y`).
    #[error("invalid irrep {text:?}: {reason}")]
    InvalidIrrep {
        /// The text that failed to parse.
        text: String,
        /// Why it failed.
        reason: String,
    },
    /// A tensor formula (`"ij=-ji"`, e3nn's `ReducedTensorProducts` and
    /// `reduce_permutation`) that is malformed or whose indices lack dimensions.
    #[error("invalid formula {formula:?}: {reason}")]
    InvalidFormula {
        /// The formula.
        formula: String,
        /// What is wrong.
        reason: String,
    },
    /// A string that is not a list of irreps (`mul x irrep + ...`).
    #[error("invalid irreps {text:?}: bad term {term:?}: {reason}")]
    InvalidIrreps {
        /// The whole string.
        text: String,
        /// The term that failed to parse.
        term: String,
        /// Why it failed.
        reason: String,
    },
    /// An operation needing at least one irrep got an empty list.
    #[error("{what} of an empty Irreps")]
    EmptyIrreps {
        /// The operation.
        what: &'static str,
    },
    /// An index past the end of an `Irreps`.
    #[error("index {index} out of range for Irreps of length {len}")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The number of entries.
        len: usize,
    },
    /// Three degrees violating |l1 - l2| <= l3 <= l1 + l2.
    #[error("({l1}, {l2}, {l3}) violates the triangle rule |l1 - l2| <= l3 <= l1 + l2")]
    Triangle {
        /// First degree.
        l1: u32,
        /// Second degree.
        l2: u32,
        /// Third degree.
        l3: u32,
    },
    /// A matrix that should be orthogonal is not.
    #[error("matrix is not orthogonal: max |R R^T - I| = {deviation:e}")]
    NotOrthogonal {
        /// The largest deviation of R R^T from the identity.
        deviation: f64,
    },
    /// A rotation matrix with determinant -1 where a proper rotation is required.
    #[error("matrix has determinant {det}, a proper rotation (det = +1) is required")]
    NotProperRotation {
        /// The determinant found.
        det: f64,
    },
    /// A buffer whose length does not match the shape the operation needs.
    #[error("{what}: expected length {expected}, got {got}")]
    ShapeMismatch {
        /// Which buffer.
        what: &'static str,
        /// The expected length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A non-finite number (NaN or infinity) in the input.
    #[error("{what} contains a non-finite value at index {index}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// The first offending index.
        index: usize,
    },
    /// A tensor-product instruction that cannot be built (index out of range, parity or
    /// triangle rule broken, multiplicities that do not fit the connection mode).
    #[error("instruction {index}: {reason}")]
    InvalidInstruction {
        /// The position of the instruction in the list.
        index: usize,
        /// Why it is invalid.
        reason: String,
    },
    /// An argument outside its domain (a name not in a list, a count of zero, ...).
    #[error("invalid argument {name}: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A stored parameter set (an e3nn `state_dict`) that does not fit the module it is
    /// loaded into: a key missing from the file, a key the module does not have, or a
    /// tensor of another shape or dtype.
    #[error("state dict key {key:?}: {reason}")]
    StateDict {
        /// The parameter's path (`mp.layers.0.first.sc.weight`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Ok` when a buffer has the length it must have, else [`Error::ShapeMismatch`] naming it.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what,
            expected,
            got,
        })
    }
}
