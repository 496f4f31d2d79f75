//! Roll-ups give exactly the raw scan's answers: for every catalogue KPI, breakdown and filter
//! they cover, cell for cell; a missing or stale roll-up falls back to the raw scan; and the
//! breakdowns read from roll-ups still add up to the totals.
//!
//! The warehouse is the synthetic sample city (requests) plus a survey log written here, both
//! ingested by the real binary, which materialises the roll-ups after its commit. The raw
//! scan is the reference: it is the engine's pre-existing path, checked against hand-written
//! SQL and hand-computed figures in `tests/kpi.rs`.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use civica_analytics::{Audience, Dimension, Engine, Flag, KpiQuery, KpiRow, Scan};
use civica_ingest::Layout;
use support::{csv_rows, run, run_ok, s};

const SERVICES: [&str; 6] = [
    "refezione_scolastica",
    "suap",
    "certificati_anagrafici",
    "permessi_ztl",
    "tari",
    "segnalazioni_urp",
];
const CHANNELS: [&str; 4] = ["online", "app", "sportello", "email"];

/// Writes `n` survey responses from a fixed-seed generator. Times are spread over 2015–2018
/// in UTC, so many fall near midnight at the turn of a month, where the local (Europe/Rome)
/// month differs from the UTC one, and some in the hours of the DST changes.
fn write_surveys(path: &Path, n: usize) {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        // xorshift64*: deterministic, good enough to spread values.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let start = chrono::NaiveDate::from_ymd_opt(2015, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "response_id,service,channel,responded_at,score").unwrap();
    for i in 0..n {
        let day = next() % (4 * 365);
        // Half the responses in the two hours around midnight UTC.
        let seconds = if next() % 2 == 0 {
            (next() % 7200) as i64 - 3600
        } else {
            (next() % 86_400) as i64
        };
        let at =
            start + chrono::Duration::days(day as i64) + chrono::Duration::seconds(seconds.max(0));
        let service = SERVICES[(next() % SERVICES.len() as u64) as usize];
        let channel = CHANNELS[(next() % CHANNELS.len() as u64) as usize];
        // Skewed towards high scores, as real surveys are.
        let score = 10 - (next() % 10).min(next() % 10);
        writeln!(
            out,
            "S{i:06},{service},{channel},{},{score}",
            at.format("%Y-%m-%dT%H:%M:%SZ")
        )
        .unwrap();
    }
}

/// The sample city (a quarter of the default volume) and 4,000 survey responses, ingested
/// once for all tests of this file.
fn city() -> &'static PathBuf {
    static WAREHOUSE: OnceLock<PathBuf> = OnceLock::new();
    WAREHOUSE.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rollup-city");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let sample = root.join("sample");
        run_ok(&["generate", "--out", s(&sample), "--scale", "0.25"]);
        let surveys = root.join("surveys.csv");
        write_surveys(&surveys, 4000);
        let warehouse = root.join("warehouse");
        run_ok(&[
            "ingest",
            "--warehouse",
            s(&warehouse),
            "--key-file",
            s(&root.join("key")),
            s(&sample.join("requests.csv")),
            s(&surveys),
        ]);
        warehouse
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn same_number(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        (None, None) => true,
        _ => false,
    }
}

/// Cell for cell: the same dimensions, counts and flags; values equal to 1e-9 relative.
fn assert_same_rows(what: &str, raw: &[KpiRow], rollup: &[KpiRow]) {
    assert_eq!(raw.len(), rollup.len(), "{what}: number of cells");
    for (a, b) in raw.iter().zip(rollup) {
        assert_eq!(a.dims, b.dims, "{what}");
        assert_eq!(a.n, b.n, "{what} {:?}: n", a.dims);
        assert_eq!(a.flag, b.flag, "{what} {:?}: flag", a.dims);
        for (name, x, y) in [
            ("value", a.value, b.value),
            ("numerator", a.numerator, b.numerator),
            ("denominator", a.denominator, b.denominator),
            ("ci_low", a.ci_low, b.ci_low),
            ("ci_high", a.ci_high, b.ci_high),
        ] {
            assert!(
                same_number(x, y),
                "{what} {:?}: {name} raw {x:?}, roll-up {y:?}",
                a.dims
            );
        }
        // A change is a difference of two values, each equal to 1e-9 relative: its error is
        // bounded by theirs, not by its own (possibly zero) size.
        let scale = a.value.unwrap_or(0.0).abs().max(1.0);
        match (a.change, b.change) {
            (Some(x), Some(y)) => assert!(
                (x - y).abs() <= 2e-9 * scale,
                "{what} {:?}: change raw {x}, roll-up {y}",
                a.dims
            ),
            (x, y) => assert_eq!(x, y, "{what} {:?}: change", a.dims),
        }
    }
}

