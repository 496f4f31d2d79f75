//! The server under attack, end to end on loopback: SQL that reaches for files, writes or
//! exhausts resources; names that climb out of their directory; bodies too large or
//! malformed; clients that call too often; service codes that carry HTML, SVG or
//! spreadsheet formulas. Each attempt must be refused with the right status (or its data
//! escaped), and the warehouse must be exactly as before.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use support::{Answer, Server, run_ok, s, url_encoded};

/// Service codes that the ingest accepts (no control characters) and that must never be
/// rendered as markup or run as a formula.
const SCRIPT_CODE: &str = "<script>alert(1)</script>";
const SVG_CODE: &str = "\"><svg onload=alert(1)>";
const FORMULA_CODE: &str = "=HYPERLINK(\"http://x.example\",\"x\")";

/// A CSV field, quoted as RFC 4180 asks.
fn field(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// A request log where each hostile code has enough requests (8, half online) for its
/// cells to be published, ingested into `dir/warehouse`.
fn hostile_warehouse(dir: &Path) -> std::path::PathBuf {
    let mut csv = String::from(
        "request_id,service,channel,submitted_at,completed_at,status,auth_method,citizen_id,amount_eur,satisfaction\n",
    );
    for (k, code) in [SCRIPT_CODE, SVG_CODE, FORMULA_CODE].iter().enumerate() {
        for i in 0..8 {
            let channel = if i % 2 == 0 { "online" } else { "sportello" };
            csv.push_str(&format!(
                "H-{k}-{i},{},{channel},2017-03-0{}T10:00:00+01:00,2017-03-09T10:00:00+01:00,completed,,BNCLRA85M41C573K,,\n",
                field(code),
                i + 1,
            ));
        }
    }
    let log = dir.join("hostile.csv");
    std::fs::write(&log, csv).unwrap();
    let warehouse = dir.join("warehouse");
    run_ok(&[
        "ingest",
        "--warehouse",
        s(&warehouse),
        "--key-file",
        s(&dir.join("key")),
        s(&log),
    ]);
    warehouse
}

/// Every file below `root` with its size and modification time.
fn tree(root: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                files.insert(
                    entry.path().display().to_string(),
                    (meta.len(), meta.modified().unwrap()),
                );
            }
        }
    }
    files
}

fn version(server: &Server) -> u64 {
    let answer = server.request("GET", "/api/v1/version", &[], None);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["warehouse"].as_u64().expect("a version")
}

fn post_sql(server: &Server, sql: &str) -> Answer {
    let body = serde_json::json!({ "sql": sql }).to_string();
    server.request("POST", "/api/v1/query", &[], Some(&body))
}

/// The body holds none of the files the attacks reach for.
fn assert_no_file_contents(what: &str, answer: &Answer) {
    let text = String::from_utf8_lossy(&answer.body);
    for leak in ["root:x:0:0", "[workspace]", "[package]"] {
        assert!(!text.contains(leak), "{what} leaked `{leak}`: {text}");
    }
}

#[test]
fn sql_that_reads_files_writes_or_exhausts_is_refused_and_nothing_changes_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = hostile_warehouse(dir.path());
    let server = Server::start(&warehouse);
    let before_version = version(&server);
    let before_files = tree(dir.path());
    let out = dir.path().join("written");
    let out = s(&out);

    let refused = [
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT * FROM '/etc/passwd'".to_string(),
        "CREATE EXTERNAL TABLE p (line VARCHAR) STORED AS CSV LOCATION '/etc'".to_string(),
        "CREATE EXTERNAL TABLE r STORED AS PARQUET LOCATION '../requests'".to_string(),
        format!("COPY (SELECT * FROM kpi_online_share) TO '{out}'"),
        format!("COPY kpi_online_share TO '{out}.parquet' STORED AS PARQUET"),
        "INSERT INTO kpi_online_share (service) VALUES ('x')".to_string(),
        "CREATE TABLE t AS SELECT * FROM kpi_online_share".to_string(),
        "DROP VIEW kpi_online_share".to_string(),
        "SELECT * FROM requests".to_string(),
        "SET datafusion.execution.target_partitions = 1000".to_string(),
        "SELECT 1; SELECT 2".to_string(),
    ];
    for sql in &refused {
        let answer = post_sql(&server, sql);
        assert_eq!(answer.status, 400, "{sql}: {}", answer.text());
        assert_eq!(answer.json()["error"], "bad_request", "{sql}");
        assert_no_file_contents(sql, &answer);
    }

    // Work without end is stopped by the time limit, or cut at the row limit; the server
    // answers within its bounds either way.
    let exhausting = [
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
        "SELECT count(*) FROM kpi_online_share a, kpi_online_share b, kpi_online_share c, \
         kpi_online_share d, kpi_online_share e, kpi_online_share f, kpi_online_share g",
        "SELECT * FROM generate_series(1, 10000000000)",
    ];
    for sql in exhausting {
        let started = Instant::now();
        let answer = post_sql(&server, sql);
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "{sql} ran {:?}",
            started.elapsed()
        );
        match answer.status {
            400 => assert_eq!(answer.json()["error"], "bad_request", "{sql}"),
            200 => assert!(
                answer.header("civica-truncated") == "true"
                    || answer.json()["rows"]
                        .as_array()
                        .is_some_and(|r| r.len() <= 10_000),
                "{sql}: {}",
                answer.text()
            ),
            other => panic!("{sql}: status {other}: {}", answer.text()),
        }
    }

    assert_eq!(server.request("GET", "/healthz", &[], None).status, 200);
    assert_eq!(version(&server), before_version);
    assert_eq!(tree(dir.path()), before_files, "files changed on disk");
    assert!(!Path::new(out).exists());
}

