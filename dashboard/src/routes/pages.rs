//! HTML pages: overview, services, service pages, comparison, KPI method sheets, About; and
//! the embedded stylesheet. Handlers parse the query, pick the language, and serve the page
//! built by `crate::views` through the page cache (ETag, 304, warehouse-version keyed).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;
use crate::error::AppError;
use crate::i18n::LangChoice;
use crate::page_cache::{self, serve_page};
use crate::staff::Viewer;
use crate::views::{self, Filters, PageParams, Reader};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(get_overview))
        .route("/servizi", get(list_services))
        .route("/servizi/{code}", get(get_service))
        .route("/confronto", get(get_comparison))
        .route("/indicatori", get(list_indicators))
        .route("/indicatori/{id}", get(get_method))
        .route("/informazioni", get(get_about))
        .route("/static/civica.css", get(get_stylesheet))
        // Errors of these routes are answered as pages.
        .layer(axum::middleware::from_fn(super::error_pages::html_errors))
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

/// The language of a request: `?lang=`, then `Accept-Language`.
pub(crate) fn language(params: &PageParams, headers: &HeaderMap) -> LangChoice {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    LangChoice::negotiate(params.lang.as_deref(), accept)
}

/// `path` with the page's canonical filters as a query string (no language): the URL the
/// language switch points to and part of the cache key.
pub(crate) fn canonical(path: &str, filters: &Filters) -> String {
    let mut pairs = Vec::new();
    // A period overrides the year, so the year is not part of a page with a period.
    if let Some(year) = filters.year.filter(|_| filters.period().is_none()) {
        pairs.push(format!("year={year}"));
    }
    if let Some(from) = filters.from {
        pairs.push(format!("from={}", from.format("%Y-%m")));
    }
    if let Some(to) = filters.to {
        pairs.push(format!("to={}", to.format("%Y-%m")));
    }
    if let Some(area) = &filters.area {
        pairs.push(format!("area={area}"));
    }
    if let Some(channel) = &filters.channel {
        pairs.push(format!("channel={channel}"));
    }
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", pairs.join("&"))
    }
}

/// The cache key of a page: its canonical URL, its language and whether its links carry it.
fn cache_key(url: &str, choice: LangChoice) -> String {
    format!(
        "{url}|lang={}|in-links={}",
        choice.lang.code(),
        choice.in_links
    )
}

/// Serves the page at `url` in `choice`'s language through the page cache of `state`; for
/// staff, rendered afresh and kept by nobody (it shows internal figures).
pub(crate) async fn cached<F, Fut>(
    state: &AppState,
    viewer: &Viewer,
    choice: LangChoice,
    url: &str,
    headers: &HeaderMap,
    build: F,
) -> Result<Response, AppError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, AppError>>,
{
    let engine = &state.engine;
    let audience = if viewer.is_staff() {
        page_cache::Audience::Private
    } else {
        page_cache::Audience::Shared
    };
    serve_page(
        &state.pages,
        || Ok(engine.version()?),
        choice.lang,
        (cache_key(url, choice), audience),
        headers,
        build,
    )
    .await
}

fn render(page: impl Template) -> Result<String, AppError> {
    page.render().map_err(AppError::internal)
}

async fn get_overview(
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(&params, &headers);
    // The overview is by year only; a period is checked but not used.
    let filters = Filters {
        from: None,
        to: None,
        ..Filters::parse(&params)?
    };
    let url = canonical("/", &filters);
    let engine = &state.engine;
    let reader = Reader::new(engine, &viewer);
    cached(&state, &viewer, choice, &url, &headers, || async {
        render(views::overview::build(&reader, choice, &filters, &url).await?)
    })
    .await
}

async fn get_comparison(
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(&params, &headers);
    let filters = Filters::parse(&params)?;
    let url = canonical("/confronto", &filters);
    let engine = &state.engine;
    let reader = Reader::new(engine, &viewer);
    cached(&state, &viewer, choice, &url, &headers, || async {
        render(views::comparison::build(&reader, choice, &filters, &url).await?)
    })
    .await
}

/// The services index, or a redirect to the chosen service (the form of the index).
async fn list_services(
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(&params, &headers);
    let engine = &state.engine;
    let reader = Reader::new(engine, &viewer);
    if let Some(code) = params
        .service
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        if engine.catalogue().service(code).is_none() {
            return Err(AppError::NotFound {
                message: format!("no service with code `{code}`"),
            });
        }
        return Ok(Redirect::to(&choice.href(&format!("/servizi/{code}"))).into_response());
    }
    let url = "/servizi".to_string();
    cached(&state, &viewer, choice, &url, &headers, || async {
        render(views::services::build(&reader, choice, &url)?)
    })
    .await
}

async fn get_service(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(&params, &headers);
    let filters = Filters {
        area: None,
        ..Filters::parse(&params)?
    };
    let engine = &state.engine;
    let reader = Reader::new(engine, &viewer);
    if engine.catalogue().service(&code).is_none() {
        return Err(AppError::NotFound {
            message: format!("no service with code `{code}`"),
        });
    }
    let url = canonical(&format!("/servizi/{code}"), &filters);
    cached(&state, &viewer, choice, &url, &headers, || async {
        render(views::service::build(&reader, choice, &code, &filters, &url).await?)
    })
    .await
}

async fn list_indicators(
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(&params, &headers);
    let engine = &state.engine;
    let reader = Reader::new(engine, &viewer);
    let url = "/indicatori".to_string();
    cached(&state, &viewer, choice, &url, &headers, || async {
        render(views::method::build_index(&reader, choice, &url)?)
    })
    .await
}

async fn get_method(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(&params, &headers);
    let engine = &state.engine;
    let reader = Reader::new(engine, &viewer);
    if engine.catalogue().kpi(&id).is_err() {
        return Err(AppError::NotFound {
            message: format!("no KPI with id `{id}`"),
        });
    }
    let url = format!("/indicatori/{id}");
    cached(&state, &viewer, choice, &url, &headers, || async {
        render(views::method::build(&reader, choice, &id, &url).await?)
    })
    .await
}

async fn get_about(
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(&params, &headers);
    let engine = &state.engine;
    let reader = Reader::new(engine, &viewer);
    let url = "/informazioni".to_string();
    cached(&state, &viewer, choice, &url, &headers, || async {
        render(views::about::build(&reader, choice, &url)?)
    })
    .await
}
