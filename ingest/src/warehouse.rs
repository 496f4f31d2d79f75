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

use crate::datafile;
use crate::dialect::{Dialect, FileScan, Format, scan_file};
use crate::error::{Error, Result};
use crate::frames::{QuarantinedRow, Record, quarantine_frame, with_superseded};
use crate::header::LogKind;
use crate::layout::{Layout, Table};
use crate::partition::{ChunkPool, PartitionRows};
use crate::profile::Profile;
use crate::pseudonym::Pseudonymiser;
use crate::source::{Block, LogReader, RowShape};
use crate::validate::{FieldParser, Rejection, ServiceRequest, SurveyResponse};
use crate::versions::{KeyFilter, Resolution, STORED, Version, VersionLog, resolve};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Rows kept in memory per table before they are written out.
const FLUSH_ROWS: usize = 250_000;
/// Emptied chunks of rows are kept for reuse while they hold room for fewer rows than this:
/// as many as are in flight (one buffer being filled, one being written per writer thread),
/// so that the next rows do not fault in fresh memory.
const SPARE_ROWS: usize = FLUSH_ROWS * (WRITER_THREADS + 1);
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
    /// For a check (nothing committed, so no quarantine table to query): the first rows that
    /// would be quarantined, in reading order, at most [`REFUSED_SAMPLE`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_sample: Vec<QuarantinedRow>,
}

/// The most refused rows a check lists.
pub const REFUSED_SAMPLE: usize = 20;

/// What one ingest did with one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSummary {
    pub path: String,
    /// BLAKE3 of the file's bytes, hex (absent from records written when files were
    /// identified by SHA-256).
    #[serde(default)]
    pub blake3: String,
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
    /// BLAKE3 of the file's bytes, hex (empty in records of files hashed with SHA-256 before
    /// BLAKE3 was chosen: such a file, given again, is read again and its rows count as
    /// duplicates).
    #[serde(default)]
    pub blake3: String,
    pub path: String,
    pub commit: u64,
    /// Size in bytes (absent in records written before it was kept): a file of another size
    /// cannot have the same content, so its hash can wait until it is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
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
    /// Read and check everything, commit nothing: what an ingest would do, with the first
    /// refused rows in [`IngestSummary::refused_sample`].
    pub check_only: bool,
    /// Called with the number of rows read so far.
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

/// Loads `files` (request or survey logs, any supported dialect) into the warehouse as one
/// commit. Errors stop the whole ingest before its commit: nothing changes.
///
/// A file is normally read once: its hash and its text checks are computed while it is
/// parsed. It is read once beforehand, whole, when a file of the same size is already in the
/// warehouse or in this ingest (it may be the same content, to be skipped), and when its end
/// turned out not to be UTF-8 after a head that was (the ingest then starts again).
pub fn ingest(
    layout: &Layout,
    files: &[PathBuf],
    pseudonymiser: &Pseudonymiser,
    options: &IngestOptions<'_>,
) -> Result<IngestSummary> {
    let mut read_first: HashSet<PathBuf> = HashSet::new();
    loop {
        match ingest_once(layout, files, pseudonymiser, options, &read_first) {
            Err(Error::DialectChanged { path }) if !read_first.contains(&path) => {
                tracing::info!(path = %path.display(), "not UTF-8 beyond its first bytes: reading it again as Windows-1252");
                read_first.insert(path);
            }
            outcome => return outcome,
        }
    }
}

