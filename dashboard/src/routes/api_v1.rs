//! The documented JSON API under `/api/v1` (KPI catalogue, KPI values, services, datasets,
//! warehouse version) and its OpenAPI 3.1 document at `/api/openapi.json`.
//!
//! Every route is registered once, with its documentation (`utoipa-axum`), so the document
//! cannot drift from the router. Values are computed for the public audience only; errors
//! share one shape, [`ErrorBody`]; any origin may read (CORS open for `GET`).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use civica_analytics::Audience;
use civica_analytics::format::{OutputFormat, encode_batches};
use civica_analytics::opendata::{DATASETS, DownloadFormat};
use serde::{Deserialize, Serialize};
use tower_http::cors::{Any, CorsLayer};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::AppError;
use crate::routes::api;

#[derive(OpenApi)]
#[openapi(info(
    title = "civica API",
    description = "Public-service KPIs of the city, disclosure-controlled: cells resting on too few observations are withheld (`flag = suppressed`, value `null`)."
))]
struct ApiDoc;

/// The `/api/v1` routes and `/api/openapi.json`, with validators from the warehouse version.
pub fn router(state: &AppState) -> Router<AppState> {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_kpis))
        .routes(routes!(get_kpi))
        .routes(routes!(list_services))
        .routes(routes!(list_datasets))
        .routes(routes!(get_version))
        .split_for_parts();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_string();
    let openapi = Arc::new(openapi);
    router
        .route(
            "/api/openapi.json",
            get(move || {
                let openapi = Arc::clone(&openapi);
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            cache_by_version,
        ))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET]),
        )
}

/// How long clients and proxies may reuse an answer without asking again.
const MAX_AGE: &str = "public, max-age=300";

/// Answers depend only on the warehouse version (and the build): the version is the ETag,
/// and a client that already holds it gets `304 Not Modified`.
async fn cache_by_version(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(version) = state.engine.version() else {
        return next.run(request).await;
    };
    let etag = format!("\"{}-{version}\"", env!("CARGO_PKG_VERSION"));
    let held = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if held {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        next.run(request).await
    };
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        if let Ok(value) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(MAX_AGE));
    }
    response
}

/// The one error shape of the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `bad_request`, `not_found` or `internal`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}

/// A text in Italian and English.
#[derive(Debug, Serialize, ToSchema)]
pub struct Texts {
    pub it: String,
    pub en: String,
}

impl From<&civica_analytics::catalogue::Texts> for Texts {
    fn from(t: &civica_analytics::catalogue::Texts) -> Self {
        Texts {
            it: t.it.clone(),
            en: t.en.clone(),
        }
    }
}

/// The serde name of a unit-like enum (`percent`, `year`).
fn name_of(value: impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A KPI of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiSummary {
    pub id: String,
    pub title: Texts,
    pub description: Texts,
    /// `percent`, `count`, `score` or `days`.
    pub unit: String,
    /// Breakdowns allowed besides the periods (`year`, `quarter`, `month`, `school_year`).
    pub dimensions: Vec<String>,
    pub default_period: String,
}

#[utoipa::path(get, path = "/api/v1/kpis", tag = "kpis",
    responses((status = 200, description = "The KPI catalogue", body = Vec<KpiSummary>)))]
async fn list_kpis(State(state): State<AppState>) -> Json<Vec<KpiSummary>> {
    Json(
        state
            .engine
            .catalogue()
            .kpis
            .iter()
            .map(|k| KpiSummary {
                id: k.id.clone(),
                title: (&k.title).into(),
                description: (&k.description).into(),
                unit: name_of(k.unit),
                dimensions: k.dimensions.clone(),
                default_period: name_of(k.default_period),
            })
            .collect(),
    )
}

/// Breakdown and filters of a KPI request.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KpiParams {
    /// Comma-separated dimensions, e.g. `service,year`.
    by: Option<String>,
    /// Comma-separated years, e.g. `2016,2017`.
    year: Option<String>,
    /// Comma-separated service codes.
    service: Option<String>,
    /// Comma-separated areas.
    area: Option<String>,
    /// Comma-separated channels.
    channel: Option<String>,
    /// First local date, `YYYY-MM-DD`.
    from: Option<String>,
    /// Last local date, `YYYY-MM-DD`.
    to: Option<String>,
}

/// A KPI's values.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiValues {
    pub kpi: String,
    pub title: Texts,
    pub unit: String,
    pub by: Vec<String>,
    /// Always `public`.
    pub audience: String,
    /// Cells with fewer observations are withheld.
    pub min_cell: u64,
    /// The warehouse version the values come from.
    pub version: u64,
    /// One object per cell: the dimensions, `value`, `numerator`, `denominator`, `n`,
    /// `ci_low`, `ci_high`, `change`, `flag` (`null` when withheld).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Value>,
}

