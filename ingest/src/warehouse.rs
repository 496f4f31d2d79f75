//! Commits validated rows to the warehouse, atomically and idempotently.
//!
//! One ingest is one commit: rows stream from the input files through validation and the
//! duplicate/update rules into new Parquet files of a staged snapshot; unchanged files of the
//! previous snapshot are hard-linked into it; the snapshot is renamed into place and the
//! commit record written last (see [`crate::layout`]). Killing the process at any moment
//! leaves the previous commit intact; running the same command again finishes the job.
//!
//! Invariant, for every file and for every ingest:
//! `rows_read = rows_accepted + rows_quarantined + rows_duplicate`.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dialect::{Encoding, Format, scan_file};
use crate::error::{Error, Result};
use crate::frames::{QuarantinedRow, Record, quarantine_frame, with_superseded};
use crate::header::LogKind;
use crate::layout::{Layout, Table};
use crate::profile::Profile;
use crate::pseudonym::Pseudonymiser;
use crate::source::{Block, LogReader, RowShape};
use crate::validate::{FieldParser, Rejection, ServiceRequest, SurveyResponse};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

/// Rows kept in memory per table before they are written out.
const FLUSH_ROWS: usize = 250_000;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 64 * 1024;
/// How often (in rows) progress is reported.
const PROGRESS_EVERY: u64 = 50_000;

/// What one ingest did, per file and in total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestSummary {
    /// The commit this ingest created (the previous version when nothing was committed).
    pub commit: u64,
    /// Whether a new commit was made.
    pub committed: bool,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    pub rows_duplicate: u64,
    /// Accepted rows that replaced an earlier version of the same record.
    pub rows_updated: u64,
    pub files: Vec<FileSummary>,
    /// Non-fatal remarks, such as ignored columns.
    pub warnings: Vec<String>,
    /// Service codes of the accepted rows (the city's own codes, catalogued or not).
    #[serde(default)]
    pub services: std::collections::BTreeSet<String>,
}

/// What one ingest did with one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSummary {
    pub path: String,
    pub sha256: String,
    /// `requests` or `surveys`.
    pub kind: String,
    /// `csv; delimiter ';'; windows-1252; decimal comma`, or empty when skipped.
    pub dialect: String,
    /// Set when the file was not read, with the reason (e.g. already ingested).
    pub skipped: Option<String>,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    pub rows_duplicate: u64,
    pub rows_updated: u64,
}

/// A file already in the warehouse, identified by its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestedFile {
    pub sha256: String,
    pub path: String,
    pub commit: u64,
}

/// The record written last by a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub commit: u64,
    /// `ingest` or `compact`.
    #[serde(default)]
    pub operation: String,
    pub committed_at: String,
    pub summary: IngestSummary,
    /// Every live data file of the snapshot, by table, relative to the snapshot directory.
    pub tables: BTreeMap<String, Vec<String>>,
    /// Every file ingested so far (this commit and earlier ones).
    pub ingested: Vec<IngestedFile>,
}

/// Options of an ingest.
#[derive(Default)]
pub struct IngestOptions<'a> {
    pub profile: Profile,
    /// Overrides the kind recognised from the header.
    pub kind: Option<LogKind>,
    /// Refuse to commit anything if any row would be quarantined.
    pub fail_on_quarantine: bool,
    /// Called with the number of rows read so far.
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

