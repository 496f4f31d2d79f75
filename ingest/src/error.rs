//! Errors of the ingest step: each names the file (and, where there is one, the line).

use std::path::PathBuf;

/// Everything that can stop an ingest. Rows with invalid fields are *not* errors: they go to
/// quarantine with their reason and the ingest goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CSV reader could not go on (for example, invalid UTF-8 at a given line).
    #[error("{}:{line}: {source}", path.display())]
    ReadCsv {
        path: PathBuf,
        line: u64,
        #[source]
        source: csv::Error,
    },
    /// The header row lacks columns that every request log must have.
    #[error("{}:1: missing required column(s): {}", path.display(), missing.join(", "))]
    MissingColumns { path: PathBuf, missing: Vec<String> },
    /// The file is empty: not even a header row.
    #[error("{}: the file is empty (no header row)", path.display())]
    EmptyFile { path: PathBuf },
    /// Writing or reading a Parquet file of the warehouse failed.
    #[error("{}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
    /// A commit record of the warehouse is unreadable.
    #[error("{}: invalid commit record: {source}", path.display())]
    CommitRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The pseudonymisation key is missing, too short or unreadable.
    #[error("pseudonymisation key {}: {reason}", path.display())]
    PseudonymKey { path: PathBuf, reason: String },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
