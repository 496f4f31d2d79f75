//! civica-analytics: the KPI catalogue and the query engine over the Parquet warehouse.
//!
//! Everything that speaks SQL or builds DataFusion plans lives here: the session over the
//! warehouse ([`session`]), the KPI definitions ([`kpi`]), the roll-ups materialised at each
//! commit ([`rollup`]), read-only SQL for analysts and public views ([`sql`]) and
//! the encoding of results as table, CSV or JSON ([`format`]). Callers (the CLI, the dashboard)
//! pass typed values and receive typed results; they never build SQL.

pub mod calendar;
pub mod catalogue;
mod columnar;
pub mod disclosure;
pub mod error;
pub mod format;
pub mod freshness;
mod grouping;
pub mod kpi;
mod membership;
pub mod opendata;
pub mod quarantine;
pub mod rollup;
pub mod session;
pub mod sql;

pub use catalogue::Catalogue;
pub use datafusion::arrow;
pub use datafusion::parquet;
pub use error::{Error, Result};
pub use format::OutputFormat;
pub use kpi::{Audience, Dimension, Flag, KpiQuery, KpiResult, KpiRow, Scan};
pub use rollup::{RollupSummary, materialise};
pub use session::{Engine, QueryLimits};