fn ingest_once(
    layout: &Layout,
    files: &[PathBuf],
    pseudonymiser: &Pseudonymiser,
    options: &IngestOptions<'_>,
    read_first: &HashSet<PathBuf>,
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
        refused_sample: Vec::new(),
        writer: Writer::start(),
    };
    let mut ingested: Vec<IngestedFile> = previous
        .as_ref()
        .map(|r| r.ingested.clone())
        .unwrap_or_default();
    // What each file looks like: read whole up front when its hash is needed before reading
    // (see above), otherwise from its first bytes, completed while it is parsed.
    let sizes = files
        .iter()
        .map(|path| {
            std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| Error::io(path, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut scans = files
        .iter()
        .zip(&sizes)
        .map(|(path, &size)| {
            let same_size = ingested.iter().any(|f| f.bytes.is_none_or(|b| b == size))
                || sizes.iter().filter(|&&s| s == size).count() > 1;
            if same_size || read_first.contains(path) {
                scan_file(path)
            } else {
                FileScan::of_head(path)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let expected_total: u64 = scans.iter().map(|s| s.lines).sum();
    let mut requests = TableState::<ServiceRequest>::load(&ctx, expected_total)?;
    let mut surveys = TableState::<SurveyResponse>::load(&ctx, expected_total)?;
    let mut summary = IngestSummary {
        commit,
        ..IngestSummary::default()
    };
    let mut rows_so_far = 0u64;
    // What is needed to read a file again, for the text of conflicting rows.
    let mut kinds: Vec<Option<LogKind>> = Vec::new();

    for (file_index, path) in files.iter().enumerate() {
        let scan = &scans[file_index];
        let source = path.display().to_string();
        let earlier = ingested
            .iter()
            .find(|f| scan.is_complete() && f.blake3 == scan.blake3)
            .map(|f| (f.commit, f.path.clone()));
        if let Some((earlier_commit, earlier_path)) = earlier {
            summary.files.push(FileSummary {
                path: source,
                blake3: scan.blake3.clone(),
                skipped: Some(format!(
                    "already ingested in commit {earlier_commit} (as {earlier_path})"
                )),
                ..FileSummary::default()
            });
            kinds.push(None);
            continue;
        }
        let reader = LogReader::open(path, scan, &options.profile, options.kind)?;
        let pending_scan = reader.scan_slot();
        let dialect = reader.dialect.clone();
        if reader.preamble_lines > 0 {
            let message = format!(
                "{source}: skipped {} line(s) above the header (a title or notes, not rows)",
                reader.preamble_lines
            );
            tracing::warn!("{message}");
            summary.warnings.push(message);
        }
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
            blake3: scan.blake3.clone(),
            kind: reader.kind.as_str().to_string(),
            dialect: describe(&reader),
            ..FileSummary::default()
        };
        kinds.push(Some(reader.kind));
        read_rows(
            reader,
            &parser,
            file_index as u32,
            |row: Checked, ctx: &mut Commit| -> Result<()> {
                file.rows_read += 1;
                rows_so_far += 1;
                if rows_so_far.is_multiple_of(PROGRESS_EVERY)
                    && let Some(progress) = options.progress
                {
                    progress(rows_so_far);
                }
                match row {
                    Checked::Quarantined {
                        line,
                        rejection,
                        masked,
                    } => {
                        ctx.quarantine(&source, line, rejection, masked)?;
                        file.rows_quarantined += 1;
                    }
                    // Accepted for now: duplicates, conflicts and updates are settled at the end.
                    Checked::Request(row) => {
                        requests.offer(ctx, row)?;
                        file.rows_accepted += 1;
                    }
                    Checked::Survey(row) => {
                        surveys.offer(ctx, row)?;
                        file.rows_accepted += 1;
                    }
                }
                Ok(())
            },
            &mut ctx,
        )?;
        if let Some(slot) = pending_scan {
            let complete = slot.lock().ok().and_then(|mut s| s.take()).ok_or_else(|| {
                Error::io(
                    path,
                    std::io::Error::other("the file was not read to its end"),
                )
            })?;
            if Dialect::detect(path, &complete, &options.profile)? != dialect {
                // The staged files go with the next attempt's cleaning, once the writer
                // threads have stopped (see `Writer`'s drop).
                return Err(Error::DialectChanged { path: path.clone() });
            }
            scans[file_index] = complete;
        }
        let scan = &scans[file_index];
        file.blake3 = scan.blake3.clone();
        ingested.push(IngestedFile {
            blake3: scan.blake3.clone(),
            path: source,
            commit,
            bytes: Some(scan.bytes),
        });
        summary.files.push(file);
    }

    let processed = summary.files.iter().any(|f| f.skipped.is_none());
    if !processed {
        let _ = std::fs::remove_dir_all(&staging);
        summary.commit = base;
        return Ok(summary);
    }

    let outcomes = [
        (ServiceRequest::ID_COLUMN, requests.finish(&mut ctx)?),
        (SurveyResponse::ID_COLUMN, surveys.finish(&mut ctx)?),
    ];
    summary.services = std::mem::take(&mut requests.services);
    summary.services.append(&mut surveys.services);
    let versions = staging.join(VERSIONS_DIR);
    if versions.exists() {
        std::fs::remove_dir_all(&versions).map_err(|e| Error::io(&versions, e))?;
    }
    for (id_column, resolution) in &outcomes {
        for (source, n) in &resolution.duplicates {
            let file = &mut summary.files[*source as usize];
            file.rows_accepted -= n;
            file.rows_duplicate += n;
        }
        for (source, n) in &resolution.updates {
            summary.files[*source as usize].rows_updated += n;
        }
        let mut by_source: BTreeMap<u32, BTreeMap<u64, u32>> = BTreeMap::new();
        for conflict in &resolution.conflicts {
            by_source
                .entry(conflict.source)
                .or_default()
                .insert(u64::from(conflict.line), conflict.first_line);
        }
        for (source, lines) in by_source {
            let index = source as usize;
            let file = &mut summary.files[index];
            file.rows_accepted -= lines.len() as u64;
            file.rows_quarantined += lines.len() as u64;
            let rows = conflicting_rows(
                &files[index],
                &scans[index],
                options,
                kinds[index],
                &lines,
                id_column,
            )?;
            for (line, rejection, masked) in rows {
                ctx.quarantine(&files[index].display().to_string(), line, rejection, masked)?;
            }
        }
    }
    for file in &summary.files {
        summary.rows_read += file.rows_read;
        summary.rows_accepted += file.rows_accepted;
        summary.rows_quarantined += file.rows_quarantined;
        summary.rows_duplicate += file.rows_duplicate;
        summary.rows_updated += file.rows_updated;
    }
    if options.check_only {
        let _ = std::fs::remove_dir_all(&staging);
        summary.commit = base;
        summary.refused_sample = ctx.refused_sample;
        return Ok(summary);
    }
    if options.fail_on_quarantine && summary.rows_quarantined > 0 {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(Error::Refused {
            quarantined: summary.rows_quarantined,
            first: ctx
                .refused_sample
                .first()
                .map(|q| format!("{}:{}: {}: {}", q.source_file, q.line, q.field, q.reason))
                .unwrap_or_default(),
        });
    }

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

/// Reads a file through the pipeline and calls `each` with every row, validated, in file
/// order.
///
/// Three stages run at once: a reader thread cuts the file into blocks of whole records; a
/// validator thread splits and validates groups of blocks in parallel; the calling thread
/// takes the rows in file order (and hands full buffers to the writer thread).
fn read_rows(
    mut reader: LogReader,
    parser: &FieldParser,
    source: u32,
    mut each: impl FnMut(Checked, &mut Commit) -> Result<()>,
    ctx: &mut Commit,
) -> Result<()> {
    let kind = reader.kind;
    let shape = reader.shape().clone();
    let pool = Pool::default();
    let buffers: Pool<u8> = Pool::default();
    std::thread::scope(|scope| -> Result<()> {
        let (blocks, incoming_blocks) = std::sync::mpsc::sync_channel::<Result<Block>>(2);
        let buffers = &buffers;
        scope.spawn(move || {
            while let Some(block) = reader.next_block_with(buffers.take()) {
                let failed = block.is_err();
                if blocks.send(block).is_err() || failed {
                    return;
                }
            }
        });
        let (checked, incoming) = std::sync::mpsc::sync_channel::<Result<Vec<Checked>>>(1);
        let shape = &shape;
        let pool = &pool;
        scope.spawn(move || {
            let group_size = rayon::current_num_threads().max(1);
            loop {
                let group: Vec<Result<Block>> = incoming_blocks.iter().take(group_size).collect();
                if group.is_empty() {
                    return;
                }
                let results: Vec<Result<Vec<Checked>>> = group
                    .into_par_iter()
                    .map(|block| {
                        let block = block?;
                        let rows = check_block(shape, &block, kind, parser, source, pool.take());
                        buffers.give(block.bytes);
                        rows
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
        for rows in incoming {
            let mut rows = rows?;
            for row in rows.drain(..) {
                each(row, ctx)?;
            }
            pool.give(rows);
        }
        Ok(())
    })?;
    Ok(())
}

/// Reads `path` again for the rows at `lines` (line → line of the version they conflict
/// with): each with its refusal and masked text.
fn conflicting_rows(
    path: &Path,
    scan: &crate::dialect::FileScan,
    options: &IngestOptions<'_>,
    kind: Option<LogKind>,
    lines: &BTreeMap<u64, u32>,
    id_column: &str,
) -> Result<Vec<(u64, Rejection, String)>> {
    let mut reader = LogReader::open(path, scan, &options.profile, kind.or(options.kind))?;
    let id_slot = reader.kind.columns().iter().position(|c| *c == id_column);
    let mut found = Vec::new();
    reader.for_each_row(|row| {
        let Ok(row) = row else { return };
        let Some(first_line) = lines.get(&row.line) else {
            return;
        };
        let id = id_slot
            .and_then(|slot| row.values.get(slot).copied().flatten())
            .unwrap_or("")
            .trim();
        found.push((
            row.line,
            Rejection::new(
                id_column,
                format!(
                    "conflict: `{id}` appears at line {first_line} of this file with different content"
                ),
            ),
            row.masked(),
        ));
    })?;
    Ok(found)
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
                datafile::write(&mut df, &target)?;
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
    let encoding = d.encoding.as_str();
    let decimal = match d.decimal {
        crate::dialect::DecimalMark::Comma => "decimal comma",
        crate::dialect::DecimalMark::Dot => "decimal point",
    };
    let text = describe_text(d, encoding, decimal);
    match (&d.zip_member, d.gzip) {
        _ if d.html_table => format!("HTML table; {text}"),
        (Some(member), _) => format!("zip member `{member}`; {text}"),
        (None, true) => format!("gzip; {text}"),
        (None, false) => text,
    }
}

fn describe_text(d: &Dialect, encoding: &str, decimal: &str) -> String {
    match d.format {
        Format::JsonLines => format!("json-lines; {encoding}"),
        Format::JsonArray => format!("json array; {encoding}"),
        Format::Spreadsheet => match &d.sheet {
            Some(sheet) => format!("spreadsheet; sheet `{sheet}`"),
            None => "spreadsheet; first sheet".to_string(),
        },
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

/// A row after validation.
enum Checked {
    Quarantined {
        line: u64,
        rejection: Rejection,
        masked: String,
    },
    Request(Pending<ServiceRequest>),
    Survey(Pending<SurveyResponse>),
}

/// Splits a block into rows and validates each.
fn check_block(
    shape: &RowShape,
    block: &Block,
    kind: LogKind,
    parser: &FieldParser,
    source: u32,
    mut out: Vec<Checked>,
) -> Result<Vec<Checked>> {
    // About 100 bytes a row in common exports.
    out.reserve(block.bytes.len() / 100 + 16);
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
            LogKind::Requests => parser
                .request(row.values)
                .map(|record| Checked::Request(Pending::new(source, row.line, record))),
            LogKind::Surveys => parser
                .survey(row.values)
                .map(|record| Checked::Survey(Pending::new(source, row.line, record))),
        };
        out.push(checked.unwrap_or_else(|rejection| Checked::Quarantined {
            line: row.line,
            rejection,
            masked: row.masked(),
        }));
    })?;
    Ok(out)
}

/// Emptied vectors kept for reuse, so that every block does not fault in fresh memory.
struct Pool<T> {
    free: Mutex<Vec<Vec<T>>>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            free: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Pool<T> {
    /// Most vectors kept: as many as can be in flight between the pipeline's stages.
    const KEEP: usize = 4;

    fn take(&self) -> Vec<T> {
        self.free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    fn give(&self, mut items: Vec<T>) {
        items.clear();
        if let Ok(mut free) = self.free.lock()
            && free.len() < Self::KEEP
        {
            free.push(items);
        }
    }
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
    /// The first refused rows of the whole ingest (the quarantine is flushed as it grows).
    refused_sample: Vec<QuarantinedRow>,
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
        let row = QuarantinedRow {
            source_file: source.to_string(),
            line,
            field: rejection.field,
            reason: rejection.reason,
            raw_line: raw,
        };
        if self.refused_sample.len() < REFUSED_SAMPLE {
            self.refused_sample.push(row.clone());
        }
        self.quarantine.push(row);
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
        datafile::write(&mut df, &path)
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

/// A valid row waiting to be written, with its version's identity: where it came from and
/// the hashes of its id and content.
struct Pending<R> {
    key: u128,
    fingerprint: u128,
    source: u32,
    line: u32,
    record: R,
}

impl<R: Record> Pending<R> {
    /// Line `line` of input file `source`, valid: its hashes are computed here, by the
    /// validating threads, and the row keeps this form until it is written (moved, never
    /// rebuilt, by the thread that takes rows in file order).
    fn new(source: u32, line: u64, record: R) -> Self {
        Pending {
            key: id_key(record.id()),
            fingerprint: record.fingerprint(),
            source,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            record,
        }
    }
}

/// The state of one data table during an ingest.
struct TableState<R: Record> {
    /// Data files that may hold current versions: previous-snapshot files first (the first
    /// `stored` of them), then files written now.
    files: Vec<PathBuf>,
    stored: usize,
    /// Rows waiting to be written, by year.
    buffers: BTreeMap<i32, PartitionRows<Pending<R>>>,
    buffered: usize,
    /// Emptied chunks of rows back from the writer, for the next rows: fresh memory costs
    /// the kernel a page fault and a zeroed page every 4 KiB.
    chunks: Arc<ChunkPool<Pending<R>>>,
    /// Rows expected in the whole ingest (to size the filter and the log).
    expected_total: u64,
    /// Ids of this ingest's rows, and the log of their versions; created with the first row.
    filter: Option<KeyFilter>,
    log: Option<Arc<Mutex<VersionLog>>>,
    /// Previous-snapshot files that this commit replaces.
    replaced: HashSet<PathBuf>,
    written: u32,
    /// The service codes of the rows taken so far (gathered from the partitions' groups when
    /// they are written, not row by row).
    services: std::collections::BTreeSet<String>,
}

impl<R: Record> TableState<R> {
    /// Lists the table's files in the previous snapshot.
    fn load(ctx: &Commit, expected_total: u64) -> Result<Self> {
        let files = match &ctx.base_snapshot {
            Some(base) => parquet_files(&base.join(R::TABLE.name()))?,
            None => Vec::new(),
        };
        Ok(TableState {
            stored: files.len(),
            files,
            buffers: BTreeMap::new(),
            buffered: 0,
            chunks: ChunkPool::new(SPARE_ROWS),
            expected_total,
            filter: None,
            log: None,
            replaced: HashSet::new(),
            written: 0,
            services: std::collections::BTreeSet::new(),
        })
    }

    /// Takes a valid row; whether it is new, a duplicate, a conflict or an update is decided
    /// once every row has been read (see [`crate::versions`]).
    fn offer(&mut self, ctx: &mut Commit, valid: Pending<R>) -> Result<()> {
        if self.log.is_none() {
            let dir = ctx.staging.join(VERSIONS_DIR).join(R::TABLE.name());
            self.log = Some(Arc::new(Mutex::new(VersionLog::create(
                &dir,
                self.expected_total,
            )?)));
            // Stored rows that share an id with this ingest's are found through the filter;
            // a table with no stored rows needs none.
            if self.stored > 0 {
                self.filter = Some(KeyFilter::with_capacity(self.expected_total));
            }
        }
        if let Some(filter) = &mut self.filter {
            filter.insert(valid.key);
        }
        let partition = self.buffers.entry(valid.record.year()).or_default();
        let group = partition.group_of(valid.record.sort_key().0);
        partition.push(group, valid, &self.chunks);
        self.buffered += 1;
        if self.buffered >= FLUSH_ROWS {
            self.flush(ctx)?;
        }
        Ok(())
    }

    /// Hands every buffered row to the writer, bound for new files of the staged snapshot.
    fn flush(&mut self, ctx: &mut Commit) -> Result<()> {
        let buffers = std::mem::take(&mut self.buffers);
        self.buffered = 0;
        for rows in buffers.values() {
            for service in rows.services() {
                if !self.services.contains(service) {
                    self.services.insert(service.to_string());
                }
            }
        }
        let Some(log) = self.log.clone() else {
            return Ok(());
        };
        for (year, rows) in buffers {
            if rows.is_empty() {
                continue;
            }
            let path = self.new_file(ctx, R::TABLE, year);
            let file_index = self.files.len() as u32;
            self.files.push(path.clone());
            let log = Arc::clone(&log);
            let pool = Arc::clone(&self.chunks);
            ctx.writer.submit(Box::new(move || {
                let order = rows.in_file_order(|p| p.record.sort_key().1);
                let frame_rows: Vec<(u128, &R)> =
                    order.iter().map(|p| (p.fingerprint, &p.record)).collect();
                let mut df = R::frame(&frame_rows).map_err(|source| Error::Parquet {
                    path: path.clone(),
                    source,
                })?;
                datafile::write(&mut df, &path)?;
                let mut log = log.lock().map_err(|_| poisoned(&path))?;
                for (row, p) in order.iter().enumerate() {
                    log.append(&Version {
                        key: p.key,
                        fingerprint: p.fingerprint as u64,
                        source: p.source,
                        line: p.line,
                        file: file_index,
                        row: row as u32,
                    })?;
                }
                drop(log);
                drop(frame_rows);
                drop(order);
                rows.recycle(&pool);
                Ok(())
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

    /// Writes what is buffered, decides which versions are current, and rewrites the files
    /// that hold duplicates, conflicts or superseded versions.
    fn finish(&mut self, ctx: &mut Commit) -> Result<Resolution> {
        self.flush(ctx)?;
        ctx.writer.drain()?;
        let Some(log) = self.log.take() else {
            return Ok(Resolution::default());
        };
        let mut log = Arc::try_unwrap(log)
            .map_err(|_| poisoned(&ctx.staging))?
            .into_inner()
            .map_err(|_| poisoned(&ctx.staging))?;
        if let Some(filter) = self.filter.take() {
            self.log_stored_versions(&filter, &mut log)?;
        }
        let buckets = log.finish()?;
        let resolution = resolve(&buckets)?;
        for bucket in &buckets {
            let _ = std::fs::remove_file(bucket);
        }
        let touched: std::collections::BTreeSet<u32> = resolution
            .remove
            .keys()
            .chain(resolution.supersede.keys())
            .copied()
            .collect();
        let empty = Vec::new();
        for file in touched {
            let remove = resolution.remove.get(&file).unwrap_or(&empty);
            let supersede = resolution.supersede.get(&file).unwrap_or(&empty);
            self.split_file(ctx, file, remove, supersede)?;
        }
        Ok(resolution)
    }

    /// Appends the versions of stored rows whose id may be among this ingest's.
    fn log_stored_versions(&self, filter: &KeyFilter, log: &mut VersionLog) -> Result<()> {
        for (file_index, path) in self.files[..self.stored].iter().enumerate() {
            let parquet_error = |source| Error::Parquet {
                path: path.clone(),
                source,
            };
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
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
            let prints = stored_fingerprints(&df).map_err(parquet_error)?;
            for (row, (id, print)) in ids.iter().zip(prints).enumerate() {
                let (Some(id), Some(fingerprint)) = (id, print) else {
                    continue;
                };
                let key = id_key(id);
                if filter.may_contain(key) {
                    log.append(&Version {
                        key,
                        fingerprint,
                        source: STORED,
                        line: 0,
                        file: file_index as u32,
                        row: row as u32,
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Rewrites data file `file` without the rows in `remove`, moving the rows in `supersede`
    /// to the history table.
    fn split_file(
        &mut self,
        ctx: &Commit,
        file: u32,
        remove: &[u32],
        supersede: &[u32],
    ) -> Result<()> {
        let path = self.files[file as usize].clone();
        let parquet_error = |source| Error::Parquet {
            path: path.clone(),
            source,
        };
        let reader = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let df = ParquetReader::new(reader).finish().map_err(parquet_error)?;
        let height = df.height();
        let mut keep = vec![true; height];
        let mut gone = vec![false; height];
        for row in remove {
            if let Some(k) = keep.get_mut(*row as usize) {
                *k = false;
            }
        }
        for row in supersede {
            if let (Some(k), Some(g)) = (keep.get_mut(*row as usize), gone.get_mut(*row as usize)) {
                *k = false;
                *g = true;
            }
        }
        let keep_mask = BooleanChunked::from_slice("keep".into(), &keep);
        let gone_mask = BooleanChunked::from_slice("gone".into(), &gone);
        let mut kept = df.filter(&keep_mask).map_err(parquet_error)?;
        let superseded = df.filter(&gone_mask).map_err(parquet_error)?;
        let year = partition_year(&path);
        if superseded.height() > 0 {
            let target = self.new_file(ctx, R::HISTORY, year);
            let mut superseded = with_superseded(superseded, ctx.commit).map_err(parquet_error)?;
            datafile::write(&mut superseded, &target)?;
        }
        if path.starts_with(&ctx.staging) {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        } else {
            self.replaced.insert(path.clone());
        }
        if kept.height() > 0 {
            let target = self.new_file(ctx, R::TABLE, year);
            datafile::write(&mut kept, &target)?;
        }
        Ok(())
    }
}

/// The `record_fingerprint` column as stored (integers; older warehouses: hex text).
fn stored_fingerprints(df: &DataFrame) -> PolarsResult<Vec<Option<u64>>> {
    let column = df.column("record_fingerprint")?.as_materialized_series();
    if column.dtype() == &DataType::Int64 {
        return Ok(column.i64()?.iter().map(|v| v.map(|v| v as u64)).collect());
    }
    Ok(column
        .str()?
        .iter()
        .map(|v| v.and_then(|v| u128::from_str_radix(v, 16).ok().map(|f| f as u64)))
        .collect())
}

fn poisoned(path: &Path) -> Error {
    Error::io(
        path,
        std::io::Error::other("a thread writing the warehouse failed"),
    )
}

/// Where the version logs of an ingest are spilled, inside its staging directory.
const VERSIONS_DIR: &str = "_versions";

/// Work for the writer thread: building and writing one Parquet file.
type WriteJob = Box<dyn FnOnce() -> Result<()> + Send>;

/// Threads that write Parquet files while the rows that follow are validated. A job is
/// handed over only when a thread is free, which bounds the memory held by pending files to
/// one job per thread. Jobs are independent: each writes its own file and logs its versions,
/// whose order does not matter (see [`crate::versions`]).
struct Writer {
    jobs: Option<std::sync::mpsc::SyncSender<WriteJob>>,
    threads: Vec<std::thread::JoinHandle<Result<()>>>,
}

/// Files written at the same time: encoding and compressing a file is the costliest step of
/// an ingest, and one thread alone would hold back validation on two cores or more.
const WRITER_THREADS: usize = 2;

impl Writer {
    fn start() -> Self {
        let (jobs, incoming) = std::sync::mpsc::sync_channel::<WriteJob>(0);
        let incoming = Arc::new(Mutex::new(incoming));
        let threads = (0..WRITER_THREADS)
            .map(|_| {
                let incoming = Arc::clone(&incoming);
                std::thread::spawn(move || {
                    loop {
                        // Release the lock before running the job, so the other thread can
                        // take the next one.
                        let job = match incoming.lock() {
                            Ok(incoming) => incoming.recv(),
                            Err(_) => return Ok(()),
                        };
                        let Ok(job) = job else {
                            return Ok(());
                        };
                        job()?;
                    }
                })
            })
            .collect();
        Writer {
            jobs: Some(jobs),
            threads,
        }
    }

    /// Queues a job; fails with a writer's error if an earlier job failed.
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
        let mut outcome = Ok(());
        for thread in self.threads.drain(..) {
            let ended = thread.join().unwrap_or_else(|_| {
                Err(Error::io(
                    Path::new("<parquet writer>"),
                    std::io::Error::other("a writer thread panicked"),
                ))
            });
            if outcome.is_ok() {
                outcome = ended;
            }
        }
        *self = Writer::start();
        outcome
    }
}

/// A writer is not left running: its threads finish the job at hand and stop, so that no
/// file lands in a staging directory after the ingest that wrote it has ended (an ingest
/// started again at once reuses that directory).
impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
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
