//! Web pages saved as spreadsheets. Many back offices' "export to Excel" writes an HTML table
//! into a `.xls` (or `.html`) file, which spreadsheet programs open as a sheet. The table is
//! read as CSV text, so that the rest of the pipeline (header recognition, validation,
//! quarantine) treats it like any other export.
//!
//! - The table read is the one with the most rows: pages may wrap it in layout tables, or put
//!   a small table of filters above it.
//! - Row *n* of the table is line *n* of the text, so errors name the row the office sees.
//! - A cell's text is what a browser shows, with each run of white space (line breaks and
//!   non-breaking spaces included) made one space; a cell that spans several columns is
//!   followed by empty ones, so that the columns stay aligned.
//! - The page is decoded as its byte order mark or its `<meta charset>` says; otherwise as
//!   UTF-8 when it is valid, as Windows-1252 when it is not.
//! - The text is written with `;` between fields, as Italian spreadsheet programs export it,
//!   so that the decimal comma is read as the rest of the pipeline reads it for such files.

use std::path::Path;

use scraper::{ElementRef, Html, Node};

use crate::error::{Error, Result};

/// The largest page read. A page is parsed whole, and pages saved as spreadsheets hold tens
/// of thousands of rows at most: a larger export is better made as CSV.
pub const MAX_PAGE_BYTES: u64 = 256 << 20;

/// The most columns a cell may span (a larger `colspan` is taken as this).
const MAX_SPAN: usize = 1_000;

/// Whether `head` (the first bytes of a file) begins an HTML page: after an optional byte
/// order mark and white space, a doctype, a comment or one of the elements a page or a saved
/// table starts with.
pub fn is_html_page(head: &[u8]) -> bool {
    const STARTS: [&[u8]; 8] = [
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<meta",
        b"<body",
        b"<table",
        b"<style",
        b"<!--",
    ];
    let text = head.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(head);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = &text[start..];
    STARTS.iter().any(|s| {
        text.get(..s.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(s))
    })
}

/// The page at `path` as stored (refused when larger than [`MAX_PAGE_BYTES`]), and the CSV
/// text (UTF-8, `;` between fields, one line per table row) of its table.
pub fn read_page(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if size > MAX_PAGE_BYTES {
        return Err(page_error(
            path,
            format!(
                "the page is {} MiB, more than the {} MiB a page saved as a spreadsheet is read \
                 up to: export the data as CSV instead",
                size >> 20,
                MAX_PAGE_BYTES >> 20
            ),
        ));
    }
    let page = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = table_text(&page).map_err(|message| page_error(path, message))?;
    Ok((page, text))
}

fn page_error(path: &Path, message: String) -> Error {
    Error::Spreadsheet {
        path: path.to_path_buf(),
        message,
    }
}

/// The CSV text of the largest table of `page`.
pub fn table_text(page: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let document = Html::parse_document(&decode(page));
    let tables = document
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(|e| e.value().name() == "table");
    // The first of the tables with the most rows.
    let mut best: Option<Vec<ElementRef<'_>>> = None;
    for table in tables {
        let rows = rows(table);
        if best.as_ref().is_none_or(|b| rows.len() > b.len()) {
            best = Some(rows);
        }
    }
    let rows = best
        .filter(|rows| !rows.is_empty())
        .ok_or("the page has no table with rows: save the export as CSV or as a workbook")?;
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for row in rows {
        let mut fields: Vec<String> = Vec::new();
        for cell in row
            .children()
            .filter_map(ElementRef::wrap)
            .filter(|e| matches!(e.value().name(), "td" | "th"))
        {
            fields.push(cell_text(cell));
            let span = cell
                .value()
                .attr("colspan")
                .and_then(|s| s.trim().parse::<usize>().ok())
                .unwrap_or(1)
                .clamp(1, MAX_SPAN);
            fields.extend(std::iter::repeat_n(String::new(), span - 1));
        }
        // An empty row stays a line of its own (a blank one, which readers skip), so that
        // line numbers are row numbers.
        if fields.is_empty() {
            fields.push(String::new());
        }
        writer.write_record(&fields).map_err(|e| e.to_string())?;
    }
    writer.into_inner().map_err(|e| e.to_string())
}

