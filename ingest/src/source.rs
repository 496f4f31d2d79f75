//! Reading a log file row by row, whatever its dialect: CSV in any delimiter and encoding,
//! or JSON Lines. Each row comes out as the values of the canonical columns, with its line
//! number and its raw text (identifiers masked) for the quarantine.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::dialect::HEADER_SEARCH_LINES;
use crate::dialect::{Dialect, FileScan, Format, ScanSlot};
use crate::error::{Error, Result};
use crate::header::{
    ColumnMap, HEADER_MIN_NAMES, LogKind, detect_kind, normalise, recognised_names,
};
use crate::profile::Profile;
use crate::validate::Rejection;

/// A run of complete records of a file, cut at a record boundary, so that blocks can be
/// split into rows independently (and in parallel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// UTF-8 text with LF line ends.
    pub bytes: Vec<u8>,
    /// Line number (1-based) of the block's first line in the file.
    pub first_line: u64,
}

/// One row of a block, before validation.
pub struct Row<'a> {
    /// Line number in the file (1-based; where the record starts).
    pub line: u64,
    /// Values of the canonical columns (`kind.columns()` order); `None` when absent.
    pub values: &'a [Option<&'a str>],
    raw: RawText<'a>,
    citizen: Option<&'a str>,
}

/// The text of a row as read.
enum RawText<'a> {
    /// CSV fields in file order, and the delimiter.
    Fields(Fields<'a>, u8),
    /// A JSON Lines record.
    Line(&'a str),
}

impl Row<'_> {
    /// The row's text with its citizen identifier and anything shaped like a codice fiscale
    /// masked: what the quarantine keeps.
    pub fn masked(&self) -> String {
        let citizen = self.citizen.map(str::trim).filter(|c| !c.is_empty());
        let text = match &self.raw {
            RawText::Fields(fields, delimiter) => join_csv(&lossy_fields(*fields), *delimiter),
            RawText::Line(line) => line.to_string(),
        };
        mask_identifiers(&text, citizen.as_slice())
    }
}

/// The fields of one CSV record: the record's bytes and the range of each field in them.
#[derive(Clone, Copy)]
struct Fields<'a> {
    bytes: &'a [u8],
    ranges: &'a [(usize, usize)],
}

impl<'a> Fields<'a> {
    fn len(&self) -> usize {
        self.ranges.len()
    }

    fn get(&self, i: usize) -> Option<&'a [u8]> {
        let bytes = self.bytes;
        self.ranges.get(i).map(|&(start, end)| &bytes[start..end])
    }

    fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let bytes = self.bytes;
        self.ranges
            .iter()
            .map(move |&(start, end)| &bytes[start..end])
    }
}

/// A row that could not even be split into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenRow {
    pub line: u64,
    pub rejection: Rejection,
    pub masked: String,
}

/// How the rows of a file map onto the canonical columns: everything needed to split blocks
/// into rows, shareable between threads.
#[derive(Debug, Clone)]
pub struct RowShape {
    path: PathBuf,
    kind: LogKind,
    format: Format,
    delimiter: u8,
    width: usize,
    /// For each canonical column, its position among the CSV fields.
    positions: Vec<Option<usize>>,
    /// Profile defaults per canonical slot.
    defaults: Vec<Option<String>>,
    /// The canonical slot of `citizen_id`, if the kind has one.
    citizen_slot: Option<usize>,
    /// Normalised JSON key → canonical slot, from the profile's column mapping.
    explicit: HashMap<String, usize>,
}

/// Most canonical columns of any kind of log.
const MAX_COLUMNS: usize = 16;

/// Bytes read per block (a block grows when one record is longer); tiny in unit tests, so
/// that they cross many block boundaries.
const BLOCK_BYTES: usize = if cfg!(test) { 256 } else { 4 << 20 };

