//! Charts as images for reports: `/charts{page path}/{chart id}.png` (or `.svg`) draws the
//! chart of that page with the page's own filters and language, e.g.
//! `/charts/servizi/iscrizione_scuola_infanzia/channel-mix.png?channel=online`. The handler
//! builds the very page (same queries, hence the same disclosure-controlled cells) and draws
//! the figure's chart data again in the format asked for. Signed-in staff get the chart of
//! the page they see: internal figures.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::charts::{Chart, ChartOptions};
use crate::error::AppError;
use crate::routes::pages::{canonical, language};
use crate::staff::Viewer;
use crate::views::{self, Filters, PageParams, Reader};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/charts/{file}", get(get_overview_chart))
        .route("/charts/confronto/{file}", get(get_comparison_chart))
        .route("/charts/servizi/{code}/{file}", get(get_service_chart))
        // Links to charts are followed from pages: errors are pages too.
        .layer(axum::middleware::from_fn(super::error_pages::html_errors))
}

/// The image formats of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageFormat {
    Png,
    Svg,
}

/// `online-share-chart.png` → (`online-share-chart`, PNG).
fn chart_file(file: &str) -> Result<(&str, ImageFormat), AppError> {
    let not_found = || AppError::NotFound {
        message: format!("no chart `{file}`; charts end in .png or .svg"),
    };
    let (id, extension) = file.rsplit_once('.').ok_or_else(not_found)?;
    let format = match extension {
        "png" => ImageFormat::Png,
        "svg" => ImageFormat::Svg,
        _ => return Err(not_found()),
    };
    Ok((id, format))
}

/// The chart drawn in `format`, or 404 when the page has no chart `id`.
fn image(
    chart: Option<(&Chart, &ChartOptions)>,
    id: &str,
    format: ImageFormat,
    viewer: &Viewer,
) -> Result<Response, AppError> {
    let Some((chart, options)) = chart else {
        return Err(AppError::NotFound {
            message: format!("this page has no chart `{id}`"),
        });
    };
    let (body, content_type) = match format {
        ImageFormat::Png => (chart.png(options).map_err(AppError::internal)?, "image/png"),
        ImageFormat::Svg => (
            chart.svg(options).map_err(AppError::internal)?.into_bytes(),
            "image/svg+xml",
        ),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A new commit must show at once, as for pages; staff charts have internal figures.
    let cache = if viewer.is_staff() {
        "private, no-store"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Accept-Encoding"),
    );
    Ok(response)
}

async fn get_overview_chart(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (id, format) = chart_file(&file)?;
    let choice = language(&params, &headers);
    let filters = Filters {
        from: None,
        to: None,
        ..Filters::parse(&params)?
    };
    let url = canonical("/", &filters);
    let page = views::overview::build(&Reader::new(&state.engine, &viewer), choice, &filters, &url)
        .await?;
    image(page.chart(id), id, format, &viewer)
}

async fn get_comparison_chart(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (id, format) = chart_file(&file)?;
    let choice = language(&params, &headers);
    let filters = Filters::parse(&params)?;
    let url = canonical("/confronto", &filters);
    let page =
        views::comparison::build(&Reader::new(&state.engine, &viewer), choice, &filters, &url)
            .await?;
    image(page.chart(id), id, format, &viewer)
}

async fn get_service_chart(
    State(state): State<AppState>,
    Path((code, file)): Path<(String, String)>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (id, format) = chart_file(&file)?;
    let choice = language(&params, &headers);
    // As on the service page: the area is the service's own.
    let filters = Filters {
        area: None,
        ..Filters::parse(&params)?
    };
    if state.engine.catalogue().service(&code).is_none() {
        return Err(AppError::NotFound {
            message: format!("no service with code `{code}`"),
        });
    }
    let url = canonical(&format!("/servizi/{code}"), &filters);
    let page = views::service::build(
        &Reader::new(&state.engine, &viewer),
        choice,
        &code,
        &filters,
        &url,
    )
    .await?;
    image(page.chart(id), id, format, &viewer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_files_name_an_id_and_a_format() {
        assert_eq!(
            chart_file("channel-mix.png").unwrap(),
            ("channel-mix", ImageFormat::Png)
        );
        assert_eq!(
            chart_file("yearly-requests.svg").unwrap(),
            ("yearly-requests", ImageFormat::Svg)
        );
        assert!(chart_file("channel-mix.gif").is_err());
        assert!(chart_file("channel-mix").is_err());
    }
}
