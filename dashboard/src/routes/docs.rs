//! The API reference page, `/api/docs`: the OpenAPI document of `routes::api_v1` rendered as
//! HTML in the site's frame (no script), served through the page cache like every page.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;

use crate::AppState;
use crate::error::AppError;
use crate::i18n::LangChoice;
use crate::page_cache::serve_page;
use crate::routes::api_v1;
use crate::views::{self, PageParams};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/docs", get(get_api_docs))
}

async fn get_api_docs(
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let choice = LangChoice::negotiate(params.lang.as_deref(), accept);
    let engine = &state.engine;
    let url = "/api/docs";
    serve_page(
        &state.pages,
        || Ok(engine.version()?),
        choice.lang,
        format!(
            "{url}|lang={}|in-links={}",
            choice.lang.code(),
            choice.in_links
        ),
        &headers,
        || async {
            let document = serde_json::to_value(api_v1::openapi()).map_err(AppError::internal)?;
            views::api_docs::build(engine, choice, &document, url)?
                .render()
                .map_err(AppError::internal)
        },
    )
    .await
}
