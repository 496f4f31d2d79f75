//! Download encodings of a dataset: RFC 4180 CSV, the "Excel (IT)" CSV variant, JSON and
//! Parquet, each carrying the licence and attribution where the format has room for them.

use std::fmt::Write as _;

use datafusion::arrow::array::{Array, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::json::WriterBuilder as JsonWriterBuilder;
use datafusion::arrow::json::writer::JsonArray;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;
use serde_json::json;

use super::{DatasetTable, OpenDataConfig};
use crate::error::{Error, Result};

/// A download format of the open-data site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadFormat {
    /// RFC 4180: comma, CRLF, UTF-8 without BOM, `.` decimals; empty cell = withheld.
    Csv,
    /// For spreadsheets set to Italian: `;`, decimal comma, UTF-8 with BOM, CRLF.
    ExcelCsv,
    /// `{ "dataset", "licence", …, "rows": [ {…}, … ] }`, withheld values as `null`.
    Json,
    /// Parquet with the licence and attribution in the file's key-value metadata.
    Parquet,
}

impl DownloadFormat {
    pub const ALL: [DownloadFormat; 4] = [
        DownloadFormat::Csv,
        DownloadFormat::ExcelCsv,
        DownloadFormat::Json,
        DownloadFormat::Parquet,
    ];

    /// The end of the file name after the dataset id (`-excel.csv`, `.json`, …).
    pub fn suffix(self) -> &'static str {
        match self {
            DownloadFormat::Csv => ".csv",
            DownloadFormat::ExcelCsv => "-excel.csv",
            DownloadFormat::Json => ".json",
            DownloadFormat::Parquet => ".parquet",
        }
    }

    /// Splits a file name such as `x-excel.csv` or `x.xlsx.csv` into dataset id and format.
    pub fn split_file_name(file: &str) -> Option<(&str, DownloadFormat)> {
        // The longer suffixes first: `-excel.csv` also ends with `.csv`.
        for (suffix, format) in [
            ("-excel.csv", DownloadFormat::ExcelCsv),
            (".xlsx.csv", DownloadFormat::ExcelCsv),
            (".csv", DownloadFormat::Csv),
            (".json", DownloadFormat::Json),
            (".parquet", DownloadFormat::Parquet),
        ] {
            if let Some(id) = file.strip_suffix(suffix).filter(|id| !id.is_empty()) {
                return Some((id, format));
            }
        }
        None
    }

    /// The media type (IANA) of the encoded bytes.
    pub fn media_type(self) -> &'static str {
        match self {
            DownloadFormat::Csv => "text/csv; charset=utf-8",
            DownloadFormat::ExcelCsv => "text/csv; charset=utf-8",
            DownloadFormat::Json => "application/json",
            DownloadFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// A short label for pages.
    pub fn label(self) -> &'static str {
        match self {
            DownloadFormat::Csv => "CSV",
            DownloadFormat::ExcelCsv => "CSV per Excel (IT)",
            DownloadFormat::Json => "JSON",
            DownloadFormat::Parquet => "Parquet",
        }
    }

    /// The entry of the EU file-type vocabulary, for `dct:format`.
    pub fn file_type_iri(self) -> &'static str {
        match self {
            DownloadFormat::Csv | DownloadFormat::ExcelCsv => {
                "http://publications.europa.eu/resource/authority/file-type/CSV"
            }
            DownloadFormat::Json => {
                "http://publications.europa.eu/resource/authority/file-type/JSON"
            }
            DownloadFormat::Parquet => {
                "http://publications.europa.eu/resource/authority/file-type/PARQUET"
            }
        }
    }

    /// `table` encoded in this format.
    pub fn encode(self, table: &DatasetTable, config: &OpenDataConfig) -> Result<Vec<u8>> {
        match self {
            DownloadFormat::Csv => Ok(csv(&table.batch, ',', '.', false).into_bytes()),
            DownloadFormat::ExcelCsv => {
                // The BOM tells Excel the file is UTF-8.
                Ok(format!("\u{feff}{}", csv(&table.batch, ';', ',', true)).into_bytes())
            }
            DownloadFormat::Json => json_document(table, config),
            DownloadFormat::Parquet => parquet(table, config),
        }
    }
}

