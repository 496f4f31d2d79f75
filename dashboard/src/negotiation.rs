//! Content negotiation of the API's tables: JSON, CSV, Parquet or Arrow IPC, chosen by
//! `?format=` when the query names one, else by the `Accept` header.
//!
//! `Accept` is read as RFC 9110 says: each media range has a quality (`q`, 1 by default; 0
//! means "not this"), and a format takes the quality of the most specific range that matches
//! it (`text/csv` before `text/*` before `*/*`). The highest quality wins; between equals, the
//! more specific match, then the range listed first, then JSON. No `Accept`, or `*/*`, is JSON;
//! nothing acceptable is `406 Not Acceptable` (in the API's one error shape, JSON).

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use civica_analytics::arrow::record_batch::RecordBatch;
use civica_analytics::format::{OutputFormat, encode_batches};

use crate::error::AppError;

/// A representation of a table the API can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Csv,
    Parquet,
    Arrow,
}

impl Format {
    /// Every format, in the server's order of preference.
    pub const ALL: [Format; 4] = [Format::Json, Format::Csv, Format::Parquet, Format::Arrow];

    /// The name taken by `?format=`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Arrow => "arrow",
        }
    }

    /// The encoder of the format.
    pub fn output(self) -> OutputFormat {
        match self {
            Format::Json => OutputFormat::Json,
            Format::Csv => OutputFormat::Csv,
            Format::Parquet => OutputFormat::Parquet,
            Format::Arrow => OutputFormat::Arrow,
        }
    }

    /// The `Content-Type` of answers in this format.
    pub fn media_type(self) -> &'static str {
        self.output().media_type()
    }

    /// The media types (`type/subtype`, lower case) a client may ask this format by.
    pub fn accepted_media_types(self) -> &'static [&'static str] {
        match self {
            Format::Json => &["application/json"],
            Format::Csv => &["text/csv"],
            Format::Parquet => &["application/vnd.apache.parquet", "application/x-parquet"],
            Format::Arrow => &["application/vnd.apache.arrow.stream"],
        }
    }

    /// The format of a request: `?format=` (the `format` query value) first, then `Accept`.
    pub fn negotiate(format: Option<&str>, accept: Option<&str>) -> Result<Format, AppError> {
        if let Some(name) = format.map(str::trim).filter(|n| !n.is_empty()) {
            return Format::ALL
                .into_iter()
                .find(|f| f.name().eq_ignore_ascii_case(name))
                .ok_or_else(|| AppError::NotAcceptable {
                    message: format!("unknown format `{name}`; {}", Format::offer()),
                });
        }
        let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
            return Ok(Format::Json);
        };
        best_match(accept).ok_or_else(|| AppError::NotAcceptable {
            message: format!(
                "nothing in `Accept: {accept}` can be served; {}",
                Format::offer()
            ),
        })
    }

    /// The format of a request, from its `format` query value and its headers.
    pub fn of_request(format: Option<&str>, headers: &HeaderMap) -> Result<Format, AppError> {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        Format::negotiate(format, Some(&accept))
    }

    /// What the API offers, for error messages.
    fn offer() -> String {
        let offers: Vec<String> = Format::ALL
            .iter()
            .map(|f| format!("{} ({})", f.name(), f.accepted_media_types().join(", ")))
            .collect();
        format!("use ?format= or Accept with one of: {}", offers.join(", "))
    }
}

/// One media range of an `Accept` header.
struct Range<'a> {
    kind: &'a str,
    subtype: &'a str,
    quality: f32,
}

/// The media ranges of an `Accept` header, in order; malformed ones are skipped.
fn ranges(accept: &str) -> Vec<Range<'_>> {
    accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let (kind, subtype) = parts.next()?.trim().split_once('/')?;
            let (kind, subtype) = (kind.trim(), subtype.trim());
            if kind.is_empty() || subtype.is_empty() || (kind == "*" && subtype != "*") {
                return None;
            }
            let mut quality = 1.0;
            for parameter in parts {
                if let Some((name, value)) = parameter.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    quality = value
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))?;
                }
            }
            Some(Range {
                kind,
                subtype,
                quality,
            })
        })
        .collect()
}

/// How specifically `range` names `media_type` (`type/subtype`): 2 exactly, 1 by `type/*`,
/// 0 by `*/*`; `None` when it does not.
fn specificity(range: &Range<'_>, media_type: &str) -> Option<u8> {
    let (kind, subtype) = media_type.split_once('/')?;
    if range.kind == "*" {
        Some(0)
    } else if !range.kind.eq_ignore_ascii_case(kind) {
        None
    } else if range.subtype == "*" {
        Some(1)
    } else {
        range.subtype.eq_ignore_ascii_case(subtype).then_some(2)
    }
}

