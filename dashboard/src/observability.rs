//! What the server tells its operators: a request id on every request and answer
//! (`x-request-id`), one structured log line per answer, and the metrics of `/metrics`
//! (requests by route and status, latency by route, warehouse version, ingest counts of the
//! latest commit) in the OpenMetrics text format that Prometheus scrapes.
//!
//! Routes are labelled by their template (`/api/v1/kpis/{id}`), never by the path that was
//! asked, so that the number of series stays bounded whatever clients send. Logs name the
//! path without its query string, which may hold SQL or other text typed by a visitor.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use civica_analytics::freshness::CommitCounts;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument;

/// The header carrying the request id, taken from the client (or a proxy) when it is a
/// short token, generated otherwise.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The media type of `/metrics`.
pub const METRICS_MEDIA_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The metrics of one server, and the source of its request ids.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    warehouse_version: Gauge,
    ingest_rows: Family<OutcomeLabels, Gauge>,
    ids: AtomicU64,
    id_seed: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("civica");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to answer headers, by route template",
            latency.clone(),
        );
        let warehouse_version = Gauge::default();
        registry.register(
            "warehouse_version",
            "Number of the latest warehouse commit (0 when empty)",
            warehouse_version.clone(),
        );
        let ingest_rows = Family::<OutcomeLabels, Gauge>::default();
        registry.register(
            "ingest_rows",
            "Rows of the latest commit: read, accepted, quarantined, duplicate",
            ingest_rows.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            warehouse_version,
            ingest_rows,
            ids: AtomicU64::new(0),
            id_seed: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl Metrics {
    /// A new request id: 16 hex digits, distinct within the process and not guessable from
    /// the previous one.
    fn next_id(&self) -> String {
        let mut hasher = self.id_seed.build_hasher();
        hasher.write_u64(self.ids.fetch_add(1, Ordering::Relaxed));
        format!("{:016x}", hasher.finish())
    }

    fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// The exposition, with the warehouse gauges set from `version` and `counts`.
    pub fn encode(
        &self,
        version: u64,
        counts: Option<CommitCounts>,
    ) -> Result<String, std::fmt::Error> {
        self.warehouse_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
        let counts = counts.unwrap_or(CommitCounts {
            commit: version,
            rows_read: 0,
            rows_accepted: 0,
            rows_quarantined: 0,
            rows_duplicate: 0,
        });
        for (outcome, rows) in [
            ("read", counts.rows_read),
            ("accepted", counts.rows_accepted),
            ("quarantined", counts.rows_quarantined),
            ("duplicate", counts.rows_duplicate),
        ] {
            self.ingest_rows
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.to_string(),
                })
                .set(i64::try_from(rows).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Whether a client's request id is kept: 1 to 64 letters, digits, `-`, `_` or `.`, so that
/// it cannot forge log lines or headers.
fn acceptable_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Middleware of the whole application: gives the request its id, logs the answer inside a
/// span that carries the id, counts it and echoes the id in the answer.
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_id(v))
        .map_or_else(|| metrics.next_id(), str::to_string);
    let header = HeaderValue::from_str(&id).ok();
    if let Some(value) = &header {
        request.headers_mut().insert(REQUEST_ID, value.clone());
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %method,
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            route = %route,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "answered"
        );
    });
    metrics.record(&route, &method, status, elapsed.as_secs_f64());
    if let Some(value) = header {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_that_could_forge_lines_are_replaced() {
        assert!(acceptable_id("3f2a-9c_1.b"));
        for bad in ["", "a b", "x\r\ny", "é", &"a".repeat(65)] {
            assert!(!acceptable_id(bad), "kept {bad:?}");
        }
    }

    #[test]
    fn generated_ids_differ() {
        let metrics = Metrics::default();
        let first = metrics.next_id();
        let second = metrics.next_id();
        assert_ne!(first, second);
        assert_eq!(first.len(), 16);
        assert!(acceptable_id(&first));
    }

    #[test]
    fn the_exposition_counts_requests_and_shows_the_latest_commit() {
        let metrics = Metrics::default();
        metrics.record("/api/v1/kpis", "GET", 200, 0.003);
        metrics.record("/api/v1/kpis", "GET", 200, 0.004);
        let text = metrics
            .encode(
                7,
                Some(CommitCounts {
                    commit: 7,
                    rows_read: 10,
                    rows_accepted: 8,
                    rows_quarantined: 1,
                    rows_duplicate: 1,
                }),
            )
            .unwrap();
        assert!(
            text.contains(
                r#"civica_http_requests_total{route="/api/v1/kpis",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains("civica_warehouse_version 7"), "{text}");
        assert!(
            text.contains(r#"civica_ingest_rows{outcome="quarantined"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"civica_http_request_duration_seconds_count{route="/api/v1/kpis"} 2"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
