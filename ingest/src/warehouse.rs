//! Commits validated rows to the warehouse: Parquet per year partition, quarantine per commit,
//! and a commit record written last.
//!
//! Invariant, for every file and for every ingest:
//! `rows_read = rows_accepted + rows_quarantined + rows_duplicate`.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::pseudonym::Pseudonymiser;
use crate::schema::{INPUT_COLUMNS, QUARANTINE_COLUMNS, REQUEST_COLUMNS};
use crate::validate::{HeaderMap, Rejection, ServiceRequest, validate_row};

/// What one ingest did, per file and in total. Also the content of the commit record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestSummary {
    /// The commit number (warehouse version) this ingest created.
    pub commit: u64,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    pub rows_duplicate: u64,
    pub files: Vec<FileSummary>,
    /// Non-fatal remarks, such as ignored columns.
    pub warnings: Vec<String>,
}

/// What one ingest did with one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSummary {
    pub path: String,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    pub rows_duplicate: u64,
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

/// Where a request id was first seen, to tell exact duplicates from conflicting versions.
struct Seen {
    fingerprint: String,
    /// `None` when the row is already in the warehouse.
    origin: Option<(usize, u64)>,
}

/// Loads `files` (canonical request CSV) into the warehouse as one commit.
///
/// Rows with any invalid field, and rows whose `request_id` is already known with different
/// content, go to quarantine with their reason; exact copies of known rows are counted as
/// duplicates and not stored again. Errors are returned only for problems that stop the whole
/// ingest (unreadable file, missing header columns, I/O); in that case nothing is committed.
pub fn ingest_files(
    layout: &Layout,
    files: &[PathBuf],
    pseudonymiser: &Pseudonymiser,
) -> Result<IngestSummary> {
    let _lock = IngestLock::acquire(layout)?;
    let mut seen = stored_fingerprints(layout)?;
    let commit = layout
        .latest_commit()
        .map_err(|e| Error::io(layout.commits_dir(), e))?
        + 1;

    let mut summary = IngestSummary {
        commit,
        ..IngestSummary::default()
    };
    let mut accepted: Vec<ServiceRequest> = Vec::new();
    let mut quarantined: Vec<QuarantinedRow> = Vec::new();

    for (file_index, path) in files.iter().enumerate() {
        let file_summary = read_request_file(
            path,
            file_index,
            pseudonymiser,
            &mut seen,
            &mut accepted,
            &mut quarantined,
            &mut summary.warnings,
        )?;
        summary.rows_read += file_summary.rows_read;
        summary.rows_accepted += file_summary.rows_accepted;
        summary.rows_quarantined += file_summary.rows_quarantined;
        summary.rows_duplicate += file_summary.rows_duplicate;
        summary.files.push(file_summary);
    }

    write_requests(layout, commit, accepted)?;
    write_quarantine(layout, commit, &quarantined)?;
    write_commit_record(layout, &summary)?;
    Ok(summary)
}

/// Reads, validates and de-duplicates one file, appending to `accepted` and `quarantined`.
fn read_request_file(
    path: &Path,
    file_index: usize,
    pseudonymiser: &Pseudonymiser,
    seen: &mut HashMap<String, Seen>,
    accepted: &mut Vec<ServiceRequest>,
    quarantined: &mut Vec<QuarantinedRow>,
    warnings: &mut Vec<String>,
) -> Result<FileSummary> {
    let source_file = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let read_error = |line: u64, source: csv::Error| Error::ReadCsv {
        path: path.to_path_buf(),
        line,
        source,
    };

    let mut record = csv::ByteRecord::new();
    if !reader
        .read_byte_record(&mut record)
        .map_err(|e| read_error(1, e))?
    {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let names: Vec<String> = record
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let header = HeaderMap::from_header(names.iter().map(String::as_str)).map_err(|missing| {
        Error::MissingColumns {
            path: path.to_path_buf(),
            missing,
        }
    })?;
    if !header.unknown.is_empty() {
        let message = format!(
            "{source_file}: ignored unknown column(s): {}",
            header.unknown.join(", ")
        );
        tracing::warn!("{message}");
        warnings.push(message);
    }
    let citizen_column = header.position("citizen_id");

    let mut summary = FileSummary {
        path: source_file.clone(),
        ..FileSummary::default()
    };
    loop {
        let line_before = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_error(line_before, e)),
        }
        let line = record.position().map_or(line_before, |p| p.line());
        summary.rows_read += 1;
        let mut quarantine = |rejection: Rejection| {
            quarantined.push(QuarantinedRow {
                source_file: source_file.clone(),
                line,
                field: rejection.field,
                reason: rejection.reason,
                raw_line: masked_line(&record, citizen_column),
            });
        };

        let fields: Option<Vec<&str>> =
            record.iter().map(|f| std::str::from_utf8(f).ok()).collect();
        let Some(fields) = fields else {
            quarantine(Rejection::new("row", "not valid UTF-8"));
            summary.rows_quarantined += 1;
            continue;
        };
        // Blank lines inside a file carry no request; they are read but never stored.
        if fields.iter().all(|f| f.trim().is_empty()) {
            quarantine(Rejection::new("row", "empty line"));
            summary.rows_quarantined += 1;
            continue;
        }
        let request = match validate_row(&fields, &header, pseudonymiser) {
            Ok(request) => request,
            Err(rejection) => {
                quarantine(rejection);
                summary.rows_quarantined += 1;
                continue;
            }
        };
        let fingerprint = request.fingerprint();
        match seen.get(&request.request_id) {
            Some(previous) if previous.fingerprint == fingerprint => {
                summary.rows_duplicate += 1;
            }
            Some(previous) => {
                let reason = match previous.origin {
                    Some((f, first_line)) if f == file_index => format!(
                        "conflict: request_id `{}` appears at line {first_line} with different content",
                        request.request_id
                    ),
                    Some(_) => format!(
                        "conflict: request_id `{}` appears in an earlier file of this ingest with different content",
                        request.request_id
                    ),
                    None => format!(
                        "conflict: request_id `{}` is already stored with different content",
                        request.request_id
                    ),
                };
                quarantine(Rejection::new("request_id", reason));
                summary.rows_quarantined += 1;
            }
            None => {
                seen.insert(
                    request.request_id.clone(),
                    Seen {
                        fingerprint,
                        origin: Some((file_index, line)),
                    },
                );
                accepted.push(request);
                summary.rows_accepted += 1;
            }
        }
    }
    Ok(summary)
}

