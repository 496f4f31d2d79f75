//! Delivery of rendered pages: a cache keyed by warehouse version, and ETags.
//!
//! A page is a pure function of the warehouse version, the language and the canonical query,
//! so its ETag is made of those three (and of the build, so that a new binary renders
//! afresh). A request whose `If-None-Match` matches gets `304 Not Modified` without any
//! rendering; otherwise the page comes from the cache when the version has not moved, and is
//! rendered (and cached) when it has. The version is read from the commit log on every
//! request, so a new ingest commit is visible without a restart.
//!
//! Pages seen by signed-in staff are different: they carry internal figures and the staff
//! member's sign-out token, so they are rendered for each request, never cached here, and
//! sent `Cache-Control: private, no-store` without an ETag ([`Audience::Private`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::AppError;
use crate::i18n::Lang;

/// Pages kept at most; past it the cache starts again (queries are canonical, so this bounds
/// what odd query strings can cost in memory).
const MAX_PAGES: usize = 2_000;

/// Rendered pages of one warehouse version.
#[derive(Debug, Default)]
pub struct PageCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    version: u64,
    pages: HashMap<String, Arc<str>>,
}

impl PageCache {
    pub fn new() -> Self {
        PageCache::default()
    }

    fn get(&self, version: u64, key: &str) -> Option<Arc<str>> {
        let inner = self.inner.lock().ok()?;
        (inner.version == version)
            .then(|| inner.pages.get(key).cloned())
            .flatten()
    }

    fn put(&self, version: u64, key: String, page: Arc<str>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.version != version || inner.pages.len() >= MAX_PAGES {
            inner.pages.clear();
            inner.version = version;
        }
        inner.pages.insert(key, page);
    }

    /// Number of cached pages (for tests).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.pages.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The ETag of a page: warehouse version, language, canonical key, build.
pub fn etag(version: u64, lang: Lang, key: &str) -> String {
    format!(
        "W/\"v{version}-{}-{:016x}\"",
        lang.code(),
        fnv1a(format!("{}|{key}", env!("CARGO_PKG_VERSION")).as_bytes())
    )
}

/// FNV-1a: a stable hash (the same in every process and release), unlike std's `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Whether `If-None-Match` names `tag` (or `*`). Weak comparison, as RFC 9110 asks for it.
fn matches(headers: &HeaderMap, tag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || strip(t) == strip(tag))
}

/// Who a page is for, as far as caching goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The same page for everyone: cached, with an ETag.
    Shared,
    /// One signed-in member of staff: rendered afresh, kept by nobody.
    Private,
}

/// Serves the page `key` in `lang` at warehouse `version`: 304 when the client has it, else
/// from the cache, else from `render` (whose result is cached if the version did not move
/// while rendering). A private page is always rendered, and marked not to be stored.
pub async fn serve_page<F, Fut>(
    cache: &PageCache,
    version: impl Fn() -> Result<u64, AppError>,
    lang: Lang,
    (key, audience): (String, Audience),
    request_headers: &HeaderMap,
    render: F,
) -> Result<Response, AppError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, AppError>>,
{
    if audience == Audience::Private {
        let headers = [
            (header::CACHE_CONTROL, "private, no-store"),
            (header::CONTENT_LANGUAGE, lang.code()),
        ];
        return Ok((headers, Html(render().await?)).into_response());
    }
    let before = version()?;
    let tag = etag(before, lang, &key);
    if matches(request_headers, &tag) {
        return Ok((StatusCode::NOT_MODIFIED, page_headers(&tag, lang)).into_response());
    }
    let body = match cache.get(before, &key) {
        Some(body) => body,
        None => {
            let body: Arc<str> = Arc::from(render().await?);
            if version()? == before {
                cache.put(before, key, body.clone());
            }
            body
        }
    };
    Ok((page_headers(&tag, lang), Html(body.to_string())).into_response())
}

fn page_headers(tag: &str, lang: Lang) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, value);
    }
    // Revalidate every time: a new commit must show at once, and a 304 costs little.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Accept-Encoding"),
    );
    headers.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.code()),
    );
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_change_with_version_language_and_query() {
        let a = etag(3, Lang::It, "overview?year=2017");
        assert_eq!(a, etag(3, Lang::It, "overview?year=2017"), "stable");
        assert_ne!(a, etag(4, Lang::It, "overview?year=2017"));
        assert_ne!(a, etag(3, Lang::En, "overview?year=2017"));
        assert_ne!(a, etag(3, Lang::It, "overview?year=2016"));
        assert!(a.starts_with("W/\"v3-it-"));
    }

    #[test]
    fn if_none_match_is_compared_weakly_and_in_lists() {
        let tag = etag(1, Lang::It, "k");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", {}", tag.trim_start_matches("W/"))).unwrap(),
        );
        assert!(matches(&headers, &tag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!matches(&headers, &tag));
    }

    #[test]
    fn the_cache_forgets_older_versions() {
        let cache = PageCache::new();
        cache.put(1, "a".into(), Arc::from("one"));
        assert_eq!(cache.get(1, "a").as_deref(), Some("one"));
        assert_eq!(cache.get(2, "a"), None);
        cache.put(2, "b".into(), Arc::from("two"));
        assert_eq!(cache.get(1, "a"), None);
        assert_eq!(cache.len(), 1);
    }
}
