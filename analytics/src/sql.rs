//! Analysts' read-only SQL over the warehouse.
//!
//! Statements are planned with DDL, DML and session statements disabled (no `CREATE`,
//! `INSERT`, `COPY`, `SET`), and the session has no URL tables, so a query can read only the
//! registered warehouse tables.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;

use crate::error::{Error, Result};
use crate::session::Engine;

impl Engine {
    /// Runs one read-only SQL statement and returns its result.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let ctx = self.session().await?;
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
