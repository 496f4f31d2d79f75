//! Errors of HTML routes as pages: a layer that turns the JSON error of a page handler (or an
//! extractor's rejection) into the error page of its status, in the request's language, and
//! the fallback of unknown paths (a 404 page, or the JSON error under `/api/`).

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::error::{AppError, ErrorInfo};
use crate::i18n::LangChoice;
use crate::views;

/// Middleware of the page routes: a 4xx or 5xx answer becomes the HTML error page.
pub async fn html_errors(request: Request, next: Next) -> Response {
    let choice = language(request.uri(), request.headers());
    let uri = request.uri().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    as_page(response, choice, &uri)
}

/// The error `response` (JSON) of a request of `uri` as the HTML error page.
pub(crate) fn as_page(response: Response, choice: LangChoice, uri: &Uri) -> Response {
    let status = response.status();
    let info = response.extensions().get::<ErrorInfo>().cloned();
    let mut page = error_page(choice, status, info.as_ref(), uri);
    // What the client is told to do next stays: when to retry (429, 503), how to sign in
    // (401), which methods the route takes (405).
    for name in [header::RETRY_AFTER, header::WWW_AUTHENTICATE, header::ALLOW] {
        if let Some(value) = response.headers().get(&name) {
            page.headers_mut().insert(name, value.clone());
        }
    }
    page
}

/// Unknown paths: the JSON error under `/api/`, the 404 page elsewhere.
pub async fn not_found(uri: Uri, headers: HeaderMap) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        return AppError::NotFound {
            message: format!("no resource at `{}`", uri.path()),
        }
        .into_response();
    }
    error_page(language(&uri, &headers), StatusCode::NOT_FOUND, None, &uri)
}

/// The error page of `status` for a request of `uri`.
fn error_page(
    choice: LangChoice,
    status: StatusCode,
    info: Option<&ErrorInfo>,
    uri: &Uri,
) -> Response {
    let page = views::error::build(choice, status, info, &without_lang(uri));
    match page.render() {
        Ok(html) => {
            let headers = [
                (header::CONTENT_LANGUAGE, choice.lang.code()),
                (header::CACHE_CONTROL, "no-store"),
                (header::VARY, "Accept-Language, Accept-Encoding"),
            ];
            (status, headers, Html(html)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering an error page");
            (status, status.canonical_reason().unwrap_or("error")).into_response()
        }
    }
}

/// The language of a request: `?lang=`, then `Accept-Language`, as for every page.
fn language(uri: &Uri, headers: &HeaderMap) -> LangChoice {
    let lang = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("lang="));
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    LangChoice::negotiate(lang, accept)
}

/// The path and query of `uri` without its `lang=` pair: the language switch adds its own.
fn without_lang(uri: &Uri) -> String {
    let pairs: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("lang="))
        .collect();
    if pairs.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), pairs.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_switch_drops_the_language_and_keeps_the_rest() {
        let uri: Uri = "/confronto?lang=en&year=abc".parse().unwrap();
        assert_eq!(without_lang(&uri), "/confronto?year=abc");
        let uri: Uri = "/nowhere?lang=en".parse().unwrap();
        assert_eq!(without_lang(&uri), "/nowhere");
        assert_eq!(language(&uri, &HeaderMap::new()).lang.code(), "en");
    }
}
