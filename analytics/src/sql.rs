//! Analysts' read-only SQL over the warehouse.
//!
//! Statements are planned with DDL, DML and session statements disabled (no `CREATE`,
//! `INSERT`, `COPY`, `SET`), and the session has no URL tables, so a query can read only the
//! registered warehouse tables.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::context::SQLOptions;

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
        let schema = df.schema().inner().clone();
        let batches = df
            .collect()
            .await
            .map_err(|source| Error::Query { source })?;
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
