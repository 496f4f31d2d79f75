//! Spreadsheets as back offices export them (xlsx, xlsm, xlsb, xls, ods): one sheet read as
//! CSV text, so that the rest of the pipeline (header recognition, validation, quarantine)
//! treats it like any other export.
//!
//! Row *n* of the sheet is line *n* of the text, so errors name the row that the office sees
//! in its spreadsheet program. Cells become text as follows: numbers in plain notation with a
//! decimal point, date cells as `yyyy-mm-dd` (with ` hh:mm:ss` when they have a time: local
//! time, as the office typed it), text as it is, with line breaks inside a cell turned into
//! spaces. Excel's own formats (xlsx, xlsb) are read cell by cell, in bounded memory; the
//! older and the OpenDocument formats are read whole (their files are small).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};

use calamine::{Data, DataRef, Reader, Sheets};

use crate::error::{Error, Result};

/// File extensions read as spreadsheets, when the content agrees (a ZIP container, or the
/// OLE container of the old `.xls`).
const EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];

/// Whether `path` is a spreadsheet, from its extension and first bytes.
pub fn is_spreadsheet(path: &Path, head: &[u8]) -> bool {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let zip = head.starts_with(b"PK\x03\x04");
    let ole = head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    EXTENSIONS.contains(&extension.as_str()) && (zip || ole)
}