/// Loads `files` (request or survey logs, any supported dialect) into the warehouse as one
/// commit. Errors stop the whole ingest before its commit: nothing changes.
pub fn ingest(
    layout: &Layout,
    files: &[PathBuf],
    pseudonymiser: &Pseudonymiser,
    options: &IngestOptions<'_>,
) -> Result<IngestSummary> {
    let _lock = IngestLock::acquire(layout)?;
    clean_leftovers(layout)?;
    let previous = latest_record(layout)?;
    let base = previous.as_ref().map_or(0, |r| r.commit);
    let commit = base + 1;
    let staging = layout.staging_dir().join(format!("{commit:06}"));
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;

    let mut ctx = Commit {
        commit,
        staging: staging.clone(),
        base_snapshot: previous.as_ref().map(|r| layout.snapshot(r.commit)),
        quarantine: Vec::new(),
        quarantine_files: 0,
        writer: Writer::start(),
    };
    let mut requests = TableState::<ServiceRequest>::load(&ctx)?;
    let mut surveys = TableState::<SurveyResponse>::load(&ctx)?;
    let mut ingested: Vec<IngestedFile> = previous
        .as_ref()
        .map(|r| r.ingested.clone())
        .unwrap_or_default();
    let mut summary = IngestSummary {
        commit,
        ..IngestSummary::default()
    };
    let mut rows_so_far = 0u64;

    for (file_index, path) in files.iter().enumerate() {
        let scan = scan_file(path)?;
        let source = path.display().to_string();
        if let Some(earlier) = ingested.iter().find(|f| f.sha256 == scan.sha256) {
            summary.files.push(FileSummary {
                path: source,
                sha256: scan.sha256.clone(),
                skipped: Some(format!(
                    "already ingested in commit {} (as {})",
                    earlier.commit, earlier.path
                )),
                ..FileSummary::default()
            });
            continue;
        }
        let mut reader = LogReader::open(path, &scan, &options.profile, options.kind)?;
        if !reader.columns.unknown.is_empty() {
            let message = format!(
                "{source}: ignored column(s) not in the {} format: {}",
                reader.kind.as_str(),
                reader.columns.unknown.join(", ")
            );
            tracing::warn!("{message}");
            summary.warnings.push(message);
        }
        let parser = FieldParser::new(
            reader.dialect.decimal,
            Some(options.profile.source.date_format.clone()),
            &options.profile.values,
            pseudonymiser.clone(),
        );
        let mut file = FileSummary {
            path: source.clone(),
            sha256: scan.sha256.clone(),
            kind: reader.kind.as_str().to_string(),
            dialect: describe(&reader),
            ..FileSummary::default()
        };
        let kind = reader.kind;
        let shape = reader.shape().clone();
        // Sized once: growing a table of millions of entries costs more than the reading.
        let expected = usize::try_from(scan.lines).unwrap_or(0);
        match kind {
            LogKind::Requests => requests.index.reserve(expected),
            LogKind::Surveys => surveys.index.reserve(expected),
        }
        requests.expected = expected;
        surveys.expected = expected;
        let mut services: FxHashSet<String> = FxHashSet::default();
        // Three stages run at once: a reader thread cuts the file into blocks of whole
        // records; a validator thread splits and validates groups of blocks in parallel; this
        // thread applies the duplicate/update rules in file order and hands full buffers to
        // the writer thread.
        std::thread::scope(|scope| -> Result<()> {
            let (blocks, incoming_blocks) = std::sync::mpsc::sync_channel::<Result<Block>>(4);
            scope.spawn(move || {
                while let Some(block) = reader.next_block() {
                    let failed = block.is_err();
                    if blocks.send(block).is_err() || failed {
                        return;
                    }
                }
            });
            let (checked, incoming) =
                std::sync::mpsc::sync_channel::<Result<(Block, Vec<Checked>)>>(2);
            let (shape_ref, parser_ref) = (&shape, &parser);
            scope.spawn(move || {
                let group_size = rayon::current_num_threads().max(1);
                loop {
                    let group: Vec<Result<Block>> =
                        incoming_blocks.iter().take(group_size).collect();
                    if group.is_empty() {
                        return;
                    }
                    let results: Vec<Result<(Block, Vec<Checked>)>> = group
                        .into_par_iter()
                        .map(|block| {
                            let block = block?;
                            let rows = check_block(shape_ref, &block, kind, parser_ref)?;
                            Ok((block, rows))
                        })
                        .collect();
                    for result in results {
                        let failed = result.is_err();
                        if checked.send(result).is_err() || failed {
                            return;
                        }
                    }
                }
            });
            for item in incoming {
                let (block, rows) = item?;
                for row in rows {
                    file.rows_read += 1;
                    rows_so_far += 1;
                    if rows_so_far.is_multiple_of(PROGRESS_EVERY)
                        && let Some(progress) = options.progress
                    {
                        progress(rows_so_far);
                    }
                    let (outcome, line, span) = match row {
                        Checked::Quarantined {
                            line,
                            rejection,
                            masked,
                        } => {
                            ctx.quarantine(&source, line, rejection, masked)?;
                            file.rows_quarantined += 1;
                            continue;
                        }
                        Checked::Request(row) => {
                            note_service(&mut services, &row.record.service);
                            let (line, span) = (row.line, row.span.clone());
                            (
                                requests.offer(&mut ctx, row, file_index as u32)?,
                                line,
                                span,
                            )
                        }
                        Checked::Survey(row) => {
                            note_service(&mut services, &row.record.service);
                            let (line, span) = (row.line, row.span.clone());
                            (surveys.offer(&mut ctx, row, file_index as u32)?, line, span)
                        }
                    };
                    match outcome {
                        Outcome::Accepted { updated } => {
                            file.rows_accepted += 1;
                            file.rows_updated += u64::from(updated);
                        }
                        Outcome::Duplicate => file.rows_duplicate += 1,
                        Outcome::Refused(rejection) => {
                            let masked = shape.masked(&block, span, line);
                            ctx.quarantine(&source, line, rejection, masked)?;
                            file.rows_quarantined += 1;
                        }
                    }
                }
            }
            Ok(())
        })?;
        summary.services.extend(services);
        summary.rows_read += file.rows_read;
        summary.rows_accepted += file.rows_accepted;
        summary.rows_quarantined += file.rows_quarantined;
        summary.rows_duplicate += file.rows_duplicate;
        summary.rows_updated += file.rows_updated;
        ingested.push(IngestedFile {
            sha256: scan.sha256,
            path: source,
            commit,
        });
        summary.files.push(file);
    }

    let processed = summary.files.iter().any(|f| f.skipped.is_none());
    if !processed {
        let _ = std::fs::remove_dir_all(&staging);
        summary.commit = base;
        return Ok(summary);
    }
    if options.fail_on_quarantine && summary.rows_quarantined > 0 {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(Error::Refused {
            quarantined: summary.rows_quarantined,
            first: ctx
                .quarantine
                .first()
                .map(|q| format!("{}:{}: {}: {}", q.source_file, q.line, q.field, q.reason))
                .unwrap_or_default(),
        });
    }

    requests.finish(&mut ctx)?;
    surveys.finish(&mut ctx)?;
    ctx.flush_quarantine()?;
    let replaced: HashSet<PathBuf> = requests
        .replaced
        .iter()
        .chain(&surveys.replaced)
        .cloned()
        .collect();
    ctx.link_unchanged(&replaced)?;

    summary.committed = true;
    publish(layout, &staging, "ingest", summary.clone(), ingested)?;
    Ok(summary)
}