impl RowShape {
    /// Splits `block` into rows and calls `each` with every row (or broken row), in order.
    /// Blank lines are skipped.
    pub fn rows(
        &self,
        block: &Block,
        mut each: impl FnMut(std::result::Result<Row<'_>, BrokenRow>),
    ) -> Result<()> {
        match self.format {
            Format::Csv | Format::Spreadsheet => self.csv_rows(block, &mut each),
            Format::JsonLines | Format::JsonArray => {
                self.json_rows(block, &mut each);
                Ok(())
            }
        }
    }

    fn csv_rows(
        &self,
        block: &Block,
        each: &mut impl FnMut(std::result::Result<Row<'_>, BrokenRow>),
    ) -> Result<()> {
        // Text without quotes or carriage returns (most exports) is split at its delimiters
        // and line ends directly; the rest goes through the CSV reader.
        if memchr::memchr2(b'"', b'\r', &block.bytes).is_none()
            && let Ok(text) = std::str::from_utf8(&block.bytes)
        {
            self.plain_csv_rows(block, text, each);
            return Ok(());
        }
        self.quoted_csv_rows(block, each)
    }

    /// Splits a block with the CSV reader, which follows quotes.
    fn quoted_csv_rows(
        &self,
        block: &Block,
        each: &mut impl FnMut(std::result::Result<Row<'_>, BrokenRow>),
    ) -> Result<()> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .from_reader(&block.bytes[..]);
        let mut record = csv::ByteRecord::new();
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        let (mut counted, mut lines_before) = (0usize, 0u64);
        loop {
            let before = reader.position().clone();
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(source) => {
                    return Err(Error::ReadCsv {
                        path: self.path.clone(),
                        line: block.first_line + lines_before,
                        source,
                    });
                }
            }
            // Physical line numbers (the CSV reader does not count line ends inside quoted
            // fields): the line where the record's text starts, after any blank lines.
            let mut start = record.position().map_or(before.byte(), |p| p.byte()) as usize;
            while block.bytes.get(start) == Some(&b'\n') {
                start += 1;
            }
            let start = start.min(block.bytes.len());
            lines_before += count_lines(&block.bytes[counted..start]);
            counted = start;
            ranges.clear();
            ranges.extend(
                (0..record.len()).filter_map(|i| record.range(i).map(|r| (r.start, r.end))),
            );
            let fields = Fields {
                bytes: record.as_slice(),
                ranges: &ranges,
            };
            // The text is UTF-8 once decoded; a field that is not (a broken byte sequence in
            // a file taken for UTF-8) is read with replacement characters.
            let text = std::str::from_utf8(record.as_slice()).ok();
            self.csv_row(block.first_line + lines_before, fields, text, each);
        }
    }

    /// Splits a block with no quote or carriage return: every line end ends a record, every
    /// delimiter a field (as the CSV reader would read it).
    fn plain_csv_rows(
        &self,
        block: &Block,
        text: &str,
        each: &mut impl FnMut(std::result::Result<Row<'_>, BrokenRow>),
    ) {
        let bytes = text.as_bytes();
        let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(self.width + 1);
        let mut line = block.first_line;
        let (mut record_start, mut field_start) = (0usize, 0usize);
        let mut ends = memchr::memchr2_iter(self.delimiter, b'\n', bytes);
        loop {
            let end = ends.next();
            let at = end.unwrap_or(bytes.len());
            ranges.push((field_start - record_start, at - record_start));
            field_start = at + 1;
            if end.is_some() && bytes[at] == self.delimiter {
                continue;
            }
            // A line end, or the end of a block whose last line has none.
            if at > record_start {
                let record = &text[record_start..at];
                let fields = Fields {
                    bytes: record.as_bytes(),
                    ranges: &ranges,
                };
                self.csv_row(line, fields, Some(record), each);
            }
            ranges.clear();
            if end.is_none() {
                return;
            }
            line += 1;
            record_start = field_start;
        }
    }

    /// Maps the fields of one CSV record onto the canonical columns, or reports it broken
    /// when its number of fields is not the header's. `text` is the record's bytes as UTF-8
    /// when they are. Records with nothing but blanks are skipped.
    fn csv_row(
        &self,
        line: u64,
        fields: Fields<'_>,
        text: Option<&str>,
        each: &mut impl FnMut(std::result::Result<Row<'_>, BrokenRow>),
    ) {
        if fields.iter().all(|f| f.trim_ascii().is_empty()) {
            return;
        }
        let extra_filled = fields.len() > self.width
            && fields
                .iter()
                .skip(self.width)
                .any(|f| !f.trim_ascii().is_empty());
        // A spreadsheet row ends at its last filled cell: fewer fields are empty ones.
        let short = fields.len() < self.width && self.format != Format::Spreadsheet;
        if short || extra_filled {
            let lossy = lossy_fields(fields);
            let citizen = self
                .citizen_slot
                .and_then(|slot| self.positions[slot])
                .and_then(|i| fields.get(i))
                .map(String::from_utf8_lossy)
                .filter(|s| !s.trim().is_empty());
            let found = if extra_filled {
                lossy
                    .iter()
                    .rposition(|f| !f.trim().is_empty())
                    .map_or(0, |i| i + 1)
            } else {
                lossy.len()
            };
            let citizen: Vec<&str> = citizen.as_deref().into_iter().collect();
            each(Err(BrokenRow {
                line,
                rejection: Rejection::new(
                    "row",
                    format!(
                        "expected {} fields as in the header, found {found}",
                        self.width
                    ),
                ),
                masked: mask_identifiers(&join_csv(&lossy, self.delimiter), &citizen),
            }));
            return;
        }
        // Fields are slices of the record's text when it is UTF-8, else read lossily.
        let owned: Option<Vec<String>> = text.is_none().then(|| lossy_fields(fields));
        let field = |i: usize| -> &str {
            match (&owned, text) {
                (Some(lossy), _) => lossy.get(i).map_or("", String::as_str),
                (None, Some(text)) => fields
                    .ranges
                    .get(i)
                    .and_then(|&(start, end)| text.get(start..end))
                    .unwrap_or_default(),
                (None, None) => "",
            }
        };
        let slots = self.positions.len().min(MAX_COLUMNS);
        let mut values: [Option<&str>; MAX_COLUMNS] = [None; MAX_COLUMNS];
        for (slot, value) in values.iter_mut().enumerate().take(slots) {
            *value = match self.positions[slot] {
                Some(i) => Some(field(i)),
                None => self.defaults[slot].as_deref(),
            };
        }
        let citizen = self
            .citizen_slot
            .and_then(|slot| self.positions[slot])
            .map(field);
        each(Ok(Row {
            line,
            values: &values[..slots],
            raw: RawText::Fields(fields, self.delimiter),
            citizen,
        }));
    }

    fn json_rows(
        &self,
        block: &Block,
        each: &mut impl FnMut(std::result::Result<Row<'_>, BrokenRow>),
    ) {
        let mut slots: HashMap<String, Option<usize>> = HashMap::new();
        let lines = block.bytes.split_inclusive(|b| *b == b'\n');
        for (at, raw) in (block.first_line..).zip(lines) {
            let text = String::from_utf8_lossy(raw);
            let text = text.trim_end_matches('\n');
            if text.trim().is_empty() {
                continue;
            }
            let map = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(map)) => map,
                Ok(_) => {
                    each(Err(BrokenRow {
                        line: at,
                        rejection: Rejection::new("row", "not a JSON object"),
                        masked: mask_identifiers(text, &[]),
                    }));
                    continue;
                }
                Err(e) => {
                    each(Err(BrokenRow {
                        line: at,
                        rejection: Rejection::new("row", format!("not valid JSON: {e}")),
                        masked: mask_identifiers(text, &[]),
                    }));
                    continue;
                }
            };
            let owned = self.json_values(&map, &mut slots);
            let values: Vec<Option<&str>> = owned.iter().map(|v| v.as_deref()).collect();
            let citizen = self
                .citizen_slot
                .and_then(|slot| owned.get(slot))
                .and_then(|v| v.as_deref());
            each(Ok(Row {
                line: at,
                values: &values,
                raw: RawText::Line(text),
                citizen,
            }));
        }
    }

    fn json_values(
        &self,
        map: &serde_json::Map<String, serde_json::Value>,
        slots: &mut HashMap<String, Option<usize>>,
    ) -> Vec<Option<String>> {
        let kind = self.kind;
        let mut values: Vec<Option<String>> = self.defaults.clone();
        for (key, value) in map {
            let slot = *slots.entry(normalise(key)).or_insert_with(|| {
                self.explicit.get(&normalise(key)).copied().or_else(|| {
                    kind.canonical(key)
                        .and_then(|c| kind.columns().iter().position(|x| *x == c))
                })
            });
            let Some(slot) = slot else { continue };
            let text = match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            if text.is_some() {
                values[slot] = text;
            }
        }
        values
    }
}

/// A reader of one log file: its dialect, kind and header, then its rows in blocks.
pub struct LogReader {
    pub path: PathBuf,
    pub kind: LogKind,
    pub dialect: Dialect,
    pub columns: ColumnMap,
    shape: RowShape,
    text: Box<dyn Read + Send>,
    /// Text read but not yet handed out, starting at a record boundary.
    carry: Vec<u8>,
    /// Line number of the first line of `carry`.
    next_line: u64,
    eof: bool,
    /// Bytes read per block (a block grows when one record is longer).
    block_bytes: usize,
    /// Where the complete scan of the file lands once it has been read through, when it was
    /// opened with a partial one.
    scan: Option<ScanSlot>,
    /// Non-blank lines above the header (a report's title, period or notes), skipped.
    pub preamble_lines: usize,
}

impl LogReader {
    /// Opens `path`, detects its dialect and kind (unless `kind` or the profile fix them) and
    /// reads its header.
    pub fn open(
        path: &Path,
        scan: &FileScan,
        profile: &Profile,
        kind: Option<LogKind>,
    ) -> Result<LogReader> {
        let dialect = Dialect::detect(path, scan, profile)?;
        let kind = kind.or(match profile.source.kind.as_deref() {
            Some("surveys") => Some(LogKind::Surveys),
            Some("requests") => Some(LogKind::Requests),
            _ => None,
        });
        let slot = (!scan.is_complete()).then(ScanSlot::default);
        let text = dialect.open(path, slot.as_ref())?;
        let (format, delimiter) = (dialect.format, dialect.delimiter);
        let mut reader = LogReader {
            path: path.to_path_buf(),
            kind: LogKind::Requests,
            dialect,
            columns: ColumnMap {
                kind: LogKind::Requests,
                positions: Vec::new(),
                unknown: Vec::new(),
                width: 0,
            },
            shape: RowShape {
                path: path.to_path_buf(),
                kind: LogKind::Requests,
                format,
                delimiter,
                width: 0,
                positions: Vec::new(),
                defaults: Vec::new(),
                citizen_slot: None,
                explicit: HashMap::new(),
            },
            text,
            carry: Vec::new(),
            next_line: 1,
            eof: false,
            block_bytes: BLOCK_BYTES,
            scan: slot,
            preamble_lines: 0,
        };
        let names = match format {
            Format::Csv | Format::Spreadsheet => reader.csv_header(&profile.column_names())?,
            Format::JsonLines | Format::JsonArray => reader.json_header()?,
        };
        reader.apply_header(names, profile, kind)?;
        Ok(reader)
    }

    /// The slot of the complete scan, for a file opened with a partial one: it is filled when
    /// the last block has been read.
    pub fn scan_slot(&self) -> Option<ScanSlot> {
        self.scan.clone()
    }

    /// How rows map onto the canonical columns (for splitting blocks on other threads).
    pub fn shape(&self) -> &RowShape {
        &self.shape
    }

    /// The canonical slot of `citizen_id`, if the kind has one.
    pub fn citizen_slot(&self) -> Option<usize> {
        self.shape.citizen_slot
    }

    /// Reads blocks of about `bytes` bytes (from 1 byte to 1 GiB) instead of the default
    /// 4 MiB: the rows and their line numbers do not depend on it, which tests check by
    /// cutting the same file at every size.
    pub fn with_block_bytes(mut self, bytes: usize) -> Self {
        self.block_bytes = bytes.clamp(1, 1 << 30);
        self
    }

    /// Reads more text into `carry`: about `want` bytes, fewer at the end of the file.
    fn fill(&mut self, want: usize) -> Result<()> {
        if self.eof {
            return Ok(());
        }
        let before = self.carry.len();
        (&mut self.text)
            .take(want as u64)
            .read_to_end(&mut self.carry)
            .map_err(|e| Error::io(&self.path, e))?;
        if self.carry.len() - before < want {
            self.eof = true;
        }
        Ok(())
    }

    /// Drops the first `end` bytes of `carry` (header and preamble), counting their lines.
    fn consume(&mut self, end: usize) {
        self.next_line += count_lines(&self.carry[..end]);
        self.carry.drain(..end);
    }

    /// Reads the header row: the first row with recognised column names among the first
    /// [`HEADER_SEARCH_LINES`] (rows above it, such as a report's title, are counted in
    /// `preamble_lines`), or else the first row.
    fn csv_header(&mut self, extra: &[String]) -> Result<Vec<String>> {
        let mut want = 64 << 10;
        loop {
            self.fill(want)?;
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(self.dialect.delimiter)
                .from_reader(&self.carry[..]);
            let mut record = csv::ByteRecord::new();
            let mut found = None;
            let mut first: Option<(Vec<String>, usize)> = None;
            let mut candidates = 0;
            while reader
                .read_byte_record(&mut record)
                .map_err(|source| Error::ReadCsv {
                    path: self.path.clone(),
                    line: 1,
                    source,
                })?
            {
                let end = reader.position().byte() as usize;
                if end >= self.carry.len() && !self.eof {
                    // The record may go on beyond what has been read so far.
                    break;
                }
                let fields: Vec<String> = record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).trim().to_string())
                    .collect();
                let sep_line = fields.first().is_some_and(|f| f.starts_with("sep="))
                    && fields.len() <= 2
                    && fields.iter().skip(1).all(|f| f.is_empty());
                if sep_line || fields.iter().all(|f| f.is_empty()) {
                    continue;
                }
                candidates += 1;
                if recognised_names(fields.iter().map(String::as_str), extra) >= HEADER_MIN_NAMES {
                    if first.is_some() {
                        self.preamble_lines = candidates - 1;
                    }
                    found = Some((fields, end));
                    break;
                }
                if first.is_none() {
                    first = Some((fields, end));
                }
                if candidates >= HEADER_SEARCH_LINES {
                    break;
                }
            }
            let searched = found.is_some() || candidates >= HEADER_SEARCH_LINES || self.eof;
            if let Some((names, end)) = found.or(if searched { first } else { None }) {
                self.consume(end);
                return Ok(names);
            }
            if self.eof {
                return Err(Error::EmptyFile {
                    path: self.path.clone(),
                });
            }
            want *= 2;
        }
    }

