//! HTTP tests of the real server on loopback, over the hand-made fixture.

mod support;

use support::{Server, fixtures, run_ok, s};

fn fixture_server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("warehouse");
    run_ok(&[
        "ingest",
        "--warehouse",
        s(&warehouse),
        "--key-file",
        s(&dir.path().join("key")),
        s(&fixtures().join("requests_small.csv")),
    ]);
    let server = Server::start(&warehouse);
    (dir, server)
}

#[test]
fn home_page_is_accessible_html_with_chart_and_table() {
    let (_dir, server) = fixture_server();
    let (status, _, page) = server.get("/?year=2017");
    assert_eq!(status, 200);
    assert!(page.contains("<html lang=\"it\">"));
    assert!(page.contains("<figure") && page.contains("<figcaption>"));
    assert!(page.contains("<title id=\"online-share-chart-title\">"));
    assert!(page.contains("<caption>"));
    // suap 2017: 4 of 5 submitted requests online (hand-computed).
    let suap = page.find("<th scope=\"row\">Suap</th>").expect("suap row");
    assert!(
        page[suap..suap + 100].contains("80,0%"),
        "{}",
        &page[suap..suap + 100]
    );
}

#[test]
fn api_returns_rows_with_counts() {
    let (_dir, server) = fixture_server();
    let (status, _, body) = server.get("/api/kpi/online_share?by=year");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["kpi"], "online_share");
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["year"], 2016);
    assert_eq!(rows[0]["numerator"], 2);
    assert_eq!(rows[0]["denominator"], 5);
    assert_eq!(rows[0]["value"], 40.0);
}

#[test]
fn csv_download_and_health() {
    let (_dir, server) = fixture_server();
    let (status, content_type, csv) = server.get("/opendata/online_share.csv");
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("service,year,value,numerator,denominator")
    );
    assert_eq!(lines.next(), Some("certificati_anagrafici,2017,25.0,1,4"));
    assert_eq!(
        server.get("/healthz"),
        (200, "text/plain; charset=utf-8".into(), "ok".into())
    );
}

#[test]
fn errors_are_json_with_the_right_status() {
    let (_dir, server) = fixture_server();
    let (status, _, body) = server.get("/api/kpi/digital_rate");
    assert_eq!(status, 404);
    assert!(body.contains("\"error\":\"not_found\""), "{body}");
    let (status, _, body) = server.get("/api/kpi/online_share?by=colour");
    assert_eq!(status, 400);
    assert!(body.contains("colour"), "{body}");
    let (status, _, _) = server.get("/opendata/../../etc/passwd");
    assert_eq!(status, 404);
    let (status, _, _) = server.get("/?year=abc");
    assert_eq!(status, 400);
}

#[test]
fn an_empty_warehouse_answers_with_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("never-ingested"));
    let (status, _, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains("Nessun dato"),
        "the page says there is no data"
    );
    let (status, _, body) = server.get("/api/kpi/online_share?by=service,year");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["rows"], serde_json::json!([]));
    assert_eq!(json["version"], 0);
    let (status, _, csv) = server.get("/opendata/online_share.csv");
    assert_eq!(status, 200);
    assert_eq!(csv, "service,year,value,numerator,denominator\n");
}