/// CSV with `separator` and `decimal` mark, CRLF line ends, quoting as RFC 4180 asks
/// (fields holding the separator, a quote or a line end are quoted, quotes doubled).
///
/// With `neutralise_formulas` (the file meant for spreadsheets), text cells that a
/// spreadsheet would run as a formula are made plain text; numbers are left as they are.
fn csv(batch: &RecordBatch, separator: char, decimal: char, neutralise_formulas: bool) -> String {
    let mut out = String::new();
    let schema = batch.schema();
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| quote(f.name(), separator))
        .collect();
    out.push_str(&header.join(&separator.to_string()));
    out.push_str("\r\n");
    for row in 0..batch.num_rows() {
        for (i, column) in batch.columns().iter().enumerate() {
            if i > 0 {
                out.push(separator);
            }
            if column.is_null(row) {
                continue;
            }
            let text = match column.data_type() {
                DataType::Float64 => column
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .map(|values| number(values.value(row), decimal))
                    .unwrap_or_default(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    if neutralise_formulas =>
                {
                    plain_text(array_value_to_string(column, row).unwrap_or_default())
                }
                _ => array_value_to_string(column, row).unwrap_or_default(),
            };
            out.push_str(&quote(&text, separator));
        }
        out.push_str("\r\n");
    }
    out
}

/// A decimal number in plain notation (never exponents) with `decimal` as its mark.
fn number(value: f64, decimal: char) -> String {
    let mut text = String::new();
    let _ = write!(text, "{value}");
    if decimal == '.' {
        text
    } else {
        text.replace('.', &decimal.to_string())
    }
}