    fn json_header(&mut self) -> Result<Vec<String>> {
        // The header is the set of keys of the first object; that row stays to be read.
        loop {
            self.fill(64 << 10)?;
            let mut offset = 0;
            for raw in self.carry.split_inclusive(|b| *b == b'\n') {
                let complete = raw.ends_with(b"\n") || self.eof;
                if !complete {
                    break;
                }
                let text = String::from_utf8_lossy(raw);
                if text.trim().is_empty() {
                    offset += raw.len();
                    continue;
                }
                return match serde_json::from_str::<serde_json::Value>(text.trim_end()) {
                    Ok(serde_json::Value::Object(map)) => {
                        let names = map.keys().cloned().collect();
                        self.consume(offset);
                        Ok(names)
                    }
                    _ => Err(Error::NoHeader {
                        path: self.path.clone(),
                        line: self.next_line + count_lines(&self.carry[..offset]),
                        hint: "the first JSON Lines record must be a JSON object".into(),
                    }),
                };
            }
            if self.eof {
                return Err(Error::EmptyFile {
                    path: self.path.clone(),
                });
            }
        }
    }

    fn apply_header(
        &mut self,
        names: Vec<String>,
        profile: &Profile,
        kind: Option<LogKind>,
    ) -> Result<()> {
        let path = &self.path;
        let kind = kind.unwrap_or_else(|| detect_kind(names.iter().map(String::as_str)));
        let columns = ColumnMap::new(kind, &names, &profile.columns, &profile.defaults).map_err(
            |missing| Error::MissingColumns {
                path: path.to_path_buf(),
                kind: kind.as_str(),
                missing,
                found: names.clone(),
            },
        )?;
        self.shape.kind = kind;
        self.shape.width = columns.width;
        self.shape.positions = columns.positions.clone();
        self.shape.defaults = kind
            .columns()
            .iter()
            .map(|c| profile.defaults.get(*c).cloned())
            .collect();
        self.shape.citizen_slot = kind.columns().iter().position(|c| *c == "citizen_id");
        self.shape.explicit = profile
            .columns
            .iter()
            .filter_map(|(canonical, header)| {
                let slot = kind.columns().iter().position(|c| c == canonical)?;
                Some((normalise(header), slot))
            })
            .collect();
        self.kind = kind;
        self.columns = columns;
        Ok(())
    }