/// The breakdowns of the equality test: each dimension alone and the usual pairs.
fn breakdowns() -> Vec<Vec<Dimension>> {
    use Dimension::*;
    let mut all: Vec<Vec<Dimension>> = vec![vec![]];
    all.extend(Dimension::ALL.iter().map(|d| vec![*d]));
    all.extend([
        vec![Service, Year],
        vec![Service, Month],
        vec![Channel, Year],
        vec![Area, SchoolYear],
        vec![Service, Quarter],
        vec![AuthMethod, Year],
    ]);
    all
}

/// Filters the roll-ups cover: none, years, services, areas, channels, whole months.
fn filtered(query: KpiQuery) -> Vec<(&'static str, KpiQuery)> {
    let month_range = {
        let mut q = query.clone();
        q.from = chrono::NaiveDate::from_ymd_opt(2016, 3, 1);
        q.to = chrono::NaiveDate::from_ymd_opt(2017, 8, 31);
        q
    };
    vec![
        ("no filter", query.clone()),
        ("year 2017", query.clone().with_years(vec![2017])),
        (
            "two services",
            query
                .clone()
                .with_lists(Some("refezione_scolastica,suap"), None, None),
        ),
        (
            "area school",
            query.clone().with_lists(None, Some("school"), None),
        ),
        (
            "digital channels",
            query.clone().with_lists(None, None, Some("online,app")),
        ),
        ("March 2016 to August 2017", month_range),
    ]
}

#[test]
fn rollups_are_materialised_at_commit() {
    let warehouse = city();
    let dir = warehouse.join("_rollups").join("000001");
    for table in ["requests_rollup", "surveys_rollup"] {
        assert!(
            dir.join(format!("{table}.parquet")).is_file(),
            "{table} of commit 1"
        );
    }
    // Registered for analysts' SQL, and much smaller than the table they summarise.
    let rows = |sql: &str| -> u64 {
        csv_rows(&run_ok(&[
            "query",
            "--format",
            "csv",
            "--warehouse",
            s(warehouse),
            sql,
        ]))[0]["n"]
            .parse()
            .unwrap()
    };
    let requests = rows("SELECT count(*) AS n FROM requests");
    let summarised = rows("SELECT sum(n) AS n FROM requests_rollup");
    let cells = rows("SELECT count(*) AS n FROM requests_rollup");
    assert_eq!(summarised, requests);
    assert!(cells * 10 < requests, "{cells} roll-up rows for {requests}");
    assert_eq!(rows("SELECT sum(n) AS n FROM surveys_rollup"), 4000);
}

