//! Public SQL over the disclosure-controlled KPI views (`kpi_<id>`): the API
//! (`GET /api/v1/query?sql=…` and `POST /api/v1/query` with `{"sql": "…"}`, registered with the
//! rest of `/api/v1` by `routes::api_v1`) and the page `/query`, a plain GET form whose URL can
//! be shared, with the result as a table and links to download it.
//!
//! The statement goes to `Engine::query_rows` as typed text with the public audience: one
//! read-only statement naming only the KPI views, within [`AppState::query_limits`] (time,
//! memory, rows). A longer result is cut and says so (`truncated`, the `civica-truncated`
//! header); a refused or failing statement is a 400 with the engine's message.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use civica_analytics::QueryLimits;
use civica_analytics::sql::QueryRows;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::client::ClientAddr;
use crate::error::AppError;
use crate::i18n::LangChoice;
use crate::negotiation::{Format, table_response};
use crate::routes::api_v1::{BinaryTable, ErrorBody, json_rows};
use crate::routes::error_pages;
use crate::staff::Viewer;
use crate::views;

/// The bounds of public SQL unless the server is told otherwise.
pub const DEFAULT_LIMITS: QueryLimits = QueryLimits {
    memory_bytes: 256 << 20,
    timeout: std::time::Duration::from_secs(10),
    max_rows: 10_000,
};

/// The longest statement accepted, in characters.
pub const MAX_SQL_CHARS: usize = 10_000;

/// The response header saying whether a result was cut at the row limit.
pub const TRUNCATED_HEADER: &str = "civica-truncated";

/// The page `/query`.
pub fn router() -> Router<AppState> {
    Router::new().route("/query", get(get_query_page))
}

/// A statement to run.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// One read-only statement (`SELECT`, `WITH … SELECT`, `EXPLAIN`) over the views
    /// `kpi_<id>`, at most 10,000 characters.
    pub sql: String,
}

/// The statement, and the format of the answer.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    /// One read-only statement over the views `kpi_<id>`.
    sql: String,
    /// `json`, `csv`, `parquet` or `arrow`; overrides `Accept`.
    format: Option<String>,
}

/// The format of the answer.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FormatParams {
    /// `json`, `csv`, `parquet` or `arrow`; overrides `Accept`.
    format: Option<String>,
}

/// A column of a result.
#[derive(Debug, Serialize, ToSchema)]
pub struct Column {
    pub name: String,
    /// The Arrow data type, e.g. `Utf8`, `Int64`, `Float64`.
    pub data_type: String,
}

/// The result of a statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    /// One object per row (columns whose value is null are left out).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Value>,
    /// The result had more than `max_rows` rows: these are the first ones.
    pub truncated: bool,
    /// The most rows an answer holds.
    pub max_rows: u64,
    /// The warehouse version the views were computed from.
    pub version: u64,
}

/// Runs read-only SQL over the public KPI views (the statement in the query string).
///
/// The views `kpi_<id>` hold each catalogue KPI by service (when it has services) and its
/// default period, disclosure-controlled: a withheld cell has no value and `flag =
/// suppressed`. Results are cut at `max_rows` rows; queries stop after 10 seconds.
#[utoipa::path(get, path = "/api/v1/query", tag = "query",
    params(QueryParams),
    responses(
        (status = 200, description = "The result, at most `max_rows` rows", content(
            (QueryResult = "application/json"),
            (String = "text/csv"),
            (BinaryTable = "application/vnd.apache.parquet"),
            (BinaryTable = "application/vnd.apache.arrow.stream"),
        ), headers(
            ("civica-truncated" = bool, description = "`true` when the result was cut at the row limit"),
        )),
        (status = 400, description = "Refused or failed: not one read-only statement, a table other than the KPI views, too long, an SQL error or past the time limit", body = ErrorBody),
        (status = 406, description = "No acceptable format", body = ErrorBody),
        (status = 429, description = "Too many statements from this address; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "Every query slot is taken; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn get_query(
    State(state): State<AppState>,
    viewer: Viewer,
    params: Result<Query<QueryParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest {
        message: e.body_text(),
    })?;
    let format = Format::of_request(params.format.as_deref(), &headers)?;
    answer(&state, &viewer, &params.sql, format).await
}

/// Runs read-only SQL over the public KPI views (the statement in a JSON body).
///
/// The same as `GET /api/v1/query`, for statements too long for a URL.
#[utoipa::path(post, path = "/api/v1/query", tag = "query",
    params(FormatParams),
    request_body(content = QueryRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The result, at most `max_rows` rows", content(
            (QueryResult = "application/json"),
            (String = "text/csv"),
            (BinaryTable = "application/vnd.apache.parquet"),
            (BinaryTable = "application/vnd.apache.arrow.stream"),
        ), headers(
            ("civica-truncated" = bool, description = "`true` when the result was cut at the row limit"),
        )),
        (status = 400, description = "A malformed body, or a statement refused or failed (see `GET`)", body = ErrorBody),
        (status = 413, description = "A body larger than the server accepts (1 MiB by default)", body = ErrorBody),
        (status = 406, description = "No acceptable format", body = ErrorBody),
        (status = 429, description = "Too many statements from this address; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "Every query slot is taken; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn post_query(
    State(state): State<AppState>,
    viewer: Viewer,
    params: Result<Query<FormatParams>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Json<QueryRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest {
        message: e.body_text(),
    })?;
    let format = Format::of_request(params.format.as_deref(), &headers)?;
    let Json(body) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge {
                message: e.body_text(),
            }
        } else {
            AppError::BadRequest {
                message: e.body_text(),
            }
        }
    })?;
    answer(&state, &viewer, &body.sql, format).await
}

