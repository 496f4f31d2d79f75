//! Read-only SQL, shaped by audience.
//!
//! - **Internal** (staff, analysts): every warehouse table — `requests`, `surveys`, their
//!   `_history`, `quarantine`, and the roll-ups `requests_rollup`/`surveys_rollup` when they
//!   exist for the latest commit.
//! - **Public**: only the disclosure-controlled KPI views `kpi_<id>` (each catalogue KPI by
//!   service and its default period, with small cells already suppressed: empty value and
//!   `flag = suppressed`). Naming any other table is refused with a message listing the
//!   views.
//!
//! Only one statement of the forms `SELECT`, `WITH … SELECT` and `EXPLAIN` of those is
//! accepted; it is also planned with DDL, DML and session statements disabled (no `CREATE`,
//! `INSERT`, `COPY`, `SET`), and the sessions have no URL tables, so a query reads only the
//! registered tables. Memory, time and returned rows are bounded ([`crate::QueryLimits`]).

use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::Dialect;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::catalogue::{DefaultPeriod, KpiDef};
use crate::error::{Error, Result};
use crate::kpi::{Audience, Dimension, KpiQuery};
use crate::session::{Engine, QueryLimits};

/// The prefix of the public KPI views: `kpi_online_share`.
pub const KPI_VIEW_PREFIX: &str = "kpi_";

/// The columns of every KPI view after those of its breakdown.
pub const KPI_VIEW_MEASURES: [&str; 8] = [
    "value",
    "numerator",
    "denominator",
    "n",
    "ci_low",
    "ci_high",
    "change",
    "flag",
];

/// A public query to start from: every service's online share by year.
pub const PUBLIC_EXAMPLE: &str =
    "SELECT service, year, value, n, flag\nFROM kpi_online_share\nORDER BY service, year";

/// The name of a KPI's public view.
pub fn kpi_view_name(def: &KpiDef) -> String {
    format!("{KPI_VIEW_PREFIX}{}", def.id)
}

/// The breakdown of a KPI's public view: by service (when the KPI allows it) and its default
/// period, as on the open-data downloads.
pub fn kpi_view_dimensions(def: &KpiDef) -> Vec<Dimension> {
    let mut by = Vec::new();
    if def.dimensions.iter().any(|d| d == "service") {
        by.push(Dimension::Service);
    }
    by.push(match def.default_period {
        DefaultPeriod::Month => Dimension::Month,
        DefaultPeriod::Quarter => Dimension::Quarter,
        DefaultPeriod::Year => Dimension::Year,
        DefaultPeriod::SchoolYear => Dimension::SchoolYear,
    });
    by
}

/// Refuses everything but one read statement, before any table is looked up.
fn check_read_only(statement: &Statement) -> Result<()> {
    let read = match statement {
        Statement::Statement(s) => matches!(**s, SqlStatement::Query(_)),
        Statement::Explain(explain) => return check_read_only(&explain.statement),
        _ => false,
    };
    if read {
        Ok(())
    } else {
        Err(Error::Query {
            source: DataFusionError::Plan(
                "only read queries (SELECT, WITH … SELECT, EXPLAIN) are allowed".into(),
            ),
        })
    }
}

/// The rows of a query, cut at a row limit.
#[derive(Debug, Clone)]
pub struct QueryRows {
    /// At most `max_rows` rows (one empty batch, with the columns, when there are none).
    pub batches: Vec<RecordBatch>,
    /// The query had more rows than `max_rows`; only the first ones are here.
    pub truncated: bool,
    /// The row limit the query ran under.
    pub max_rows: usize,
    /// The warehouse version (commit) the query read. Read before the query ran, a version
    /// could be older than the data; after, newer.
    pub version: u64,
}