/// The rows of `table` itself (directly, or in its head, bodies and foot), not those of
/// tables nested in its cells.
fn rows(table: ElementRef<'_>) -> Vec<ElementRef<'_>> {
    let mut rows = Vec::new();
    for child in table.children().filter_map(ElementRef::wrap) {
        match child.value().name() {
            "tr" => rows.push(child),
            "thead" | "tbody" | "tfoot" => rows.extend(
                child
                    .children()
                    .filter_map(ElementRef::wrap)
                    .filter(|e| e.value().name() == "tr"),
            ),
            _ => {}
        }
    }
    rows
}

/// The text a browser shows in `cell`, on one line: line breaks and block elements separate
/// words, and every run of white space is one space.
fn cell_text(cell: ElementRef<'_>) -> String {
    let mut text = String::new();
    for node in cell.descendants() {
        match node.value() {
            Node::Text(t) => text.push_str(t),
            Node::Element(e) if matches!(e.name(), "br" | "p" | "div" | "li") => text.push(' '),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The page as text: by its byte order mark, else by the character set its head declares,
/// else as UTF-8 when valid and Windows-1252 when not.
fn decode(page: &[u8]) -> String {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(page) {
        return encoding
            .decode_without_bom_handling(&page[bom..])
            .0
            .into_owned();
    }
    // A page that declares UTF-16 without a byte order mark is ASCII-compatible text, as
    // browsers read it.
    let declared = declared_charset(page)
        .filter(|e| *e != encoding_rs::UTF_16LE && *e != encoding_rs::UTF_16BE);
    match declared {
        Some(encoding) => encoding.decode_without_bom_handling(page).0.into_owned(),
        None => match std::str::from_utf8(page) {
            Ok(text) => text.to_owned(),
            Err(_) => encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(page)
                .0
                .into_owned(),
        },
    }
}

/// The character set named by `charset=` in the first 4 KiB of the page (a `<meta charset>`
/// or a `<meta http-equiv="Content-Type" content="…; charset=…">`).
fn declared_charset(page: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = page[..page.len().min(4096)].to_ascii_lowercase();
    let at = memchr::memmem::find(&head, b"charset=")? + b"charset=".len();
    let label: Vec<u8> = head[at..]
        .iter()
        .skip_while(|b| matches!(b, b'"' | b'\'' | b' '))
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
        .copied()
        .collect();
    encoding_rs::Encoding::for_label(&label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(page: &str) -> String {
        String::from_utf8(table_text(page.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn pages_are_told_by_their_start() {
        assert!(is_html_page(b"<html><body><table>"));
        assert!(is_html_page(b"\xEF\xBB\xBF\r\n  <!DOCTYPE HTML PUBLIC"));
        assert!(is_html_page(b"<TABLE border=1><TR>"));
        assert!(is_html_page(b"<meta charset=\"utf-8\"><table>"));
        assert!(!is_html_page(b"id_pratica;servizio\n"));
        assert!(!is_html_page(b"<id>;<servizio>\n"));
        assert!(!is_html_page(b"<?xml version=\"1.0\"?><Workbook"));
        assert!(!is_html_page(b""));
    }

    #[test]
    fn the_largest_table_becomes_one_line_per_row() {
        let page = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Estrazione</title></head>
<body>
<table><tr><td>Filtri:</td><td>anno 2017</td></tr></table>
<table border="1">
<thead><tr><th>ID pratica</th><th>Servizio</th><th>Importo</th></tr></thead>
<tbody>
<tr><td>P1</td><td>Mensa<br>scolastica</td><td>1.234,50</td></tr>
<tr><td>P2</td><td>Nido;  d'infanzia</td><td>&nbsp;</td></tr>
<tr><td></td><td></td><td></td></tr>
<tr><td colspan="2">Totale</td><td>1.234,50</td></tr>
<tr><td>P3</td><td>"Visite" guidate</td><td>12,00</td></tr>
</tbody></table></body></html>"#;
        assert_eq!(
            text(page),
            "ID pratica;Servizio;Importo\n\
             P1;Mensa scolastica;1.234,50\n\
             P2;\"Nido; d'infanzia\";\n\
             ;;\n\
             Totale;;1.234,50\n\
             P3;\"\"\"Visite\"\" guidate\";12,00\n"
        );
    }

    #[test]
    fn tables_inside_cells_are_not_rows_of_the_outer_one() {
        let page = "<table><tr><td><table><tr><td>a</td></tr><tr><td>b</td></tr>\
                    <tr><td>c</td></tr></table></td></tr></table>";
        assert_eq!(text(page), "a\nb\nc\n");
    }

    #[test]
    fn pages_are_decoded_as_they_declare() {
        // Windows-1252, declared the old way, and undeclared.
        let declared = b"<html><head><meta http-equiv=\"Content-Type\" \
                         content=\"text/html; charset=windows-1252\"></head>\
                         <body><table><tr><td>Forl\xec</td></tr></table></body></html>";
        assert_eq!(
            String::from_utf8(table_text(declared).unwrap()).unwrap(),
            "Forlì\n"
        );
        let undeclared = b"<table><tr><td>Forl\xec</td></tr></table>";
        assert_eq!(
            String::from_utf8(table_text(undeclared).unwrap()).unwrap(),
            "Forlì\n"
        );
        let utf8 = "<table><tr><td>Forlì</td></tr></table>";
        assert_eq!(text(utf8), "Forlì\n");
    }

    #[test]
    fn a_page_without_a_table_is_refused() {
        let refused = table_text(b"<html><body><p>Nessun dato</p></body></html>").unwrap_err();
        assert!(refused.contains("no table"), "{refused}");
    }
}
