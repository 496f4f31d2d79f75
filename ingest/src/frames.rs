//! The polars frames of the warehouse tables, built from typed records.

use polars::prelude::*;

use crate::layout::Table;
use crate::schema::{QUARANTINE_COLUMNS, REQUEST_COLUMNS, SURVEY_COLUMNS};
use crate::validate::{ServiceRequest, SurveyResponse};

/// The column added to history tables: the commit whose ingest superseded the row.
pub const SUPERSEDED_COLUMN: &str = "superseded_in";

/// A record stored in a data table (requests or surveys).
pub trait Record: Clone + Send + 'static {
    /// The table of current versions and the table of earlier versions.
    const TABLE: Table;
    const HISTORY: Table;
    /// The identifier column.
    const ID_COLUMN: &'static str;

    fn id(&self) -> &str;
    fn fingerprint(&self) -> u128;
    /// Partition year (local calendar year).
    fn year(&self) -> i32;
    /// Sort order inside a file: by service, then time, so that one-service queries skip
    /// most row groups.
    fn sort_key(&self) -> (&str, i64);
    /// The frame of `rows` (each with its fingerprint) with the table's columns.
    fn frame(rows: &[(u128, &Self)]) -> PolarsResult<DataFrame>;
}

/// A fingerprint as stored in `record_fingerprint`: its low 64 bits, as a signed integer
/// (two versions of one record collide with probability 2⁻⁶⁴).
pub fn stored_fingerprint(fp: u128) -> i64 {
    fp as u64 as i64
}

fn micros(name: &str, values: Vec<Option<i64>>) -> Column {
    Int64Chunked::from_iter_options(name.into(), values.into_iter())
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_column()
}

fn text<'a>(name: &str, values: impl Iterator<Item = Option<&'a str>>) -> Column {
    Column::new(name.into(), values.collect::<Vec<_>>())
}

impl Record for ServiceRequest {
    const TABLE: Table = Table::Requests;
    const HISTORY: Table = Table::RequestsHistory;
    const ID_COLUMN: &'static str = "request_id";

    fn id(&self) -> &str {
        &self.request_id
    }
    fn fingerprint(&self) -> u128 {
        ServiceRequest::fingerprint(self)
    }
    fn year(&self) -> i32 {
        ServiceRequest::year(self)
    }
    fn sort_key(&self) -> (&str, i64) {
        (&self.service, self.submitted_at.timestamp_micros())
    }
    fn frame(rows: &[(u128, &Self)]) -> PolarsResult<DataFrame> {
        let fingerprints: Vec<i64> = rows.iter().map(|(fp, _)| stored_fingerprint(*fp)).collect();
        let rows: Vec<&Self> = rows.iter().map(|(_, r)| *r).collect();
        let c = REQUEST_COLUMNS;
        let columns = vec![
            text(c[0], rows.iter().map(|r| Some(r.request_id.as_str()))),
            text(c[1], rows.iter().map(|r| Some(r.service.as_str()))),
            text(c[2], rows.iter().map(|r| Some(r.channel.as_str()))),
            micros(
                c[3],
                rows.iter()
                    .map(|r| Some(r.submitted_at.timestamp_micros()))
                    .collect(),
            ),
            micros(
                c[4],
                rows.iter()
                    .map(|r| r.completed_at.map(|t| t.timestamp_micros()))
                    .collect(),
            ),
            text(c[5], rows.iter().map(|r| Some(r.status.as_str()))),
            text(c[6], rows.iter().map(|r| r.auth_method.map(|a| a.as_str()))),
            text(
                c[7],
                rows.iter()
                    .map(|r| r.citizen_key.as_ref().map(|k| k.as_str())),
            ),
            Column::new(
                c[8].into(),
                rows.iter()
                    .map(|r| r.amount_cents.map(|c| c as f64 / 100.0))
                    .collect::<Vec<Option<f64>>>(),
            ),
            Column::new(
                c[9].into(),
                rows.iter().map(|r| r.satisfaction).collect::<Vec<_>>(),
            ),
            Column::new(c[10].into(), fingerprints),
        ];
        DataFrame::new(rows.len(), columns)
    }
}

impl Record for SurveyResponse {
    const TABLE: Table = Table::Surveys;
    const HISTORY: Table = Table::SurveysHistory;
    const ID_COLUMN: &'static str = "response_id";

    fn id(&self) -> &str {
        &self.response_id
    }
    fn fingerprint(&self) -> u128 {
        SurveyResponse::fingerprint(self)
    }
    fn year(&self) -> i32 {
        SurveyResponse::year(self)
    }
    fn sort_key(&self) -> (&str, i64) {
        (&self.service, self.responded_at.timestamp_micros())
    }
    fn frame(rows: &[(u128, &Self)]) -> PolarsResult<DataFrame> {
        let fingerprints: Vec<i64> = rows.iter().map(|(fp, _)| stored_fingerprint(*fp)).collect();
        let rows: Vec<&Self> = rows.iter().map(|(_, r)| *r).collect();
        let c = SURVEY_COLUMNS;
        let columns = vec![
            text(c[0], rows.iter().map(|r| Some(r.response_id.as_str()))),
            text(c[1], rows.iter().map(|r| Some(r.service.as_str()))),
            text(c[2], rows.iter().map(|r| Some(r.channel.as_str()))),
            micros(
                c[3],
                rows.iter()
                    .map(|r| Some(r.responded_at.timestamp_micros()))
                    .collect(),
            ),
            Column::new(
                c[4].into(),
                rows.iter().map(|r| r.score).collect::<Vec<_>>(),
            ),
            text(c[5], rows.iter().map(|r| r.request_id.as_deref())),
            Column::new(c[6].into(), fingerprints),
        ];
        DataFrame::new(rows.len(), columns)
    }
}

/// One row refused by validation or by the duplicate rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRow {
    pub source_file: String,
    pub line: u64,
    pub field: String,
    pub reason: String,
    /// The input line with identifiers masked.
    pub raw_line: String,
}

/// The frame of the `quarantine` table.
pub fn quarantine_frame(rows: &[QuarantinedRow]) -> PolarsResult<DataFrame> {
    let c = QUARANTINE_COLUMNS;
    let columns = vec![
        text(c[0], rows.iter().map(|r| Some(r.source_file.as_str()))),
        Column::new(c[1].into(), rows.iter().map(|r| r.line).collect::<Vec<_>>()),
        text(c[2], rows.iter().map(|r| Some(r.field.as_str()))),
        text(c[3], rows.iter().map(|r| Some(r.reason.as_str()))),
        text(c[4], rows.iter().map(|r| Some(r.raw_line.as_str()))),
    ];
    DataFrame::new(rows.len(), columns)
}

/// Adds the `superseded_in` column to a frame of earlier versions.
pub fn with_superseded(mut df: DataFrame, commit: u64) -> PolarsResult<DataFrame> {
    let height = df.height();
    df.with_column(Column::new(
        SUPERSEDED_COLUMN.into(),
        vec![commit as i64; height],
    ))?;
    Ok(df)
}
