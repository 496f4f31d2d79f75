//! Errors of the analytics engine, split between the caller's mistakes and engine failures.

use datafusion::error::DataFusionError;

/// What can go wrong when computing a KPI or running a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The KPI id is not in the catalogue.
    #[error("unknown KPI `{id}`; known KPIs: {known}")]
    UnknownKpi { id: String, known: String },
    /// A requested breakdown dimension does not exist (or is not allowed for this KPI).
    #[error("unknown dimension `{name}`; allowed: {allowed}")]
    UnknownDimension { name: String, allowed: String },
    /// An analyst's SQL was refused or failed to plan (syntax, unknown column, not read-only).
    #[error("query refused: {source}")]
    Query {
        #[source]
        source: DataFusionError,
    },
    /// The engine failed while executing a plan built by civica.
    #[error("query engine: {source}")]
    Engine {
        #[source]
        source: DataFusionError,
    },
    /// The KPI catalogue is invalid.
    #[error("KPI catalogue: {message}")]
    Catalogue { message: String },
    /// A query parameter is invalid (period, filter value).
    #[error("{message}")]
    BadParameter { message: String },
    /// A query ran past its time limit.
    #[error("query stopped after {seconds} s (the limit)")]
    Timeout { seconds: u64 },
    /// Results could not be encoded.
    #[error("encoding results: {source}")]
    Encode {
        #[source]
        source: datafusion::arrow::error::ArrowError,
    },
    /// The roll-ups cannot answer a query that asked for them.
    #[error("roll-ups cannot answer this query: {reason}")]
    NoRollup { reason: String },
    /// Roll-ups could not be built.
    #[error("building roll-ups: {message}")]
    Rollup { message: String },
    /// A roll-up file could not be written.
    #[error("writing roll-up {path}: {source}")]
    RollupParquet {
        path: String,
        #[source]
        source: datafusion::parquet::errors::ParquetError,
    },
    /// A public SQL query named a table that only staff may read.
    #[error(
        "table `{table}` is not available to the public; public SQL reads only the \
         disclosure-controlled KPI views: {views}"
    )]
    NotPublic { table: String, views: String },
    /// Reading the warehouse directory failed.
    #[error("warehouse {path}: {source}")]
    Warehouse {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<DataFusionError> for Error {
    /// Errors from plans that civica built itself are engine failures.
    fn from(source: DataFusionError) -> Self {
        Error::Engine { source }
    }
}

impl Error {
    /// True when the caller (not the engine) is at fault: HTTP 400 rather than 500.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::UnknownKpi { .. }
                | Error::UnknownDimension { .. }
                | Error::Query { .. }
                | Error::BadParameter { .. }
                | Error::Timeout { .. }
                | Error::NoRollup { .. }
                | Error::NotPublic { .. }
        )
    }
}
