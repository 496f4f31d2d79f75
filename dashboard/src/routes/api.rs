//! The JSON API: `GET /api/kpi/{id}?by=service,year&year=2017`. The public gets
//! disclosure-controlled rows; signed-in staff and API tokens get every cell (`"audience":
//! "internal"`), in answers no cache keeps.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use civica_analytics::format::{OutputFormat, encode_batches};
use civica_analytics::kpi::parse_years;
use civica_analytics::{Dimension, KpiQuery};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::AppError;
use crate::staff::Viewer;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/kpi/{id}", get(get_kpi))
}

/// Query parameters of a KPI request.
#[derive(Debug, Deserialize)]
pub struct KpiParams {
    /// Comma-separated dimensions, e.g. `service,year`.
    pub(crate) by: Option<String>,
    /// Comma-separated years, e.g. `2016,2017`.
    pub(crate) year: Option<String>,
    /// Comma-separated service codes.
    pub(crate) service: Option<String>,
    /// Comma-separated areas.
    pub(crate) area: Option<String>,
    /// Comma-separated channels.
    pub(crate) channel: Option<String>,
    /// First local date, `YYYY-MM-DD`.
    pub(crate) from: Option<String>,
    /// Last local date, `YYYY-MM-DD`.
    pub(crate) to: Option<String>,
}

fn date(text: Option<&str>, name: &str) -> Result<Option<chrono::NaiveDate>, AppError> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| AppError::BadRequest {
                message: format!("`{name}={t}` is not a date such as 2017-01-31"),
            })
        })
        .transpose()
}

/// The KPI query of a request: `by` (or `default_by` when absent) and the filters.
pub fn kpi_query(
    id: &str,
    params: &KpiParams,
    default_by: &[Dimension],
) -> Result<KpiQuery, AppError> {
    let by = match params.by.as_deref() {
        Some(list) => Dimension::parse_list(list)?,
        None => default_by.to_vec(),
    };
    let mut query = KpiQuery::new(id)
        .by(by)
        .with_years(parse_years(params.year.as_deref())?)
        .with_lists(
            params.service.as_deref(),
            params.area.as_deref(),
            params.channel.as_deref(),
        );
    query.from = date(params.from.as_deref(), "from")?;
    query.to = date(params.to.as_deref(), "to")?;
    Ok(query)
}

async fn get_kpi(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(params): Query<KpiParams>,
) -> Result<Response, AppError> {
    let def = state
        .engine
        .catalogue()
        .kpi(&id)
        .map_err(|e| AppError::NotFound {
            message: e.to_string(),
        })?
        .clone();
    let query = kpi_query(&def.id, &params, &[])?.for_audience(viewer.audience());
    let by = query.by.clone();
    let result = state.engine.kpi(&query).await?;
    let rows = encode_batches(&[result.batch()?], OutputFormat::Json)?;
    let rows: Value = serde_json::from_slice(&rows).map_err(AppError::internal)?;
    let targets = state.engine.targets(&def.id).await?;
    let mut response = Json(json!({
        "kpi": def.id,
        "title": def.title,
        "description": def.description,
        "unit": def.unit,
        "by": by.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        "audience": result.audience,
        "min_cell": result.min_cell,
        "targets": targets,
        "version": result.version,
        "rows": rows,
    }))
    .into_response();
    if viewer.is_staff() {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    Ok(response)
}