#[test]
fn every_kpi_reads_the_same_from_rollups_as_from_the_raw_scan() {
    let engine = Engine::new(Layout::new(city()));
    let rt = runtime();
    let mut compared = 0;
    for def in &engine.catalogue().kpis {
        for by in breakdowns() {
            let allowed = by
                .iter()
                .all(|d| d.is_period() || def.dimensions.iter().any(|a| a == d.as_str()));
            if !allowed {
                continue;
            }
            // Every filter with the first breakdowns; the others unfiltered and by year.
            let base = KpiQuery::new(&def.id)
                .by(by.clone())
                .for_audience(Audience::Internal);
            let mut queries = filtered(base.clone());
            if by.len() == 1 && by[0] != Dimension::Service && by[0] != Dimension::Month {
                queries.truncate(2);
            }
            for (filter, query) in queries {
                let what = format!("{} by {by:?}, {filter}", def.id);
                let raw = rt
                    .block_on(engine.kpi(&query.clone().with_scan(Scan::Raw)))
                    .unwrap();
                assert_eq!(raw.scan, Scan::Raw);
                // Again: the engine runs the plan it kept for this query and commit.
                let again = rt
                    .block_on(engine.kpi(&query.clone().with_scan(Scan::Raw)))
                    .unwrap();
                assert_same_rows(&format!("{what}, raw again"), &raw.rows, &again.rows);
                if def.id == "median_days_to_complete" {
                    // Not reducible to a roll-up: refused when forced, raw when automatic.
                    let err = rt
                        .block_on(engine.kpi(&query.clone().with_scan(Scan::Rollup)))
                        .unwrap_err();
                    assert!(err.to_string().contains("median"), "{err}");
                    let auto = rt.block_on(engine.kpi(&query)).unwrap();
                    assert_eq!(auto.scan, Scan::Raw);
                    assert_same_rows(&what, &raw.rows, &auto.rows);
                    continue;
                }
                let rollup = rt
                    .block_on(engine.kpi(&query.clone().with_scan(Scan::Rollup)))
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(rollup.scan, Scan::Rollup);
                assert!(!raw.rows.is_empty(), "{what}: the data has cells");
                assert_same_rows(&what, &raw.rows, &rollup.rows);
                // Automatic choice: the roll-ups, with the same answer (from the plan kept
                // by the query above: running a kept plan again gives the same cells).
                let auto = rt.block_on(engine.kpi(&query)).unwrap();
                assert_eq!(auto.scan, Scan::Rollup, "{what}");
                assert_same_rows(&format!("{what}, again"), &raw.rows, &auto.rows);
                compared += 1;
            }
        }
        // Public outputs: disclosure control on the same cells gives the same suppressions.
        let public = KpiQuery::new(&def.id).by(vec![Dimension::Service, Dimension::Month]);
        let raw = rt
            .block_on(engine.kpi(&public.clone().with_scan(Scan::Raw)))
            .unwrap();
        let auto = rt.block_on(engine.kpi(&public)).unwrap();
        assert_same_rows(&format!("{} public", def.id), &raw.rows, &auto.rows);
    }
    assert!(compared > 150, "only {compared} comparisons");
}

#[test]
fn queries_the_rollups_cannot_answer_exactly_are_scanned() {
    let engine = Engine::new(Layout::new(city()));
    let rt = runtime();
    // A date range that cuts a month: raw scan, automatically; refused when forced.
    let mut query = KpiQuery::new("online_share")
        .by(vec![Dimension::Service])
        .for_audience(Audience::Internal);
    query.from = chrono::NaiveDate::from_ymd_opt(2017, 3, 15);
    query.to = chrono::NaiveDate::from_ymd_opt(2017, 8, 31);
    let auto = rt.block_on(engine.kpi(&query)).unwrap();
    assert_eq!(auto.scan, Scan::Raw);
    let err = rt
        .block_on(engine.kpi(&query.clone().with_scan(Scan::Rollup)))
        .unwrap_err();
    assert!(err.to_string().contains("2017-03-15"), "{err}");
    let raw = rt
        .block_on(engine.kpi(&query.with_scan(Scan::Raw)))
        .unwrap();
    assert_same_rows("mid-month range", &raw.rows, &auto.rows);
}

