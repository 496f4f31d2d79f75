//! End-to-end tests of the command line on the hand-made fixture (tests/fixtures/README.md
//! shows how each expected figure was worked out).

mod support;

use support::{csv_rows, fixtures, run, run_ok, s};

struct Warehouse {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn warehouse() -> Warehouse {
    let dir = tempfile::tempdir().unwrap();
    Warehouse {
        path: dir.path().join("warehouse"),
        key: dir.path().join("pseudonym.key"),
        _dir: dir,
    }
}

/// `civica ingest --json` of `input` into `w`, as it ends.
fn try_ingest(w: &Warehouse, input: &std::path::Path) -> std::process::Output {
    run(&[
        "ingest",
        "--json",
        "--warehouse",
        s(&w.path),
        "--key-file",
        s(&w.key),
        s(input),
    ])
}

fn ingest(w: &Warehouse, file: &std::path::Path) -> serde_json::Value {
    let out = try_ingest(w, file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let n = |k: &str| {
        summary[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {summary}"))
    };
    assert_eq!(
        n("rows_read"),
        n("rows_accepted") + n("rows_quarantined") + n("rows_duplicate"),
        "nothing is lost: {summary}"
    );
    summary
}

fn assert_close(actual: &str, expected: f64) {
    let actual: f64 = actual.parse().expect("a number");
    assert!(
        (actual - expected).abs() < 1e-9,
        "{actual} differs from {expected}"
    );
}

#[test]
fn online_share_by_service_and_year_matches_hand_computation() {
    let w = warehouse();
    let summary = ingest(&w, &fixtures().join("requests_small.csv"));
    assert_eq!(summary["rows_read"], 20);
    assert_eq!(summary["rows_accepted"], 20);

    let csv = run_ok(&[
        "kpi",
        "online_share",
        "--by",
        "service,year",
        "--format",
        "csv",
        "--warehouse",
        s(&w.path),
    ]);
    assert!(
        csv.starts_with("service,year,value,numerator,denominator,"),
        "{csv}"
    );
    let rows = csv_rows(&csv);
    let expected = [
        ("certificati_anagrafici", "2017", 100.0 / 4.0, "1", "4"),
        ("refezione_scolastica", "2016", 100.0 / 3.0, "1", "3"),
        ("refezione_scolastica", "2017", 60.0, "3", "5"),
        ("suap", "2016", 50.0, "1", "2"),
        ("suap", "2017", 80.0, "4", "5"),
    ];
    assert_eq!(rows.len(), expected.len(), "{csv}");
    for (row, (service, year, value, num, den)) in rows.iter().zip(expected) {
        assert_eq!(row["service"], service);
        assert_eq!(row["year"], year);
        assert_close(&row["value"], value);
        assert_eq!(row["numerator"], num);
        assert_eq!(row["denominator"], den);
    }

    let by_year = csv_rows(&run_ok(&[
        "kpi",
        "online_share",
        "--by",
        "year",
        "--format",
        "csv",
        "--warehouse",
        s(&w.path),
    ]));
    assert_eq!(by_year.len(), 2);
    assert_close(&by_year[0]["value"], 40.0);
    assert_close(&by_year[1]["value"], 800.0 / 14.0);
}

#[test]
fn json_and_table_formats_carry_the_same_figure() {
    let w = warehouse();
    ingest(&w, &fixtures().join("requests_small.csv"));
    let json = run_ok(&[
        "kpi",
        "online_share",
        "--by",
        "service",
        "--year",
        "2017",
        "--format",
        "json",
        "--warehouse",
        s(&w.path),
    ]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let suap = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "suap")
        .expect("suap row");
    assert_eq!(suap["value"], 80.0);
    let table = run_ok(&[
        "kpi",
        "online_share",
        "--by",
        "service",
        "--year",
        "2017",
        "--warehouse",
        s(&w.path),
    ]);
    assert!(table.contains("suap") && table.contains("80.0"), "{table}");
}

#[test]
fn rows_already_stored_are_duplicates_not_stored_twice() {
    let w = warehouse();
    let file = fixtures().join("requests_small.csv");
    ingest(&w, &file);
    // A later export that repeats every row and adds one.
    let dir = tempfile::tempdir().unwrap();
    let later = dir.path().join("later.csv");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("CER-2017-5,certificati_anagrafici,online,2017-12-30T10:00:00+01:00,2017-12-30T10:01:00+01:00,completed,spid,,,\n");
    std::fs::write(&later, text).unwrap();
    let second = ingest(&w, &later);
    assert_eq!(second["rows_duplicate"], 20);
    assert_eq!(second["rows_accepted"], 1);
    let third = ingest(&w, &file);
    assert_eq!(
        third["rows_read"], 0,
        "an identical file is skipped: {third}"
    );
    let count = run_ok(&[
        "query",
        "--format",
        "csv",
        "--warehouse",
        s(&w.path),
        "SELECT count(*) AS n FROM requests",
    ]);
    assert_eq!(csv_rows(&count)[0]["n"], "21");
}

#[test]
fn raw_citizen_ids_never_reach_the_warehouse() {
    let w = warehouse();
    ingest(&w, &fixtures().join("requests_small.csv"));
    let keys = run_ok(&[
        "query",
        "--format",
        "csv",
        "--warehouse",
        s(&w.path),
        "SELECT DISTINCT citizen_key FROM requests WHERE citizen_key IS NOT NULL ORDER BY 1",
    ]);
    let keys = csv_rows(&keys);
    // Three distinct people in the fixture; BNCLRA85M41C573K appears twice.
    assert_eq!(keys.len(), 3);
    for row in &keys {
        assert_eq!(row["citizen_key"].len(), 32);
        assert!(!row["citizen_key"].contains("C573"));
    }
    let columns = run_ok(&[
        "query",
        "--format",
        "csv",
        "--warehouse",
        s(&w.path),
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'requests'",
    ]);
    assert!(!columns.contains("citizen_id"), "{columns}");
    assert!(columns.contains("year"), "{columns}");
}

#[test]
fn bad_rows_go_to_quarantine_with_file_line_and_field() {
    let w = warehouse();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    std::fs::write(
        &file,
        "request_id,service,channel,submitted_at,completed_at,status,auth_method,citizen_id,amount_eur,satisfaction\n\
         A1,suap,online,2017-05-02T16:45:00+02:00,,completed,spid,RSSMRA80A01C573Y,,9\n\
         A2,suap,fax,2017-05-02T16:45:00+02:00,,completed,spid,RSSMRA80A01C573Y,,9\n\
         A3,suap,online,2017-02-30T10:00:00+01:00,,completed,spid,,,\n\
         A4,suap,online,2017-05-02T16:45:00+02:00,,completed,spid,,,11\n\
         A1,suap,pec,2017-05-02T16:45:00+02:00,,completed,,,,\n\
         A5,suap,online\n",
    )
    .unwrap();
    let summary = ingest(&w, &file);
    assert_eq!(summary["rows_read"], 6);
    assert_eq!(summary["rows_accepted"], 1);
    assert_eq!(summary["rows_quarantined"], 5);

    let quarantine = csv_rows(&run_ok(&[
        "query",
        "--format",
        "csv",
        "--warehouse",
        s(&w.path),
        "SELECT line, field, reason, raw_line, source_file FROM quarantine ORDER BY line",
    ]));
    let got: Vec<(&str, &str)> = quarantine
        .iter()
        .map(|r| (r["line"].as_str(), r["field"].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("3", "channel"),
            ("4", "submitted_at"),
            ("5", "satisfaction"),
            ("6", "request_id"),
            ("7", "row"),
        ]
    );
    assert!(quarantine[0]["reason"].contains("`fax`"));
    assert!(
        quarantine[3]["reason"].contains("line 2"),
        "{:?}",
        quarantine[3]
    );
    assert!(quarantine[0]["source_file"].ends_with("bad.csv"));
    for row in &quarantine {
        assert!(
            !row["raw_line"].contains("RSSMRA80A01C573Y"),
            "identifiers are masked: {row:?}"
        );
    }
}

#[test]
fn a_file_without_required_columns_is_refused_by_name() {
    let w = warehouse();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.csv");
    std::fs::write(&file, "codice,servizio\n1,x\n").unwrap();
    let out = try_ingest(&w, &file);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong.csv") && err.contains("request_id"),
        "{err}"
    );
}

/// A missing file is named once, with what is wrong.
#[test]
fn an_unreadable_input_is_named_with_its_reason_once() {
    let w = warehouse();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let out = try_ingest(&w, &missing);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(s(&missing)), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// A drop folder stands for the files in it, hidden ones left out; an empty one is refused.
#[test]
fn a_directory_stands_for_the_files_in_it() {
    let w = warehouse();
    let drop = tempfile::tempdir().unwrap();
    let empty = try_ingest(&w, drop.path());
    assert!(!empty.status.success());
    let err = String::from_utf8_lossy(&empty.stderr);
    assert!(err.contains("holds no files"), "{err}");

    let header = "request_id,service,channel,submitted_at,status\n";
    for (name, row) in [
        ("b.csv", "B1,suap,online,2017-03-04 10:00,completed\n"),
        ("a.csv", "A1,suap,sportello,2017-03-04 11:00,pending\n"),
        (".partial.csv", "X1,suap,online,2017-03-04 12:00,pending\n"),
    ] {
        std::fs::write(drop.path().join(name), format!("{header}{row}")).unwrap();
    }
    std::fs::create_dir(drop.path().join("archive")).unwrap();
    let summary = ingest(&w, drop.path());
    let files: Vec<&str> = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].ends_with("a.csv") && files[1].ends_with("b.csv"),
        "{files:?}"
    );
    assert_eq!(summary["rows_accepted"], 2);
}

#[test]
fn generate_is_deterministic_per_seed() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let c = dir.path().join("c");
    for (out, seed) in [(&a, "5"), (&b, "5"), (&c, "6")] {
        run_ok(&[
            "generate",
            "--out",
            s(out),
            "--seed",
            seed,
            "--scale",
            "0.05",
        ]);
    }
    let read = |d: &std::path::Path| std::fs::read(d.join("requests.csv")).unwrap();
    assert_eq!(read(&a), read(&b));
    assert_ne!(read(&a), read(&c));
}

#[test]
fn unknown_kpi_and_dimension_are_named_in_the_error() {
    let w = warehouse();
    let out = run(&["kpi", "digital_rate", "--warehouse", s(&w.path)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("digital_rate"));
    let out = run(&[
        "kpi",
        "online_share",
        "--by",
        "colour",
        "--warehouse",
        s(&w.path),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
}