/// Makes a complete staged snapshot the snapshot of `summary.commit`, then writes the commit
/// record (the commit point), updates the convenience links and drops old snapshots.
fn publish(
    layout: &Layout,
    staging: &Path,
    operation: &str,
    summary: IngestSummary,
    ingested: Vec<IngestedFile>,
) -> Result<()> {
    let commit = summary.commit;
    let snapshot = layout.snapshot(commit);
    let snapshots_dir = layout.snapshots_dir();
    std::fs::create_dir_all(&snapshots_dir).map_err(|e| Error::io(&snapshots_dir, e))?;
    std::fs::rename(staging, &snapshot).map_err(|e| Error::io(&snapshot, e))?;
    let record = CommitRecord {
        commit,
        operation: operation.to_string(),
        committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        summary,
        tables: list_tables(&snapshot)?,
        ingested,
    };
    write_commit_record(layout, &record)?;
    update_links(layout, commit);
    remove_old_snapshots(layout, commit);
    Ok(())
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactSummary {
    /// The new commit, or the unchanged version when there was nothing to merge.
    pub commit: u64,
    pub committed: bool,
    pub files_before: usize,
    pub files_after: usize,
}

/// Merges the files of each partition of the data tables into one file sorted by service and
/// time, as one atomic commit. Many small nightly ingests leave many small files; queries
/// are faster on few large ones. Rows and versions are unchanged.
pub fn compact(layout: &Layout) -> Result<CompactSummary> {
    let _lock = IngestLock::acquire(layout)?;
    clean_leftovers(layout)?;
    let Some(previous) = latest_record(layout)? else {
        return Ok(CompactSummary::default());
    };
    let base = layout.snapshot(previous.commit);
    let commit = previous.commit + 1;
    let staging = layout.staging_dir().join(format!("{commit:06}"));
    let mut summary = CompactSummary {
        commit: previous.commit,
        ..CompactSummary::default()
    };
    let mut merged_any = false;
    summary.files_before = parquet_files(&base)?.len();
    for table in Table::ALL {
        let sort: &[&str] = match table {
            Table::Requests | Table::RequestsHistory => &["service", "submitted_at"],
            Table::Surveys | Table::SurveysHistory => &["service", "responded_at"],
            Table::Quarantine => &["source_file", "line"],
        };
        let mut partitions: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
        for file in parquet_files(&base.join(table.name()))? {
            let relative = file.strip_prefix(&base).unwrap_or(&file).to_path_buf();
            let partition = relative.parent().map(Path::to_path_buf).unwrap_or_default();
            partitions.entry(partition).or_default().push(file);
        }
        for (partition, files) in partitions {
            if files.len() == 1 {
                link_or_copy(
                    &files[0],
                    &staging.join(files[0].strip_prefix(&base).unwrap_or(&files[0])),
                )?;
                continue;
            }
            merged_any = true;
            let mut merged: Option<DataFrame> = None;
            for file in &files {
                let parquet_error = |source| Error::Parquet {
                    path: file.clone(),
                    source,
                };
                let handle = File::open(file).map_err(|e| Error::io(file, e))?;
                let df = ParquetReader::new(handle).finish().map_err(parquet_error)?;
                merged = Some(match merged {
                    None => df,
                    Some(mut acc) => {
                        acc.vstack_mut(&df).map_err(parquet_error)?;
                        acc
                    }
                });
            }
            let target = staging
                .join(&partition)
                .join(format!("part-{commit:06}-0000.parquet"));
            let parquet_error = |source| Error::Parquet {
                path: target.clone(),
                source,
            };
            if let Some(df) = merged {
                let mut df = df
                    .sort(
                        sort.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                        SortMultipleOptions::default(),
                    )
                    .map_err(parquet_error)?;
                write_parquet(&mut df, &target)?;
            }
        }
    }
    if !merged_any {
        let _ = std::fs::remove_dir_all(&staging);
        summary.files_after = summary.files_before;
        return Ok(summary);
    }
    summary.files_after = parquet_files(&staging)?.len();
    summary.commit = commit;
    summary.committed = true;
    let record_summary = IngestSummary {
        commit,
        committed: true,
        ..IngestSummary::default()
    };
    publish(
        layout,
        &staging,
        "compact",
        record_summary,
        previous.ingested,
    )?;
    Ok(summary)
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    if std::fs::hard_link(from, to).is_err() {
        // Filesystems without hard links: a copy keeps the same guarantees.
        std::fs::copy(from, to).map_err(|e| Error::io(to, e))?;
    }
    Ok(())
}

/// A one-line description of a file's dialect.
fn describe(reader: &LogReader) -> String {
    let d = &reader.dialect;
    let encoding = match d.encoding {
        Encoding::Utf8 => "utf-8",
        Encoding::Windows1252 => "windows-1252",
    };
    let decimal = match d.decimal {
        crate::dialect::DecimalMark::Comma => "decimal comma",
        crate::dialect::DecimalMark::Dot => "decimal point",
    };
    match d.format {
        Format::JsonLines => format!("json-lines; {encoding}"),
        Format::Csv => format!(
            "csv; delimiter '{}'; {encoding}; {decimal}{}",
            if d.delimiter == b'\t' {
                "\\t".to_string()
            } else {
                (d.delimiter as char).to_string()
            },
            if d.sep_line { "; sep= line" } else { "" }
        ),
    }
}

/// A valid record with what the sequential stage needs, computed in parallel.
struct Valid<R> {
    line: u64,
    /// Where the row's text is in its block (for a refusal decided later).
    span: std::ops::Range<usize>,
    /// Hash of the record's id.
    key: u128,
    fingerprint: u128,
    record: R,
}

/// A row after validation.
enum Checked {
    Quarantined {
        line: u64,
        rejection: Rejection,
        masked: String,
    },
    Request(Valid<ServiceRequest>),
    Survey(Valid<SurveyResponse>),
}

/// Splits a block into rows and validates each.
fn check_block(
    shape: &RowShape,
    block: &Block,
    kind: LogKind,
    parser: &FieldParser,
) -> Result<Vec<Checked>> {
    // About 100 bytes a row in common exports.
    let mut out = Vec::with_capacity(block.bytes.len() / 100 + 16);
    shape.rows(block, |row| {
        let row = match row {
            Ok(row) => row,
            Err(broken) => {
                out.push(Checked::Quarantined {
                    line: broken.line,
                    rejection: broken.rejection,
                    masked: broken.masked,
                });
                return;
            }
        };
        let checked = match kind {
            LogKind::Requests => parser.request(row.values).map(|record| {
                Checked::Request(Valid {
                    line: row.line,
                    span: row.span.clone(),
                    key: id_key(record.id()),
                    fingerprint: record.fingerprint(),
                    record,
                })
            }),
            LogKind::Surveys => parser.survey(row.values).map(|record| {
                Checked::Survey(Valid {
                    line: row.line,
                    span: row.span.clone(),
                    key: id_key(record.id()),
                    fingerprint: record.fingerprint(),
                    record,
                })
            }),
        };
        out.push(checked.unwrap_or_else(|rejection| Checked::Quarantined {
            line: row.line,
            rejection,
            masked: row.masked(),
        }));
    })?;
    Ok(out)
}

fn note_service(services: &mut FxHashSet<String>, service: &str) {
    if !services.contains(service) {
        services.insert(service.to_string());
    }
}

/// What happened to one valid record.
enum Outcome {
    Accepted { updated: bool },
    Duplicate,
    Refused(Rejection),
}

/// `Entry::origin` of a record still in memory.
const BUFFERED: u32 = u32::MAX;
/// `Entry::seen_file` of a record stored by an earlier commit.
const NOT_SEEN: u32 = u32::MAX;

/// What the index keeps per record: 24 bytes, so that tens of millions of ids fit in memory.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The low 64 bits of the record's fingerprint (a collision between two versions of the
    /// same id has probability 2⁻⁶⁴).
    fingerprint: u64,
    /// The file that holds the current version (index into `TableState::files`), or
    /// [`BUFFERED`].
    origin: u32,
    /// The input file of this ingest where the record was first seen, or [`NOT_SEEN`].
    seen_file: u32,
    /// Its line there (saturating), for conflict messages.
    seen_line: u32,
}