/// The raw line for the quarantine, with the citizen identifier (and anything that looks like
/// a codice fiscale) masked.
fn masked_line(record: &csv::ByteRecord, citizen_column: Option<usize>) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let fields: Vec<String> = record
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let text = String::from_utf8_lossy(f);
            if (Some(i) == citizen_column && !text.trim().is_empty())
                || looks_like_codice_fiscale(&text)
            {
                "***".to_string()
            } else {
                text.into_owned()
            }
        })
        .collect();
    // Writing to a Vec cannot fail; an empty string is a safe fallback all the same.
    if writer.write_record(&fields).is_err() {
        return String::new();
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

/// 16 alphanumerics with letters and digits where a codice fiscale has them.
fn looks_like_codice_fiscale(text: &str) -> bool {
    let t = text.trim().as_bytes();
    t.len() == 16
        && t[..6].iter().all(u8::is_ascii_alphabetic)
        && t[6..].iter().all(u8::is_ascii_alphanumeric)
        && t[6..].iter().filter(|b| b.is_ascii_digit()).count() >= 3
}

/// The `request_id → fingerprint` of every row already in the warehouse.
fn stored_fingerprints(layout: &Layout) -> Result<HashMap<String, Seen>> {
    let mut seen = HashMap::new();
    for path in parquet_files(&layout.requests_dir())? {
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let parquet_error = |source| Error::Parquet {
            path: path.clone(),
            source,
        };
        let df = ParquetReader::new(file)
            .with_columns(Some(vec![
                "request_id".to_string(),
                "record_fingerprint".to_string(),
            ]))
            .finish()
            .map_err(parquet_error)?;
        let ids = df
            .column("request_id")
            .and_then(|c| c.str())
            .map_err(parquet_error)?;
        let prints = df
            .column("record_fingerprint")
            .and_then(|c| c.str())
            .map_err(parquet_error)?;
        for (id, print) in ids.iter().zip(prints.iter()) {
            if let (Some(id), Some(print)) = (id, print) {
                seen.insert(
                    id.to_string(),
                    Seen {
                        fingerprint: print.to_string(),
                        origin: None,
                    },
                );
            }
        }
    }
    Ok(seen)
}

/// Every `*.parquet` file below `dir` (recursively), in a stable order.
pub fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&dir, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Writes accepted rows, one Parquet file per year partition.
fn write_requests(layout: &Layout, commit: u64, mut rows: Vec<ServiceRequest>) -> Result<()> {
    rows.sort_by(|a, b| (a.submitted_at, &a.request_id).cmp(&(b.submitted_at, &b.request_id)));
    let mut by_year: std::collections::BTreeMap<i32, Vec<ServiceRequest>> = Default::default();
    for row in rows {
        by_year.entry(row.year()).or_default().push(row);
    }
    for (year, rows) in by_year {
        let target = layout
            .requests_partition(year)
            .join(format!("part-{commit:06}.parquet"));
        let mut df = requests_frame(&rows).map_err(|source| Error::Parquet {
            path: target.clone(),
            source,
        })?;
        write_parquet_atomically(layout, &mut df, &target)?;
    }
    Ok(())
}

/// Builds the polars frame of the `requests` table for `rows`.
pub fn requests_frame(rows: &[ServiceRequest]) -> PolarsResult<DataFrame> {
    let micros = |name: &str, values: Vec<Option<i64>>| -> Column {
        Int64Chunked::from_iter_options(name.into(), values.into_iter())
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_column()
    };
    let text = |name: &str, values: Vec<Option<&str>>| Column::new(name.into(), values);
    let columns = vec![
        text(
            REQUEST_COLUMNS[0],
            rows.iter().map(|r| Some(r.request_id.as_str())).collect(),
        ),
        text(
            REQUEST_COLUMNS[1],
            rows.iter().map(|r| Some(r.service.as_str())).collect(),
        ),
        text(
            REQUEST_COLUMNS[2],
            rows.iter().map(|r| Some(r.channel.as_str())).collect(),
        ),
        micros(
            REQUEST_COLUMNS[3],
            rows.iter()
                .map(|r| Some(r.submitted_at.timestamp_micros()))
                .collect(),
        ),
        micros(
            REQUEST_COLUMNS[4],
            rows.iter()
                .map(|r| r.completed_at.map(|t| t.timestamp_micros()))
                .collect(),
        ),
        text(
            REQUEST_COLUMNS[5],
            rows.iter().map(|r| Some(r.status.as_str())).collect(),
        ),
        text(
            REQUEST_COLUMNS[6],
            rows.iter()
                .map(|r| r.auth_method.map(|a| a.as_str()))
                .collect(),
        ),
        text(
            REQUEST_COLUMNS[7],
            rows.iter().map(|r| r.citizen_key.as_deref()).collect(),
        ),
        Column::new(
            REQUEST_COLUMNS[8].into(),
            rows.iter()
                .map(|r| r.amount_cents.map(|c| c as f64 / 100.0))
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new(
            REQUEST_COLUMNS[9].into(),
            rows.iter().map(|r| r.satisfaction).collect::<Vec<_>>(),
        ),
        Column::new(
            REQUEST_COLUMNS[10].into(),
            rows.iter().map(|r| r.fingerprint()).collect::<Vec<_>>(),
        ),
    ];
    DataFrame::new(rows.len(), columns)
}

/// Writes the quarantined rows of one commit (nothing when there are none).
fn write_quarantine(layout: &Layout, commit: u64, rows: &[QuarantinedRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let target = layout.quarantine_partition(commit).join("part-0.parquet");
    let columns = vec![
        Column::new(
            QUARANTINE_COLUMNS[0].into(),
            rows.iter()
                .map(|r| r.source_file.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            QUARANTINE_COLUMNS[1].into(),
            rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        ),
        Column::new(
            QUARANTINE_COLUMNS[2].into(),
            rows.iter().map(|r| r.field.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            QUARANTINE_COLUMNS[3].into(),
            rows.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            QUARANTINE_COLUMNS[4].into(),
            rows.iter().map(|r| r.raw_line.as_str()).collect::<Vec<_>>(),
        ),
    ];
    let mut df = DataFrame::new(rows.len(), columns).map_err(|source| Error::Parquet {
        path: target.clone(),
        source,
    })?;
    write_parquet_atomically(layout, &mut df, &target)
}

/// Writes `df` to a staging file, then renames it to `target`: readers never see half a file.
fn write_parquet_atomically(layout: &Layout, df: &mut DataFrame, target: &Path) -> Result<()> {
    let staging = layout.staging_dir();
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let parent = target.parent().unwrap_or(layout.root());
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let temp = staging.join(format!(
        "{}.tmp",
        target
            .strip_prefix(layout.root())
            .unwrap_or(target)
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "__")
    ));
    let file = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .map_err(|source| Error::Parquet {
            path: target.to_path_buf(),
            source,
        })?;
    std::fs::rename(&temp, target).map_err(|e| Error::io(target, e))
}

/// Writes the commit record last: its presence marks the commit as complete.
fn write_commit_record(layout: &Layout, summary: &IngestSummary) -> Result<()> {
    let dir = layout.commits_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let target = layout.commit_record(summary.commit);
    let temp = layout
        .staging_dir()
        .join(format!("{:06}.json.tmp", summary.commit));
    let json = serde_json::to_vec_pretty(summary).map_err(|source| Error::CommitRecord {
        path: target.clone(),
        source,
    })?;
    std::fs::write(&temp, json).map_err(|e| Error::io(&temp, e))?;
    std::fs::rename(&temp, &target).map_err(|e| Error::io(&target, e))
}

/// Reads the record of one commit.
pub fn read_commit_record(layout: &Layout, commit: u64) -> Result<IngestSummary> {
    let path = layout.commit_record(commit);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| Error::CommitRecord { path, source })
}

/// Held while an ingest runs, so that two ingests never write the same commit.
struct IngestLock {
    path: PathBuf,
}

impl IngestLock {
    fn acquire(layout: &Layout) -> Result<Self> {
        let dir = layout.staging_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join("ingest.lock");
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => Ok(IngestLock { path }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::io(
                &path,
                std::io::Error::new(
                    e.kind(),
                    "another ingest is running on this warehouse (remove this lock file if none is)",
                ),
            )),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

impl Drop for IngestLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The canonical header line, for writers of request logs.
pub fn canonical_header() -> String {
    INPUT_COLUMNS.join(",")
}
