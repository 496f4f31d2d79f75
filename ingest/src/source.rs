//! Reading a log file row by row, whatever its dialect: CSV in any delimiter and encoding,
//! or JSON Lines. Each row comes out as the values of the canonical columns, with its line
//! number and its raw text (identifiers masked) for the quarantine.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::dialect::{Dialect, FileScan, Format};
use crate::error::{Error, Result};
use crate::header::{ColumnMap, LogKind, detect_kind, normalise};
use crate::profile::Profile;
use crate::validate::Rejection;

/// One row read from a file, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// Line number in the file (1-based; for a quoted field spanning lines, where it ends).
    pub line: u64,
    /// Values of the canonical columns (`kind.columns()` order); `None` when absent.
    pub values: Vec<Option<String>>,
    /// The row as read, for the quarantine (masked only when needed, see [`RawRow::masked`]).
    raw: RawText,
}

/// The text of a row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RawText {
    /// CSV fields in file order, and the delimiter.
    Fields(Vec<String>, u8),
    /// A JSON Lines record.
    Line(String),
}

impl RawRow {
    /// The row's text with its citizen identifier and anything shaped like a codice fiscale
    /// masked: what the quarantine keeps.
    pub fn masked(&self, citizen_slot: Option<usize>) -> String {
        let citizen = citizen_slot
            .and_then(|slot| self.values.get(slot))
            .and_then(|v| v.as_deref())
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let text = match &self.raw {
            RawText::Fields(fields, delimiter) => join_csv(fields, *delimiter),
            RawText::Line(line) => line.clone(),
        };
        mask_identifiers(&text, citizen.as_slice())
    }
}

/// A row that could not even be split into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenRow {
    pub line: u64,
    pub rejection: Rejection,
    pub masked: String,
}

enum Rows {
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        record: csv::ByteRecord,
    },
    Json {
        lines: std::io::Lines<BufReader<Box<dyn Read + Send>>>,
        line: u64,
        /// Normalised key → canonical slot (or `None` for ignored keys).
        slots: HashMap<String, Option<usize>>,
    },
}