fn id_key(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

/// The work in progress of one commit that is shared by the tables.
struct Commit {
    commit: u64,
    staging: PathBuf,
    base_snapshot: Option<PathBuf>,
    quarantine: Vec<QuarantinedRow>,
    quarantine_files: u32,
    writer: Writer,
}

impl Commit {
    fn quarantine(
        &mut self,
        source: &str,
        line: u64,
        rejection: Rejection,
        raw: String,
    ) -> Result<()> {
        self.quarantine.push(QuarantinedRow {
            source_file: source.to_string(),
            line,
            field: rejection.field,
            reason: rejection.reason,
            raw_line: raw,
        });
        if self.quarantine.len() >= FLUSH_ROWS {
            self.flush_quarantine()?;
        }
        Ok(())
    }

    fn flush_quarantine(&mut self) -> Result<()> {
        if self.quarantine.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.quarantine);
        let dir = self.staging.join(Table::Quarantine.name()).join(format!(
            "{}={:06}",
            Table::Quarantine.partition_column(),
            self.commit
        ));
        let path = dir.join(format!(
            "part-{:06}-{:04}.parquet",
            self.commit, self.quarantine_files
        ));
        self.quarantine_files += 1;
        let mut df = quarantine_frame(&rows).map_err(|source| Error::Parquet {
            path: path.clone(),
            source,
        })?;
        write_parquet(&mut df, &path)
    }

    /// Hard-links every file of the previous snapshot that this commit does not replace.
    fn link_unchanged(&self, replaced: &HashSet<PathBuf>) -> Result<()> {
        let Some(base) = &self.base_snapshot else {
            return Ok(());
        };
        for file in parquet_files(base)? {
            if replaced.contains(&file) {
                continue;
            }
            let relative = file.strip_prefix(base).unwrap_or(&file);
            link_or_copy(&file, &self.staging.join(relative))?;
        }
        Ok(())
    }
}

