//! Spreadsheet exports (xlsx) read without a profile: a report's title above the header,
//! Italian column names, date cells with and without a time, amounts as numbers, a note with
//! a line break, and broken rows that must reach quarantine under their spreadsheet row.

use std::path::{Path, PathBuf};

use civica_ingest::dialect::{Format, scan_file};
use civica_ingest::source::LogReader;
use civica_ingest::warehouse::parquet_files;
use civica_ingest::{IngestOptions, Layout, Profile, Pseudonymiser, Table};
use polars::prelude::*;
use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Workbook};

/// The workbook of the tests. Rows as the office sees them (1-based):
/// 1 title, 2 blank, 3 header, 4–6 good rows, 7 an unknown channel, 8 a completion before the
/// submission, 9 blank, 10 a good row with a date-only submission.
fn write_workbook(path: &Path) {
    let mut workbook = Workbook::new();
    // A first sheet of notes would be read when no profile names the sheet: the data sheet
    // comes first, as offices usually leave it.
    let sheet = workbook.add_worksheet();
    sheet.set_name("Pratiche 2017").unwrap();
    let when = CellFormat::new().set_num_format("dd/mm/yyyy hh:mm");
    let day = CellFormat::new().set_num_format("dd/mm/yyyy");
    sheet
        .write_string(0, 0, "Comune di Forlì - estrazione pratiche SUAP")
        .unwrap();
    let header = [
        "Numero pratica",
        "Servizio",
        "Canale",
        "Data presentazione",
        "Data conclusione",
        "Stato",
        "Codice fiscale",
        "Importo",
        "Note",
    ];
    for (c, name) in header.iter().enumerate() {
        sheet.write_string(2, c as u16, *name).unwrap();
    }
    let at = |d: u8, h: u16, m: u8| {
        ExcelDateTime::from_ymd(2017, 6, d)
            .unwrap()
            .and_hms(h, m, 0)
            .unwrap()
    };
    // (row, id, channel, submitted, completed, status, citizen, amount, note)
    type Row<'a> = (
        u32,
        f64,
        &'a str,
        ExcelDateTime,
        Option<ExcelDateTime>,
        &'a str,
        &'a str,
        Option<f64>,
    );
    let rows: [Row; 5] = [
        (
            3,
            1001.0,
            "Web",
            at(12, 9, 30),
            Some(at(14, 11, 0)),
            "Evasa",
            "RSSMRA80A01C573Y",
            Some(1234.5),
        ),
        (
            4,
            1002.0,
            "Sportello",
            at(12, 10, 0),
            None,
            "In lavorazione",
            "",
            None,
        ),
        (
            5,
            1003.0,
            "App IO",
            at(13, 8, 15),
            Some(at(13, 9, 0)),
            "Conclusa",
            "BNCGPP70A01C573Q",
            Some(16.0),
        ),
        (
            6,
            1004.0,
            "Piccione",
            at(13, 8, 15),
            None,
            "Evasa",
            "",
            None,
        ),
        (
            7,
            1005.0,
            "Web",
            at(14, 8, 15),
            Some(at(13, 9, 0)),
            "Evasa",
            "",
            None,
        ),
    ];
    for (r, id, channel, submitted, completed, status, citizen, amount) in rows {
        sheet.write_number(r, 0, id).unwrap();
        sheet.write_string(r, 1, "suap").unwrap();
        sheet.write_string(r, 2, channel).unwrap();
        sheet
            .write_datetime_with_format(r, 3, &submitted, &when)
            .unwrap();
        if let Some(done) = completed {
            sheet
                .write_datetime_with_format(r, 4, &done, &when)
                .unwrap();
        }
        sheet.write_string(r, 5, status).unwrap();
        if !citizen.is_empty() {
            sheet.write_string(r, 6, citizen).unwrap();
        }
        if let Some(amount) = amount {
            sheet.write_number(r, 7, amount).unwrap();
        }
    }
    sheet
        .write_string(3, 8, "prima riga\nseconda riga, con virgola")
        .unwrap();
    // Row 10: a submission date without a time.
    sheet.write_number(9, 0, 1006.0).unwrap();
    sheet.write_string(9, 1, "tari").unwrap();
    sheet.write_string(9, 2, "online").unwrap();
    let date = ExcelDateTime::from_ymd(2017, 7, 3).unwrap();
    sheet.write_datetime_with_format(9, 3, &date, &day).unwrap();
    sheet.write_string(9, 5, "pending").unwrap();
    let notes = workbook.add_worksheet();
    notes.set_name("Note").unwrap();
    notes
        .write_string(0, 0, "Estrazione del 2018-01-10")
        .unwrap();
    workbook.save(path).unwrap();
}

