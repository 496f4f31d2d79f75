//! Encoding of result batches: a text table for terminals, CSV (RFC 4180), JSON, Parquet and
//! the Arrow IPC stream format, and the media type of each.

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::ArrayWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;

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
    /// One Parquet file (the schema travels with the data).
    Parquet,
    /// The Arrow IPC streaming format: the schema, then the record batches.
    Arrow,
}

impl OutputFormat {
    /// The media type of the encoding, as an HTTP `Content-Type`.
    pub fn media_type(self) -> &'static str {
        match self {
            OutputFormat::Table => "text/plain; charset=utf-8",
            OutputFormat::Csv => "text/csv; charset=utf-8; header=present",
            OutputFormat::Json => "application/json",
            OutputFormat::Parquet => "application/vnd.apache.parquet",
            OutputFormat::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Table => "txt",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Parquet => "parquet",
            OutputFormat::Arrow => "arrows",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            "parquet" => Ok(OutputFormat::Parquet),
            "arrow" => Ok(OutputFormat::Arrow),
            other => Err(format!(
                "unknown format `{other}`; use table, csv, json, parquet or arrow"
            )),
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
        OutputFormat::Parquet => {
            // The Parquet writer needs to own a `Send` sink: encode in memory, then copy.
            let bytes = parquet_bytes(batches)?;
            out.write_all(&bytes).map_err(|e| encode(e.into()))
        }
        OutputFormat::Arrow => {
            let mut writer = StreamWriter::try_new(out, &schema_of(batches)).map_err(encode)?;
            for batch in batches {
                writer.write(batch).map_err(encode)?;
            }
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

/// The schema of a result (no columns when there are no batches at all).
fn schema_of(batches: &[RecordBatch]) -> SchemaRef {
    batches
        .first()
        .map(RecordBatch::schema)
        .unwrap_or_else(|| Arc::new(Schema::empty()))
}

fn parquet_bytes(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let parquet = |e: datafusion::parquet::errors::ParquetError| Error::Encode { source: e.into() };
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema_of(batches), None).map_err(parquet)?;
    for batch in batches {
        writer.write(batch).map_err(parquet)?;
    }
    writer.close().map_err(parquet)?;
    Ok(bytes)
}

/// A result as text, for display in pages: column names and one string per cell, `None` for
/// a null.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// `batches` as text: numbers and dates as Arrow displays them (`83.3`, `2017-06-12`).
pub fn text_table(batches: &[RecordBatch]) -> Result<TextTable> {
    let schema = schema_of(batches);
    let columns = schema.fields().iter().map(|f| f.name().clone()).collect();
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|array| ArrayFormatter::try_new(array.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, ArrowError>>()
            .map_err(|source| Error::Encode { source })?;
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(array, formatter)| {
                        (!array.is_null(row)).then(|| formatter.value(row).to_string())
                    })
                    .collect(),
            );
        }
    }
    Ok(TextTable { columns, rows })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, Float64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::arrow::ipc::reader::StreamReader;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    /// Two batches of one schema: a service code and a share with one null.
    fn batches() -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("service", DataType::Utf8, false),
            Field::new("value", DataType::Float64, true),
        ]));
        let batch = |services: Vec<&str>, values: Vec<Option<f64>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(services)),
                    Arc::new(Float64Array::from(values)),
                ],
            )
            .unwrap()
        };
        vec![
            batch(vec!["suap", "ztl"], vec![Some(83.3), None]),
            batch(vec!["mensa"], vec![Some(12.5)]),
        ]
    }

    /// The (service, value) pairs of batches read back by a reader.
    fn pairs(batches: &[RecordBatch]) -> Vec<(String, Option<f64>)> {
        let mut out = Vec::new();
        for batch in batches {
            let services = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            let values = batch
                .column(1)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap();
            for i in 0..batch.num_rows() {
                let value = (!values.is_null(i)).then(|| values.value(i));
                out.push((services.value(i).to_string(), value));
            }
        }
        out
    }

    /// A temporary file holding `bytes` (the Parquet reader reads files).
    fn in_file(bytes: &[u8]) -> std::fs::File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    fn expected() -> Vec<(String, Option<f64>)> {
        vec![
            ("suap".into(), Some(83.3)),
            ("ztl".into(), None),
            ("mensa".into(), Some(12.5)),
        ]
    }

    #[test]
    fn arrow_stream_reads_back_with_the_ipc_reader() {
        let bytes = encode_batches(&batches(), OutputFormat::Arrow).unwrap();
        let reader = StreamReader::try_new(bytes.as_slice(), None).unwrap();
        let read: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(read[0].schema().field(1).name(), "value");
        assert_eq!(pairs(&read), expected());
    }

    #[test]
    fn parquet_reads_back_with_the_parquet_reader() {
        let bytes = encode_batches(&batches(), OutputFormat::Parquet).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(in_file(&bytes))
            .unwrap()
            .build()
            .unwrap();
        let read: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(pairs(&read), expected());
    }

    #[test]
    fn csv_has_a_header_and_empty_nulls() {
        let bytes = encode_batches(&batches(), OutputFormat::Csv).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "service,value\nsuap,83.3\nztl,\nmensa,12.5\n"
        );
    }

    #[test]
    fn an_empty_result_keeps_its_columns_in_every_binary_format() {
        let empty = vec![RecordBatch::new_empty(batches()[0].schema())];
        let bytes = encode_batches(&empty, OutputFormat::Arrow).unwrap();
        let reader = StreamReader::try_new(bytes.as_slice(), None).unwrap();
        assert_eq!(reader.schema().fields().len(), 2);
        let bytes = encode_batches(&empty, OutputFormat::Parquet).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(in_file(&bytes)).unwrap();
        assert_eq!(builder.schema().field(0).name(), "service");
    }

    #[test]
    fn text_table_keeps_nulls_apart_from_values() {
        let table = text_table(&batches()).unwrap();
        assert_eq!(table.columns, ["service", "value"]);
        assert_eq!(
            table.rows,
            vec![
                vec![Some("suap".to_string()), Some("83.3".to_string())],
                vec![Some("ztl".to_string()), None],
                vec![Some("mensa".to_string()), Some("12.5".to_string())],
            ]
        );
    }

    #[test]
    fn formats_are_named_as_on_the_command_line() {
        for name in ["table", "csv", "json", "parquet", "arrow"] {
            assert!(name.parse::<OutputFormat>().is_ok(), "{name}");
        }
        assert!("xml".parse::<OutputFormat>().is_err());
    }
}