/// The state of one data table during an ingest.
struct TableState<R: Record> {
    index: FxHashMap<u128, Entry>,
    /// Files that hold current versions: previous-snapshot files, then files written now.
    files: Vec<PathBuf>,
    /// Rows waiting to be written, by year, each with its fingerprint (computed once).
    buffers: BTreeMap<i32, Vec<(u128, R)>>,
    buffered: usize,
    /// Rows expected from the file being read (to size buffers).
    expected: usize,
    /// Fingerprints of buffered rows superseded by a later version in this ingest.
    dropped: FxHashSet<u64>,
    /// Superseded versions still in memory, bound for the history table.
    history: Vec<(u128, R)>,
    /// File index → ids of rows to move out of that file into the history table.
    rewrites: BTreeMap<u32, HashSet<String>>,
    /// Previous-snapshot files that this commit replaces.
    replaced: HashSet<PathBuf>,
    written: u32,
}

impl<R: Record> TableState<R> {
    /// Reads the ids and fingerprints of the table's current versions.
    fn load(ctx: &Commit) -> Result<Self> {
        let mut state = TableState {
            index: FxHashMap::default(),
            files: Vec::new(),
            buffers: BTreeMap::new(),
            buffered: 0,
            expected: 0,
            dropped: FxHashSet::default(),
            history: Vec::new(),
            rewrites: BTreeMap::new(),
            replaced: HashSet::new(),
            written: 0,
        };
        let Some(base) = &ctx.base_snapshot else {
            return Ok(state);
        };
        for path in parquet_files(&base.join(R::TABLE.name()))? {
            let file_index = state.files.len() as u32;
            let parquet_error = |source| Error::Parquet {
                path: path.clone(),
                source,
            };
            let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
            let df = ParquetReader::new(file)
                .with_columns(Some(vec![
                    R::ID_COLUMN.to_string(),
                    "record_fingerprint".to_string(),
                ]))
                .finish()
                .map_err(parquet_error)?;
            let ids = df
                .column(R::ID_COLUMN)
                .and_then(|c| c.str())
                .map_err(parquet_error)?;
            let prints: Vec<Option<u64>> = match df
                .column("record_fingerprint")
                .map_err(parquet_error)?
                .as_materialized_series()
            {
                c if c.dtype() == &DataType::Int64 => c
                    .i64()
                    .map_err(parquet_error)?
                    .iter()
                    .map(|v| v.map(|v| v as u64))
                    .collect(),
                // Warehouses written before fingerprints were stored as integers.
                c => c
                    .str()
                    .map_err(parquet_error)?
                    .iter()
                    .map(|v| v.and_then(|v| u128::from_str_radix(v, 16).ok().map(|f| f as u64)))
                    .collect(),
            };
            for (id, print) in ids.iter().zip(prints) {
                if let (Some(id), Some(print)) = (id, print) {
                    state.index.insert(
                        id_key(id),
                        Entry {
                            fingerprint: print,
                            origin: file_index,
                            seen_file: NOT_SEEN,
                            seen_line: 0,
                        },
                    );
                }
            }
            state.files.push(path);
        }
        Ok(state)
    }

