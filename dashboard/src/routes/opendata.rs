//! Open data: the page listing the datasets (`/opendata`), their downloads
//! (`/opendata/{dataset}.csv`, `-excel.csv` or `.xlsx.csv`, `.json`, `.parquet`) and their
//! Frictionless descriptors (`/opendata/{dataset}/datapackage.json`). `/opendata/{kpi}.csv`
//! answers a catalogue KPI, by service and year unless `?by=` says otherwise, with the same
//! filters as the JSON API (`year`, `service`, `area`, `channel`, `from`, `to`), so that every
//! chart can link the CSV of exactly its own query.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use civica_analytics::Dimension;
use civica_analytics::format::{OutputFormat, encode_batches};
use civica_analytics::opendata::datapackage::datapackage;
use civica_analytics::opendata::{DATASETS, DownloadFormat, Frequency, dataset};

use crate::AppState;
use crate::error::AppError;
use crate::i18n::{Lang, LangChoice};
use crate::routes::api::{KpiParams, kpi_query};
use crate::routes::catalog::site_base;
use crate::views::{PageFrame, Section};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/opendata", get(list_datasets))
        .route("/opendata/{name}", get(download_dataset))
        .route("/opendata/{name}/datapackage.json", get(get_datapackage))
}

/// One download link of the page.
pub struct DownloadLink {
    pub href: String,
    pub label: &'static str,
}

/// One dataset of the page.
pub struct DatasetEntry {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub frequency: &'static str,
    pub downloads: Vec<DownloadLink>,
}

#[derive(Template, WebTemplate)]
#[template(path = "opendata.html")]
pub struct OpenDataPage {
    /// The page is written in Italian only: its frame is always Italian.
    pub frame: PageFrame,
    pub publisher: String,
    pub licence_title: String,
    pub licence_url: String,
    pub attribution: String,
    pub min_cell: u64,
    pub datasets: Vec<DatasetEntry>,
    pub version: u64,
}

async fn list_datasets(State(state): State<AppState>) -> Result<OpenDataPage, AppError> {
    let config = &state.opendata;
    let italian = LangChoice {
        lang: Lang::It,
        in_links: false,
    };
    let frame = PageFrame::new(
        &state.engine,
        italian,
        Section::OpenData,
        "/opendata",
        "Dati aperti — civica".to_string(),
    )?;
    let datasets = DATASETS
        .iter()
        .map(|d| DatasetEntry {
            id: d.id,
            title: d.title_it,
            description: d.description_it,
            frequency: match d.frequency {
                Frequency::Monthly => "mensile",
                Frequency::Annual => "annuale",
            },
            downloads: DownloadFormat::ALL
                .iter()
                .map(|f| DownloadLink {
                    href: format!("/opendata/{}{}", d.id, f.suffix()),
                    label: f.label(),
                })
                .collect(),
        })
        .collect();
    Ok(OpenDataPage {
        frame,
        publisher: config.publisher.name.clone(),
        licence_title: config.licence.title.clone(),
        licence_url: config.licence.url.clone(),
        attribution: config.licence.attribution.clone(),
        min_cell: state.engine.catalogue().disclosure.min_cell,
        datasets,
        version: state.engine.version()?,
    })
}

async fn download_dataset(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<KpiParams>,
) -> Result<Response, AppError> {
    let not_found = || AppError::NotFound {
        message: format!("no dataset named `{name}`"),
    };
    let (id, format) = DownloadFormat::split_file_name(&name).ok_or_else(not_found)?;
    let Some(dataset) = dataset(id) else {
        if format == DownloadFormat::Csv && state.engine.catalogue().kpi(id).is_ok() {
            return download_kpi(&state, id, &params).await;
        }
        return Err(not_found());
    };
    let table = state.engine.dataset(dataset).await?;
    let body = format.encode(&table, &state.opendata)?;
    Ok((
        [
            (header::CONTENT_TYPE, format.media_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}{}\"", dataset.id, format.suffix()),
            ),
        ],
        body,
    )
        .into_response())
}

/// A catalogue KPI for the public, by service and year unless `?by=` says otherwise.
async fn download_kpi(
    state: &AppState,
    id: &str,
    params: &KpiParams,
) -> Result<Response, AppError> {
    let query = kpi_query(id, params, &[Dimension::Service, Dimension::Year])?;
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
    )
        .into_response())
}

async fn get_datapackage(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let dataset = dataset(&name).ok_or_else(|| AppError::NotFound {
        message: format!("no dataset named `{name}`"),
    })?;
    let table = state.engine.dataset(dataset).await?;
    let base = site_base(&state.opendata, &headers);
    let csv_url = format!(
        "{base}/opendata/{}{}",
        dataset.id,
        DownloadFormat::Csv.suffix()
    );
    let descriptor = datapackage(&table, state.engine.catalogue(), &state.opendata, &csv_url);
    Ok(Json(descriptor).into_response())
}
