//! The JSON API: `GET /api/kpi/{id}?by=service,year&year=2017`.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use civica_analytics::format::{OutputFormat, encode_batches};
use civica_analytics::{Dimension, KpiId, KpiQuery};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::AppError;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/kpi/{id}", get(get_kpi))
}

/// Query parameters of a KPI request.
#[derive(Debug, Deserialize)]
pub struct KpiParams {
    /// Comma-separated dimensions, e.g. `service,year`.
    by: Option<String>,
    /// Comma-separated years, e.g. `2016,2017`.
    year: Option<String>,
}

/// Parses `2016,2017` into years, naming the bad one.
pub fn parse_years(list: Option<&str>) -> Result<Vec<i32>, AppError> {
    list.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i32>()
                .ok()
                .filter(|y| (1900..=2200).contains(y))
                .ok_or_else(|| AppError::BadRequest {
                    message: format!("`{s}` is not a year"),
                })
        })
        .collect()
}

async fn get_kpi(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<KpiParams>,
) -> Result<Json<Value>, AppError> {
    let kpi = id.parse::<KpiId>().map_err(|e| AppError::NotFound {
        message: e.to_string(),
    })?;
    let by = Dimension::parse_list(params.by.as_deref().unwrap_or(""))?;
    let query = KpiQuery::new(kpi)
        .by(by.clone())
        .with_years(parse_years(params.year.as_deref())?);
    let result = state.engine.kpi(&query).await?;
    let rows = encode_batches(&result.batches, OutputFormat::Json)?;
    let rows: Value = serde_json::from_slice(&rows).map_err(AppError::internal)?;
    Ok(Json(json!({
        "kpi": kpi.as_str(),
        "title": { "it": kpi.title_it(), "en": kpi.title_en() },
        "unit": "percent",
        "by": by.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        "version": state.engine.version()?,
        "rows": rows,
    })))
}