    /// Applies the duplicate and update rules to a valid record.
    fn offer(&mut self, ctx: &mut Commit, valid: Valid<R>, file: u32) -> Result<Outcome> {
        let Valid {
            line,
            key,
            fingerprint: full_fingerprint,
            record,
            ..
        } = valid;
        let fingerprint = full_fingerprint as u64;
        let mut updated = false;
        if let Some(entry) = self.index.get(&key).copied() {
            if entry.fingerprint == fingerprint {
                return Ok(Outcome::Duplicate);
            }
            if entry.seen_file == file {
                return Ok(Outcome::Refused(Rejection::new(
                    R::ID_COLUMN,
                    format!(
                        "conflict: `{}` appears at line {} of this file with different content",
                        record.id(),
                        entry.seen_line
                    ),
                )));
            }
            // A later export of the same record: the earlier version moves to history.
            if entry.origin == BUFFERED {
                self.dropped.insert(entry.fingerprint);
            } else {
                self.rewrites
                    .entry(entry.origin)
                    .or_default()
                    .insert(record.id().to_string());
            }
            updated = true;
        }
        self.index.insert(
            key,
            Entry {
                fingerprint,
                origin: BUFFERED,
                seen_file: file,
                seen_line: u32::try_from(line).unwrap_or(u32::MAX),
            },
        );
        let capacity = self.expected.clamp(1, FLUSH_ROWS);
        self.buffers
            .entry(record.year())
            .or_insert_with(|| Vec::with_capacity(capacity))
            .push((full_fingerprint, record));
        self.buffered += 1;
        if self.buffered >= FLUSH_ROWS {
            self.flush(ctx)?;
        }
        Ok(Outcome::Accepted { updated })
    }

    /// Hands every buffered row to the writer, bound for new files of the staged snapshot.
    fn flush(&mut self, ctx: &mut Commit) -> Result<()> {
        let buffers = std::mem::take(&mut self.buffers);
        self.buffered = 0;
        for (year, mut rows) in buffers {
            if !self.dropped.is_empty() {
                let (gone, kept): (Vec<_>, Vec<_>) = rows
                    .into_iter()
                    .partition(|(fp, _)| self.dropped.contains(&(*fp as u64)));
                for (fp, _) in &gone {
                    self.dropped.remove(&(*fp as u64));
                }
                self.history.extend(gone);
                rows = kept;
            }
            if rows.is_empty() {
                continue;
            }
            let path = self.new_file(ctx, R::TABLE, year);
            let file_index = self.files.len() as u32;
            self.files.push(path.clone());
            for (fp, r) in &rows {
                if let Some(entry) = self.index.get_mut(&id_key(r.id()))
                    && entry.fingerprint == *fp as u64
                {
                    entry.origin = file_index;
                }
            }
            ctx.writer.submit(Box::new(move || {
                let mut df = R::frame(&sorted(&rows)).map_err(|source| Error::Parquet {
                    path: path.clone(),
                    source,
                })?;
                write_parquet(&mut df, &path)
            }))?;
        }
        Ok(())
    }

    fn new_file(&mut self, ctx: &Commit, table: Table, year: i32) -> PathBuf {
        self.written += 1;
        ctx.staging
            .join(table.name())
            .join(format!("{}={year}", table.partition_column()))
            .join(format!(
                "part-{:06}-{:04}.parquet",
                ctx.commit, self.written
            ))
    }