#[test]
fn breakdowns_from_rollups_add_up_to_the_overview() {
    let engine = Engine::new(Layout::new(city()));
    let rt = runtime();
    let kpi = |id: &str, by: Vec<Dimension>| {
        let result = rt
            .block_on(
                engine.kpi(
                    &KpiQuery::new(id)
                        .by(by)
                        .for_audience(Audience::Internal)
                        .with_scan(Scan::Rollup),
                ),
            )
            .unwrap();
        assert!(result.rows.iter().all(|r| r.flag != Some(Flag::Suppressed)));
        result.rows
    };
    let total =
        |rows: &[KpiRow], f: fn(&KpiRow) -> Option<f64>| -> f64 { rows.iter().filter_map(f).sum() };
    for id in ["requests", "online_share", "satisfaction_mean"] {
        let overview = kpi(id, vec![]);
        assert_eq!(overview.len(), 1);
        let n = overview[0].n.unwrap();
        for dim in [Dimension::Channel, Dimension::Service, Dimension::Month] {
            let rows = kpi(id, vec![dim]);
            let sum_n: u64 = rows.iter().filter_map(|r| r.n).sum();
            assert_eq!(sum_n, n, "{id} by {dim}: counts add up to the total");
            if id != "requests" {
                assert_eq!(
                    total(&rows, |r| r.numerator),
                    overview[0].numerator.unwrap(),
                    "{id} by {dim}: numerators add up"
                );
            }
        }
        // Per-service figures by year equal the overview's figure by year, service by service.
        let by_year = kpi(id, vec![Dimension::Year]);
        let by_service_year = kpi(id, vec![Dimension::Service, Dimension::Year]);
        for year in &by_year {
            let cells: Vec<&KpiRow> = by_service_year
                .iter()
                .filter(|r| r.dims[1] == year.dims[0])
                .collect();
            let n: u64 = cells.iter().filter_map(|r| r.n).sum();
            assert_eq!(Some(n), year.n, "{id} {}", year.dims[0]);
        }
    }
}

/// Ingests `csv` text as a new commit of `warehouse`.
fn ingest_text(dir: &Path, warehouse: &Path, name: &str, csv: &str) {
    let path = dir.join(name);
    std::fs::write(&path, csv).unwrap();
    run_ok(&[
        "ingest",
        "--warehouse",
        s(warehouse),
        "--key-file",
        s(&dir.join("key")),
        s(&path),
    ]);
}

/// Ingests request rows of the canonical log (its header added here) as file `name`.
fn ingest_requests(dir: &Path, warehouse: &Path, name: &str, rows: &[&str]) {
    let mut csv = String::from(
        "request_id,service,channel,submitted_at,completed_at,status,auth_method,citizen_id,amount_eur,satisfaction\n",
    );
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    ingest_text(dir, warehouse, name, &csv);
}

fn requests_n(warehouse: &Path, scan: &str) -> std::process::Output {
    run(&[
        "kpi",
        "requests",
        "--scan",
        scan,
        "--format",
        "csv",
        "--warehouse",
        s(warehouse),
    ])
}

fn n_of(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    csv_rows(&String::from_utf8_lossy(&output.stdout))[0]["n"].clone()
}

#[test]
fn a_running_engine_answers_from_each_new_commit_and_its_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = support::ingest_fixture(dir.path());
    let engine = Engine::new(Layout::new(&warehouse));
    let rt = runtime();
    let query = KpiQuery::new("requests")
        .by(vec![Dimension::Service])
        .for_audience(Audience::Internal)
        .with_scan(Scan::Rollup);
    let suap = |result: &civica_analytics::KpiResult| {
        let row = result.rows.iter().find(|r| r.dims == ["suap"]).unwrap();
        row.n.unwrap()
    };
    let before = rt.block_on(engine.kpi(&query)).unwrap();
    assert_eq!(before.version, 1);
    let again = rt.block_on(engine.kpi(&query)).unwrap();
    assert_eq!(suap(&again), suap(&before));
    // Commit 2 adds two suap requests while the engine (and its kept plans) lives on.
    ingest_requests(
        dir.path(),
        &warehouse,
        "more.csv",
        &[
            "LIVE-1,suap,online,2018-01-10T10:00:00+01:00,,pending,spid,,,",
            "LIVE-2,suap,pec,2018-01-11T10:00:00+01:00,,pending,,,,",
        ],
    );
    let after = rt.block_on(engine.kpi(&query)).unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(after.scan, Scan::Rollup);
    assert_eq!(suap(&after), suap(&before) + 2);
    // The raw scan's kept plan lists the files of its commit: it is not reused after the next.
    let raw = query.clone().with_scan(Scan::Raw);
    assert_eq!(suap(&rt.block_on(engine.kpi(&raw)).unwrap()), suap(&after));
    ingest_requests(
        dir.path(),
        &warehouse,
        "more2.csv",
        &["LIVE-3,suap,online,2018-02-10T10:00:00+01:00,,pending,spid,,,"],
    );
    let raw_after = rt.block_on(engine.kpi(&raw)).unwrap();
    assert_eq!(raw_after.version, 3);
    assert_eq!(suap(&raw_after), suap(&after) + 1);
}