#[test]
fn names_that_climb_out_of_their_directory_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = hostile_warehouse(dir.path());
    let server = Server::start(&warehouse);
    let before = tree(dir.path());
    let attempts = [
        "/opendata/..%2f..%2fetc%2fpasswd.csv",
        "/opendata/..%2F..%2F..%2FCargo.toml",
        "/opendata/%2e%2e%2f%2e%2e%2fetc%2fpasswd-excel.csv",
        "/opendata/..%2f..%2fetc%2fpasswd/datapackage.json",
        "/servizi/..%2f..",
        "/servizi/..%2f..%2fetc%2fpasswd",
        "/indicatori/..%2f..%2fetc%2fpasswd",
        "/charts/..%2f..%2fetc%2fpasswd.svg",
        "/charts/servizi/..%2f..%2fetc/passwd.png",
        "/charts/confronto/..%2f..%2fCargo.toml",
        "/static/..%2f..%2fCargo.toml",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/civica.css%2f..%2f..%2fCargo.toml",
        "/api/v1/kpis/..%2f..%2fetc%2fpasswd",
        "/api/kpi/..%2f..%2fetc%2fpasswd",
    ];
    for path in attempts {
        let answer = server.request("GET", path, &[], None);
        assert!(
            answer.status == 404 || answer.status == 400,
            "{path}: {} {}",
            answer.status,
            answer.text()
        );
        assert_no_file_contents(path, &answer);
    }
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn bodies_too_large_or_malformed_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = hostile_warehouse(dir.path());
    let server = Server::start_with(&warehouse, &["--max-body-bytes", "4096"]);
    let before = version(&server);

    let padding = " ".repeat(8_000);
    let large = format!("{{\"sql\": \"SELECT 1{padding}\"}}");
    let answer = server.request("POST", "/api/v1/query", &[], Some(&large));
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert_eq!(answer.json()["error"], "payload_too_large");

    for (body, why) in [
        ("{\"sql\": ", "cut JSON"),
        ("[1, 2, 3]", "not an object"),
        ("{\"sql\": 42}", "not text"),
        (
            "{\"sql\": \"SELECT 1\", \"path\": \"/etc\"}",
            "an unknown field",
        ),
        ("", "no body"),
    ] {
        let answer = server.request("POST", "/api/v1/query", &[], Some(body));
        assert_eq!(answer.status, 400, "{why}: {}", answer.text());
        assert_eq!(answer.json()["error"], "bad_request", "{why}");
    }
    // Within the body limit but past the statement limit.
    let long = format!("SELECT 1 -- {}", "x".repeat(10_000));
    let answer = server.request(
        "POST",
        "/api/v1/query",
        &[],
        Some(&serde_json::json!({ "sql": long }).to_string()),
    );
    assert_eq!(answer.status, 413, "the body is past 4096 bytes too");
    let answer = post_sql(&server, &format!("SELECT 1 -- {}", "x".repeat(3_000)));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(version(&server), before);
}

#[test]
fn the_query_api_answers_429_past_the_rate_of_one_address() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = hostile_warehouse(dir.path());
    let server = Server::start_with(&warehouse, &["--query-rate", "3"]);
    let sql = url_encoded("SELECT count(*) AS n FROM kpi_requests");
    let path = format!("/api/v1/query?sql={sql}");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(server.request("GET", &path, &[], None));
    }
    let codes: Vec<u16> = statuses.iter().map(|a| a.status).collect();
    assert_eq!(codes, [200, 200, 200, 429]);
    let refused = &statuses[3];
    assert_eq!(refused.json()["error"], "too_many_requests");
    let retry: u64 = refused.header("retry-after").parse().expect("Retry-After");
    // Three calls a minute: the next is allowed within 20 s.
    assert!((1..=20).contains(&retry), "{retry}");
    // POST shares the allowance; other routes keep answering.
    let answer = post_sql(&server, "SELECT 1");
    assert_eq!(answer.status, 429);
    assert_eq!(server.request("GET", "/api/v1/kpis", &[], None).status, 200);
}