/// The text of one sheet (`sheet`, or the first) of the spreadsheet at `path`, produced on a
/// thread of its own while it is read.
pub fn open(path: &Path, sheet: Option<&str>) -> Result<SheetText> {
    let mut workbook = calamine::open_workbook_auto(path).map_err(|e| Error::Spreadsheet {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let names = workbook.sheet_names();
    let name = match sheet {
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .cloned()
            .ok_or_else(|| Error::Spreadsheet {
                path: path.to_path_buf(),
                message: format!(
                    "no sheet named `{wanted}` (the sheets are: {}); fix `sheet` in the profile",
                    names.join(", ")
                ),
            })?,
        None => names.first().cloned().ok_or_else(|| Error::Spreadsheet {
            path: path.to_path_buf(),
            message: "the workbook has no sheets".into(),
        })?,
    };
    let (sender, receiver) = std::sync::mpsc::sync_channel(4);
    let owned: PathBuf = path.to_path_buf();
    std::thread::Builder::new()
        .name("spreadsheet".into())
        .spawn(move || {
            let mut text = TextWriter::new(sender);
            if let Err(message) = write_sheet(&mut workbook, &name, &mut text) {
                text.fail(format!("{}: sheet `{name}`: {message}", owned.display()));
            } else {
                text.finish();
            }
        })
        .map_err(|e| Error::io(path, e))?;
    Ok(SheetText {
        receiver,
        chunk: Vec::new(),
        at: 0,
    })
}

/// The CSV text of a sheet, as it is produced.
pub struct SheetText {
    receiver: Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for SheetText {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.recv() {
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
                // The sheet is done (or its thread gone, after sending its error).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn write_sheet(
    workbook: &mut Sheets<std::io::BufReader<std::fs::File>>,
    name: &str,
    text: &mut TextWriter,
) -> std::result::Result<(), String> {
    match workbook {
        Sheets::Xlsx(xlsx) => {
            let mut cells = xlsx
                .worksheet_cells_reader(name)
                .map_err(|e| e.to_string())?;
            while let Some(cell) = cells.next_cell().map_err(|e| e.to_string())? {
                let (row, column) = cell.get_position();
                text.cell(row, column, cell.get_value())?;
            }
        }
        Sheets::Xlsb(xlsb) => {
            let mut cells = xlsb
                .worksheet_cells_reader(name)
                .map_err(|e| e.to_string())?;
            while let Some(cell) = cells.next_cell().map_err(|e| e.to_string())? {
                let (row, column) = cell.get_position();
                text.cell(row, column, cell.get_value())?;
            }
        }
        other => {
            let range = other.worksheet_range(name).map_err(|e| e.to_string())?;
            let (top, left) = range.start().unwrap_or((0, 0));
            for (r, cells) in range.rows().enumerate() {
                for (c, value) in cells.iter().enumerate() {
                    if *value != Data::Empty {
                        text.cell(top + r as u32, left + c as u32, &borrowed(value))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// A whole-sheet cell as a streamed one.
fn borrowed(value: &Data) -> DataRef<'_> {
    match value {
        Data::Int(i) => DataRef::Int(*i),
        Data::Float(f) => DataRef::Float(*f),
        Data::String(s) => DataRef::SharedString(s),
        Data::Bool(b) => DataRef::Bool(*b),
        Data::DateTime(dt) => DataRef::DateTime(*dt),
        Data::DateTimeIso(s) => DataRef::SharedString(s),
        Data::DurationIso(s) => DataRef::SharedString(s),
        Data::Error(e) => DataRef::Error(e.clone()),
        Data::Empty => DataRef::Empty,
    }
}

/// Bytes of text sent at a time.
const CHUNK_BYTES: usize = 256 << 10;

/// Writes cells, in row order, as CSV lines.
struct TextWriter {
    sender: SyncSender<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    /// The row being written, the commas written in it and its last column written.
    row: u32,
    commas: u32,
    last: Option<u32>,
    cell: String,
}

impl TextWriter {
    fn new(sender: SyncSender<std::io::Result<Vec<u8>>>) -> Self {
        TextWriter {
            sender,
            buf: Vec::with_capacity(CHUNK_BYTES + 4096),
            row: 0,
            commas: 0,
            last: None,
            cell: String::new(),
        }
    }

    fn cell(
        &mut self,
        row: u32,
        column: u32,
        value: &DataRef<'_>,
    ) -> std::result::Result<(), String> {
        let repeated = row == self.row && self.last.is_some_and(|last| column <= last);
        if row < self.row || repeated {
            return Err(format!("cells out of order at row {}", row + 1));
        }
        // One line per row, empty rows included, so that line numbers are row numbers.
        while self.row < row {
            self.buf.push(b'\n');
            self.row += 1;
            self.commas = 0;
            self.last = None;
        }
        // Field k of a line follows k commas.
        while self.commas < column {
            self.buf.push(b',');
            self.commas += 1;
        }
        self.last = Some(column);
        self.cell.clear();
        cell_text(value, &mut self.cell);
        quote_into(&self.cell, &mut self.buf);
        if self.buf.len() >= CHUNK_BYTES {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES + 4096));
            // The reader is gone: the ingest stopped, and so does this thread.
            self.sender
                .send(Ok(chunk))
                .map_err(|_| "the reader stopped".to_string())?;
        }
        Ok(())
    }

    fn finish(mut self) {
        self.buf.push(b'\n');
        let chunk = std::mem::take(&mut self.buf);
        let _ = self.sender.send(Ok(chunk));
    }

    fn fail(self, message: String) {
        let _ = self.sender.send(Err(std::io::Error::other(message)));
    }
}

/// The text of one cell.
fn cell_text(value: &DataRef<'_>, out: &mut String) {
    use std::fmt::Write;
    let _ = match value {
        DataRef::Empty => Ok(()),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            out.push_str(s);
            Ok(())
        }
        DataRef::SharedString(s) => {
            out.push_str(s);
            Ok(())
        }
        DataRef::Int(i) => write!(out, "{i}"),
        DataRef::Float(f) => number(*f, out),
        DataRef::Bool(b) => write!(out, "{b}"),
        DataRef::Error(e) => write!(out, "{e}"),
        DataRef::DateTime(dt) if dt.is_duration() => number(dt.as_f64(), out),
        DataRef::DateTime(dt) => {
            let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
            match (h, mi, s, ms) {
                (0, 0, 0, 0) => write!(out, "{y:04}-{mo:02}-{d:02}"),
                (_, _, _, 0) => write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
                _ => write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{ms:03}"),
            }
        }
    };
}

/// A number in plain notation: integers without a fraction, others in the shortest form
/// that reads back as the same value (`12.5`, not `12.500000001`).
fn number(f: f64, out: &mut String) -> std::fmt::Result {
    use std::fmt::Write;
    if f.fract() == 0.0 && f.abs() < 1e15 {
        write!(out, "{}", f as i64)
    } else {
        write!(out, "{f}")
    }
}

/// Appends `text` as one CSV field: quoted when it holds a comma or a quote; line breaks
/// become spaces (a row stays one line).
fn quote_into(text: &str, out: &mut Vec<u8>) {
    let needs_quotes = text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !needs_quotes {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.push(b'"');
    for b in text.bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\"\""),
            b'\n' | b'\r' => out.push(b' '),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_become_csv_fields() {
        let mut out = String::new();
        cell_text(&DataRef::Float(12.5), &mut out);
        assert_eq!(out, "12.5");
        out.clear();
        cell_text(&DataRef::Float(1234.0), &mut out);
        assert_eq!(out, "1234");
        let mut buf = Vec::new();
        quote_into("a, \"b\"\nc", &mut buf);
        assert_eq!(buf, b"\"a, \"\"b\"\" c\"");
    }
}
