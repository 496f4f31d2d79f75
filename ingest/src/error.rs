//! Errors of the ingest step: each names the file (and, where there is one, the line) and,
//! where it can, the fix.

use std::path::PathBuf;

/// Everything that stops an ingest. Rows with invalid fields are *not* errors: they go to
/// quarantine with their reason and the ingest goes on. After an error nothing is committed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CSV reader could not go on.
    #[error("{}:{line}: {source}", path.display())]
    ReadCsv {
        path: PathBuf,
        line: u64,
        #[source]
        source: csv::Error,
    },
    /// The header lacks columns that every log of its kind must have.
    #[error(
        "{}:1: not a recognisable {kind} log: missing column(s) {}; the header has: {}. \
         Rename them, or map them in a profile ([columns] {} = \"header in the file\"), \
         or use --kind if this is another kind of log",
        path.display(),
        missing.join(", "),
        found.join(", "),
        missing.first().map(String::as_str).unwrap_or("column")
    )]
    MissingColumns {
        path: PathBuf,
        kind: &'static str,
        missing: Vec<String>,
        found: Vec<String>,
    },
    /// The file has no header to recognise.
    #[error("{}:{line}: no recognisable header: {hint}", path.display())]
    NoHeader {
        path: PathBuf,
        line: u64,
        hint: String,
    },
    /// A spreadsheet could not be opened, or has no such sheet.
    #[error("{}: {message}", path.display())]
    Spreadsheet { path: PathBuf, message: String },
    /// A zip archive could not be read, or does not hold exactly one export.
    #[error("{}: {message}", path.display())]
    Archive { path: PathBuf, message: String },
    /// The file is empty: not even a header row.
    #[error("{}: the file is empty (no header row)", path.display())]
    EmptyFile { path: PathBuf },
    /// A profile is unreadable or invalid.
    #[error("profile {}: {message}", path.display())]
    Profile { path: PathBuf, message: String },
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
    /// `--fail-on-quarantine` and some rows would be quarantined: nothing was committed.
    #[error("{quarantined} row(s) would be quarantined, nothing was committed; first: {first}")]
    Refused { quarantined: u64, first: String },
    /// Another ingest holds the warehouse.
    #[error(
        "{}: another ingest is running on this warehouse (if none is, remove this lock file)",
        path.display()
    )]
    Locked { path: PathBuf },
    /// The end of a file showed another dialect than its first bytes (bytes that are not
    /// UTF-8 after a head that was): the ingest starts again, reading that file first.
    #[error(
        "{}: the file is not UTF-8 beyond its first 64 KiB; it is read again as Windows-1252",
        path.display()
    )]
    DialectChanged { path: PathBuf },
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