fn workbook(dir: &Path) -> PathBuf {
    let path = dir.join("pratiche.xlsx");
    write_workbook(&path);
    path
}

#[test]
fn a_sheet_reads_as_rows_numbered_like_the_spreadsheet() {
    let dir = tempfile::tempdir().unwrap();
    let path = workbook(dir.path());
    let scan = scan_file(&path).unwrap();
    let mut reader = LogReader::open(&path, &scan, &Profile::default(), None).unwrap();
    assert_eq!(reader.dialect.format, Format::Spreadsheet);
    assert_eq!(reader.preamble_lines, 1);
    assert_eq!(reader.columns.unknown, ["Note"]);
    let mut rows = Vec::new();
    reader
        .for_each_row(|row| {
            let row = row.unwrap();
            let values: Vec<Option<String>> =
                row.values.iter().map(|v| v.map(str::to_string)).collect();
            rows.push((row.line, values, row.masked()));
        })
        .unwrap();
    let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(lines, [4, 5, 6, 7, 8, 10]);
    let text = |row: usize, column: usize| rows[row].1[column].clone().unwrap_or_default();
    // Numbers without a fraction read as integers, amounts in plain notation.
    assert_eq!(text(0, 0), "1001");
    assert_eq!(text(0, 8), "1234.5");
    // Date cells in local time, as typed; a date without a time stays a date.
    assert_eq!(text(0, 3), "2017-06-12 09:30:00");
    assert_eq!(text(5, 3), "2017-07-03");
    assert!(!rows[0].2.contains("RSSMRA80A01C573Y"), "{}", rows[0].2);
}

#[test]
fn a_workbook_ingests_without_a_profile_and_broken_rows_keep_their_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = workbook(dir.path());
    let layout = Layout::new(dir.path().join("warehouse"));
    let key = Pseudonymiser::new(&[7u8; 32]).unwrap();
    let summary = civica_ingest::ingest(
        &layout,
        std::slice::from_ref(&path),
        &key,
        &IngestOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (
            summary.rows_read,
            summary.rows_accepted,
            summary.rows_quarantined
        ),
        (6, 4, 2)
    );
    assert!(
        summary
            .warnings
            .iter()
            .any(|w| w.contains("1 line(s) above")),
        "{:?}",
        summary.warnings
    );
    // The same workbook again: recognised by its content and skipped.
    let again = civica_ingest::ingest(&layout, &[path], &key, &IngestOptions::default()).unwrap();
    assert!(again.files[0].skipped.is_some());

    let commit = layout.latest_commit().unwrap();
    let read = |table: Table| {
        let mut all: Option<DataFrame> = None;
        for file in parquet_files(&layout.table_dir(commit, table)).unwrap() {
            let df = ParquetReader::new(std::fs::File::open(file).unwrap())
                .finish()
                .unwrap();
            match &mut all {
                Some(all) => {
                    all.vstack_mut(&df).unwrap();
                }
                None => all = Some(df),
            }
        }
        all.unwrap()
    };
    let quarantine = read(Table::Quarantine)
        .sort(["line"], Default::default())
        .unwrap();
    let lines: Vec<u64> = quarantine
        .column("line")
        .unwrap()
        .u64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(lines, [7, 8]);
    let fields: Vec<&str> = quarantine
        .column("field")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(fields, ["channel", "completed_at"]);

    let requests = read(Table::Requests)
        .sort(["request_id"], Default::default())
        .unwrap();
    let ids: Vec<&str> = requests
        .column("request_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(ids, ["1001", "1002", "1003", "1006"]);
    // 12 June 2017, 09:30 in Rome (summer time) is 07:30 UTC.
    let submitted = requests
        .column("submitted_at")
        .unwrap()
        .datetime()
        .unwrap()
        .physical()
        .get(0)
        .unwrap();
    assert_eq!(submitted, 1_497_252_600_000_000);
    let amounts: Vec<Option<f64>> = requests
        .column("amount_eur")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(amounts, [Some(1234.5), None, Some(16.0), None]);
}

#[test]
fn a_missing_sheet_is_named_with_the_sheets_there_are() {
    let dir = tempfile::tempdir().unwrap();
    let path = workbook(dir.path());
    let mut profile = Profile::default();
    profile.source.sheet = Some("Pratiche 2018".into());
    let scan = scan_file(&path).unwrap();
    let error = LogReader::open(&path, &scan, &profile, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("pratiche.xlsx")
            && error.contains("Pratiche 2018")
            && error.contains("Pratiche 2017, Note"),
        "{error}"
    );
}
