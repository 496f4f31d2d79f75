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

/// A `Datetime(µs, UTC)` column of microseconds since the epoch.
fn micros(values: Int64Chunked) -> Column {
    values
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_column()
}

fn text<'a>(name: &str, values: impl Iterator<Item = Option<&'a str>>) -> Column {
    Column::new(name.into(), values.collect::<Vec<_>>())
}

fn strings(name: &str, capacity: usize) -> StringChunkedBuilder {
    StringChunkedBuilder::new(name.into(), capacity)
}

fn numbers<T: PolarsNumericType>(name: &str, capacity: usize) -> PrimitiveChunkedBuilder<T> {
    PrimitiveChunkedBuilder::new(name.into(), capacity)
}

// The frames are built in one pass over the rows, every column at once: rows arrive sorted,
// scattered in memory, and each one is visited only once.

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
        let n = rows.len();
        let c = REQUEST_COLUMNS;
        let mut request_id = strings(c[0], n);
        let mut service = strings(c[1], n);
        let mut channel = strings(c[2], n);
        let mut submitted_at = numbers::<Int64Type>(c[3], n);
        let mut completed_at = numbers::<Int64Type>(c[4], n);
        let mut status = strings(c[5], n);
        let mut auth_method = strings(c[6], n);
        let mut citizen_key = strings(c[7], n);
        let mut amount_eur = numbers::<Float64Type>(c[8], n);
        let mut satisfaction = numbers::<Int32Type>(c[9], n);
        let mut fingerprints = numbers::<Int64Type>(c[10], n);
        for (fp, r) in rows {
            request_id.append_value(r.request_id.as_str());
            service.append_value(r.service.as_str());
            channel.append_value(r.channel.as_str());
            submitted_at.append_value(r.submitted_at.timestamp_micros());
            completed_at.append_option(r.completed_at.map(|t| t.timestamp_micros()));
            status.append_value(r.status.as_str());
            auth_method.append_option(r.auth_method.map(|a| a.as_str()));
            citizen_key.append_option(r.citizen_key.as_ref().map(|k| k.as_str()));
            amount_eur.append_option(r.amount_cents.map(|c| c as f64 / 100.0));
            satisfaction.append_option(r.satisfaction);
            fingerprints.append_value(stored_fingerprint(*fp));
        }
        let columns = vec![
            request_id.finish().into_column(),
            service.finish().into_column(),
            channel.finish().into_column(),
            micros(submitted_at.finish()),
            micros(completed_at.finish()),
            status.finish().into_column(),
            auth_method.finish().into_column(),
            citizen_key.finish().into_column(),
            amount_eur.finish().into_column(),
            satisfaction.finish().into_column(),
            fingerprints.finish().into_column(),
        ];
        DataFrame::new(n, columns)
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
        let n = rows.len();
        let c = SURVEY_COLUMNS;
        let mut response_id = strings(c[0], n);
        let mut service = strings(c[1], n);
        let mut channel = strings(c[2], n);
        let mut responded_at = numbers::<Int64Type>(c[3], n);
        let mut score = numbers::<Int32Type>(c[4], n);
        let mut request_id = strings(c[5], n);
        let mut fingerprints = numbers::<Int64Type>(c[6], n);
        for (fp, r) in rows {
            response_id.append_value(r.response_id.as_str());
            service.append_value(r.service.as_str());
            channel.append_value(r.channel.as_str());
            responded_at.append_value(r.responded_at.timestamp_micros());
            score.append_value(r.score);
            request_id.append_option(r.request_id.as_deref());
            fingerprints.append_value(stored_fingerprint(*fp));
        }
        let columns = vec![
            response_id.finish().into_column(),
            service.finish().into_column(),
            channel.finish().into_column(),
            micros(responded_at.finish()),
            score.finish().into_column(),
            request_id.finish().into_column(),
            fingerprints.finish().into_column(),
        ];
        DataFrame::new(n, columns)
    }
}

/// One row refused by validation or by the duplicate rules.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