    /// Reads the rest of the file on this thread and calls `each` with every row (or broken
    /// row), in order. (An ingest splits blocks on other threads instead.)
    pub fn for_each_row(
        &mut self,
        mut each: impl FnMut(std::result::Result<Row<'_>, BrokenRow>),
    ) -> Result<()> {
        while let Some(block) = self.next_block() {
            self.shape.rows(&block?, &mut each)?;
        }
        Ok(())
    }

    /// The next block of complete records, `None` at the end of the file.
    pub fn next_block(&mut self) -> Option<Result<Block>> {
        self.next_block_with(Vec::new())
    }

    /// The same, reusing `spare` (an emptied block's bytes) for the text that follows.
    pub fn next_block_with(&mut self, mut spare: Vec<u8>) -> Option<Result<Block>> {
        let mut want = self.block_bytes;
        loop {
            if self.carry.len() < want
                && let Err(e) = self.fill(want - self.carry.len())
            {
                return Some(Err(e));
            }
            if self.carry.is_empty() {
                return None;
            }
            let cut = if self.eof {
                Some(self.carry.len())
            } else {
                match self.dialect.format {
                    Format::Csv | Format::Spreadsheet => {
                        last_csv_record_end(&self.carry, self.dialect.delimiter)
                    }
                    Format::JsonLines | Format::JsonArray => {
                        memchr::memrchr(b'\n', &self.carry).map(|i| i + 1)
                    }
                }
            };
            match cut {
                Some(cut) if cut > 0 => {
                    let mut rest = std::mem::take(&mut spare);
                    rest.clear();
                    rest.reserve(want.max(self.block_bytes));
                    rest.extend_from_slice(&self.carry[cut..]);
                    self.carry.truncate(cut);
                    let bytes = std::mem::replace(&mut self.carry, rest);
                    let first_line = self.next_line;
                    self.next_line += count_lines(&bytes);
                    return Some(Ok(Block { bytes, first_line }));
                }
                // One record longer than the block: read on.
                _ => want = self.carry.len() * 2,
            }
        }
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// The end of the last complete CSV record in `bytes` (just after a line end that is not
/// inside a quoted field), following the quoting rules of the CSV reader: a quote opens a
/// quoted field only at the start of a field, and `""` inside one is a literal quote.
fn last_csv_record_end(bytes: &[u8], delimiter: u8) -> Option<usize> {
    if memchr::memchr(b'"', bytes).is_none() {
        return memchr::memrchr(b'\n', bytes).map(|i| i + 1);
    }
    let mut last = None;
    let mut in_quotes = false;
    let mut field_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                in_quotes = false;
            }
            field_start = false;
        } else if b == b'"' && field_start {
            in_quotes = true;
            field_start = false;
        } else {
            if b == b'\n' {
                last = Some(i + 1);
            }
            field_start = b == delimiter || b == b'\n';
        }
        i += 1;
    }
    last
}