/// Runs `sql` and answers in `format`, saying whether the result was cut.
async fn answer(
    state: &AppState,
    viewer: &Viewer,
    sql: &str,
    format: Format,
) -> Result<Response, AppError> {
    let rows = run(state, viewer, sql, state.query_limits).await?;
    let mut response = if format == Format::Json {
        let schema =
            rows.batches.first().map(|b| b.schema()).ok_or_else(|| {
                AppError::internal(std::io::Error::other("a result without schema"))
            })?;
        Json(QueryResult {
            columns: schema
                .fields()
                .iter()
                .map(|f| Column {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                })
                .collect(),
            rows: json_rows(&rows.batches)?,
            truncated: rows.truncated,
            max_rows: rows.max_rows as u64,
            version: rows.version,
        })
        .into_response()
    } else {
        table_response(&rows.batches, format, "query")?
    };
    response.headers_mut().insert(
        TRUNCATED_HEADER,
        HeaderValue::from_static(if rows.truncated { "true" } else { "false" }),
    );
    if viewer.is_staff() {
        // Full tables: never kept by a cache, never given to another viewer.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    Ok(response)
}

/// Runs the statement `sql` for `viewer` (the public: the KPI views; staff: every table)
/// within `limits`, after checking that there is one and that it is not too long.
pub(crate) async fn run(
    state: &AppState,
    viewer: &Viewer,
    sql: &str,
    limits: QueryLimits,
) -> Result<QueryRows, AppError> {
    let sql = sql.trim();
    if sql.is_empty() {
        return Err(AppError::BadRequest {
            message: "the statement is empty".into(),
        });
    }
    let length = sql.chars().count();
    if length > MAX_SQL_CHARS {
        return Err(AppError::BadRequest {
            message: format!("the statement has {length} characters; the limit is {MAX_SQL_CHARS}"),
        });
    }
    // Held until the statement has run; when every slot is taken the client is asked to
    // come back rather than queued, so that waiting requests cannot pile up.
    let _slot = Arc::clone(&state.query_slots)
        .try_acquire_owned()
        .map_err(|_| AppError::Busy {
            retry_after: std::time::Duration::from_secs(1),
        })?;
    Ok(state
        .engine
        .query_rows(sql, viewer.audience(), limits)
        .await?)
}

/// The query string of the page.
#[derive(Debug, Default, Deserialize)]
pub struct QueryPageParams {
    pub lang: Option<String>,
    pub sql: Option<String>,
}

/// The form, and the result of `?sql=` when there is one (400 with the page when the
/// statement is refused). Not cached: results are cheap to recompute and costly to keep.
async fn get_query_page(
    State(state): State<AppState>,
    viewer: Viewer,
    client: ClientAddr,
    Query(params): Query<QueryPageParams>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let choice = LangChoice::negotiate(params.lang.as_deref(), accept);
    // Running a statement counts against the allowance of the query API; the form alone
    // does not.
    let statement = params
        .sql
        .as_deref()
        .is_some_and(|sql| !sql.trim().is_empty());
    if statement && let Err(wait) = state.query_rate.check(client.0) {
        let refusal = AppError::TooManyRequests { retry_after: wait }.into_response();
        return Ok(error_pages::as_page(refusal, choice, &uri));
    }
    let page = views::query::build(&state, choice, &viewer, params.sql.as_deref()).await?;
    let status = if page.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = askama::Template::render(&page).map_err(AppError::internal)?;
    Ok((
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_LANGUAGE, choice.lang.code()),
            (
                header::CACHE_CONTROL,
                if viewer.is_staff() {
                    "private, no-store"
                } else {
                    "no-cache"
                },
            ),
            (header::VARY, "Accept-Language"),
        ],
        body,
    )
        .into_response())
}
