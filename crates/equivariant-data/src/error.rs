//! The error type of `equivariant-data`.

use thiserror::Error as ThisError;

/// Every way a file or a frame can be rejected; each names the file, the line and the field.
///
/// ```
/// use equivariant_data::{Error, extxyz};
/// let err = extxyz::parse("2\n\nCu 0 0 0\n", "short.xyz").unwrap_err();
/// assert!(matches!(err, Error::Parse { line: 4, .. })); // the second atom is missing
/// assert!(err.to_string().contains("short.xyz"));
/// ```
#[derive(Debug, Clone, PartialEq, ThisError)]
pub enum Error {
    /// A line of a file that is not what the format says.
    #[error("{file}, line {line}, {field}: {reason}")]
    Parse {
        /// The file (or the name given for a string).
        file: String,
        /// The line, counting from 1.
        line: usize,
        /// The field: a key of the comment line, a column, or the atom count.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A frame that cannot be written as it is.
    #[error("frame {frame}, {field}: {reason}")]
    InvalidFrame {
        /// The frame's index.
        frame: usize,
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// An argument outside its domain.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{file}: {reason}")]
    Io {
        /// The file.
        file: String,
        /// The operating system's message.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
