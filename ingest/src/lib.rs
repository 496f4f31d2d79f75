//! civica-ingest: turns public-service logs into the Hive-partitioned Parquet warehouse.
//!
//! The crate owns the canonical log format ([`schema`]), the warehouse layout ([`Layout`]),
//! the validation of every input row ([`validate`]), pseudonymisation of citizen identifiers
//! ([`pseudonym`]), the commit of accepted and quarantined rows ([`warehouse`]) and the
//! synthetic sample city used by the demo and the tests ([`sample`]).
//!
//! Writing goes through polars; readers on the other side (DataFusion, DuckDB, polars) meet
//! this crate only at the Parquet files it writes and at the names in [`schema`].

pub mod archive;
pub mod calendar;
pub mod datafile;
pub mod dialect;
pub mod error;
pub mod frames;
pub mod header;
pub mod html;
pub mod layout;
pub mod partition;
pub mod profile;
pub mod pseudonym;
pub mod sample;
pub mod schema;
pub mod source;
pub mod spreadsheet;
pub mod validate;
pub mod versions;
pub mod warehouse;

pub use error::{Error, Result};
pub use header::LogKind;
pub use layout::Layout;
pub use layout::Table;
pub use profile::Profile;
pub use pseudonym::Pseudonymiser;
pub use warehouse::{CompactSummary, IngestOptions, IngestSummary, compact, ingest};