/// A text cell that a spreadsheet shows as text: one starting with a character that opens
/// a formula (`=`, `+`, `-`, `@`) or that spreadsheets skip before one (tab, carriage return)
/// gets a leading apostrophe, as OWASP advises against CSV injection.
fn plain_text(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

fn quote(field: &str, separator: char) -> String {
    if field.contains([separator, '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn json_document(table: &DatasetTable, config: &OpenDataConfig) -> Result<Vec<u8>> {
    let encode = |source| Error::Encode { source };
    let mut writer = JsonWriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    writer.write(&table.batch).map_err(encode)?;
    writer.finish().map_err(encode)?;
    let rows = writer.into_inner();
    let rows: serde_json::Value = if rows.is_empty() {
        json!([])
    } else {
        serde_json::from_slice(&rows).map_err(json_error)?
    };
    let dataset = table.dataset;
    let document = json!({
        "dataset": dataset.id,
        "title": { "it": dataset.title_it, "en": dataset.title_en },
        "publisher": config.publisher.name,
        "licence": { "id": config.licence.id, "title": config.licence.title, "url": config.licence.url },
        "attribution": config.licence.attribution,
        "version": table.version,
        "rows": rows,
    });
    serde_json::to_vec_pretty(&document).map_err(json_error)
}

fn json_error(e: serde_json::Error) -> Error {
    Error::Encode {
        source: datafusion::arrow::error::ArrowError::JsonError(e.to_string()),
    }
}

/// The key-value metadata written into Parquet downloads.
pub fn parquet_metadata(table: &DatasetTable, config: &OpenDataConfig) -> Vec<(String, String)> {
    vec![
        ("dataset".into(), table.dataset.id.into()),
        ("title".into(), table.dataset.title_it.into()),
        ("publisher".into(), config.publisher.name.clone()),
        ("licence".into(), config.licence.id.clone()),
        ("licence_url".into(), config.licence.url.clone()),
        ("attribution".into(), config.licence.attribution.clone()),
        ("warehouse_version".into(), table.version.to_string()),
    ]
}

fn parquet(table: &DatasetTable, config: &OpenDataConfig) -> Result<Vec<u8>> {
    let metadata = parquet_metadata(table, config)
        .into_iter()
        .map(|(k, v)| KeyValue::new(k, v))
        .collect();
    let properties = WriterProperties::builder()
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, table.batch.schema(), Some(properties))
        .map_err(|e| Error::Encode { source: e.into() })?;
    writer
        .write(&table.batch)
        .map_err(|e| Error::Encode { source: e.into() })?;
    writer
        .close()
        .map_err(|e| Error::Encode { source: e.into() })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int32Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("service", DataType::Utf8, false),
            Field::new("year", DataType::Int32, true),
            Field::new("value", DataType::Float64, true),
            Field::new("flag", DataType::Utf8, true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a;b", "say \"hi\""])),
            Arc::new(Int32Array::from(vec![Some(2017), Some(2018)])),
            Arc::new(Float64Array::from(vec![Some(83.25), None])),
            Arc::new(StringArray::from(vec![None, Some("suppressed")])),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    #[test]
    fn csv_follows_rfc_4180_and_leaves_withheld_cells_empty() {
        assert_eq!(
            csv(&batch(), ',', '.', false),
            "service,year,value,flag\r\na;b,2017,83.25,\r\n\"say \"\"hi\"\"\",2018,,suppressed\r\n"
        );
    }

    #[test]
    fn excel_variant_uses_semicolons_and_decimal_commas() {
        assert_eq!(
            csv(&batch(), ';', ',', true),
            "service;year;value;flag\r\n\"a;b\";2017;83,25;\r\n\"say \"\"hi\"\"\";2018;;suppressed\r\n"
        );
    }

    #[test]
    fn excel_variant_neutralises_formulas_in_text_but_not_negative_numbers() {
        let schema = Schema::new(vec![
            Field::new("service", DataType::Utf8, false),
            Field::new("change", DataType::Float64, true),
            Field::new("year", DataType::Int32, true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![
                "=HYPERLINK(\"http://x.example\")",
                "+1+1",
                "-2+3",
                "@SUM(A1)",
                "\tcmd",
                "\r=1",
                "anagrafe-web",
            ])),
            Arc::new(Float64Array::from(vec![
                Some(-1.5),
                Some(2.0),
                None,
                None,
                None,
                None,
                Some(-0.25),
            ])),
            Arc::new(Int32Array::from(vec![Some(-3); 7])),
        ];
        let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
        let excel = csv(&batch, ';', ',', true);
        let lines: Vec<&str> = excel.split("\r\n").collect();
        assert_eq!(
            lines[1],
            "\"'=HYPERLINK(\"\"http://x.example\"\")\";-1,5;-3"
        );
        assert_eq!(lines[2], "'+1+1;2;-3");
        assert_eq!(lines[3], "'-2+3;;-3");
        assert_eq!(lines[4], "'@SUM(A1);;-3");
        assert_eq!(lines[5], "'\tcmd;;-3");
        assert_eq!(lines[6], "\"'\r=1\";;-3");
        assert_eq!(lines[7], "anagrafe-web;-0,25;-3");
        // The plain CSV keeps values as they are: it is read by programs, not spreadsheets.
        let plain = csv(&batch, ',', '.', false);
        assert!(plain.contains("\r\n+1+1,2,-3\r\n"), "{plain}");
    }

    #[test]
    fn parquet_carries_licence_and_attribution_in_its_metadata() {
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

        let table = DatasetTable {
            dataset: &super::super::DATASETS[0],
            batch: batch(),
            version: 7,
        };
        let bytes = DownloadFormat::Parquet
            .encode(&table, &OpenDataConfig::default())
            .unwrap();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let metadata = reader.metadata().file_metadata();
        assert_eq!(metadata.num_rows(), 2);
        let value = |key: &str| {
            metadata
                .key_value_metadata()
                .into_iter()
                .flatten()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.clone())
        };
        assert_eq!(value("licence").as_deref(), Some("CC-BY-4.0"));
        assert_eq!(
            value("licence_url").as_deref(),
            Some("https://creativecommons.org/licenses/by/4.0/")
        );
        assert_eq!(value("attribution").as_deref(), Some("Comune di Cesena"));
        assert_eq!(value("warehouse_version").as_deref(), Some("7"));
    }

    #[test]
    fn file_names_split_into_dataset_and_format() {
        let split = DownloadFormat::split_file_name;
        assert_eq!(split("x-excel.csv"), Some(("x", DownloadFormat::ExcelCsv)));
        assert_eq!(split("x.xlsx.csv"), Some(("x", DownloadFormat::ExcelCsv)));
        assert_eq!(split("x.csv"), Some(("x", DownloadFormat::Csv)));
        assert_eq!(split("x.parquet"), Some(("x", DownloadFormat::Parquet)));
        assert_eq!(split(".csv"), None);
        assert_eq!(split("x.xml"), None);
    }
}
