//! Public SQL on the real server: `GET`/`POST /api/v1/query` in every format with the same
//! rows, refusal of anything but one read of the KPI views, the row cap and its flag, the
//! limits on the statement, and the `/query` page with its downloads.

mod support;

use serde_json::{Value, json};
use support::{Answer, Server, url_encoded};

fn fixture_server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = support::ingest_fixture(dir.path());
    let server = Server::start(&warehouse);
    (dir, server)
}

fn get(server: &Server, sql: &str, format: &str) -> Answer {
    let format = if format.is_empty() {
        String::new()
    } else {
        format!("&format={format}")
    };
    server.request(
        "GET",
        &format!("/api/v1/query?sql={}{format}", url_encoded(sql)),
        &[],
        None,
    )
}

fn post(server: &Server, body: &Value, accept: &str) -> Answer {
    server.request(
        "POST",
        "/api/v1/query",
        &[("accept", accept)],
        Some(&body.to_string()),
    )
}

/// The service-year cells of the fixture, by hand from tests/fixtures/requests_small.csv:
/// refezione_scolastica and suap in 2016 and 2017, certificati_anagrafici in 2017. Each has
/// fewer than 5 requests, or is withheld with them (secondary suppression): all suppressed.
const CELLS: [(&str, &str, &str); 5] = [
    ("certificati_anagrafici", "2017", "suppressed"),
    ("refezione_scolastica", "2016", "suppressed"),
    ("refezione_scolastica", "2017", "suppressed"),
    ("suap", "2016", "suppressed"),
    ("suap", "2017", "suppressed"),
];

const CELLS_SQL: &str =
    "SELECT service, year, flag, value FROM kpi_online_share ORDER BY service, year";

fn rows_of_batches(
    batches: &[civica_analytics::arrow::record_batch::RecordBatch],
) -> Vec<[Option<String>; 4]> {
    let columns: Vec<Vec<Option<String>>> = ["service", "year", "flag", "value"]
        .iter()
        .map(|c| support::column_text(batches, c))
        .collect();
    (0..columns[0].len())
        .map(|i| std::array::from_fn(|c| columns[c][i].clone()))
        .collect()
}

fn expected_rows() -> Vec<[Option<String>; 4]> {
    CELLS
        .iter()
        .map(|(s, y, f)| {
            [
                Some(s.to_string()),
                Some(y.to_string()),
                Some(f.to_string()),
                None,
            ]
        })
        .collect()
}

#[test]
fn every_format_carries_the_same_rows() {
    let (_dir, server) = fixture_server();
    let expected = expected_rows();

    for answer in [
        get(&server, CELLS_SQL, ""),
        post(&server, &json!({ "sql": CELLS_SQL }), "application/json"),
    ] {
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.header("content-type"), "application/json");
        assert_eq!(answer.header("civica-truncated"), "false");
        let body = answer.json();
        assert_eq!(body["truncated"], false);
        assert_eq!(body["max_rows"], 10_000);
        assert_eq!(body["version"], 1);
        let columns: Vec<&str> = body["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["service", "year", "flag", "value"]);
        let rows: Vec<[Option<String>; 4]> = body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                [
                    r["service"].as_str().map(str::to_string),
                    r["year"].as_i64().map(|y| y.to_string()),
                    r["flag"].as_str().map(str::to_string),
                    r["value"].as_f64().map(|v| v.to_string()),
                ]
            })
            .collect();
        assert_eq!(rows, expected);
    }

    let csv = get(&server, CELLS_SQL, "csv");
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.header("content-type"),
        "text/csv; charset=utf-8; header=present"
    );
    let rows: Vec<[Option<String>; 4]> = support::csv_rows(&csv.text())
        .iter()
        .map(|r| {
            ["service", "year", "flag", "value"]
                .map(|c| Some(r[c].clone()).filter(|v| !v.is_empty()))
        })
        .collect();
    assert_eq!(rows, expected);

    for (accept, media_type) in [
        (
            "application/vnd.apache.parquet",
            "application/vnd.apache.parquet",
        ),
        ("application/x-parquet", "application/vnd.apache.parquet"),
        (
            "application/vnd.apache.arrow.stream",
            "application/vnd.apache.arrow.stream",
        ),
    ] {
        let answer = post(&server, &json!({ "sql": CELLS_SQL }), accept);
        assert_eq!(answer.status, 200, "{accept}");
        assert_eq!(answer.header("content-type"), media_type);
        let batches = if media_type.ends_with("parquet") {
            support::read_parquet(&answer.body)
        } else {
            support::read_arrow_stream(&answer.body)
        };
        assert_eq!(rows_of_batches(&batches), expected, "{accept}");
    }

    // A figure: five service-year cells, counted by the engine, read back from every format.
    let count = "SELECT count(*) AS cells FROM kpi_online_share";
    assert_eq!(get(&server, count, "").json()["rows"][0]["cells"], 5);
    assert_eq!(
        support::csv_rows(&get(&server, count, "csv").text())[0]["cells"],
        "5"
    );
    let parquet = support::read_parquet(&get(&server, count, "parquet").body);
    assert_eq!(
        support::column_text(&parquet, "cells"),
        [Some("5".to_string())]
    );
    let arrow = support::read_arrow_stream(&get(&server, count, "arrow").body);
    assert_eq!(
        support::column_text(&arrow, "cells"),
        [Some("5".to_string())]
    );
}

