//! The KPI catalogue end to end: every catalogue KPI agrees with hand-written SQL on the
//! hand-made fixture, breakdowns add up, periods and filters work, and analysts' SQL is
//! refused in every form that could write, read files or run away.

mod support;

use std::collections::HashMap;

use support::{csv_rows, run, run_ok, s};

type Rows = Vec<HashMap<String, String>>;

struct Fixture {
    _dir: tempfile::TempDir,
    warehouse: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = support::ingest_fixture(dir.path());
    Fixture {
        _dir: dir,
        warehouse,
    }
}

impl Fixture {
    fn kpi(&self, args: &[&str]) -> Rows {
        let mut all = vec!["kpi", "--format", "csv", "--warehouse", s(&self.warehouse)];
        all.extend_from_slice(args);
        csv_rows(&run_ok(&all))
    }

    fn sql(&self, sql: &str) -> Rows {
        csv_rows(&run_ok(&[
            "query",
            "--format",
            "csv",
            "--warehouse",
            s(&self.warehouse),
            sql,
        ]))
    }
}

fn close(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() < 1e-9,
        _ => a == b,
    }
}

#[test]
fn every_catalogue_kpi_equals_hand_written_sql() {
    let f = fixture();
    // For each KPI: the same figure by service, written independently in SQL.
    let cases: [(&str, &str); 7] = [
        (
            "online_share",
            "SELECT service, 100.0 * sum(CASE WHEN channel IN ('online','app') THEN 1 ELSE 0 END) / count(*) AS value \
             FROM requests WHERE status <> 'abandoned' GROUP BY service ORDER BY service",
        ),
        (
            "requests",
            "SELECT service, count(*) AS value FROM requests WHERE status <> 'abandoned' GROUP BY service ORDER BY service",
        ),
        (
            "completion_rate",
            "SELECT service, 100.0 * sum(CASE WHEN status IN ('completed','rejected') THEN 1 ELSE 0 END) / count(*) AS value \
             FROM requests WHERE status <> 'pending' GROUP BY service ORDER BY service",
        ),
        (
            "digital_identity_share",
            "SELECT service, 100.0 * sum(CASE WHEN auth_method IN ('spid','cie','federa','cns','eidas') THEN 1 ELSE 0 END) / count(*) AS value \
             FROM requests WHERE status <> 'abandoned' AND channel IN ('online','app') GROUP BY service ORDER BY service",
        ),
        (
            "online_payment_share",
            "SELECT service, 100.0 * sum(CASE WHEN channel IN ('online','app') THEN amount_eur ELSE 0 END) / sum(amount_eur) AS value \
             FROM requests WHERE status = 'completed' AND amount_eur IS NOT NULL GROUP BY service ORDER BY service",
        ),
        (
            "satisfaction_mean",
            "SELECT service, avg(CAST(satisfaction AS DOUBLE)) AS value FROM requests \
             WHERE satisfaction IS NOT NULL GROUP BY service ORDER BY service",
        ),
        (
            "median_days_to_complete",
            "SELECT service, median((date_part('epoch', completed_at) - date_part('epoch', submitted_at)) / 86400.0) AS value \
             FROM requests WHERE status = 'completed' AND completed_at IS NOT NULL GROUP BY service ORDER BY service",
        ),
    ];
    for (id, sql) in cases {
        let ours = f.kpi(&[id, "--by", "service"]);
        let theirs = f.sql(sql);
        assert_eq!(ours.len(), theirs.len(), "{id}: {ours:?} vs {theirs:?}");
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a["service"], b["service"], "{id}");
            assert!(
                close(&a["value"], &b["value"]),
                "{id} {}: {} vs {}",
                a["service"],
                a["value"],
                b["value"]
            );
        }
    }
    // Hand-checked values (tests/fixtures/README.md): suap 2017+2016 completion 5 of 5
    // concluded among 6 non-pending; satisfaction of refezione (9, 8, 10, 6) = 8.25.
    let satisfaction = f.kpi(&["satisfaction_mean", "--by", "service"]);
    let refezione = satisfaction
        .iter()
        .find(|r| r["service"] == "refezione_scolastica")
        .unwrap();
    assert!(close(&refezione["value"], "8.25"));
}

