//! Security headers of every answer: a Content-Security-Policy that allows no script and no
//! inline style, `nosniff`, a referrer policy, and who may frame the pages.
//!
//! Pages are server-rendered HTML with one stylesheet and inline SVG, so the policy can be
//! strict: everything from the site itself, images also as `data:` URLs, no scripts at all.
//! Who may embed the pages and charts (`frame-ancestors`) is the city's choice: by default
//! only the site itself, and `civica serve --frame-ancestors` adds, for example, the city's own
//! web site so that it can show a chart in an `<iframe>`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The sources allowed to embed the site's pages in a frame (CSP `frame-ancestors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameAncestors {
    sources: Vec<String>,
}

impl Default for FrameAncestors {
    /// Only the site itself.
    fn default() -> Self {
        FrameAncestors {
            sources: vec!["'self'".to_string()],
        }
    }
}

impl FrameAncestors {
    /// Parses a space-separated source list such as `'self' https://www.comune.example.it`.
    ///
    /// Accepts `'self'`, `'none'` and host sources (`https://host`, `https://*.host:8443`);
    /// anything that could end the directive or the header (`;`, `,`, quotes elsewhere,
    /// control characters) is refused, so the value cannot smuggle in other directives.
    pub fn parse(text: &str) -> Result<Self, String> {
        let sources: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        if sources.is_empty() {
            return Err(
                "the list of frame ancestors is empty; use 'none' to forbid framing".into(),
            );
        }
        for source in &sources {
            let keyword = matches!(source.as_str(), "'self'" | "'none'");
            let host_source = !source.starts_with('\'')
                && source.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '/' | '*' | '_')
                });
            if !(keyword || host_source) {
                return Err(format!(
                    "`{source}` is not a frame-ancestors source: use 'self', 'none' or an origin such as https://www.comune.example.it"
                ));
            }
        }
        if sources.len() > 1 && sources.iter().any(|s| s == "'none'") {
            return Err("'none' cannot be combined with other frame ancestors".into());
        }
        Ok(FrameAncestors { sources })
    }

    /// Whether only the site itself may frame the pages (then `X-Frame-Options:
    /// SAMEORIGIN` says the same to browsers that ignore CSP).
    fn same_origin_only(&self) -> bool {
        self.sources == ["'self'"]
    }

    fn forbids_framing(&self) -> bool {
        self.sources == ["'none'"]
    }
}

impl std::fmt::Display for FrameAncestors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sources.join(" "))
    }
}

/// The headers added to every answer, computed once.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    pub fn new(frame_ancestors: &FrameAncestors) -> Self {
        let policy = content_security_policy(frame_ancestors);
        let mut headers = vec![
            (
                header::CONTENT_SECURITY_POLICY,
                // `parse` admits only visible ASCII, so the value is a valid header value.
                HeaderValue::from_str(&policy)
                    .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'")),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("strict-origin-when-cross-origin"),
            ),
        ];
        // X-Frame-Options cannot name other origins: it is sent only when it agrees with
        // frame-ancestors, which modern browsers obey instead.
        if frame_ancestors.same_origin_only() {
            headers.push((
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("SAMEORIGIN"),
            ));
        } else if frame_ancestors.forbids_framing() {
            headers.push((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
        }
        SecurityHeaders { headers }
    }
}

impl Default for SecurityHeaders {
    fn default() -> Self {
        SecurityHeaders::new(&FrameAncestors::default())
    }
}

/// The policy: the site's own stylesheet and images (and `data:` images), no script, no
/// plugin, forms only to the site, and the configured frame ancestors.
pub fn content_security_policy(frame_ancestors: &FrameAncestors) -> String {
    format!(
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {frame_ancestors}"
    )
}

/// Middleware of the whole application: adds the headers to every answer, leaving a header
/// a handler set itself untouched.
pub async fn add_security_headers(
    State(headers): State<Arc<SecurityHeaders>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let answer = response.headers_mut();
    for (name, value) in &headers.headers {
        if !answer.contains_key(name) {
            answer.insert(name.clone(), value.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_allows_only_the_site_itself_to_frame() {
        let policy = content_security_policy(&FrameAncestors::default());
        assert!(policy.ends_with("frame-ancestors 'self'"), "{policy}");
        assert!(policy.contains("script-src 'none'"), "{policy}");
        let headers = SecurityHeaders::default();
        assert!(
            headers
                .headers
                .iter()
                .any(|(n, v)| n == header::X_FRAME_OPTIONS && v == "SAMEORIGIN")
        );
    }

    #[test]
    fn a_city_site_may_be_allowed_and_then_x_frame_options_is_left_out() {
        let ancestors = FrameAncestors::parse("'self'  https://www.comune.example.it").unwrap();
        let policy = content_security_policy(&ancestors);
        assert!(
            policy.ends_with("frame-ancestors 'self' https://www.comune.example.it"),
            "{policy}"
        );
        let headers = SecurityHeaders::new(&ancestors);
        assert!(
            !headers
                .headers
                .iter()
                .any(|(n, _)| n == header::X_FRAME_OPTIONS)
        );
    }

    #[test]
    fn sources_that_could_inject_directives_are_refused() {
        for bad in [
            "",
            "'self'; script-src *",
            "https://a.example, https://b.example",
            "'unsafe-inline'",
            "'none' 'self'",
            "https://a.example\r\nSet-Cookie: x=1",
        ] {
            assert!(FrameAncestors::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