    /// Flushes the buffers, then moves superseded versions out of their files.
    fn finish(&mut self, ctx: &mut Commit) -> Result<()> {
        self.flush(ctx)?;
        // The files to rewrite may be among those just handed to the writer.
        ctx.writer.drain()?;
        let history = std::mem::take(&mut self.history);
        let mut by_year: BTreeMap<i32, Vec<(u128, R)>> = BTreeMap::new();
        for row in history {
            by_year.entry(row.1.year()).or_default().push(row);
        }
        for (year, rows) in by_year {
            let path = self.new_file(ctx, R::HISTORY, year);
            let mut df = R::frame(&rows.iter().collect::<Vec<_>>())
                .and_then(|df| with_superseded(df, ctx.commit))
                .map_err(|source| Error::Parquet {
                    path: path.clone(),
                    source,
                })?;
            write_parquet(&mut df, &path)?;
        }
        let rewrites = std::mem::take(&mut self.rewrites);
        for (index, ids) in rewrites {
            let path = self.files[index as usize].clone();
            self.move_to_history(ctx, &path, &ids)?;
        }
        Ok(())
    }

    /// Splits `path` into the rows that stay and the superseded rows, which go to history.
    fn move_to_history(&mut self, ctx: &Commit, path: &Path, ids: &HashSet<String>) -> Result<()> {
        let parquet_error = |source| Error::Parquet {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let df = ParquetReader::new(file).finish().map_err(parquet_error)?;
        let id_column = df
            .column(R::ID_COLUMN)
            .and_then(|c| c.str())
            .map_err(parquet_error)?;
        let superseded: BooleanChunked = id_column
            .iter()
            .map(|id| Some(id.is_some_and(|id| ids.contains(id))))
            .collect();
        let mut keep = df.filter(&!&superseded).map_err(parquet_error)?;
        let gone = df.filter(&superseded).map_err(parquet_error)?;
        let year = partition_year(path);
        if gone.height() > 0 {
            let target = self.new_file(ctx, R::HISTORY, year);
            let mut gone = with_superseded(gone, ctx.commit).map_err(parquet_error)?;
            write_parquet(&mut gone, &target)?;
        }
        let in_staging = path.starts_with(&ctx.staging);
        if in_staging {
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
        } else {
            self.replaced.insert(path.to_path_buf());
        }
        if keep.height() > 0 {
            let target = self.new_file(ctx, R::TABLE, year);
            write_parquet(&mut keep, &target)?;
        }
        Ok(())
    }
}

/// Work for the writer thread: building and writing one Parquet file.
type WriteJob = Box<dyn FnOnce() -> Result<()> + Send>;

/// A thread that writes Parquet files while the rows that follow are validated. At most one
/// job waits while another runs, which bounds the memory held by pending files.
struct Writer {
    jobs: Option<std::sync::mpsc::SyncSender<WriteJob>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Writer {
    fn start() -> Self {
        let (jobs, incoming) = std::sync::mpsc::sync_channel::<WriteJob>(1);
        let thread = std::thread::spawn(move || {
            for job in incoming {
                job()?;
            }
            Ok(())
        });
        Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }

    /// Queues a job; fails with the writer's error if an earlier job failed.
    fn submit(&mut self, job: WriteJob) -> Result<()> {
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if sent {
            return Ok(());
        }
        self.drain()
    }

    /// Waits until every queued job is done, then starts afresh.
    fn drain(&mut self) -> Result<()> {
        self.jobs = None;
        let outcome = match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| {
                Err(Error::io(
                    Path::new("<parquet writer>"),
                    std::io::Error::other("the writer thread panicked"),
                ))
            }),
            None => Ok(()),
        };
        *self = Writer::start();
        outcome
    }
}

/// Rows in their order inside a file: by service, then time, then arrival (so the order is
/// the same on every run).
fn sorted<R: Record>(rows: &[(u128, R)]) -> Vec<&(u128, R)> {
    let mut services: Vec<&str> = rows.iter().map(|(_, r)| r.sort_key().0).collect();
    services.sort_unstable();
    services.dedup();
    let mut keys: Vec<(u32, i64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(i, (_, r))| {
            let (service, time) = r.sort_key();
            let rank = services.binary_search(&service).unwrap_or(0) as u32;
            (rank, time, i as u32)
        })
        .collect();
    keys.sort_unstable();
    keys.iter().map(|(_, _, i)| &rows[*i as usize]).collect()
}

/// The year of a `…/year=2017/part.parquet` path (0 if absent).
fn partition_year(path: &Path) -> i32 {
    path.parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("year="))
        .and_then(|y| y.parse().ok())
        .unwrap_or(0)
}