#[test]
fn breakdowns_add_up_to_the_total() {
    let f = fixture();
    let total = f.kpi(&["requests"]);
    let by_channel = f.kpi(&["requests", "--by", "channel"]);
    let by_service = f.kpi(&["requests", "--by", "service"]);
    let sum = |rows: &Rows| {
        rows.iter()
            .map(|r| r["n"].parse::<u64>().unwrap())
            .sum::<u64>()
    };
    assert_eq!(total[0]["n"], "19");
    assert_eq!(sum(&by_channel), 19);
    assert_eq!(sum(&by_service), 19);
    // The per-service share equals numerator / denominator of the same row.
    for row in f.kpi(&["online_share", "--by", "service,year"]) {
        let num: f64 = row["numerator"].parse().unwrap();
        let den: f64 = row["denominator"].parse().unwrap();
        assert!(close(&row["value"], &(100.0 * num / den).to_string()));
    }
}

#[test]
fn periods_areas_and_filters() {
    let f = fixture();
    // School year: refezione's June–September 2017 sign-ups span 2016/17 and 2017/18.
    let school = f.kpi(&[
        "requests",
        "--by",
        "service,school_year",
        "--service",
        "refezione_scolastica",
    ]);
    let years: Vec<(&str, &str)> = school
        .iter()
        .map(|r| (r["school_year"].as_str(), r["n"].as_str()))
        .collect();
    // 2016 rows (June, June, July) → 2015/16; 2017: June×3, July (one abandoned) → 2016/17,
    // September → 2017/18.
    assert_eq!(
        years,
        [("2015/16", "3"), ("2016/17", "4"), ("2017/18", "1")]
    );

    let months = f.kpi(&[
        "requests",
        "--by",
        "month",
        "--year",
        "2017",
        "--service",
        "certificati_anagrafici",
    ]);
    let months: Vec<&str> = months.iter().map(|r| r["month"].as_str()).collect();
    // CER-2017-1 at 00:30 on 1 January in Cesena is January 2017, not December 2016.
    assert_eq!(months, ["2017-01", "2017-02", "2017-10", "2017-12"]);

    let areas = f.kpi(&["requests", "--by", "area"]);
    let areas: Vec<(&str, &str)> = areas
        .iter()
        .map(|r| (r["area"].as_str(), r["n"].as_str()))
        .collect();
    assert_eq!(
        areas,
        [("business", "7"), ("registry", "4"), ("school", "8")]
    );

    let dated = f.kpi(&["requests", "--from", "2017-06-01", "--to", "2017-06-30"]);
    assert_eq!(dated[0]["n"], "3", "REF-2017-1, -2 and -3 in June 2017");

    // Days that are not whole months are read from the raw rows, by local date.
    let days = |from: &str, to: &str| {
        let rows = f.kpi(&["requests", "--scan", "raw", "--from", from, "--to", to]);
        rows.first().map(|r| r["n"].clone()).unwrap_or_default()
    };
    // CER-2017-1 was at 00:30 on 1 January 2017 in Cesena, 23:30 on 31 December in UTC.
    assert_eq!(days("2017-01-01", "2017-01-01"), "1", "CER-2017-1");
    assert_eq!(days("2016-12-20", "2016-12-31"), "1", "SUA-2016-2 alone");
    assert_eq!(
        days("2017-06-06", "2017-07-03"),
        "3",
        "REF-2017-2, -3 and -4, not REF-2017-1 (5 June, 20:00)"
    );
    // Analysts' SQL has the same local months.
    let months = f.sql(
        "SELECT request_id, date_part('year', city_month(submitted_at)) AS y, \
         date_part('month', city_month(submitted_at)) AS m FROM requests \
         WHERE request_id IN ('CER-2017-1', 'SUA-2016-2') ORDER BY request_id",
    );
    let months: Vec<(&str, &str, &str)> = months
        .iter()
        .map(|r| (r["request_id"].as_str(), r["y"].as_str(), r["m"].as_str()))
        .collect();
    assert_eq!(
        months,
        [("CER-2017-1", "2017", "1"), ("SUA-2016-2", "2016", "12")]
    );
    // The days on which summer time began and ended.
    assert_eq!(days("2017-03-26", "2017-03-26"), "1", "SUA-2017-2");
    assert_eq!(
        days("2017-10-29", "2017-10-29"),
        "2",
        "SUA-2017-5, CER-2017-3"
    );
    assert_eq!(days("2017-03-25", "2017-03-27"), "1", "SUA-2017-2");

    let list = run_ok(&["kpi", "--list"]);
    for id in [
        "online_share",
        "median_days_to_complete",
        "online_payment_share",
    ] {
        assert!(list.contains(id), "{list}");
    }
    let err = run(&[
        "kpi",
        "online_share",
        "--by",
        "citizen_key",
        "--warehouse",
        s(&f.warehouse),
    ]);
    assert!(!err.status.success());
}