#[test]
fn only_one_read_of_the_public_views_is_run() {
    let (dir, server) = fixture_server();
    let copied = dir.path().join("copied.csv");
    let copy = format!(
        "COPY (SELECT * FROM kpi_online_share) TO '{}'",
        copied.display()
    );
    let external = "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'";
    for (sql, why) in [
        // Writes, DDL and session statements.
        (
            "INSERT INTO kpi_online_share (service) VALUES ('x')",
            "only read queries",
        ),
        ("UPDATE kpi_online_share SET value = 0", "only read queries"),
        ("DELETE FROM kpi_online_share", "only read queries"),
        ("DROP TABLE kpi_online_share", "only read queries"),
        ("CREATE TABLE t AS SELECT 1", "only read queries"),
        ("CREATE VIEW v AS SELECT 1", "only read queries"),
        (external, "only read queries"),
        (copy.as_str(), "only read queries"),
        (
            "SET datafusion.execution.batch_size = 1",
            "only read queries",
        ),
        ("SELECT * INTO t FROM kpi_online_share", "DDL not supported"),
        ("SELECT 1; SELECT 2", "single SQL statement"),
        // Staff tables, the catalogue of tables, files and table functions.
        ("SELECT * FROM requests", "not available to the public"),
        (
            "SELECT count(*) FROM surveys",
            "not available to the public",
        ),
        ("SELECT * FROM quarantine", "not available to the public"),
        (
            "SELECT * FROM requests_rollup",
            "not available to the public",
        ),
        (
            "SELECT * FROM civica.public.requests",
            "not available to the public",
        ),
        (
            "SELECT * FROM information_schema.tables",
            "not available to the public",
        ),
        ("SELECT * FROM '/etc/passwd'", "not available to the public"),
        (
            "SELECT * FROM generate_series(1, 10)",
            "not available to the public",
        ),
        ("SELECT * FROM range(10)", "not available to the public"),
        (
            "SELECT * FROM kpi_online_share JOIN requests USING (service)",
            "not available to the public",
        ),
        (
            "EXPLAIN SELECT * FROM requests",
            "not available to the public",
        ),
        (
            "SELECT * FROM kpi_digital_rate",
            "not available to the public",
        ),
        // Not SQL at all.
        ("SELEC 1", "SQL error"),
    ] {
        for answer in [
            post(&server, &json!({ "sql": sql }), "application/json"),
            get(&server, sql, "csv"),
        ] {
            assert_eq!(answer.status, 400, "{sql}: {}", answer.text());
            assert_eq!(answer.header("content-type"), "application/json", "{sql}");
            let body = answer.json();
            assert_eq!(body["error"], "bad_request", "{sql}");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(why), "{sql}: {message}");
        }
    }
    assert!(!copied.exists(), "COPY wrote a file");
    // The views are all still there and unchanged.
    assert_eq!(
        get(&server, CELLS_SQL, "").json()["rows"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[test]
fn long_results_are_cut_at_the_row_limit_and_say_so() {
    let (_dir, server) = fixture_server();
    // Five cells joined with themselves six times: 5^6 = 15,625 rows, past the 10,000 limit.
    let sql = "SELECT a.year FROM kpi_requests a, kpi_requests b, kpi_requests c, \
               kpi_requests d, kpi_requests e, kpi_requests f";
    let answer = post(&server, &json!({ "sql": sql }), "application/json");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("civica-truncated"), "true");
    let body = answer.json();
    assert_eq!(body["truncated"], true);
    assert_eq!(body["max_rows"], 10_000);
    assert_eq!(body["rows"].as_array().unwrap().len(), 10_000);
    let csv = get(&server, sql, "csv");
    assert_eq!(csv.header("civica-truncated"), "true");
    assert_eq!(support::csv_rows(&csv.text()).len(), 10_000);
    // With LIMIT, the same query fits and is whole.
    let limited = get(&server, &format!("{sql} LIMIT 10000"), "");
    assert_eq!(limited.header("civica-truncated"), "false");
    assert_eq!(limited.json()["rows"].as_array().unwrap().len(), 10_000);
}

#[test]
fn statements_and_bodies_are_checked_before_they_run() {
    let (_dir, server) = fixture_server();
    // 5,001 ones joined by `+` (10,001 characters) and 12 around them: 10,013.
    let long = format!("SELECT {} AS n", vec!["1"; 5_001].join("+"));
    for (body, why) in [
        (
            json!({ "sql": long }),
            "the statement has 10013 characters; the limit is 10000",
        ),
        (json!({ "sql": "   " }), "empty"),
        (json!({ "sql": "SELECT 1", "limit": 5 }), "unknown field"),
        (json!({ "query": "SELECT 1" }), "unknown field"),
        (json!({ "sql": 42 }), "invalid type"),
    ] {
        let answer = post(&server, &body, "application/json");
        assert_eq!(answer.status, 400, "{why}");
        let message = answer.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(why), "{why}: {message}");
    }
    // Unknown parameters and a missing statement are refused too.
    for path in ["/api/v1/query", "/api/v1/query?sql=SELECT%201&rows=5"] {
        let answer = server.request("GET", path, &[], None);
        assert_eq!(answer.status, 400, "{path}");
        assert_eq!(answer.json()["error"], "bad_request");
    }
    let answer = server.request(
        "GET",
        "/api/v1/query?sql=SELECT%201",
        &[("accept", "text/html")],
        None,
    );
    assert_eq!(answer.status, 406);
}

