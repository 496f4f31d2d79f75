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
use crate::session::Engine;

/// The prefix of the public KPI views: `kpi_online_share`.
pub const KPI_VIEW_PREFIX: &str = "kpi_";

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

impl Engine {
    /// Runs one read-only SQL statement for `audience` and returns its result. Internal
    /// callers read every table; public callers only the KPI views (see the module docs).
    pub async fn query(&self, sql: &str, audience: Audience) -> Result<Vec<RecordBatch>> {
        let ctx = match audience {
            Audience::Internal => {
                let ctx = self.session().await?;
                let statement = ctx
                    .state()
                    .sql_to_statement(sql, &Dialect::Generic)
                    .map_err(|source| Error::Query { source })?;
                check_read_only(&statement)?;
                ctx
            }
            Audience::Public => self.public_session(sql).await?,
        };
        self.run_limited(&ctx, sql).await
    }

    /// A session holding only the public views that `sql` names; any other table is refused.
    async fn public_session(&self, sql: &str) -> Result<SessionContext> {
        let ctx = self.bare_session()?;
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
        for def in wanted {
            let result = self
                .kpi(
                    &KpiQuery::new(&def.id)
                        .by(kpi_view_dimensions(def))
                        .for_audience(Audience::Public),
                )
                .await?;
            let batch = result.batch()?;
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
            ctx.register_table(kpi_view_name(def).as_str(), Arc::new(table))?;
        }
        Ok(ctx)
    }

    /// Plans `sql` with writes and session statements disabled and runs it within the
    /// engine's time and row limits.
    async fn run_limited(&self, ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = ctx
            .sql_with_options(sql, options)
            .await
            .map_err(|source| Error::Query { source })?;
        let limits = self.limits();
        // One row more than the cap tells whether the result was cut (EXPLAIN must stay the
        // root of its plan, and its output is small).
        let explain = matches!(
            df.logical_plan(),
            LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)
        );
        let df = if explain {
            df
        } else {
            df.limit(0, Some(limits.max_rows + 1))
                .map_err(|source| Error::Query { source })?
        };
        let schema = df.schema().inner().clone();
        let batches = tokio::time::timeout(limits.timeout, df.collect())
            .await
            .map_err(|_| Error::Timeout {
                seconds: limits.timeout.as_secs(),
            })?
            .map_err(|source| Error::Query { source })?;
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if total > limits.max_rows {
            return Err(Error::BadParameter {
                message: format!(
                    "the result has more than {} rows (the limit): aggregate or add LIMIT",
                    limits.max_rows
                ),
            });
        }
        Ok(with_schema(batches, schema))
    }
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