impl KpiParams {
    /// The same breakdown and filters as the unversioned API takes them.
    fn as_api(&self) -> api::KpiParams {
        api::KpiParams {
            by: self.by.clone(),
            year: self.year.clone(),
            service: self.service.clone(),
            area: self.area.clone(),
            channel: self.channel.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/kpis/{id}", tag = "kpis",
    params(("id" = String, Path, description = "KPI id, e.g. `online_share`"), KpiParams),
    responses(
        (status = 200, description = "The KPI's values, disclosure-controlled", body = KpiValues),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 404, description = "No such KPI", body = ErrorBody),
    ))]
async fn get_kpi(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<KpiParams>, QueryRejection>,
) -> Result<Json<KpiValues>, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest {
        message: e.body_text(),
    })?;
    let def = state
        .engine
        .catalogue()
        .kpi(&id)
        .map_err(|e| AppError::NotFound {
            message: e.to_string(),
        })?
        .clone();
    // Without `by`, the KPI over everything.
    let query = api::kpi_query(&def.id, &params.as_api(), &[])?.for_audience(Audience::Public);
    let by = query.by.clone();
    let result = state.engine.kpi(&query).await?;
    let rows = encode_batches(&[result.batch()?], OutputFormat::Json)?;
    let rows: Vec<serde_json::Value> = if rows.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&rows).map_err(AppError::internal)?
    };
    Ok(Json(KpiValues {
        kpi: def.id.clone(),
        title: (&def.title).into(),
        unit: name_of(def.unit),
        by: by.iter().map(|d| d.as_str().to_string()).collect(),
        audience: name_of(result.audience),
        min_cell: result.min_cell,
        version: state.engine.version()?,
        rows,
    }))
}

/// One of the city's services.
#[derive(Debug, Serialize, ToSchema)]
pub struct Service {
    /// The code used in the logs, KPIs and downloads.
    pub code: String,
    pub area: String,
    pub name: Texts,
    /// When the service went online (`YYYY-MM`), if known.
    pub online_since: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/services", tag = "catalogue",
    responses((status = 200, description = "The city's services", body = Vec<Service>)))]
async fn list_services(State(state): State<AppState>) -> Json<Vec<Service>> {
    Json(
        state
            .engine
            .catalogue()
            .services
            .iter()
            .map(|s| Service {
                code: s.code.clone(),
                area: s.area.clone(),
                name: (&s.name).into(),
                online_since: s.online_since.clone(),
            })
            .collect(),
    )
}

/// One file of a dataset.
#[derive(Debug, Serialize, ToSchema)]
pub struct Download {
    pub label: String,
    pub media_type: String,
    /// Site-relative URL.
    pub url: String,
}

/// An open dataset.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetSummary {
    pub id: String,
    pub title: Texts,
    pub description: Texts,
    /// `monthly` or `annual`.
    pub frequency: String,
    pub downloads: Vec<Download>,
    /// Site-relative URL of the Frictionless descriptor.
    pub datapackage: String,
}

#[utoipa::path(get, path = "/api/v1/datasets", tag = "catalogue",
    responses((status = 200, description = "The open datasets and their files", body = Vec<DatasetSummary>)))]
async fn list_datasets() -> Json<Vec<DatasetSummary>> {
    Json(
        DATASETS
            .iter()
            .map(|d| DatasetSummary {
                id: d.id.to_string(),
                title: Texts {
                    it: d.title_it.into(),
                    en: d.title_en.into(),
                },
                description: Texts {
                    it: d.description_it.into(),
                    en: d.description_en.into(),
                },
                frequency: name_of(d.frequency),
                downloads: DownloadFormat::ALL
                    .iter()
                    .map(|f| Download {
                        label: f.label().into(),
                        media_type: f.media_type().into(),
                        url: format!("/opendata/{}{}", d.id, f.suffix()),
                    })
                    .collect(),
                datapackage: format!("/opendata/{}/datapackage.json", d.id),
            })
            .collect(),
    )
}

/// The data's version.
#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    /// The warehouse version: the number of its latest commit (0 before the first ingest).
    pub warehouse: u64,
    /// The date of that commit, `YYYY-MM-DD`.
    pub modified: Option<String>,
    /// The version of civica serving the API.
    pub civica: String,
}

#[utoipa::path(get, path = "/api/v1/version", tag = "catalogue",
    responses(
        (status = 200, description = "The warehouse version", body = Version),
        (status = 500, description = "The warehouse cannot be read", body = ErrorBody),
    ))]
async fn get_version(State(state): State<AppState>) -> Result<Json<Version>, AppError> {
    Ok(Json(Version {
        warehouse: state.engine.version()?,
        modified: state
            .engine
            .last_modified()?
            .map(|d| d.format("%Y-%m-%d").to_string()),
        civica: env!("CARGO_PKG_VERSION").to_string(),
    }))
}