#[test]
fn the_query_page_shows_the_result_and_links_its_downloads() {
    let (_dir, server) = fixture_server();
    let page = server.request(
        "GET",
        &format!("/query?sql={}&lang=en", url_encoded(CELLS_SQL)),
        &[],
        None,
    );
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("<caption>Query result: 5 rows</caption>"),
        "{html}"
    );
    for column in ["service", "year", "flag", "value"] {
        assert!(html.contains(&format!("<th scope=\"col\">{column}</th>")));
    }
    assert!(html.contains(
        "<td>suap</td><td>2016</td><td>suppressed</td><td><span class=\"null\">NULL</span></td>"
    ));
    // The statement is in the form again, and the CSV link answers the same rows.
    assert!(html.contains("ORDER BY service, year</textarea>"));
    let csv_href = html
        .split("href=\"")
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .find(|href| href.contains("format=csv"))
        .expect("a CSV link")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let csv = server.request("GET", &csv_href, &[], None);
    assert_eq!(csv.status, 200, "{csv_href}");
    assert_eq!(support::csv_rows(&csv.text()).len(), CELLS.len());

    // A refused statement: the page says why, with a 400.
    let page = server.request("GET", "/query?sql=SELECT%20*%20FROM%20requests", &[], None);
    assert_eq!(page.status, 400);
    let html = page.text();
    assert!(
        html.contains("L&#39;interrogazione non è stata eseguita"),
        "{html}"
    );
    assert!(html.contains("not available to the public"));

    // Without a statement: the form and the views that can be read.
    let page = server.request("GET", "/query", &[], None);
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("<textarea id=\"sql\" name=\"sql\""));
    assert!(html.contains("<code>kpi_online_share</code>"));
    assert!(html.contains("href=\"/query\" aria-current=\"page\""));
}