#[test]
fn service_codes_with_markup_are_escaped_in_pages_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = hostile_warehouse(dir.path());
    let server = Server::start(&warehouse);
    let raw = ["<script", "<svg onload", "alert(1)</script"];

    // The codes as data: the query page shows them in its result table, escaped.
    let sql = url_encoded("SELECT DISTINCT service FROM kpi_requests ORDER BY service");
    let (status, _, html) = server.get(&format!("/query?sql={sql}"));
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<td>&#60;script&#62;alert(1)&#60;/script&#62;</td>"),
        "{html}"
    );
    assert!(
        html.contains("<td>&#34;&#62;&#60;svg onload=alert(1)&#62;</td>"),
        "{html}"
    );
    // In the URL of the page (`?sql=`) too.
    let (_, _, echoed) = server.get(&format!("/query?sql={}", url_encoded(SCRIPT_CODE)));
    let mut pages = vec![html, echoed];

    // The pages and every chart they link.
    for path in ["/", "/servizi", "/confronto", "/servizi/%3Cscript%3E"] {
        pages.push(server.get(path).2);
    }
    let mut charts = Vec::new();
    for page in &pages {
        for part in page.split("href=\"/charts/").skip(1).take(20) {
            if let Some(end) = part.find('"') {
                charts.push(format!("/charts/{}", part[..end].replace("&amp;", "&")));
            }
        }
    }
    charts.sort();
    charts.dedup();
    assert!(!charts.is_empty(), "the pages link their charts");
    for chart in charts.iter().filter(|c| c.contains(".svg")).take(20) {
        let (status, content_type, svg) = server.get(chart);
        assert_eq!(status, 200, "{chart}");
        assert!(content_type.starts_with("image/svg+xml"), "{chart}");
        for bad in raw {
            assert!(!svg.contains(bad), "{chart} holds `{bad}`");
        }
    }
    for page in &pages {
        for bad in raw {
            assert!(!page.contains(bad), "a page holds `{bad}`");
        }
    }
}

#[test]
fn formulas_in_data_are_neutralised_in_the_excel_csv_only() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = hostile_warehouse(dir.path());
    let server = Server::start(&warehouse);
    let excel = server
        .request(
            "GET",
            "/opendata/requests_by_service_year-excel.csv",
            &[],
            None,
        )
        .text();
    let lines: Vec<&str> = excel.trim_start_matches('\u{feff}').lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("\"'=HYPERLINK(\"\"http://x.example\"\"")),
        "{excel}"
    );
    for line in &lines {
        assert!(
            !line.starts_with('=') && !line.starts_with("\"="),
            "a formula: {line}"
        );
    }
    // The RFC 4180 file keeps the value exactly: it is data for programs.
    let plain = server
        .request("GET", "/opendata/requests_by_service_year.csv", &[], None)
        .text();
    let rows = support::csv_rows(&plain);
    assert!(rows.iter().any(|r| r["service"] == FORMULA_CODE), "{plain}");
}

#[test]
fn security_headers_and_request_ids_are_on_pages_api_and_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = hostile_warehouse(dir.path());
    let server = Server::start(&warehouse);
    let paths = [
        "/",
        "/query",
        "/api/v1/kpis",
        "/api/v1/query?sql=SELECT%201",
        "/opendata/requests_by_service_year.csv",
        "/opendata/requests_by_service_year-excel.csv",
        "/static/civica.css",
        "/no/such/page",
        "/metrics",
    ];
    for path in paths {
        let answer = server.request("GET", path, &[], None);
        let csp = answer.header("content-security-policy");
        assert!(csp.contains("script-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'self'"), "{path}: {csp}");
        assert_eq!(answer.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(
            answer.header("referrer-policy"),
            "strict-origin-when-cross-origin",
            "{path}"
        );
        assert_eq!(answer.header("x-frame-options"), "SAMEORIGIN", "{path}");
        assert_eq!(answer.header("x-request-id").len(), 16, "{path}");
    }
    // A client's id is echoed; a forged one is replaced.
    let answer = server.request("GET", "/healthz", &[("x-request-id", "abc-123")], None);
    assert_eq!(answer.header("x-request-id"), "abc-123");
    let answer = server.request("GET", "/healthz", &[("x-request-id", "a b<c>")], None);
    assert_ne!(answer.header("x-request-id"), "a b<c>");
    assert_eq!(answer.header("x-request-id").len(), 16);

    // The city's site may be allowed to embed charts.
    let embedding = Server::start_with(
        &warehouse,
        &["--frame-ancestors", "'self' https://www.comune.example.it"],
    );
    let answer = embedding.request("GET", "/", &[], None);
    assert!(
        answer
            .header("content-security-policy")
            .ends_with("frame-ancestors 'self' https://www.comune.example.it"),
        "{}",
        answer.header("content-security-policy")
    );
    assert_eq!(answer.header("x-frame-options"), "");
    let refused = support::run(&[
        "serve",
        "--warehouse",
        s(&warehouse),
        "--frame-ancestors",
        "'self'; script-src *",
    ]);
    assert!(!refused.status.success());
}

