//! The errors of training: bad configuration or data, and the library's own.

/// What went wrong, naming the file, key or value.
///
/// ```
/// let err = equivariant_train::config::TrainConfig::read(std::path::Path::new("/no/such/config.toml")).unwrap_err();
/// assert!(matches!(err, equivariant_train::Error::Io { .. }));
/// assert!(err.to_string().starts_with("/no/such/config.toml"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file that does not parse or holds an impossible value.
    #[error("{file}: {reason}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Training data that cannot be trained on (no frames, a frame without labels).
    #[error("{file}: {reason}")]
    Data {
        /// The data file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint that cannot be read (truncated, foreign, or of another model).
    #[error("checkpoint {file}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A structure with a chemical species the model was not trained on.
    #[error("species {species} is not one the model knows ({known:?})")]
    UnknownSpecies {
        /// The species.
        species: String,
        /// The species the model knows, in type-index order.
        known: Vec<String>,
    },
    /// The data library's error (parsing, splits).
    #[error(transparent)]
    Dataset(#[from] equivariant_data::Error),
    /// The model library's error.
    #[error(transparent)]
    Model(#[from] equivariant::Error),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The system's error.
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
///
/// ```
/// let ok: equivariant_train::Result<u8> = Ok(1);
/// assert_eq!(ok.unwrap(), 1);
/// ```
pub type Result<T> = std::result::Result<T, Error>;
