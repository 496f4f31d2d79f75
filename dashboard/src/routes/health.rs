//! Probes and metrics for operators: `/healthz` (the process answers), `/readyz` (the
//! warehouse opens and has a commit: the pages have data to show) and `/metrics` (for the
//! operators' network, or with a staff API token).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::client::ClientAddr;
use crate::error::AppError;
use crate::observability::METRICS_MEDIA_TYPE;
use crate::staff::Viewer;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(get_health))
        .route("/readyz", get(get_ready))
        .route("/metrics", get(get_metrics))
}

async fn get_health() -> &'static str {
    "ok"
}

/// 200 once the warehouse has a commit, 503 while it is empty or cannot be read.
async fn get_ready(State(state): State<AppState>) -> Response {
    match state.engine.version() {
        Ok(version) if version > 0 => (StatusCode::OK, format!("ready: version {version}\n")),
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the warehouse has no commit\n".to_string(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the warehouse cannot be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the warehouse cannot be read\n".to_string(),
            )
        }
    }
    .into_response()
}

/// The metrics in the OpenMetrics text format, with the warehouse read at scrape time; for
/// clients of the networks allowed (`--metrics-from`, loopback by default) or with a staff
/// API token.
async fn get_metrics(
    State(state): State<AppState>,
    viewer: Viewer,
    client: ClientAddr,
) -> Result<Response, AppError> {
    if !viewer.is_staff() && !state.network.may_read_metrics(client.0) {
        return Err(AppError::Forbidden {
            message: "the metrics are for the operators' network or a staff API token".into(),
        });
    }
    let version = state.engine.version()?;
    let counts = state.engine.latest_commit_counts()?;
    let text = state
        .metrics
        .encode(version, counts)
        .map_err(|_| AppError::internal(std::io::Error::other("encoding the metrics")))?;
    Ok((
        [
            (header::CONTENT_TYPE, METRICS_MEDIA_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}
