//! Public SQL under tight limits, through the router without sockets: a statement that runs
//! past the time limit is stopped with a clear message, and a result past the row limit is
//! cut, flagged and said so on the page.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use civica_analytics::{Engine, QueryLimits};
use civica_dashboard::{AppState, app};
use civica_ingest::{IngestOptions, Layout, Pseudonymiser};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The small city of `tests/fixtures/city_small.csv`, queried within `limits`.
fn state_with(limits: QueryLimits) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("warehouse"));
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/city_small.csv");
    let pseudonymiser = Pseudonymiser::new(&[7u8; 32]).unwrap();
    civica_ingest::ingest(
        &layout,
        &[fixture],
        &pseudonymiser,
        &IngestOptions::default(),
    )
    .unwrap();
    let state = AppState::new(Engine::new(layout)).with_query_limits(limits);
    (dir, state)
}

async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, String, String) {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let truncated = response
        .headers()
        .get("civica-truncated")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        truncated,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn post(sql: &str) -> Request<Body> {
    Request::post("/api/v1/query")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::json!({ "sql": sql }).to_string()))
        .unwrap()
}

/// A statement that never ends on its own: counting an endless recursion.
const ENDLESS: &str =
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t";

#[tokio::test]
async fn a_statement_past_the_time_limit_is_stopped_with_a_clear_message() {
    let (_dir, state) = state_with(QueryLimits {
        timeout: Duration::from_secs(1),
        ..civica_dashboard::routes::query::DEFAULT_LIMITS
    });
    let started = Instant::now();
    let (status, _, body) = send(&state, post(ENDLESS)).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped in time"
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "bad_request");
    assert_eq!(body["message"], "query stopped after 1 s (the limit)");

    let uri = "/query?lang=en&sql=WITH%20RECURSIVE%20t(n)%20AS%20(SELECT%201%20UNION%20ALL%20SELECT%20n%20%2B%201%20FROM%20t)%20SELECT%20count(*)%20FROM%20t";
    let (status, _, page) = send(&state, Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("The query was not run"), "{page}");
    assert!(page.contains("query stopped after 1 s (the limit)"));
}

#[tokio::test]
async fn a_result_past_the_row_limit_is_cut_and_flagged() {
    let (_dir, state) = state_with(QueryLimits {
        max_rows: 3,
        ..civica_dashboard::routes::query::DEFAULT_LIMITS
    });
    // The fixture has more than three service-year cells of requests.
    let sql = "SELECT service, year FROM kpi_requests ORDER BY service, year";
    let (status, truncated, body) = send(&state, post(sql)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(truncated, "true");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["truncated"], true);
    assert_eq!(body["max_rows"], 3);
    assert_eq!(body["rows"].as_array().unwrap().len(), 3);

    let (status, truncated, body) = send(&state, post(&format!("{sql} LIMIT 3"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(truncated, "false", "{body}");

    let uri = "/query?lang=en&sql=SELECT%20service%2C%20year%20FROM%20kpi_requests";
    let (status, _, page) = send(&state, Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<caption>Query result: 3 rows</caption>"),
        "{page}"
    );
    assert!(page.contains("the page shows its first 3 rows, the downloads up to 3"));
}

#[tokio::test]
async fn public_sql_gives_the_figure_worked_out_by_hand() {
    // From the fixture, by hand: nursery enrolment 2017 has 12 submitted requests, 10 of
    // them online or by app (the same figure the pages show as 83,3%).
    let (_dir, state) = state_with(civica_dashboard::routes::query::DEFAULT_LIMITS);
    let sql = "SELECT numerator, denominator, value FROM kpi_online_share \
               WHERE service = 'iscrizione_scuola_infanzia' AND year = 2017";
    let (status, _, body) = send(&state, post(sql)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let row = &body["rows"][0];
    assert_eq!(
        (row["numerator"].as_i64(), row["denominator"].as_i64()),
        (Some(10), Some(12))
    );
    assert!((row["value"].as_f64().unwrap() - 1000.0 / 12.0).abs() < 1e-9);
}

#[tokio::test]
async fn with_every_query_slot_taken_a_statement_is_answered_503_with_retry_after() {
    let (_dir, state) = state_with(civica_dashboard::routes::query::DEFAULT_LIMITS);
    let slots = state.limits.concurrent_queries;
    let taken = std::sync::Arc::clone(&state.query_slots)
        .acquire_many_owned(u32::try_from(slots).unwrap())
        .await
        .unwrap();
    let response = app(state.clone())
        .oneshot(post("SELECT 1 AS one"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"], "busy");
    // The page runs its statement in the same slots.
    let page = app(state.clone())
        .oneshot(
            Request::get("/query?sql=SELECT%201")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(taken);
    let (status, _, body) = send(&state, post("SELECT 1 AS one")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
