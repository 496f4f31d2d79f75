//! End-to-end tests of `civica ingest` on messy inputs: municipal dialects, profiles, JSON
//! Lines, surveys, updates across exports, idempotency, strict mode, identifier leaks and
//! crash safety under `kill -9`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{civica, csv_rows, fixtures, run, run_ok, s};

struct Warehouse {
    dir: tempfile::TempDir,
    path: PathBuf,
    key: PathBuf,
}

fn warehouse() -> Warehouse {
    let dir = tempfile::tempdir().unwrap();
    Warehouse {
        path: dir.path().join("warehouse"),
        key: dir.path().join("pseudonym.key"),
        dir,
    }
}

impl Warehouse {
    /// The arguments of `civica ingest --json` into this warehouse, then `extra`.
    fn ingest_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "ingest",
            "--json",
            "--warehouse",
            s(&self.path),
            "--key-file",
            s(&self.key),
        ];
        args.extend_from_slice(extra);
        args
    }

    fn ingest(&self, extra: &[&str]) -> serde_json::Value {
        let summary: serde_json::Value =
            serde_json::from_str(&run_ok(&self.ingest_args(extra))).unwrap();
        let n = |k: &str| summary[k].as_u64().unwrap();
        assert_eq!(
            n("rows_read"),
            n("rows_accepted") + n("rows_quarantined") + n("rows_duplicate"),
            "{summary}"
        );
        summary
    }

    fn query(&self, sql: &str) -> Vec<std::collections::HashMap<String, String>> {
        csv_rows(&run_ok(&[
            "query",
            "--format",
            "csv",
            "--warehouse",
            s(&self.path),
            sql,
        ]))
    }

    fn count(&self, table: &str) -> u64 {
        self.query(&format!("SELECT count(*) AS n FROM {table}"))[0]["n"]
            .parse()
            .unwrap()
    }

    /// The quarantined rows, as `civica quarantine` lists them.
    fn quarantine(&self) -> Vec<std::collections::HashMap<String, String>> {
        csv_rows(&run_ok(&[
            "quarantine",
            "--format",
            "csv",
            "--warehouse",
            s(&self.path),
        ]))
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A canonical requests CSV named `name`: the header, then `rows`.
    fn requests_file(&self, name: &str, rows: &str) -> PathBuf {
        let header = "request_id,service,channel,submitted_at,completed_at,status,auth_method,citizen_id,amount_eur,satisfaction\n";
        self.file(name, format!("{header}{rows}").as_bytes())
    }
}

/// The counts of `tests/fixtures/municipal_export.csv`, worked out by hand in
/// `tests/fixtures/README.md`.
fn has_the_municipal_export_counts(summary: &serde_json::Value) {
    assert_eq!(summary["rows_read"], 17);
    assert_eq!(summary["rows_accepted"], 6);
    assert_eq!(summary["rows_quarantined"], 10);
    assert_eq!(summary["rows_duplicate"], 1);
}

#[test]
fn a_municipal_export_ingests_without_a_profile() {
    let w = warehouse();
    let file = fixtures().join("municipal_export.csv");
    let summary = w.ingest(&[s(&file)]);
    has_the_municipal_export_counts(&summary);
    let dialect = summary["files"][0]["dialect"].as_str().unwrap();
    assert!(
        dialect.contains("';'") && dialect.contains("windows-1252") && dialect.contains("comma"),
        "{dialect}"
    );
    assert!(
        summary["warnings"][0]
            .as_str()
            .unwrap()
            .contains("Note operatore")
    );

    let quarantine = w.quarantine();
    let got: Vec<(&str, &str)> = quarantine
        .iter()
        .map(|r| (r["line"].as_str(), r["field"].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("9", "channel"),
            ("10", "submitted_at"),
            ("11", "submitted_at"),
            ("12", "completed_at"),
            ("13", "satisfaction"),
            ("14", "amount_eur"),
            ("15", "status"),
            ("16", "request_id"),
            ("17", "row"),
            ("18", "request_id"),
        ]
    );
    assert!(
        quarantine[2]["reason"].contains("summer time"),
        "{:?}",
        quarantine[2]
    );
    assert!(
        quarantine[9]["reason"].contains("line 3"),
        "{:?}",
        quarantine[9]
    );

    let rows = w.query(
        "SELECT request_id, service, channel, status, auth_method, amount_eur, \
         CAST(submitted_at AS VARCHAR) AS submitted_at FROM requests ORDER BY request_id",
    );
    let p003 = &rows[2];
    assert_eq!(p003["request_id"], "P-003");
    assert_eq!(p003["channel"], "online");
    assert_eq!(p003["status"], "completed");
    assert_eq!(p003["auth_method"], "federa");
    assert_eq!(p003["amount_eur"], "1234.5");
    // 10:30 in Cesena on 12 June is 08:30 UTC.
    assert!(
        p003["submitted_at"].starts_with("2017-06-12T08:30:00"),
        "{p003:?}"
    );
    assert_eq!(rows[4]["status"], "rejected");
    assert_eq!(rows[5]["status"], "pending");
}

