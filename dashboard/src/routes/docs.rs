//! The API reference page, `/api/docs`: the OpenAPI document of `routes::api_v1` rendered as
//! HTML in the site's frame (no script), served through the page cache like every page.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use crate::AppState;
use crate::error::AppError;
use crate::routes::api_v1;
use crate::routes::pages::{cached, language};
use crate::staff::Viewer;
use crate::views::{self, PageParams, Reader};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/docs", get(get_api_docs))
}

async fn get_api_docs(
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let choice = language(&params, &headers);
    let reader = Reader::new(&state.engine, &viewer);
    let url = "/api/docs";
    cached(&state, &viewer, choice, url, &headers, || async {
        let document = serde_json::to_value(api_v1::openapi()).map_err(AppError::internal)?;
        views::api_docs::build(&reader, choice, &document, url)?
            .render()
            .map_err(AppError::internal)
    })
    .await
}
