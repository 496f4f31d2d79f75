//! The documented API under `/api/v1` (KPI catalogue, KPI values, services, datasets,
//! warehouse version, public SQL) and its OpenAPI 3.1 document at `/api/openapi.json`.
//!
//! Every route is registered once, with its documentation (`utoipa-axum`), so the document
//! cannot drift from the router. Values are computed for the public audience only; errors
//! share one shape, [`ErrorBody`]; any origin may read (CORS open). KPI values and query
//! results are tables, answered in JSON, CSV, Parquet or Arrow IPC by negotiation
//! ([`crate::negotiation`]); the other answers are JSON documents.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
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
use crate::limits::{RateLimitLayer, ServerLimits};
use crate::negotiation::{Format, table_response};
use crate::routes::{api, query};

#[derive(OpenApi)]
#[openapi(info(
    title = "civica API",
    description = "Public-service KPIs of the city, disclosure-controlled: cells resting on too few observations are withheld (`flag = suppressed`, value `null`)."
))]
struct ApiDoc;

/// The routes of `/api/v1` with their OpenAPI document.
fn documented(query_rate: RateLimitLayer) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    // Public SQL is the costly route: each client may call it only so often (the `/query`
    // page shares the allowance).
    let sql = OpenApiRouter::new()
        .routes(routes!(query::get_query, query::post_query))
        .layer(query_rate);
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_kpis))
        .routes(routes!(get_kpi))
        .routes(routes!(list_services))
        .routes(routes!(list_datasets))
        .routes(routes!(get_version))
        .merge(sql)
        .split_for_parts();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_string();
    (router, openapi)
}

/// The OpenAPI document of `/api/v1`, as served at `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented(RateLimitLayer::new(ServerLimits::default().query_rate)).1
}

/// The `/api/v1` routes and `/api/openapi.json`, with validators from the warehouse version.
pub fn router(state: &AppState) -> Router<AppState> {
    let (router, openapi) = documented(state.query_rate.clone());
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
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::ACCEPT, header::CONTENT_TYPE])
                .expose_headers([header::HeaderName::from_static(query::TRUNCATED_HEADER)]),
        )
}

/// How long clients and proxies may reuse an answer without asking again.
const MAX_AGE: &str = "public, max-age=300";

/// The `format` value of a query string, whatever else it holds.
#[derive(Debug, Default, Deserialize)]
struct FormatParam {
    format: Option<String>,
}

/// Answers depend only on the warehouse version (and the build) and, for tables, on the
/// negotiated format: the ETag is made of those, and a client that already holds it gets
/// `304 Not Modified`. Every answer varies with `Accept`. Only `GET` and `HEAD` are cached.
async fn cache_by_version(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let cacheable = matches!(*request.method(), Method::GET | Method::HEAD);
    let format = Query::<FormatParam>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(p)| Format::of_request(p.format.as_deref(), request.headers()).ok());
    let version = state.engine.version().ok().filter(|_| cacheable);
    // An unacceptable request is not answered from the client's cache: the handler refuses it
    // (or, for JSON documents, answers it in JSON).
    let etag = version.map(|version| {
        format!(
            "\"{}-{}-{version}\"",
            env!("CARGO_PKG_VERSION"),
            format.unwrap_or(Format::Json).name()
        )
    });
    let held = format.is_some()
        && etag.as_ref().is_some_and(|etag| {
            request
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
        });
    let mut response = if held {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        next.run(request).await
    };
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("accept"));
    let status = response.status();
    if let Some(etag) = etag
        && (status.is_success() || status == StatusCode::NOT_MODIFIED)
    {
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
    /// `bad_request`, `not_found`, `not_acceptable` or `internal`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}

/// A table as a binary file: Parquet, or an Arrow IPC stream.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BinaryTable(pub Vec<u8>);

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

/// The KPI catalogue.
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
    /// `json`, `csv`, `parquet` or `arrow`; overrides `Accept`.
    format: Option<String>,
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

/// The values of a KPI, disclosure-controlled.
///
/// In JSON, the values with the KPI's metadata; in CSV, Parquet or Arrow IPC (by `?format=`
/// or `Accept`), the table of cells alone: the dimensions, `value`, `numerator`,
/// `denominator`, `n`, `ci_low`, `ci_high`, `change`, `flag`.
#[utoipa::path(get, path = "/api/v1/kpis/{id}", tag = "kpis",
    params(("id" = String, Path, description = "KPI id, e.g. `online_share`"), KpiParams),
    responses(
        (status = 200, description = "The KPI's values, disclosure-controlled", content(
            (KpiValues = "application/json"),
            (String = "text/csv"),
            (BinaryTable = "application/vnd.apache.parquet"),
            (BinaryTable = "application/vnd.apache.arrow.stream"),
        )),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 404, description = "No such KPI", body = ErrorBody),
        (status = 406, description = "No acceptable format", body = ErrorBody),
    ))]
async fn get_kpi(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<KpiParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest {
        message: e.body_text(),
    })?;
    let format = Format::of_request(params.format.as_deref(), &headers)?;
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
    let batches = [result.batch()?];
    if format != Format::Json {
        return table_response(&batches, format, &def.id);
    }
    Ok(Json(KpiValues {
        kpi: def.id.clone(),
        title: (&def.title).into(),
        unit: name_of(def.unit),
        by: by.iter().map(|d| d.as_str().to_string()).collect(),
        audience: name_of(result.audience),
        min_cell: result.min_cell,
        version: result.version,
        rows: json_rows(&batches)?,
    })
    .into_response())
}

/// Rows of a result as JSON objects, one per row (`null` cells left out).
pub(crate) fn json_rows(
    batches: &[civica_analytics::arrow::record_batch::RecordBatch],
) -> Result<Vec<serde_json::Value>, AppError> {
    let rows = encode_batches(batches, OutputFormat::Json)?;
    if rows.is_empty() {
        Ok(Vec::new())
    } else {
        serde_json::from_slice(&rows).map_err(AppError::internal)
    }
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

/// The city's services.
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

/// The open datasets and the URLs of their files.
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

/// The version of the data and of civica.
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
