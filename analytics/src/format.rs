//! Encoding of result batches as a text table, CSV (RFC 4180) or JSON.

use std::io::Write;
use std::str::FromStr;

use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::json::ArrayWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::error::{Error, Result};

/// An output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// An aligned text table for terminals.
    #[default]
    Table,
    /// CSV with a header row: comma, `.` decimals, UTF-8 without BOM.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            other => Err(format!("unknown format `{other}`; use table, csv or json")),
        }
    }
}

/// Writes `batches` to `out` in `format`.
pub fn write_batches(
    out: &mut impl Write,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<()> {
    let encode = |source| Error::Encode { source };
    match format {
        OutputFormat::Table => {
            let table = pretty_format_batches(batches).map_err(encode)?;
            writeln!(out, "{table}").map_err(|e| encode(e.into()))
        }
        OutputFormat::Csv => {
            let mut writer = WriterBuilder::new().with_header(true).build(out);
            for batch in batches {
                writer.write(batch).map_err(encode)?;
            }
            Ok(())
        }
        OutputFormat::Json => {
            let mut writer = ArrayWriter::new(out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs).map_err(encode)?;
            writer.finish().map_err(encode)
        }
    }
}

/// `batches` encoded in `format`, as bytes.
pub fn encode_batches(batches: &[RecordBatch], format: OutputFormat) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_batches(&mut out, batches, format)?;
    Ok(out)
}