impl QueryRows {
    /// The number of rows returned.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

impl Engine {
    /// Runs one read-only SQL statement for `audience` and returns its result. Internal
    /// callers read every table; public callers only the KPI views (see the module docs).
    /// A result longer than the engine's row limit is an error.
    pub async fn query(&self, sql: &str, audience: Audience) -> Result<Vec<RecordBatch>> {
        let limits = self.limits();
        let rows = self.query_rows(sql, audience, limits).await?;
        if rows.truncated {
            return Err(Error::BadParameter {
                message: format!(
                    "the result has more than {} rows (the limit): aggregate or add LIMIT",
                    limits.max_rows
                ),
            });
        }
        Ok(rows.batches)
    }

    /// Runs one read-only SQL statement for `audience` within `limits`: the first
    /// `limits.max_rows` rows (and whether there were more), or [`Error::Timeout`] when the
    /// whole (public views included) takes longer than `limits.timeout`. The session is
    /// bounded by the smaller of `limits.memory_bytes` and the engine's memory limit.
    pub async fn query_rows(
        &self,
        sql: &str,
        audience: Audience,
        limits: QueryLimits,
    ) -> Result<QueryRows> {
        let limits = QueryLimits {
            memory_bytes: limits.memory_bytes.min(self.limits().memory_bytes),
            ..limits
        };
        let run = async {
            let (ctx, version) = match audience {
                Audience::Internal => {
                    let version = self.version()?;
                    let ctx = self.session_at(version).await?;
                    let statement = ctx
                        .state()
                        .sql_to_statement(sql, &Dialect::Generic)
                        .map_err(|source| Error::Query { source })?;
                    check_read_only(&statement)?;
                    (ctx, version)
                }
                Audience::Public => self.public_session(sql, limits.memory_bytes).await?,
            };
            run_limited(&ctx, sql, limits.max_rows, version).await
        };
        tokio::time::timeout(limits.timeout, run)
            .await
            .map_err(|_| Error::Timeout {
                seconds: limits.timeout.as_secs(),
            })?
    }