/// A reader of one log file.
pub struct LogReader {
    pub path: PathBuf,
    pub kind: LogKind,
    pub dialect: Dialect,
    pub columns: ColumnMap,
    rows: Rows,
    /// Profile defaults per canonical slot.
    defaults: Vec<Option<String>>,
    /// The canonical slot of `citizen_id`, if the kind has one.
    pub citizen_slot: Option<usize>,
    explicit: HashMap<String, usize>,
    /// The first JSON row, read while looking for the header.
    pending: Option<RawRow>,
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
        let text = dialect.open(path)?;
        match dialect.format {
            Format::Csv => Self::open_csv(path, dialect, text, profile, kind),
            Format::JsonLines => Self::open_json(path, dialect, text, profile, kind),
        }
    }

    fn open_csv(
        path: &Path,
        dialect: Dialect,
        text: Box<dyn Read + Send>,
        profile: &Profile,
        kind: Option<LogKind>,
    ) -> Result<LogReader> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(dialect.delimiter)
            .from_reader(text);
        let mut record = csv::ByteRecord::new();
        let read_error = |source| Error::ReadCsv {
            path: path.to_path_buf(),
            line: 1,
            source,
        };
        let mut header: Option<Vec<String>> = None;
        while reader.read_byte_record(&mut record).map_err(read_error)? {
            let fields: Vec<String> = record
                .iter()
                .map(|f| String::from_utf8_lossy(f).trim().to_string())
                .collect();
            let sep_line = fields.first().is_some_and(|f| f.starts_with("sep="))
                && fields.len() <= 2
                && fields.iter().skip(1).all(|f| f.is_empty());
            if sep_line {
                continue;
            }
            if fields.iter().all(|f| f.is_empty()) {
                continue;
            }
            header = Some(fields);
            break;
        }
        let Some(names) = header else {
            return Err(Error::EmptyFile {
                path: path.to_path_buf(),
            });
        };
        Self::finish(
            path,
            dialect,
            Rows::Csv { reader, record },
            names,
            profile,
            kind,
        )
    }

    fn open_json(
        path: &Path,
        dialect: Dialect,
        text: Box<dyn Read + Send>,
        profile: &Profile,
        kind: Option<LogKind>,
    ) -> Result<LogReader> {
        let mut lines = BufReader::with_capacity(1 << 20, text).lines();
        let mut line = 0u64;
        // The header is the set of keys of the first object.
        let mut first: Option<(u64, String, serde_json::Map<String, serde_json::Value>)> = None;
        for text in lines.by_ref() {
            line += 1;
            let text = text.map_err(|e| Error::io(path, e))?;
            if text.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(map)) => {
                    first = Some((line, text, map));
                    break;
                }
                _ => {
                    return Err(Error::NoHeader {
                        path: path.to_path_buf(),
                        line,
                        hint: "the first JSON Lines record must be a JSON object".into(),
                    });
                }
            }
        }
        let Some((first_line, first_text, first_map)) = first else {
            return Err(Error::EmptyFile {
                path: path.to_path_buf(),
            });
        };
        let names: Vec<String> = first_map.keys().cloned().collect();
        let rows = Rows::Json {
            lines,
            line,
            slots: HashMap::new(),
        };
        let mut reader = Self::finish(path, dialect, rows, names, profile, kind)?;
        reader.pending = Some(reader.json_row(first_line, &first_text, &first_map));
        Ok(reader)
    }

    fn finish(
        path: &Path,
        dialect: Dialect,
        rows: Rows,
        names: Vec<String>,
        profile: &Profile,
        kind: Option<LogKind>,
    ) -> Result<LogReader> {
        let kind = kind.unwrap_or_else(|| detect_kind(names.iter().map(String::as_str)));
        let columns = ColumnMap::new(kind, &names, &profile.columns, &profile.defaults).map_err(
            |missing| Error::MissingColumns {
                path: path.to_path_buf(),
                kind: kind.as_str(),
                missing,
                found: names.clone(),
            },
        )?;
        let defaults = kind
            .columns()
            .iter()
            .map(|c| profile.defaults.get(*c).cloned())
            .collect();
        let citizen_slot = kind.columns().iter().position(|c| *c == "citizen_id");
        let explicit = profile
            .columns
            .iter()
            .filter_map(|(canonical, header)| {
                let slot = kind.columns().iter().position(|c| c == canonical)?;
                Some((normalise(header), slot))
            })
            .collect();
        Ok(LogReader {
            path: path.to_path_buf(),
            kind,
            dialect,
            columns,
            rows,
            defaults,
            citizen_slot,
            explicit,
            pending: None,
        })
    }

    /// The next row: `Ok(Ok(row))`, `Ok(Err(broken))` for a row that cannot be split into
    /// fields, `Err` for a failure that stops the whole file, `None` at the end.
    pub fn next_row(&mut self) -> Option<Result<std::result::Result<RawRow, BrokenRow>>> {
        if let Some(row) = self.pending.take() {
            return Some(Ok(Ok(row)));
        }
        match &mut self.rows {
            Rows::Csv { reader, record } => loop {
                let before = reader.position().line();
                match reader.read_byte_record(record) {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(source) => {
                        return Some(Err(Error::ReadCsv {
                            path: self.path.clone(),
                            line: before,
                            source,
                        }));
                    }
                }
                let line = record.position().map_or(before, |p| p.line());
                let fields: Vec<String> = record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                if fields.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                let record_copy = fields;
                return Some(Ok(self.csv_row(line, record_copy)));
            },
            Rows::Json { lines, line, .. } => loop {
                let text = match lines.next()? {
                    Ok(text) => text,
                    Err(e) => return Some(Err(Error::io(&self.path, e))),
                };
                *line += 1;
                let at = *line;
                if text.trim().is_empty() {
                    continue;
                }
                return Some(Ok(match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(serde_json::Value::Object(map)) => Ok(self.json_row(at, &text, &map)),
                    Ok(_) => Err(BrokenRow {
                        line: at,
                        rejection: Rejection::new("row", "not a JSON object"),
                        masked: mask_identifiers(&text, &[]),
                    }),
                    Err(e) => Err(BrokenRow {
                        line: at,
                        rejection: Rejection::new("row", format!("not valid JSON: {e}")),
                        masked: mask_identifiers(&text, &[]),
                    }),
                }));
            },
        }
    }

    fn csv_row(&self, line: u64, fields: Vec<String>) -> std::result::Result<RawRow, BrokenRow> {
        let width = self.columns.width;
        let extra_filled = fields.iter().skip(width).any(|f| !f.trim().is_empty());
        if fields.len() < width || extra_filled {
            let citizen = self
                .citizen_slot
                .and_then(|slot| self.columns.positions[slot])
                .and_then(|i| fields.get(i))
                .map(String::as_str)
                .filter(|s| !s.trim().is_empty());
            let masked = mask_identifiers(
                &join_csv(&fields, self.dialect.delimiter),
                citizen.as_slice(),
            );
            return Err(BrokenRow {
                line,
                rejection: Rejection::new(
                    "row",
                    format!(
                        "expected {width} fields as in the header, found {}",
                        if extra_filled {
                            fields
                                .iter()
                                .rposition(|f| !f.trim().is_empty())
                                .map_or(0, |i| i + 1)
                        } else {
                            fields.len()
                        }
                    ),
                ),
                masked,
            });
        }
        let values = self
            .columns
            .positions
            .iter()
            .zip(&self.defaults)
            .map(|(position, default)| match position {
                Some(i) => Some(fields[*i].clone()),
                None => default.clone(),
            })
            .collect();
        Ok(RawRow {
            line,
            values,
            raw: RawText::Fields(fields, self.dialect.delimiter),
        })
    }

    fn json_row(
        &mut self,
        line: u64,
        text: &str,
        map: &serde_json::Map<String, serde_json::Value>,
    ) -> RawRow {
        let kind = self.kind;
        let mut values: Vec<Option<String>> = self.defaults.clone();
        for (key, value) in map {
            let slot = match &mut self.rows {
                Rows::Json { slots, .. } => *slots.entry(normalise(key)).or_insert_with(|| {
                    self.explicit.get(&normalise(key)).copied().or_else(|| {
                        kind.canonical(key)
                            .and_then(|c| kind.columns().iter().position(|x| *x == c))
                    })
                }),
                Rows::Csv { .. } => None,
            };
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
        RawRow {
            line,
            values,
            raw: RawText::Line(text.to_string()),
        }
    }
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

    fn read_all(
        bytes: &[u8],
        name: &str,
    ) -> (LogReader, Vec<std::result::Result<RawRow, BrokenRow>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let scan = scan_file(&path).unwrap();
        let mut reader = LogReader::open(&path, &scan, &Profile::default(), None).unwrap();
        let mut rows = Vec::new();
        while let Some(row) = reader.next_row() {
            rows.push(row.unwrap());
        }
        (reader, rows)
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
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.line, 3);
        assert_eq!(row.values[1].as_deref(), Some("Forlì"));
        assert_eq!(row.values[8].as_deref(), Some("1.234,50"));
        let masked = row.masked(reader.citizen_slot);
        assert!(!masked.contains("RSSMRA80A01C573Y"), "{masked}");
        let broken = rows[1].as_ref().unwrap_err();
        assert_eq!(broken.line, 4);
        assert_eq!(broken.rejection.field, "row");
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
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.line, 1);
        assert_eq!(row.values[7].as_deref(), Some("RSSMRA80A01C573Y"));
        assert_eq!(row.values[8].as_deref(), Some("12.5"));
        assert!(!row.masked(reader.citizen_slot).contains("RSSMRA"));
        assert_eq!(rows[1].as_ref().unwrap_err().line, 3);
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