#[test]
fn a_missing_or_stale_rollup_falls_back_to_the_raw_scan() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = support::ingest_fixture(dir.path());
    let rollups = warehouse.join("_rollups");
    // The fixture has 19 submitted requests (tests/fixtures/README.md: 20 rows, one abandoned).
    assert_eq!(n_of(&requests_n(&warehouse, "rollup")), "19");

    // Commit 2 adds three submitted requests; then its roll-up is lost, as if the process
    // had died between the commit and the roll-up. Commit 1's roll-up is still there: stale.
    ingest_requests(
        dir.path(),
        &warehouse,
        "more.csv",
        &[
            "NEW-1,suap,online,2018-01-10T10:00:00+01:00,,pending,spid,,,",
            "NEW-2,suap,pec,2018-01-11T10:00:00+01:00,,pending,,,,",
            "NEW-3,tari,app,2018-02-01T10:00:00+01:00,2018-02-02T10:00:00+01:00,completed,cie,,12.50,8",
        ],
    );
    assert!(rollups.join("000002").is_dir(), "made after commit 2");
    assert!(rollups.join("000001").is_dir(), "the previous one is kept");
    std::fs::remove_dir_all(rollups.join("000002")).unwrap();

    assert_eq!(
        n_of(&requests_n(&warehouse, "auto")),
        "22",
        "not the stale 19"
    );
    assert_eq!(n_of(&requests_n(&warehouse, "raw")), "22");
    let forced = requests_n(&warehouse, "rollup");
    assert!(!forced.status.success());
    let message = String::from_utf8_lossy(&forced.stderr);
    assert!(message.contains("commit 2"), "{message}");

    // `civica rollup` repairs it.
    let summary: serde_json::Value =
        serde_json::from_str(&run_ok(&["rollup", "--warehouse", s(&warehouse)])).unwrap();
    assert_eq!(summary["commit"], 2);
    assert_eq!(summary["built"], true);
    assert_eq!(n_of(&requests_n(&warehouse, "rollup")), "22");

    // A warehouse written before roll-ups existed answers from the raw tables.
    std::fs::remove_dir_all(&rollups).unwrap();
    assert_eq!(n_of(&requests_n(&warehouse, "auto")), "22");

    // Compaction is a new commit: new roll-ups, and those two commits old are removed.
    run_ok(&["rollup", "--warehouse", s(&warehouse)]);
    ingest_requests(
        dir.path(),
        &warehouse,
        "more2.csv",
        &["NEW-4,suap,online,2018-03-10T10:00:00+01:00,,pending,spid,,,"],
    );
    run_ok(&["compact", "--warehouse", s(&warehouse)]);
    let mut left: Vec<String> = std::fs::read_dir(&rollups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["000003", "000004"]);
    assert_eq!(n_of(&requests_n(&warehouse, "rollup")), "23");
}

#[test]
fn public_kpi_views_publish_the_controlled_figures() {
    let warehouse = city();
    let view = csv_rows(&run_ok(&[
        "query",
        "--public",
        "--format",
        "csv",
        "--warehouse",
        s(warehouse),
        "SELECT * FROM kpi_satisfaction_mean ORDER BY service, year",
    ]));
    let published = csv_rows(&run_ok(&[
        "kpi",
        "satisfaction_mean",
        "--public",
        "--by",
        "service,year",
        "--format",
        "csv",
        "--warehouse",
        s(warehouse),
    ]));
    assert_eq!(view, published);
    let shown = view.iter().filter(|r| !r["value"].is_empty()).count();
    assert!(shown > 10, "{shown} published cells");
    for row in view.iter().filter(|r| !r["value"].is_empty()) {
        assert!(row["n"].parse::<u64>().unwrap() >= 5, "{row:?}");
    }
}
