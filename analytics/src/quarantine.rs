//! Reading the quarantine: the rows an ingest refused, with file, line, field and reason.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::{col, lit};

use crate::error::Result;
use crate::session::Engine;

impl Engine {
    /// Quarantined rows, of one ingest (commit) or of all, in file and line order.
    pub async fn quarantine(&self, ingest: Option<u64>) -> Result<Vec<RecordBatch>> {
        let ctx = self.session().await?;
        let mut df = ctx.table(civica_ingest::layout::QUARANTINE_TABLE).await?;
        if let Some(ingest) = ingest {
            // Strict bounds, not `ingest = n`: an equality on a partition column (or a range
            // the optimiser turns into one) makes DataFusion look for the folder `ingest=n`,
            // and the folders are zero-padded (`ingest=000002`), so it would find nothing.
            let n = ingest as i64;
            df = df.filter(
                col("ingest")
                    .gt(lit(n - 1))
                    .and(col("ingest").lt(lit(n + 1))),
            )?;
        }
        let df = df
            .select(vec![
                col("ingest"),
                col("source_file"),
                col("line"),
                col("field"),
                col("reason"),
                col("raw_line"),
            ])?
            .sort(vec![
                col("ingest").sort(true, false),
                col("source_file").sort(true, false),
                col("line").sort(true, false),
            ])?;
        let schema = df.schema().inner().clone();
        Ok(crate::sql::with_schema(df.collect().await?, schema))
    }
}