/// The best format for an `Accept` header, if any is acceptable.
fn best_match(accept: &str) -> Option<Format> {
    let ranges = ranges(accept);
    // For each format: (quality, specificity, position of the range) of its most specific
    // matching range; a later range of the same specificity does not override an earlier one.
    let mut best: Option<(f32, u8, usize, Format)> = None;
    for format in Format::ALL {
        let mut chosen: Option<(f32, u8, usize)> = None;
        for media_type in format.accepted_media_types() {
            for (position, range) in ranges.iter().enumerate() {
                let Some(level) = specificity(range, media_type) else {
                    continue;
                };
                let better = match chosen {
                    None => true,
                    Some((q, l, p)) => {
                        level > l || (level == l && (range.quality > q || position < p))
                    }
                };
                if better {
                    chosen = Some((range.quality, level, position));
                }
            }
        }
        let Some((quality, level, position)) = chosen.filter(|(q, _, _)| *q > 0.0) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((q, l, p, _)) => {
                quality > q || (quality == q && (level > l || (level == l && position < p)))
            }
        };
        if better {
            best = Some((quality, level, position, format));
        }
    }
    best.map(|(_, _, _, format)| format)
}

/// `batches` as an answer in `format`: the body, its `Content-Type`, and for files a
/// `Content-Disposition` naming `stem.<extension>`.
pub fn table_response(
    batches: &[RecordBatch],
    format: Format,
    stem: &str,
) -> Result<Response, AppError> {
    let body = encode_batches(batches, format.output())?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    if format != Format::Json {
        let disposition = format!(
            "attachment; filename=\"{stem}.{}\"",
            format.output().extension()
        );
        if let Ok(value) = HeaderValue::from_str(&disposition) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(format: Option<&str>, accept: Option<&str>, expected: Option<Format>) {
        let actual = Format::negotiate(format, accept).ok();
        assert_eq!(actual, expected, "format={format:?} accept={accept:?}");
    }

    #[test]
    fn accept_headers() {
        use Format::*;
        for (accept, expected) in [
            (None, Some(Json)),
            (Some(""), Some(Json)),
            (Some("*/*"), Some(Json)),
            (Some("application/*"), Some(Json)),
            (Some("text/*"), Some(Csv)),
            (Some("text/csv"), Some(Csv)),
            (Some("TEXT/CSV; charset=utf-8; header=present"), Some(Csv)),
            (Some("application/vnd.apache.parquet"), Some(Parquet)),
            (Some("application/x-parquet"), Some(Parquet)),
            (Some("application/vnd.apache.arrow.stream"), Some(Arrow)),
            // A browser's header: HTML first, anything at 0.8: JSON.
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                Some(Json),
            ),
            // Quality decides, whatever the order.
            (Some("application/json;q=0.5, text/csv"), Some(Csv)),
            (
                Some("text/csv;q=0.2, application/vnd.apache.parquet;q=0.9"),
                Some(Parquet),
            ),
            // Between equals, the range listed first.
            (
                Some("application/vnd.apache.arrow.stream, text/csv"),
                Some(Arrow),
            ),
            // A specific range beats the wildcard that would give it a higher quality…
            (Some("*/*;q=0.9, application/json;q=0.1"), Some(Csv)),
            // …and q=0 refuses a format, even when a wildcard would accept it.
            (Some("application/json;q=0, */*"), Some(Csv)),
            (Some("text/html"), None),
            (Some("application/xml, image/png;q=0.5"), None),
            (Some("text/csv;q=0"), None),
            (Some("*/*;q=0"), None),
            // Malformed ranges are ignored.
            (
                Some("nonsense, text/csv;q=2, application/vnd.apache.parquet"),
                Some(Parquet),
            ),
            (Some("nonsense"), None),
        ] {
            check(None, accept, expected);
        }
    }

    #[test]
    fn the_query_overrides_accept() {
        check(Some("csv"), Some("application/json"), Some(Format::Csv));
        check(Some("PARQUET"), None, Some(Format::Parquet));
        check(Some("arrow"), Some("text/html"), Some(Format::Arrow));
        check(Some(""), Some("text/csv"), Some(Format::Csv));
        check(Some("xml"), None, None);
        check(Some("xlsx"), Some("*/*"), None);
    }

    #[test]
    fn refusals_are_406_and_say_what_is_offered() {
        let error = Format::negotiate(None, Some("text/html")).unwrap_err();
        let response = error.into_response();
        assert_eq!(response.status(), axum::http::StatusCode::NOT_ACCEPTABLE);
        let message = Format::negotiate(Some("xml"), None)
            .unwrap_err()
            .to_string();
        for format in Format::ALL {
            assert!(message.contains(format.name()), "{message}");
        }
    }

    #[test]
    fn media_types_are_the_registered_ones() {
        assert_eq!(Format::Json.media_type(), "application/json");
        assert_eq!(
            Format::Csv.media_type(),
            "text/csv; charset=utf-8; header=present"
        );
        assert_eq!(
            Format::Parquet.media_type(),
            "application/vnd.apache.parquet"
        );
        assert_eq!(
            Format::Arrow.media_type(),
            "application/vnd.apache.arrow.stream"
        );
    }
}
