//! HTML pages: the home page with online share by service and year.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use civica_analytics::{Dimension, KpiQuery};
use serde::Deserialize;

use crate::AppState;
use crate::charts::{Bar, ChartOptions, percent_it, render_percent_bars};
use crate::error::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(get_home))
        .route("/static/civica.css", get(get_stylesheet))
}

/// The stylesheet, embedded in the binary: pages need no network at run time.
const STYLESHEET: &str = include_str!("../../static/civica.css");

async fn get_stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

#[derive(Debug, Deserialize)]
pub struct HomeParams {
    year: Option<String>,
}

/// One row of the chart's companion table.
pub struct ShareRow {
    pub service: String,
    pub label: String,
    pub share: String,
    pub numerator: String,
    pub denominator: String,
}

/// One row of the service × year table.
pub struct TrendRow {
    pub label: String,
    pub cells: Vec<String>,
}

/// One entry of the year selector.
pub struct YearOption {
    pub value: i32,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    pub years: Vec<i32>,
    pub year_options: Vec<YearOption>,
    pub chart_svg: String,
    pub chart_caption: String,
    pub shares: Vec<ShareRow>,
    pub trend: Vec<TrendRow>,
    pub version: u64,
}

/// A count as shown in tables: `—` when withheld.
fn count_text(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), |v| format!("{}", v.round() as i64))
}

async fn get_home(
    State(state): State<AppState>,
    Query(params): Query<HomeParams>,
) -> Result<HomePage, AppError> {
    let engine = &state.engine;
    let all = engine
        .kpi(&KpiQuery::new("online_share").by(vec![Dimension::Service, Dimension::Year]))
        .await?
        .rows();
    let catalogue = engine.catalogue();
    let service_label = |code: &str| catalogue.service_name(code, "it").to_string();

    // Pivot: services × years.
    let mut years: Vec<i32> = all.iter().filter_map(|r| r.dims[1].parse().ok()).collect();
    years.sort_unstable();
    years.dedup();
    let mut by_service: BTreeMap<String, BTreeMap<i32, Option<f64>>> = BTreeMap::new();
    for row in &all {
        if let Ok(year) = row.dims[1].parse::<i32>() {
            by_service
                .entry(row.dims[0].clone())
                .or_default()
                .insert(year, row.value);
        }
    }
    let trend = by_service
        .iter()
        .map(|(service, cells)| TrendRow {
            label: service_label(service),
            cells: years
                .iter()
                .map(|y| match cells.get(y) {
                    Some(Some(v)) => percent_it(*v),
                    _ => "—".to_string(),
                })
                .collect(),
        })
        .collect();

    let year = match params
        .year
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(text) => {
            let year = text.parse::<i32>().map_err(|_| AppError::BadRequest {
                message: format!("`{text}` is not a year"),
            })?;
            Some(year)
        }
        None => engine.latest_full_year().await?,
    };

    let mut shares: Vec<ShareRow> = all
        .iter()
        .filter(|r| Some(r.dims[1].as_str()) == year.map(|y| y.to_string()).as_deref())
        .map(|r| ShareRow {
            service: r.dims[0].clone(),
            label: service_label(&r.dims[0]),
            share: r.value.map(percent_it).unwrap_or_else(|| "n.d.".into()),
            numerator: count_text(r.numerator),
            denominator: count_text(r.denominator),
        })
        .collect();
    let value_of = |service: &str| {
        all.iter()
            .find(|r| {
                r.dims[0] == service
                    && Some(r.dims[1].as_str()) == year.map(|y| y.to_string()).as_deref()
            })
            .and_then(|r| r.value)
    };
    shares.sort_by(|a, b| {
        value_of(&b.service)
            .partial_cmp(&value_of(&a.service))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.label.cmp(&b.label))
    });
    let bars: Vec<Bar> = shares
        .iter()
        .map(|s| Bar {
            label: s.label.clone(),
            value: value_of(&s.service),
        })
        .collect();
    let year_text = year.map(|y| y.to_string()).unwrap_or_default();
    let chart_caption = match year {
        Some(year) => format!("Quota di richieste presentate online per servizio, {year}"),
        None => "Quota di richieste presentate online per servizio".to_string(),
    };
    let description = match (shares.first(), shares.last()) {
        (Some(top), Some(bottom)) if shares.len() > 1 => format!(
            "Nel {year_text} il servizio con la quota online più alta è {} ({}), quello con la più bassa è {} ({}).",
            top.label, top.share, bottom.label, bottom.share
        ),
        (Some(only), _) => format!("Nel {year_text}: {} {}.", only.label, only.share),
        _ => "Nessun dato per l'anno scelto.".to_string(),
    };
    let chart_svg = render_percent_bars(
        &bars,
        &ChartOptions {
            id: "online-share-chart".into(),
            title: chart_caption.clone(),
            description,
        },
    )
    .map_err(AppError::internal)?;

    let year_options = years
        .iter()
        .map(|y| YearOption {
            value: *y,
            selected: Some(*y) == year,
        })
        .collect();
    Ok(HomePage {
        years,
        year_options,
        chart_svg,
        chart_caption,
        shares,
        trend,
        version: engine.version()?,
    })
}