/// Writes `df` as zstd Parquet with statistics, creating the directory.
fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::full())
        .with_row_group_size(Some(ROW_GROUP_ROWS))
        .finish(df)
        .map_err(|source| Error::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(())
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

/// The data files of a snapshot, by table, relative to the snapshot directory.
fn list_tables(snapshot: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    let mut tables = BTreeMap::new();
    for table in Table::ALL {
        let files = parquet_files(&snapshot.join(table.name()))?
            .iter()
            .map(|p| {
                p.strip_prefix(snapshot)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .replace(std::path::MAIN_SEPARATOR, "/")
            })
            .collect::<Vec<_>>();
        if !files.is_empty() {
            tables.insert(table.name().to_string(), files);
        }
    }
    Ok(tables)
}

/// The record of the latest commit, if any.
pub fn latest_record(layout: &Layout) -> Result<Option<CommitRecord>> {
    let latest = layout
        .latest_commit()
        .map_err(|e| Error::io(layout.commits_dir(), e))?;
    if latest == 0 {
        return Ok(None);
    }
    read_commit_record(layout, latest).map(Some)
}

/// Reads the record of one commit.
pub fn read_commit_record(layout: &Layout, commit: u64) -> Result<CommitRecord> {
    let path = layout.commit_record(commit);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| Error::CommitRecord { path, source })
}

/// Writes the commit record through a temporary file and a rename: the commit point.
fn write_commit_record(layout: &Layout, record: &CommitRecord) -> Result<()> {
    let dir = layout.commits_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let target = layout.commit_record(record.commit);
    let temp = layout
        .staging_dir()
        .join(format!("{:06}.json.tmp", record.commit));
    let json = serde_json::to_vec_pretty(record).map_err(|source| Error::CommitRecord {
        path: target.clone(),
        source,
    })?;
    {
        use std::io::Write;
        let mut file = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        file.write_all(&json).map_err(|e| Error::io(&temp, e))?;
        file.sync_all().map_err(|e| Error::io(&temp, e))?;
    }
    std::fs::rename(&temp, &target).map_err(|e| Error::io(&target, e))
}

/// Removes what an interrupted ingest left: staged work and snapshots without a record.
fn clean_leftovers(layout: &Layout) -> Result<()> {
    let latest = layout
        .latest_commit()
        .map_err(|e| Error::io(layout.commits_dir(), e))?;
    if let Ok(entries) = std::fs::read_dir(layout.staging_dir()) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "ingest.lock") {
                continue;
            }
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| Error::io(&path, e))?;
        }
    }
    if let Ok(entries) = std::fs::read_dir(layout.snapshots_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if let Ok(n) = name.to_string_lossy().parse::<u64>()
                && n > latest
            {
                std::fs::remove_dir_all(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            }
        }
    }
    Ok(())
}

/// Keeps the latest two snapshots (a reader may still be on the previous one).
fn remove_old_snapshots(layout: &Layout, commit: u64) {
    if let Ok(entries) = std::fs::read_dir(layout.snapshots_dir()) {
        for entry in entries.flatten() {
            if let Ok(n) = entry.file_name().to_string_lossy().parse::<u64>()
                && n + 1 < commit
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Points `warehouse/<table>` at the table's directory in the latest snapshot, so that other
/// engines can read `warehouse/requests/*/*.parquet`. Best effort: civica itself reads the
/// commit record.
fn update_links(layout: &Layout, commit: u64) {
    #[cfg(unix)]
    for table in Table::ALL {
        let target = PathBuf::from("_snapshots")
            .join(format!("{commit:06}"))
            .join(table.name());
        if !layout.table_dir(commit, table).is_dir() {
            let _ = std::fs::remove_file(layout.table_link(table));
            continue;
        }
        let temp = layout.staging_dir().join(format!("{}.link", table.name()));
        let _ = std::fs::remove_file(&temp);
        if std::os::unix::fs::symlink(&target, &temp).is_ok() {
            let _ = std::fs::rename(&temp, layout.table_link(table));
        }
    }
    #[cfg(not(unix))]
    let _ = (layout, commit);
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
            Ok(mut file) => {
                use std::io::Write;
                let _ = writeln!(file, "{}", std::process::id());
                Ok(IngestLock { path })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if lock_is_stale(&path) {
                    let _ = std::fs::remove_file(&path);
                    return Self::acquire(layout);
                }
                Err(Error::Locked { path })
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

/// A lock whose process no longer exists (killed ingest) can be taken over.
fn lock_is_stale(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return false;
    };
    cfg!(target_os = "linux") && !Path::new(&format!("/proc/{pid}")).exists()
}

impl Drop for IngestLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