#[test]
fn readiness_and_metrics_follow_the_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let server = Server::start(&empty);
    assert_eq!(server.request("GET", "/healthz", &[], None).status, 200);
    assert_eq!(server.request("GET", "/readyz", &[], None).status, 503);
    drop(server);

    let warehouse = hostile_warehouse(dir.path());
    let server = Server::start(&warehouse);
    assert_eq!(server.request("GET", "/readyz", &[], None).status, 200);
    for _ in 0..2 {
        server.request("GET", "/api/v1/kpis", &[], None);
    }
    let metrics = server.request("GET", "/metrics", &[], None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .starts_with("application/openmetrics-text")
    );
    let text = metrics.text();
    assert!(
        text.contains(
            r#"civica_http_requests_total{route="/api/v1/kpis",method="GET",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains("civica_warehouse_version 1\n"), "{text}");
    // 24 rows written by `hostile_warehouse`, all accepted.
    assert!(
        text.contains("civica_ingest_rows{outcome=\"read\"} 24\n"),
        "{text}"
    );
    assert!(
        text.contains("civica_ingest_rows{outcome=\"accepted\"} 24\n"),
        "{text}"
    );
    assert!(
        text.contains("civica_ingest_rows{outcome=\"quarantined\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("civica_http_request_duration_seconds_bucket{"),
        "{text}"
    );
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let warehouse = hostile_warehouse(dir.path());
    let server = Server::start_with(&warehouse, &["--header-timeout", "1"]);
    let address = server
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    // Half a request, then nothing (a slow-loris client).
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let outcome = stream.read_to_end(&mut answer);
    // The server closes the connection (EOF, or a reset) instead of waiting for ever; a read
    // timeout here would mean it kept the connection open.
    match outcome {
        Ok(_) => {}
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the connection was still open after 20 s: {e}"
        ),
    }
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "no answer to half a request"
    );
    // Whole requests are still answered.
    assert_eq!(server.request("GET", "/healthz", &[], None).status, 200);
}

#[test]
fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = hostile_warehouse(dir.path());
    let sql = url_encoded("SELECT count(*) AS n FROM kpi_requests");
    let path = format!("/api/v1/query?sql={sql}");
    let from = |server: &Server, client: &str| {
        server
            .request("GET", &path, &[("x-forwarded-for", client)], None)
            .status
    };

    // No trusted proxy: a client cannot dodge its limit by naming another address.
    let server = Server::start_with(&warehouse, &["--query-rate", "2"]);
    let codes: Vec<u16> = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        .iter()
        .map(|c| from(&server, c))
        .collect();
    assert_eq!(codes, [200, 200, 429]);
    drop(server);

    // Behind a proxy on loopback: each forwarded client has its own allowance, and what a
    // client wrote in front of the proxy's entry does not count.
    let server = Server::start_with(
        &warehouse,
        &["--query-rate", "2", "--trusted-proxy", "127.0.0.0/8"],
    );
    let a: Vec<u16> = (0..3)
        .map(|i| from(&server, &format!("10.9.9.{i}, 203.0.113.5")))
        .collect();
    assert_eq!(a, [200, 200, 429]);
    assert_eq!(from(&server, "203.0.113.6"), 200);
}

#[test]
fn the_query_page_shares_the_allowance_of_the_query_api_and_says_when_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = hostile_warehouse(dir.path());
    let server = Server::start_with(&warehouse, &["--query-rate", "2"]);
    let sql = url_encoded("SELECT count(*) AS n FROM kpi_requests");
    assert_eq!(
        server
            .request("GET", &format!("/api/v1/query?sql={sql}"), &[], None)
            .status,
        200
    );
    let page = format!("/query?sql={sql}");
    assert_eq!(server.request("GET", &page, &[], None).status, 200);
    let refused = server.request("GET", &page, &[("accept-language", "it")], None);
    assert_eq!(refused.status, 429);
    assert!(refused.header("content-type").starts_with("text/html"));
    let retry: u64 = refused.header("retry-after").parse().expect("Retry-After");
    assert!((1..=30).contains(&retry), "{retry}");
    // The form alone is not a query.
    assert_eq!(server.request("GET", "/query", &[], None).status, 200);
}
