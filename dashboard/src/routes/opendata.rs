//! Open-data downloads: `GET /opendata/{kpi}.csv`, by service and year unless `?by=` says
//! otherwise; the same filters as the JSON API (`year`, `service`, `area`, `channel`, `from`,
//! `to`), so that every chart can link the CSV of exactly its own query.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use civica_analytics::Dimension;
use civica_analytics::format::{OutputFormat, encode_batches};

use crate::AppState;
use crate::error::AppError;
use crate::routes::api::{KpiParams, kpi_query};

pub fn router() -> Router<AppState> {
    Router::new().route("/opendata/{file}", get(download_dataset))
}

async fn download_dataset(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(params): Query<KpiParams>,
) -> Result<impl IntoResponse, AppError> {
    let not_found = || AppError::NotFound {
        message: format!("no dataset named `{file}`"),
    };
    let id = file.strip_suffix(".csv").ok_or_else(not_found)?;
    let def = state.engine.catalogue().kpi(id).map_err(|_| not_found())?;
    let query = kpi_query(&def.id, &params, &[Dimension::Service, Dimension::Year])?;
    let result = state.engine.kpi(&query).await?;
    let body = encode_batches(&[result.batch()?], OutputFormat::Csv)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.csv\"", result.kpi.id),
            ),
        ],
        body,
    ))
}