#[test]
fn refused_sql_forms() {
    let f = fixture();
    for sql in [
        "CREATE TABLE t AS SELECT 1",
        "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'",
        "CREATE VIEW v AS SELECT 1",
        "DROP TABLE requests",
        "INSERT INTO requests SELECT * FROM requests",
        "COPY (SELECT 1) TO '/tmp/civica-escape.csv'",
        "SET datafusion.execution.batch_size = 1",
        "SELECT 1; SELECT 2",
        "SELECT * FROM '/etc/passwd'",
        "UPDATE requests SET status = 'completed'",
        "DELETE FROM requests",
        "EXPLAIN CREATE TABLE t AS SELECT 1",
        "EXPLAIN COPY (SELECT 1) TO '/tmp/civica-escape.csv'",
    ] {
        for audience in [None, Some("--public")] {
            let mut args = vec!["query", "--warehouse", s(&f.warehouse)];
            args.extend(audience);
            args.push(sql);
            let out = run(&args);
            assert!(!out.status.success(), "{sql} was allowed ({audience:?})");
            assert!(
                !String::from_utf8_lossy(&out.stderr).is_empty(),
                "{sql}: a message"
            );
        }
    }
    assert!(
        !std::path::Path::new("/tmp/civica-escape.csv").exists(),
        "COPY wrote a file"
    );
    // Read queries of every form pass.
    for sql in [
        "SELECT count(*) FROM requests",
        "WITH x AS (SELECT service FROM requests) SELECT count(*) FROM x",
        "EXPLAIN SELECT count(*) FROM requests",
    ] {
        run_ok(&["query", "--warehouse", s(&f.warehouse), sql]);
    }
}

#[test]
fn public_sql_reads_only_disclosure_controlled_kpi_views() {
    let f = fixture();
    let public = |sql: &str| {
        run(&[
            "query",
            "--public",
            "--format",
            "csv",
            "--warehouse",
            s(&f.warehouse),
            sql,
        ])
    };
    // Full tables are for staff; the message says what the public may read.
    for sql in [
        "SELECT count(*) FROM requests",
        "SELECT * FROM requests_rollup",
        "SELECT * FROM quarantine",
        "SELECT * FROM information_schema.tables",
        "WITH x AS (SELECT * FROM surveys) SELECT count(*) FROM x",
        "SELECT * FROM kpi_online_share JOIN requests USING (service)",
    ] {
        let out = public(sql);
        assert!(!out.status.success(), "{sql} was allowed to the public");
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(
            message.contains("not available to the public") && message.contains("kpi_online_share"),
            "{sql}: {message}"
        );
    }

    // A KPI view is the public KPI by service and year, small cells suppressed. The fixture's
    // cells have 2 to 5 requests (tests/fixtures/README.md), so most are withheld.
    let out = public("SELECT * FROM kpi_online_share ORDER BY service, year");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view = csv_rows(&String::from_utf8_lossy(&out.stdout));
    let published = csv_rows(&run_ok(&[
        "kpi",
        "online_share",
        "--public",
        "--by",
        "service,year",
        "--format",
        "csv",
        "--warehouse",
        s(&f.warehouse),
    ]));
    assert_eq!(view, published);
    let suppressed: Vec<(&str, &str)> = view
        .iter()
        .filter(|r| r["flag"] == "suppressed")
        .map(|r| (r["service"].as_str(), r["year"].as_str()))
        .collect();
    // certificati 2017 (4), refezione 2016 (3) and suap 2016 (2) are below 5. refezione 2017
    // and suap 2017 (5 each) go too: each is the only other year of a service with a
    // withheld year, which the service's total would otherwise give away.
    assert_eq!(
        suppressed,
        [
            ("certificati_anagrafici", "2017"),
            ("refezione_scolastica", "2016"),
            ("refezione_scolastica", "2017"),
            ("suap", "2016"),
            ("suap", "2017"),
        ]
    );
    for row in &view {
        if row["flag"] == "suppressed" {
            assert_eq!(row["value"], "", "the marker: an empty value");
            assert_eq!(row["n"], "");
        } else {
            assert!(row["n"].parse::<u64>().unwrap() >= 5, "{row:?}");
        }
    }
    // Aggregating a view is fine; it cannot bring back what was withheld.
    let out = public("SELECT count(*) AS cells, count(value) AS values FROM kpi_satisfaction_mean");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
