//! The sample city, end to end: `generate → ingest → kpi` must find again the figures the
//! city published (the press release is the independent source of these numbers), and the
//! dashboard must show the same figures as the command line.

mod support;

use std::path::PathBuf;
use std::sync::OnceLock;

use support::{Server, csv_rows, run_ok, s};

/// The published figures: online share in percent, by service and year.
const PUBLISHED_SHARES: [(&str, &str, f64); 8] = [
    ("iscrizione_scuola_infanzia", "2017", 83.0),
    ("refezione_scolastica", "2017", 76.0),
    ("pre_scuola", "2017", 74.0),
    ("post_scuola", "2017", 90.0),
    ("trasporto_scolastico", "2017", 76.0),
    ("centri_estivi", "2017", 71.0),
    ("suap", "2015", 38.2),
    ("suap", "2017", 80.0),
];

/// The sample warehouse, generated and ingested once for all tests of this file.
fn sample_warehouse() -> &'static PathBuf {
    static WAREHOUSE: OnceLock<PathBuf> = OnceLock::new();
    WAREHOUSE.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sample-city");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let sample = root.join("sample");
        let warehouse = root.join("warehouse");
        run_ok(&["generate", "--out", s(&sample)]);
        let out = run_ok(&[
            "ingest",
            "--json",
            "--warehouse",
            s(&warehouse),
            "--key-file",
            s(&root.join("key")),
            s(&sample.join("requests.csv")),
        ]);
        let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            summary["rows_quarantined"], 0,
            "the sample is valid: {summary}"
        );
        assert_eq!(summary["rows_duplicate"], 0, "{summary}");
        assert_eq!(summary["rows_read"], summary["rows_accepted"]);
        warehouse
    })
}

fn kpi_csv(by: &str) -> String {
    run_ok(&[
        "kpi",
        "online_share",
        "--public",
        "--by",
        by,
        "--format",
        "csv",
        "--warehouse",
        s(sample_warehouse()),
    ])
}

fn cell<'a>(
    rows: &'a [std::collections::HashMap<String, String>],
    service: &str,
    year: &str,
) -> &'a std::collections::HashMap<String, String> {
    rows.iter()
        .find(|r| r["service"] == service && r["year"] == year)
        .unwrap_or_else(|| panic!("no row for {service} {year}"))
}

#[test]
fn published_online_shares_are_found_again() {
    let rows = csv_rows(&kpi_csv("service,year"));
    for (service, year, published) in PUBLISHED_SHARES {
        let value: f64 = cell(&rows, service, year)["value"].parse().unwrap();
        assert!(
            (value - published).abs() <= 0.5,
            "{service} {year}: computed {value}, published {published}"
        );
    }
}

#[test]
fn published_counts_are_found_again() {
    let rows = csv_rows(&kpi_csv("service,year"));
    let within_one_percent = |actual: &str, published: f64, what: &str| {
        let actual: f64 = actual.parse().unwrap();
        assert!(
            (actual - published).abs() <= published * 0.01,
            "{what}: computed {actual}, published {published}"
        );
    };
    // 5,290 self-service (online) certificates in 2017.
    within_one_percent(
        &cell(&rows, "certificati_anagrafici", "2017")["numerator"],
        5290.0,
        "self-service certificates 2017",
    );
    // 1,151 hotel/B&B ZTL requests in 2017.
    within_one_percent(
        &cell(&rows, "ztl_alberghi", "2017")["denominator"],
        1151.0,
        "hotel ZTL requests 2017",
    );
}

#[test]
fn published_figures_come_out_of_the_catalogue_kpis() {
    let w = s(sample_warehouse());
    let kpi = |args: &[&str]| {
        let mut all = vec!["kpi", "--format", "csv", "--warehouse", w];
        all.extend_from_slice(args);
        csv_rows(&run_ok(&all))
    };
    // Perceived quality about 8 out of 10.
    let satisfaction = kpi(&["satisfaction_mean", "--year", "2017"]);
    let mean: f64 = satisfaction[0]["value"].parse().unwrap();
    let n: u64 = satisfaction[0]["n"].parse().unwrap();
    assert!((7.5..=8.5).contains(&mean), "mean satisfaction {mean}");
    assert!(n > 1000, "enough ratings: {n}");
    // 5,290 self-service certificates in 2017.
    let certificates = kpi(&[
        "requests",
        "--year",
        "2017",
        "--service",
        "certificati_anagrafici",
        "--channel",
        "online,app",
    ]);
    let count: f64 = certificates[0]["n"].parse().unwrap();
    assert!((count - 5290.0).abs() <= 52.9, "{count}");
    // Nursery enrolment 83% online in 2017, by school year too (enrolments happen in
    // January for the school year that starts in September).
    let nursery = kpi(&[
        "online_share",
        "--by",
        "school_year",
        "--service",
        "iscrizione_scuola_infanzia",
    ]);
    let school_year = nursery
        .iter()
        .find(|r| r["school_year"] == "2016/17")
        .unwrap();
    let share: f64 = school_year["value"].parse().unwrap();
    assert!((share - 83.0).abs() <= 0.5, "{share}");
    // The SUAP target of the catalogue (90% by 2020) and the change from 2015 to 2017.
    let suap = kpi(&["online_share", "--by", "year", "--service", "suap"]);
    let change_2016: f64 = suap[1]["change"].parse().unwrap();
    let change_2017: f64 = suap[2]["change"].parse().unwrap();
    assert!((change_2016 + change_2017 - (80.0 - 38.2)).abs() <= 1.0);
}

#[test]
fn services_announced_for_2018_start_online_during_2018() {
    let rows = csv_rows(&kpi_csv("service,year"));
    for service in [
        "cambio_residenza",
        "ztl_primo_permesso",
        "numerazione_civica",
    ] {
        assert_eq!(
            cell(&rows, service, "2017")["numerator"],
            "0",
            "{service} 2017"
        );
        let share: f64 = cell(&rows, service, "2018")["value"].parse().unwrap();
        assert!(share > 0.0, "{service} goes online in 2018");
    }
}

#[test]
fn dashboard_shows_the_same_figures_as_the_command_line() {
    let server = Server::start(sample_warehouse());

    let (status, content_type, page) = server.get("/?year=2017");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let row_start = page
        .find("scuola dell&#x27;infanzia</th>")
        .or_else(|| page.find("scuola dell&#39;infanzia</th>"))
        .expect("nursery enrolment row");
    let row = &page[row_start..row_start + 120];
    assert!(row.contains("83,0%"), "{row}");
    assert!(page.contains("<svg") && page.contains("role=\"img\""));

    let (status, _, default_page) = server.get("/");
    assert_eq!(status, 200);
    assert!(
        default_page.contains("<option value=\"2018\" selected>"),
        "the default year is the latest full year"
    );

    let (status, content_type, json) = server.get("/api/kpi/online_share?by=service,year");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/json"));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let nursery = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "iscrizione_scuola_infanzia" && r["year"] == 2017)
        .expect("nursery 2017 in the API");
    let cli = csv_rows(&kpi_csv("service,year"));
    let cli_value: f64 = cell(&cli, "iscrizione_scuola_infanzia", "2017")["value"]
        .parse()
        .unwrap();
    assert_eq!(nursery["value"].as_f64(), Some(cli_value));

    let (status, content_type, csv) = server.get("/opendata/online_share.csv");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"));
    assert_eq!(
        csv,
        kpi_csv("service,year"),
        "download equals the CLI output"
    );
}
