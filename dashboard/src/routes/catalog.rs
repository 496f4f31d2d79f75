//! The DCAT-AP_IT catalogue that dati.gov.it harvests: `/catalog.ttl`, `/catalog.rdf`,
//! `/catalog.jsonld`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use civica_analytics::opendata::OpenDataConfig;

use crate::AppState;
use crate::dcat::{CatalogFormat, catalog_triples, serialise};
use crate::error::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/catalog.ttl",
            get(|s, h| get_catalog(s, h, CatalogFormat::Turtle)),
        )
        .route(
            "/catalog.rdf",
            get(|s, h| get_catalog(s, h, CatalogFormat::RdfXml)),
        )
        .route(
            "/catalog.jsonld",
            get(|s, h| get_catalog(s, h, CatalogFormat::JsonLd)),
        )
}

/// The site's address: the configured base URI, else the `Host` the request came to (with
/// the scheme a proxy reports in `X-Forwarded-Proto`), without a trailing slash.
pub fn site_base(config: &OpenDataConfig, headers: &HeaderMap) -> String {
    if let Some(base) = &config.publisher.base_uri {
        return base.trim_end_matches('/').to_string();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    // A host is letters, digits, dots, dashes, brackets and a port: anything else would
    // make invalid IRIs, so it falls back to localhost.
    let host = header("host")
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

async fn get_catalog(
    State(state): State<AppState>,
    headers: HeaderMap,
    format: CatalogFormat,
) -> Result<Response, AppError> {
    let base = site_base(&state.opendata, &headers);
    let modified = state
        .engine
        .last_modified()?
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let triples = catalog_triples(&state.opendata, &base, modified).map_err(AppError::internal)?;
    let body = serialise(&triples, format).map_err(AppError::internal)?;
    Ok(([(header::CONTENT_TYPE, format.media_type())], body).into_response())
}