    /// A session holding only the public views that `sql` names (any other table is refused),
    /// and the warehouse version the views were computed from (the latest of them, should a
    /// commit land between two views; the latest commit when `sql` names none).
    async fn public_session(
        &self,
        sql: &str,
        memory_bytes: usize,
    ) -> Result<(SessionContext, u64)> {
        let ctx = self.bare_session(memory_bytes)?;
        let state = ctx.state();
        let statement = state
            .sql_to_statement(sql, &Dialect::Generic)
            .map_err(|source| Error::Query { source })?;
        check_read_only(&statement)?;
        let references = state
            .resolve_table_references(&statement)
            .map_err(|source| Error::Query { source })?;
        let catalogue = self.catalogue();
        let views = || {
            catalogue
                .kpis
                .iter()
                .map(kpi_view_name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut wanted: Vec<&KpiDef> = Vec::new();
        for reference in references {
            let def = reference
                .table()
                .strip_prefix(KPI_VIEW_PREFIX)
                .filter(|_| reference.schema().is_none_or(|s| s == "public"))
                .and_then(|id| catalogue.kpis.iter().find(|k| k.id == id));
            match def {
                Some(def) if !wanted.iter().any(|w| w.id == def.id) => wanted.push(def),
                Some(_) => {}
                None => {
                    return Err(Error::NotPublic {
                        table: reference.to_string(),
                        views: views(),
                    });
                }
            }
        }
        let mut version = None;
        for def in wanted {
            let result = self
                .kpi(
                    &KpiQuery::new(&def.id)
                        .by(kpi_view_dimensions(def))
                        .for_audience(Audience::Public),
                )
                .await?;
            version = version.max(Some(result.version));
            let batch = result.batch()?;
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
            ctx.register_table(kpi_view_name(def).as_str(), Arc::new(table))?;
        }
        let version = match version {
            Some(version) => version,
            None => self.version()?,
        };
        Ok((ctx, version))
    }
}

/// Plans `sql` with writes and session statements disabled and runs it, keeping the first
/// `max_rows` rows; `version` is the warehouse version `ctx` reads.
async fn run_limited(
    ctx: &SessionContext,
    sql: &str,
    max_rows: usize,
    version: u64,
) -> Result<QueryRows> {
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(sql, options)
        .await
        .map_err(|source| Error::Query { source })?;
    // One row more than the cap tells whether the result was cut (EXPLAIN must stay the
    // root of its plan, and its output is small).
    let explain = matches!(
        df.logical_plan(),
        LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)
    );
    let df = if explain {
        df
    } else {
        df.limit(0, Some(max_rows.saturating_add(1)))
            .map_err(|source| Error::Query { source })?
    };
    let schema = df.schema().inner().clone();
    let batches = df
        .collect()
        .await
        .map_err(|source| Error::Query { source })?;
    let (batches, truncated) = first_rows(batches, max_rows);
    let (batches, schema) = with_plain_text(batches, &schema)?;
    Ok(QueryRows {
        batches: with_schema(batches, schema),
        truncated,
        max_rows,
        version,
    })
}

/// `batches` and their `schema` with string views as plain strings: the engine reads text as
/// views (see [`crate::session::TEXT`]), but results keep the types they always had, so that
/// Arrow and Parquet downloads read the same in every consumer.
fn with_plain_text(
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
) -> Result<(Vec<RecordBatch>, SchemaRef)> {
    let plain = Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_data_type(plain_type(f.data_type())))
            .collect::<Vec<Field>>(),
        schema.metadata().clone(),
    ));
    if plain == *schema {
        return Ok((batches, plain));
    }
    let encode = |source| Error::Encode { source };
    let batches = batches
        .iter()
        .map(|batch| {
            let columns = batch
                .columns()
                .iter()
                .zip(plain.fields())
                .map(|(column, field)| cast(column, field.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(encode)?;
            RecordBatch::try_new(plain.clone(), columns).map_err(encode)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((batches, plain))
}

/// A type with its string and binary views (also inside lists and structs) as plain
/// strings and binaries.
fn plain_type(data_type: &DataType) -> DataType {
    let field =
        |f: &FieldRef| Arc::new(f.as_ref().clone().with_data_type(plain_type(f.data_type())));
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        other => other.clone(),
    }
}

/// The first `max_rows` rows of `batches`, and whether any were left out.
fn first_rows(batches: Vec<RecordBatch>, max_rows: usize) -> (Vec<RecordBatch>, bool) {
    let mut kept = Vec::with_capacity(batches.len());
    let mut room = max_rows;
    let mut truncated = false;
    for batch in batches {
        if batch.num_rows() <= room {
            room -= batch.num_rows();
            kept.push(batch);
        } else {
            truncated = true;
            if room > 0 {
                kept.push(batch.slice(0, room));
                room = 0;
            }
        }
    }
    (kept, truncated)
}

/// Keeps the schema of an empty result (one empty batch) so that encoders still write the
/// header row.
pub(crate) fn with_schema(
    batches: Vec<RecordBatch>,
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Vec<RecordBatch> {
    if batches.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        batches
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn numbers(range: std::ops::Range<i32>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from_iter_values(range))]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i32> {
        batches
            .iter()
            .flat_map(|b| {
                let column = b.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
                column.values().to_vec()
            })
            .collect()
    }

    #[test]
    fn first_rows_cuts_inside_a_batch_and_says_so() {
        let (kept, truncated) = first_rows(vec![numbers(0..3), numbers(3..6)], 4);
        assert_eq!(values(&kept), [0, 1, 2, 3]);
        assert!(truncated);
    }

    #[test]
    fn first_rows_keeps_a_result_that_fits_exactly() {
        let (kept, truncated) = first_rows(vec![numbers(0..3), numbers(3..5)], 5);
        assert_eq!(values(&kept), [0, 1, 2, 3, 4]);
        assert!(!truncated);
        let (kept, truncated) = first_rows(vec![numbers(0..2)], 0);
        assert!(kept.is_empty() && truncated);
    }
}
