//! The error pages: a page that does not exist (404), a filter value the page does not take
//! (400) and a failure on our side (5xx), in the site's frame, with the way back.
//!
//! They read nothing from the warehouse, so that they show even when it cannot be read.

use askama::Template;
use axum::http::StatusCode;

use super::{NavLink, PageFrame, Section};
use crate::error::{ErrorInfo, FilterName};
use crate::i18n::{Lang, LangChoice};

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub frame: PageFrame,
    pub heading: String,
    pub explanation: String,
    /// What exactly was wrong, when the page knows (the refused filter value).
    pub detail: Option<String>,
    pub code: String,
    /// The overview first, then the lists of services and indicators.
    pub links: Vec<NavLink>,
}

/// The kinds of error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NotFound,
    BadRequest,
    Internal,
}

impl Kind {
    fn of(status: StatusCode) -> Kind {
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            Kind::NotFound
        } else if status.is_client_error() {
            Kind::BadRequest
        } else {
            Kind::Internal
        }
    }
}

/// The error page for `status`, for a request of `path_and_query` (the language switch
/// points there).
pub fn build(
    choice: LangChoice,
    status: StatusCode,
    info: Option<&ErrorInfo>,
    path_and_query: &str,
) -> ErrorPage {
    let lang = choice.lang;
    let (heading, explanation) = match Kind::of(status) {
        Kind::NotFound => (
            lang.t("error-not-found-title"),
            lang.t("error-not-found-text"),
        ),
        Kind::BadRequest => (
            lang.t("error-bad-request-title"),
            lang.t("error-bad-request-text"),
        ),
        Kind::Internal => (
            lang.t("error-internal-title"),
            lang.t("error-internal-text"),
        ),
    };
    let detail = info
        .and_then(|i| i.filter.as_ref())
        .map(|(filter, value)| filter_text(lang, *filter, value));
    let link = |href: &str, key: &str| NavLink {
        href: choice.href(href),
        label: lang.t(key),
        current: false,
        lang: lang.code().to_string(),
    };
    ErrorPage {
        frame: PageFrame::without_data(
            choice,
            Section::Elsewhere,
            path_and_query,
            format!("{heading} — civica"),
        ),
        heading,
        explanation,
        detail,
        code: lang.t_args("error-code", &[("status", status.as_u16().to_string())]),
        links: vec![
            link("/", "error-back"),
            link("/servizi", "error-services"),
            link("/indicatori", "error-indicators"),
        ],
    }
}

/// "The filter «Year» does not take the value «abc»", and which values it takes.
fn filter_text(lang: Lang, filter: FilterName, value: &str) -> String {
    let (label, hint) = match filter {
        FilterName::Year => (lang.t("filter-year"), lang.t("error-hint-year")),
        FilterName::Area => (lang.t("filter-area"), lang.t("error-hint-area")),
        FilterName::Channel => (lang.t("filter-channel"), lang.t("error-hint-channel")),
        FilterName::From => (lang.t("filter-from"), lang.t("error-hint-month")),
        FilterName::To => (lang.t("filter-to"), lang.t("error-hint-month")),
    };
    // A long value is cut: the page repeats it, it need not repeat all of it.
    let mut shown: String = value.chars().take(40).collect();
    if value.chars().count() > 40 {
        shown.push('…');
    }
    lang.t_args(
        "error-filter",
        &[("filter", label), ("value", shown), ("hint", hint)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_choose_the_page() {
        assert_eq!(Kind::of(StatusCode::NOT_FOUND), Kind::NotFound);
        assert_eq!(Kind::of(StatusCode::BAD_REQUEST), Kind::BadRequest);
        assert_eq!(Kind::of(StatusCode::METHOD_NOT_ALLOWED), Kind::BadRequest);
        assert_eq!(Kind::of(StatusCode::INTERNAL_SERVER_ERROR), Kind::Internal);
        assert_eq!(Kind::of(StatusCode::SERVICE_UNAVAILABLE), Kind::Internal);
    }

    #[test]
    fn long_refused_values_are_cut() {
        let text = filter_text(Lang::En, FilterName::Year, &"9".repeat(100));
        assert!(text.contains(&format!("{}…", "9".repeat(40))), "{text}");
        assert!(!text.contains(&"9".repeat(41)), "{text}");
    }
}
