//! Liveness probe.

use axum::Router;
use axum::routing::get;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(get_health))
}

async fn get_health() -> &'static str {
    "ok"
}