#[test]
fn a_profile_maps_odd_headers_values_and_constants() {
    let w = warehouse();
    let profile = w.file(
        "ztl.toml",
        br#"
[source]
delimiter = "|"
date_format = "%Y%m%d %H%M"

[columns]
request_id = "Protocollo"
submitted_at = "Ricevuta il"
channel = "Modalita"
status = "Stato pratica"

[values.channel]
"sportello polifunzionale" = "sportello"
"area riservata" = "online"

[defaults]
service = "permessi_ztl"
"#,
    );
    let data = w.file(
        "ztl.txt",
        "Protocollo|Ricevuta il|Modalita|Stato pratica\n\
         Z1|20170612 0930|Area riservata|evasa\n\
         Z2|20170613 1015|Sportello polifunzionale|respinta\n"
            .as_bytes(),
    );
    let summary = w.ingest(&["--profile", s(&profile), s(&data)]);
    assert_eq!(summary["rows_accepted"], 2, "{summary}");
    let rows = w.query("SELECT request_id, service, channel, status FROM requests ORDER BY 1");
    assert_eq!(rows[0]["service"], "permessi_ztl");
    assert!(
        summary["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| !w.as_str().unwrap().contains("not in the catalogue")),
        "permessi_ztl is catalogued: {summary}"
    );
    assert_eq!(rows[0]["channel"], "online");
    assert_eq!(rows[1]["channel"], "sportello");
    assert_eq!(rows[1]["status"], "rejected");

    let bad = w.file("bad.toml", b"[source]\nseparator = \"|\"\n");
    let out = run(&[
        "ingest",
        "--warehouse",
        s(&w.path),
        "--key-file",
        s(&w.key),
        "--profile",
        s(&bad),
        s(&data),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("separator"),
        "{err}"
    );
}

#[test]
fn json_lines_and_surveys_are_recognised() {
    let w = warehouse();
    let requests = w.file(
        "events.jsonl",
        b"{\"request_id\":\"J1\",\"service\":\"suap\",\"channel\":\"online\",\"submitted_at\":\"2018-03-01T10:00:00+01:00\",\"status\":\"completed\",\"amount_eur\":16}\n\
          {\"request_id\":\"J2\",\"service\":\"suap\",\"channel\":\"pec\",\"submitted_at\":\"2018-03-02T10:00:00+01:00\",\"status\":\"pending\"}\n\
          {\"request_id\":\"J3\",\"service\":\"suap\"\n",
    );
    let surveys = w.file(
        "questionario.csv",
        "id_risposta,servizio,canale,data_risposta,voto,commento\n\
         Q1,suap,online,2018-03-05T10:00:00+01:00,9,servizio ottimo\n\
         Q2,suap,sportello,2018-03-06T10:00:00+01:00,6,attesa lunga\n\
         Q3,suap,sportello,2018-03-06T10:00:00+01:00,0,\n"
            .as_bytes(),
    );
    let summary = w.ingest(&[s(&requests), s(&surveys)]);
    assert_eq!(summary["files"][0]["kind"], "requests");
    assert_eq!(summary["files"][1]["kind"], "surveys");
    assert_eq!(summary["rows_accepted"], 4);
    assert_eq!(summary["rows_quarantined"], 2);
    assert_eq!(w.count("requests"), 2);
    let scores = w.query("SELECT response_id, score FROM surveys ORDER BY 1");
    assert_eq!(scores.len(), 2);
    assert_eq!(scores[0]["score"], "9");
    // Free-text comments are never stored.
    let columns =
        w.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'surveys'");
    assert!(columns.iter().all(|c| c["column_name"] != "commento"));
    let all = run_ok(&[
        "query",
        "--format",
        "csv",
        "--warehouse",
        s(&w.path),
        "SELECT * FROM surveys",
    ]);
    assert!(!all.contains("ottimo") && !all.contains("attesa"));
}

#[test]
fn a_later_export_updates_a_request_and_keeps_its_history() {
    let w = warehouse();
    let monday = w.requests_file(
        "monday.csv",
        "U1,suap,online,2018-03-01T10:00:00+01:00,,pending,spid,,,\nU2,suap,pec,2018-03-01T11:00:00+01:00,,pending,,,,\n",
    );
    let tuesday = w.requests_file(
        "tuesday.csv",
        "U1,suap,online,2018-03-01T10:00:00+01:00,2018-03-02T09:00:00+01:00,completed,spid,,,9\nU2,suap,pec,2018-03-01T11:00:00+01:00,,pending,,,,\n",
    );
    w.ingest(&[s(&monday)]);
    let second = w.ingest(&[s(&tuesday)]);
    assert_eq!(second["rows_updated"], 1);
    assert_eq!(second["rows_duplicate"], 1);
    let rows = w.query("SELECT request_id, status FROM requests ORDER BY 1");
    assert_eq!(rows.len(), 2, "one current version per request");
    assert_eq!(rows[0]["status"], "completed");
    let history = w.query("SELECT request_id, status, superseded_in FROM requests_history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["status"], "pending");
    assert_eq!(history[0]["superseded_in"], "2");
    // The KPI counts each request once: 1 online of 2.
    let kpi = csv_rows(&run_ok(&[
        "kpi",
        "online_share",
        "--format",
        "csv",
        "--warehouse",
        s(&w.path),
    ]));
    assert_eq!(kpi[0]["denominator"], "2");

    // The same file again is recognised by its content and skipped.
    let again = w.ingest(&[s(&tuesday)]);
    assert!(
        again["files"][0]["skipped"]
            .as_str()
            .unwrap()
            .contains("commit 2")
    );
    assert_eq!(again["committed"], false);
    assert_eq!(w.count("requests"), 2);
}

/// A warehouse whose commit records name files by SHA-256 (as civica did before BLAKE3)
/// still opens and takes new ingests; a file ingested then and given again is read again, and
/// its rows count as duplicates instead of being stored twice.
#[test]
fn a_warehouse_recorded_with_sha256_still_ingests() {
    let w = warehouse();
    let file = w.requests_file(
        "march.csv",
        "S1,suap,online,2018-03-01T10:00:00+01:00,,pending,spid,,,\nS2,suap,pec,2018-03-01T11:00:00+01:00,,pending,,,,\n",
    );
    w.ingest(&[s(&file)]);
    // The record as an earlier civica wrote it: each file's hash under `sha256`.
    let commits = w.path.join("_commits");
    let record = std::fs::read_dir(&commits)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains("\"blake3\""), "{text}");
    let sha256 = "0f".repeat(32);
    let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
    for list in ["/summary/files", "/ingested"] {
        for file in old.pointer_mut(list).unwrap().as_array_mut().unwrap() {
            let object = file.as_object_mut().unwrap();
            object.remove("blake3").unwrap();
            object.insert("sha256".into(), sha256.clone().into());
        }
    }
    std::fs::write(&record, serde_json::to_string_pretty(&old).unwrap()).unwrap();

    let again = w.ingest(&[s(&file)]);
    assert!(again["files"][0]["skipped"].is_null(), "{again}");
    assert_eq!(again["rows_duplicate"], 2, "{again}");
    assert_eq!(w.count("requests"), 2);
    // Recorded now by BLAKE3: the next time the file is recognised and skipped.
    let third = w.ingest(&[s(&file)]);
    assert!(third["files"][0]["skipped"].is_string(), "{third}");
}

/// A file is normally read once, its dialect taken from its first 64 KiB: when a byte that
/// is not UTF-8 comes later, the ingest starts again and reads the file as Windows-1252, so
/// that its text is stored right.
#[test]
fn a_file_that_stops_being_utf8_late_is_read_as_windows_1252() {
    let w = warehouse();
    let bytes = utf8_then_windows_1252("R");
    let file = w.file("late_latin1.csv", &bytes);
    let summary = w.ingest(&[s(&file)]);
    assert_eq!(summary["rows_accepted"], 2_001);
    let dialect = summary["files"][0]["dialect"].as_str().unwrap();
    assert!(dialect.contains("windows-1252"), "{dialect}");
    let late = w.query("SELECT service FROM requests WHERE request_id = 'R-LATE'");
    assert_eq!(late[0]["service"], "visite_forlì");
    // Nothing of the first attempt reached the commit: each row is stored once.
    assert_eq!(w.count("requests"), 2_001);
    // The content hash was computed on the way: the same file is recognised and skipped.
    let again = w.ingest(&[s(&file)]);
    assert!(again["files"][0]["skipped"].is_string(), "{again}");
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// What a warehouse holds of an ingest: the quarantined rows and the stored requests.
fn contents(
    w: &Warehouse,
) -> (
    Vec<[String; 3]>,
    Vec<std::collections::HashMap<String, String>>,
) {
    let quarantine = w
        .quarantine()
        .into_iter()
        .map(|r| [r["line"].clone(), r["field"].clone(), r["reason"].clone()])
        .collect();
    let stored = w.query(
        "SELECT request_id, service, channel, status, amount_eur, \
         CAST(submitted_at AS VARCHAR) AS t FROM requests ORDER BY request_id",
    );
    (quarantine, stored)
}

/// The municipal export, and a warehouse where it alone was ingested.
fn municipal_export_alone() -> (PathBuf, Warehouse) {
    let plain = fixtures().join("municipal_export.csv");
    let expected = warehouse();
    expected.ingest(&[s(&plain)]);
    (plain, expected)
}

/// 2,001 requests (ids `{prefix}0`…, and `{prefix}-LATE`) whose text is ASCII for more than
/// 64 KiB, then has a Windows-1252 byte in its last row (`visite_forl\xec`).
fn utf8_then_windows_1252(prefix: &str) -> Vec<u8> {
    let mut bytes = b"request_id;service;channel;submitted_at;status\n".to_vec();
    for i in 0..2_000 {
        bytes.extend_from_slice(
            format!("{prefix}{i};certificati_anagrafici;online;05/09/2017 10:00;completed\n")
                .as_bytes(),
        );
    }
    assert!(bytes.len() > 64 * 1024);
    bytes.extend_from_slice(prefix.as_bytes());
    bytes.extend_from_slice(b"-LATE;visite_forl\xec;sportello;05/09/2017 11:00;completed\n");
    bytes
}

/// Ingests `file`, a packed copy of `tests/fixtures/municipal_export.csv`, into `w`: it gives
/// the figures checked by hand for that export and what `expected` holds of it, its dialect
/// says how it was packed, and the file as stored is recognised the next time.
fn gives_the_municipal_export(w: &Warehouse, file: &Path, packing: &str, expected: &Warehouse) {
    let summary = w.ingest(&[s(file)]);
    has_the_municipal_export_counts(&summary);
    let dialect = summary["files"][0]["dialect"].as_str().unwrap();
    assert!(
        dialect.starts_with(packing) && dialect.contains("windows-1252"),
        "{dialect}"
    );
    assert_eq!(contents(w), contents(expected));
    let again = w.ingest(&[s(file)]);
    assert!(again["files"][0]["skipped"].is_string(), "{again}");
}

/// A check reads and judges everything as an ingest would, lists the rows it would
/// quarantine, and commits nothing: the same file then ingests as if never seen.
#[test]
fn a_check_reports_what_an_ingest_would_do_and_commits_nothing() {
    let w = warehouse();
    let file = fixtures().join("municipal_export.csv");
    let check = w.ingest(&["--check", s(&file)]);
    has_the_municipal_export_counts(&check);
    assert_eq!(check["committed"], false);
    assert_eq!(check["commit"], 0);

    let strict = run(&w.ingest_args(&["--check", "--fail-on-quarantine", s(&file)]));
    assert_eq!(strict.status.code(), Some(2));

    let summary = w.ingest(&[s(&file)]);
    assert!(summary["files"][0]["skipped"].is_null(), "{summary}");
    assert_eq!(summary["commit"], 1);
    let listed: Vec<(String, String, String)> = check["refused_sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].to_string(),
                r["field"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let stored: Vec<(String, String, String)> = w
        .quarantine()
        .into_iter()
        .map(|r| (r["line"].clone(), r["field"].clone(), r["reason"].clone()))
        .collect();
    assert_eq!(listed, stored);
}

/// A compressed export gives what the same export gives uncompressed (whose figures are
/// checked by hand above): the same rows, the same quarantine lines.
#[test]
fn a_gzip_compressed_export_ingests_as_its_text() {
    let (plain, expected) = municipal_export_alone();

    let w = warehouse();
    let file = w.file(
        "municipal_export.csv.gz",
        &gzipped(&std::fs::read(&plain).unwrap()),
    );
    gives_the_municipal_export(&w, &file, "gzip;", &expected);

    // A compressed file whose text stops being UTF-8 after its first 64 KiB.
    let bytes = utf8_then_windows_1252("G");
    let late = w.file("late_latin1.csv.gz", &gzipped(&bytes));
    let summary = w.ingest(&[s(&late)]);
    assert_eq!(summary["rows_accepted"], 2_001, "{summary}");
    let row = w.query("SELECT service FROM requests WHERE request_id = 'G-LATE'");
    assert_eq!(row[0]["service"], "visite_forlì");
}

/// An archive holding the export (and a note) gives what the export gives by itself.
#[test]
fn a_zip_archive_holding_an_export_ingests_as_that_export() {
    use std::io::Write;
    let (plain, expected) = municipal_export_alone();

    let w = warehouse();
    let path = w.dir.path().join("estrazione.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("LEGGIMI.txt", options).unwrap();
    zip.write_all(b"Estrazione delle pratiche").unwrap();
    zip.start_file("estrazione/pratiche.csv", options).unwrap();
    zip.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    zip.finish().unwrap();

    gives_the_municipal_export(&w, &path, "zip member `estrazione/pratiche.csv`", &expected);
}

/// A web page saved as a spreadsheet (an HTML table in a `.xls` file, as many back offices
/// export "to Excel"), in Windows-1252 with a title row where the CSV has Excel's `sep=;`
/// line: row *n* of the table is line *n* of the CSV, so it gives what the CSV gives, with
/// the same quarantine lines.
#[test]
fn a_web_page_saved_as_a_spreadsheet_ingests_as_its_table() {
    let (plain, expected) = municipal_export_alone();
    let csv = std::fs::read(&plain).unwrap();
    let (text, _, _) = encoding_rs::WINDOWS_1252.decode(&csv);
    let escape = |cell: &str| {
        cell.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut page = String::from(
        "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; \
         charset=windows-1252\"><style>td { mso-number-format: \"\\@\"; }</style></head>\n\
         <body><table border=\"1\">\n",
    );
    for (i, line) in text.lines().enumerate() {
        page.push_str("<tr>");
        if i == 0 {
            // The `sep=;` line of the CSV: a title row, spanning the table.
            page.push_str("<td colspan=\"13\"><b>Estrazione pratiche</b></td>");
        } else {
            for cell in line.split(';') {
                let tag = if i == 1 { "th" } else { "td" };
                page.push_str(&format!("<{tag}>{}</{tag}>", escape(cell)));
            }
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table></body></html>\n");
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&page);
    assert!(!unmappable);

    let w = warehouse();
    let file = w.file("estrazione_pratiche.xls", &bytes);
    let summary = w.ingest(&[s(&file)]);
    has_the_municipal_export_counts(&summary);
    let dialect = summary["files"][0]["dialect"].as_str().unwrap();
    assert!(
        dialect.starts_with("HTML table;") && dialect.contains("comma"),
        "{dialect}"
    );
    assert_eq!(contents(&w), contents(&expected));
    let again = w.ingest(&[s(&file)]);
    assert!(again["files"][0]["skipped"].is_string(), "{again}");

    // A page with no table is refused, naming the file and what to do.
    let empty = w.file("vuoto.xls", b"<html><body><p>Nessun dato</p></body></html>");
    let refused = run(&w.ingest_args(&[s(&empty)]));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("vuoto.xls") && stderr.contains("no table"),
        "{stderr}"
    );
}

/// Excel's "Unicode text" export: UTF-16 with a byte order mark, tab-separated, CRLF.
#[test]
fn an_excel_unicode_text_export_ingests_without_a_profile() {
    let w = warehouse();
    let text = "Numero pratica\tServizio\tCanale\tData presentazione\tStato\r\n\
                P1\tvisite_forlì\tOnline\t05/09/2017 10:22\tConclusa\r\n\
                P2\trefezione_scolastica\tSportello\t05/09/2017 11:00\tIn corso\r\n";
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let file = w.file("export.txt", &bytes);
    let summary = w.ingest(&[s(&file)]);
    assert_eq!(summary["rows_accepted"], 2, "{summary}");
    let dialect = summary["files"][0]["dialect"].as_str().unwrap();
    assert!(
        dialect.contains("utf-16le") && dialect.contains("'\\t'"),
        "{dialect}"
    );
    let rows = w.query("SELECT request_id, service, channel, status FROM requests ORDER BY 1");
    assert_eq!(rows[0]["service"], "visite_forlì");
    assert_eq!(
        (rows[0]["channel"].as_str(), rows[0]["status"].as_str()),
        ("online", "completed")
    );
    assert_eq!(
        (rows[1]["channel"].as_str(), rows[1]["status"].as_str()),
        ("sportello", "pending")
    );
}

#[test]
fn unknown_service_codes_are_kept_and_listed() {
    let w = warehouse();
    let file = w.file(
        "new_service.csv",
        b"request_id,service,channel,submitted_at,status\nN1,bonus_bici,online,2018-05-02T10:00:00+02:00,completed\n",
    );
    let summary = w.ingest(&[s(&file)]);
    assert_eq!(summary["rows_accepted"], 1);
    let warnings = summary["warnings"].to_string();
    assert!(warnings.contains("bonus_bici"), "{warnings}");
    let area = csv_rows(&run_ok(&[
        "kpi",
        "requests",
        "--by",
        "area",
        "--format",
        "csv",
        "--warehouse",
        s(&w.path),
    ]));
    assert_eq!(area[0]["area"], "uncatalogued");
}

#[test]
fn strict_mode_commits_nothing_when_a_row_is_bad() {
    let w = warehouse();
    let out = run(&[
        "ingest",
        "--fail-on-quarantine",
        "--warehouse",
        s(&w.path),
        "--key-file",
        s(&w.key),
        s(&fixtures().join("municipal_export.csv")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("10 row(s) would be quarantined"));
    assert_eq!(w.count("requests"), 0);
    assert_eq!(w.count("quarantine"), 0);
}

#[test]
fn raw_identifiers_never_reach_the_warehouse() {
    let w = warehouse();
    let files = [
        fixtures().join("municipal_export.csv"),
        fixtures().join("requests_small.csv"),
    ];
    let out = civica()
        .args(["ingest", "--warehouse", s(&w.path), "--key-file", s(&w.key)])
        .args(files.iter().map(|f| s(f)))
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut texts = vec![String::from_utf8_lossy(&out.stderr).into_owned()];
    // Every table, decoded, and every other file the warehouse holds.
    for table in ["requests", "requests_history", "surveys", "quarantine"] {
        texts.push(run_ok(&[
            "query",
            "--format",
            "csv",
            "--warehouse",
            s(&w.path),
            &format!("SELECT * FROM {table}"),
        ]));
    }
    for file in walk(&w.path) {
        if file.extension().is_none_or(|e| e != "parquet") {
            texts.push(String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned());
        }
    }
    for text in &texts {
        for token in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            let b = token.as_bytes();
            let shaped = b.len() == 16
                && b[..6].iter().all(u8::is_ascii_alphabetic)
                && b[6..].iter().filter(|c| c.is_ascii_digit()).count() >= 3;
            assert!(!shaped, "a codice fiscale leaked: {token}");
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_symlink() {
            continue;
        }
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn kill_nine_at_any_moment_leaves_the_warehouse_whole() {
    let root = tempfile::tempdir().unwrap();
    let sample = root.path().join("sample");
    run_ok(&[
        "generate",
        "--out",
        s(&sample),
        "--scale",
        "0.2",
        "--seed",
        "11",
    ]);
    let file = sample.join("requests.csv");
    let key = root.path().join("key");

    let clean = root.path().join("clean");
    run_ok(&[
        "ingest",
        "--warehouse",
        s(&clean),
        "--key-file",
        s(&key),
        s(&file),
    ]);
    let count = |w: &Path| -> u64 {
        csv_rows(&run_ok(&[
            "query",
            "--format",
            "csv",
            "--warehouse",
            s(w),
            "SELECT count(*) AS n, count(DISTINCT request_id) AS d FROM requests",
        ]))
        .first()
        .map(|r| {
            assert_eq!(r["n"], r["d"], "never doubled");
            r["n"].parse().unwrap()
        })
        .unwrap()
    };
    let expected = count(&clean);
    assert!(expected > 50_000);

    // Time a full run, then kill runs at spread-out moments within it.
    let warehouse = root.path().join("killed");
    let started = Instant::now();
    run_ok(&[
        "ingest",
        "--warehouse",
        s(&root.path().join("timing")),
        "--key-file",
        s(&key),
        s(&file),
    ]);
    let full = started.elapsed();
    for fraction in [0.1, 0.35, 0.6, 0.8, 0.95] {
        let mut child = civica()
            .args([
                "ingest",
                "--warehouse",
                s(&warehouse),
                "--key-file",
                s(&key),
                s(&file),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(fraction).min(Duration::from_secs(60)));
        let _ = child.kill();
        let _ = child.wait();
        let n = count(&warehouse);
        assert!(
            n == 0 || n == expected,
            "after a kill at {fraction}: {n} rows, not 0 nor {expected}"
        );
    }
    // Running the command again finishes the job (or finds it done).
    run_ok(&[
        "ingest",
        "--warehouse",
        s(&warehouse),
        "--key-file",
        s(&key),
        s(&file),
    ]);
    assert_eq!(count(&warehouse), expected);
}

#[test]
fn compaction_merges_small_files_and_changes_no_row() {
    let w = warehouse();
    let sample = w.dir.path().join("sample");
    run_ok(&[
        "generate",
        "--out",
        s(&sample),
        "--scale",
        "0.02",
        "--seed",
        "3",
    ]);
    let text = std::fs::read_to_string(sample.join("requests.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.collect();
    // Three nightly exports, each a third of the rows.
    for (i, chunk) in body.chunks(body.len() / 3 + 1).enumerate() {
        let file = w.file(
            &format!("night{i}.csv"),
            format!("{header}\n{}\n", chunk.join("\n")).as_bytes(),
        );
        w.ingest(&[s(&file)]);
    }
    let before = w.query("SELECT service, year, count(*) AS n, sum(CAST(round(amount_eur * 100) AS BIGINT)) AS cents FROM requests GROUP BY 1, 2 ORDER BY 1, 2");
    let summary: serde_json::Value =
        serde_json::from_str(&run_ok(&["compact", "--warehouse", s(&w.path)])).unwrap();
    assert_eq!(summary["committed"], true);
    assert!(
        summary["files_after"].as_u64() < summary["files_before"].as_u64(),
        "{summary}"
    );
    let after = w.query("SELECT service, year, count(*) AS n, sum(CAST(round(amount_eur * 100) AS BIGINT)) AS cents FROM requests GROUP BY 1, 2 ORDER BY 1, 2");
    assert_eq!(before, after);
    let partitions = std::fs::read_dir(w.path.join("requests")).unwrap().count();
    let files = walk(
        &w.path
            .join("_snapshots")
            .join(format!("{:06}", summary["commit"].as_u64().unwrap()))
            .join("requests"),
    )
    .len();
    assert_eq!(files, partitions, "one file per partition");
}

/// Regression: `quarantine --ingest N` found nothing, because an equality on the partition
/// column `ingest` looked for the folder `ingest=N` while the folders are zero-padded.
#[test]
fn quarantine_of_one_ingest_lists_that_ingests_rows() {
    let w = warehouse();
    w.ingest(&[s(&fixtures().join("requests_small.csv"))]);
    w.ingest(&[s(&fixtures().join("upload_messy.csv"))]);
    let of = |ingest: &str| {
        csv_rows(&run_ok(&[
            "quarantine",
            "--format",
            "csv",
            "--ingest",
            ingest,
            "--warehouse",
            s(&w.path),
        ]))
    };
    // tests/fixtures/README.md: the first file has no refused row, the second one (line 4).
    assert!(of("1").is_empty());
    let second = of("2");
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0]["line"].as_str(), second[0]["field"].as_str()),
        ("4", "channel")
    );
    assert_eq!(second[0]["ingest"], "2");
}