fn lossy_fields(fields: Fields<'_>) -> Vec<String> {
    fields
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

fn join_csv(fields: &[String], delimiter: u8) -> String {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    if writer.write_record(fields).is_err() {
        return String::new();
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

/// Masks the given identifiers and anything shaped like a codice fiscale.
pub fn mask_identifiers(text: &str, identifiers: &[&str]) -> String {
    let mut out = text.to_string();
    for id in identifiers {
        let id = id.trim();
        if !id.is_empty() {
            out = out.replace(id, "***");
        }
    }
    // Runs of 16 ASCII letters and digits shaped like a codice fiscale.
    let bytes = out.as_bytes();
    let mut result = String::with_capacity(out.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphanumeric() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let token = &out[start..i];
            if looks_like_codice_fiscale(token) {
                result.push_str("***");
            } else {
                result.push_str(token);
            }
        } else {
            let ch_len = out[i..].chars().next().map_or(1, char::len_utf8);
            result.push_str(&out[i..i + ch_len]);
            i += ch_len;
        }
    }
    result
}

/// 16 alphanumerics: six letters, then letters and digits where a codice fiscale has them.
pub fn looks_like_codice_fiscale(token: &str) -> bool {
    let t = token.as_bytes();
    t.len() == 16
        && t[..6].iter().all(u8::is_ascii_alphabetic)
        && t[6..].iter().all(u8::is_ascii_alphanumeric)
        && t[6..].iter().filter(|b| b.is_ascii_digit()).count() >= 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::scan_file;

    /// Rows as (line, values, masked text), or broken rows.
    type Read = std::result::Result<(u64, Vec<Option<String>>, String), BrokenRow>;

    fn read_all(bytes: &[u8], name: &str) -> (LogReader, Vec<Read>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let scan = scan_file(&path).unwrap();
        let mut reader = LogReader::open(&path, &scan, &Profile::default(), None).unwrap();
        let mut rows = Vec::new();
        reader
            .for_each_row(|row| {
                rows.push(row.map(|r| {
                    let values = r.values.iter().map(|v| v.map(str::to_string)).collect();
                    (r.line, values, r.masked())
                }))
            })
            .unwrap();
        (reader, rows)
    }

    /// The rows of `block` as the plain splitter and as the CSV reader give them.
    fn both_splitters(shape: &RowShape, text: &str) -> (Vec<Read>, Vec<Read>) {
        let block = Block {
            bytes: text.as_bytes().to_vec(),
            first_line: 7,
        };
        fn owned(row: std::result::Result<Row<'_>, BrokenRow>) -> Read {
            row.map(|r| {
                let values = r.values.iter().map(|v| v.map(str::to_string)).collect();
                (r.line, values, r.masked())
            })
        }
        let (mut plain, mut quoted) = (Vec::new(), Vec::new());
        shape.plain_csv_rows(&block, text, &mut |row| plain.push(owned(row)));
        shape
            .quoted_csv_rows(&block, &mut |row| quoted.push(owned(row)))
            .unwrap();
        (plain, quoted)
    }

    proptest::proptest! {
        /// On text without quotes, splitting at delimiters and line ends gives the rows, line
        /// numbers, broken rows and masked text that the CSV reader gives.
        #[test]
        fn the_plain_splitter_reads_as_the_csv_reader(
            lines in proptest::collection::vec("[a-c ;,é0-9]{0,12}", 0..40),
            last_line_end in proptest::bool::ANY,
        ) {
            let (reader, _) = read_all(
                b"id_pratica;servizio;canale;data_presentazione;stato\n",
                "header.csv",
            );
            let mut text = lines.join("\n");
            if last_line_end {
                text.push('\n');
            }
            let (plain, quoted) = both_splitters(reader.shape(), &text);
            proptest::prop_assert_eq!(plain, quoted);
        }
    }

    #[test]
    fn blocks_end_at_record_boundaries_outside_quotes() {
        assert_eq!(last_csv_record_end(b"a,b\nc,d", b','), Some(4));
        assert_eq!(last_csv_record_end(b"a,\"x\ny\"\nc,\"z\n", b','), Some(8));
        // A quote inside an unquoted field is an ordinary character.
        assert_eq!(last_csv_record_end(b"a,b\"c\nd,e", b','), Some(6));
        // An escaped quote does not close the field.
        assert_eq!(last_csv_record_end(b"\"a\"\"\nb\"\nc", b','), Some(8));
        assert_eq!(last_csv_record_end(b"\"a\nb", b','), None);
    }

    #[test]
    fn small_blocks_give_the_same_rows_and_lines() {
        let mut text = String::from("id_pratica;servizio;canale;data_presentazione;stato\n");
        for i in 0..2000 {
            text.push_str(&format!("{i};\"s\nx\";web;01/02/2017;evasa\n\n"));
        }
        let (_, rows) = read_all(text.as_bytes(), "many.csv");
        assert_eq!(rows.len(), 2000);
        for (i, row) in rows.iter().enumerate() {
            let (line, values, _) = row.as_ref().unwrap();
            assert_eq!(*line, 2 + 3 * i as u64);
            assert_eq!(values[0].as_deref(), Some(i.to_string().as_str()));
        }
    }

    /// Regression: a lone CR (classic Mac OS "CSV (Macintosh)" exports) ended records without
    /// counting a line, so every row of such a file was reported on line 2, and blocks could
    /// not be cut until the end of the file.
    #[test]
    fn classic_mac_line_ends_count_lines() {
        let (_, rows) = read_all(
            b"id_pratica;servizio;canale;data_presentazione;stato\r1;a;web;01/02/2017;evasa\r\r\
              2;b;web;01/02/2017;evasa\r3;c\r",
            "mac.csv",
        );
        let lines: Vec<u64> = rows
            .iter()
            .map(|r| r.as_ref().map_or_else(|b| b.line, |r| r.0))
            .collect();
        assert_eq!(lines, [2, 4, 5]);
        let (_, values, _) = rows[1].as_ref().unwrap();
        assert_eq!(values[0].as_deref(), Some("2"));
        assert!(rows[2].is_err(), "the short row is broken");
    }

    #[test]
    fn municipal_csv_rows_come_out_canonical() {
        let (reader, rows) = read_all(
            b"sep=;\r\nID pratica;Servizio;Canale;Data presentazione;Stato;Codice fiscale;Importo;;\r\n\
              1;Forl\xec;web;12/06/2017 09:30;evasa;RSSMRA80A01C573Y;1.234,50;;\r\n\
              2;x;web\r\n",
            "export.csv",
        );
        assert_eq!(reader.kind, LogKind::Requests);
        let (line, values, masked) = rows[0].as_ref().unwrap();
        assert_eq!(*line, 3);
        assert_eq!(values[1].as_deref(), Some("Forlì"));
        assert_eq!(values[8].as_deref(), Some("1.234,50"));
        assert!(!masked.contains("RSSMRA80A01C573Y"), "{masked}");
        let broken = rows[1].as_ref().unwrap_err();
        assert_eq!(broken.line, 4);
        assert_eq!(broken.rejection.field, "row");
    }

    /// A report tool's export: a title, the period and a note above the header.
    #[test]
    fn lines_above_the_header_are_skipped_and_counted() {
        let (reader, rows) = read_all(
            b"Comune di Forl\xec, estrazione pratiche\r\nPeriodo: 01/01/2017 - 31/12/2017\r\n\r\n\
              Note: dati provvisori\r\nID pratica;Servizio;Canale;Data presentazione;Stato\r\n\
              1;suap;web;01/02/2017;evasa\r\n",
            "report.csv",
        );
        assert_eq!(reader.dialect.delimiter, b';');
        assert_eq!(reader.preamble_lines, 3);
        assert_eq!(reader.columns.position("status"), Some(4));
        let (line, values, _) = rows[0].as_ref().unwrap();
        assert_eq!((*line, values[0].as_deref()), (6, Some("1")));
        assert_eq!(rows.len(), 1);
    }

    /// Without recognisable names anywhere, the first line stays the header (and the error
    /// names what it holds).
    #[test]
    fn an_unrecognised_header_is_still_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.csv");
        std::fs::write(&path, "Quando,Dove,Come\n2017,x,y\n").unwrap();
        let scan = scan_file(&path).unwrap();
        let error = LogReader::open(&path, &scan, &Profile::default(), None)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("Quando, Dove, Come"), "{error}");
    }

    #[test]
    fn json_lines_map_keys_and_mask_identifiers() {
        let (reader, rows) = read_all(
            b"{\"request_id\":\"A\",\"service\":\"suap\",\"channel\":\"online\",\"submitted_at\":\"2017-01-02T10:00:00+01:00\",\"status\":\"completed\",\"cf\":\"RSSMRA80A01C573Y\",\"importo\":12.5}\n\
              \n\
              not json\n",
            "log.jsonl",
        );
        assert_eq!(reader.dialect.format, Format::JsonLines);
        let (line, values, masked) = rows[0].as_ref().unwrap();
        assert_eq!(*line, 1);
        assert_eq!(values[7].as_deref(), Some("RSSMRA80A01C573Y"));
        assert_eq!(values[8].as_deref(), Some("12.5"));
        assert!(!masked.contains("RSSMRA"));
        assert_eq!(rows[1].as_ref().unwrap_err().line, 3);
    }

    /// A pretty-printed JSON array (an open-data portal's export): each object is a record
    /// on the line where it starts; brackets, braces and escaped quotes inside strings do not
    /// end it.
    #[test]
    fn json_arrays_read_one_object_per_record_on_its_first_line() {
        let text = b"[\n  {\n    \"id_pratica\": \"A\",\n    \"servizio\": \"suap\",\n    \
              \"canale\": \"web\",\n    \"data_presentazione\": \"02/01/2017\",\n    \
              \"stato\": \"evasa\",\n    \"note\": \"a } ] \\\" [ {\"\n  },\n  \
              {\"id_pratica\": \"B\", \"servizio\": \"tari\", \"canale\": \"app\", \
              \"data_presentazione\": \"03/01/2017\", \"stato\": \"in corso\", \"cf\": \
              \"RSSMRA80A01C573Y\"},\n  3,\n  {\"id_pratica\": \"C\"\n]\n";
        let (reader, rows) = read_all(text, "export.json");
        assert_eq!(reader.dialect.format, Format::JsonArray);
        assert_eq!(reader.kind, LogKind::Requests);
        let (line, values, _) = rows[0].as_ref().unwrap();
        assert_eq!((*line, values[0].as_deref()), (2, Some("A")));
        assert_eq!(values[2].as_deref(), Some("web"));
        let (line, values, masked) = rows[1].as_ref().unwrap();
        assert_eq!((*line, values[0].as_deref()), (10, Some("B")));
        assert!(!masked.contains("RSSMRA"), "{masked}");
        let broken = rows[2].as_ref().unwrap_err();
        assert_eq!((broken.line, broken.rejection.field.as_str()), (11, "row"));
        // The last object is cut short: not valid JSON, on the line where it starts.
        assert_eq!(rows[3].as_ref().unwrap_err().line, 12);
        assert_eq!(rows.len(), 4);
    }

    /// A compact array puts every object on line 1: each is counted as a line of its own.
    #[test]
    fn compact_json_arrays_count_one_line_per_object() {
        let one = |id: &str| {
            format!(
                "{{\"request_id\":\"{id}\",\"service\":\"s\",\"channel\":\"online\",\
                 \"submitted_at\":\"2017-01-02T10:00:00Z\",\"status\":\"completed\"}}"
            )
        };
        let text = format!("[{},{} , {}]", one("a"), one("b"), one("c"));
        let (reader, rows) = read_all(text.as_bytes(), "compact.json");
        assert_eq!(reader.dialect.format, Format::JsonArray);
        let read: Vec<(u64, String)> = rows
            .into_iter()
            .map(|r| {
                let (line, values, _) = r.unwrap();
                (line, values[0].clone().unwrap())
            })
            .collect();
        assert_eq!(
            read,
            [
                (1, "a".to_string()),
                (2, "b".to_string()),
                (3, "c".to_string())
            ]
        );
    }

    #[test]
    fn masking_catches_codice_fiscale_shapes_anywhere() {
        assert_eq!(
            mask_identifiers("x,RSSMRA80A01C573Y,note bncgpp70a01c573q.", &[]),
            "x,***,note ***."
        );
        assert_eq!(
            mask_identifiers("ABCDEFGHIJKLMNOP", &[]),
            "ABCDEFGHIJKLMNOP"
        );
    }
}
