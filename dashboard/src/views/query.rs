//! The public SQL page (`/query`): the form, the KPI views it can read, and the result of the
//! statement in `?sql=` as a table (at most [`PAGE_ROWS`] rows) with links to the whole result
//! (up to the API's row limit) in CSV, JSON and Parquet.

use askama::Template;
use civica_analytics::QueryLimits;
use civica_analytics::format::text_table;
use civica_analytics::sql::{
    KPI_VIEW_MEASURES, PUBLIC_EXAMPLE, kpi_view_dimensions, kpi_view_name,
};

use super::{PageFrame, Section};
use crate::AppState;
use crate::error::AppError;
use crate::i18n::LangChoice;
use crate::negotiation::Format;
use crate::routes::query::{MAX_SQL_CHARS, run};
use crate::staff::Viewer;

/// The most rows the page shows; the downloads hold up to the API's limit.
pub const PAGE_ROWS: usize = 1_000;

#[derive(Template)]
#[template(path = "query.html")]
pub struct QueryPage {
    pub frame: PageFrame,
    /// The statement, as typed (shown again in the form).
    pub sql: String,
    /// The page with the example statement.
    pub example_href: String,
    pub example: &'static str,
    /// What the form says about the limits.
    pub limits_note: String,
    pub views: Vec<ViewEntry>,
    pub result: Option<ResultTable>,
    /// Why the statement was not answered: the engine's message.
    pub error: Option<String>,
}

/// A view the public may read.
pub struct ViewEntry {
    pub name: String,
    pub title: String,
    /// The KPI's method sheet.
    pub href: String,
    pub columns: String,
}

/// The result of a statement, ready for the page.
pub struct ResultTable {
    pub caption: String,
    pub columns: Vec<String>,
    /// `None` is a null.
    pub rows: Vec<Vec<Option<String>>>,
    /// Said when the page shows only the first rows.
    pub truncated: Option<String>,
    pub downloads: Vec<Download>,
}

/// A link to the whole result in one format.
pub struct Download {
    pub href: String,
    pub label: &'static str,
}

/// The page for `sql` (the form alone when there is none).
pub async fn build(
    state: &AppState,
    choice: LangChoice,
    viewer: &Viewer,
    sql: Option<&str>,
) -> Result<QueryPage, AppError> {
    let lang = choice.lang;
    let engine = &state.engine;
    let sql = sql.map(str::trim).unwrap_or_default();
    let path = if sql.is_empty() {
        "/query".to_string()
    } else {
        format!("/query?sql={}", url_component(sql))
    };
    let frame = PageFrame::new(
        engine,
        choice,
        Section::Query,
        &path,
        format!("{} — civica", lang.t("query-heading")),
    )?
    .with_viewer(viewer);
    let limits = state.query_limits;
    let page_limits = QueryLimits {
        max_rows: limits.max_rows.min(PAGE_ROWS),
        ..limits
    };
    let limits_note = lang.t_args(
        "query-limits",
        &[
            ("rows", lang.count(limits.max_rows as f64)),
            ("seconds", limits.timeout.as_secs().to_string()),
            ("characters", lang.count(MAX_SQL_CHARS as f64)),
        ],
    );
    let views = engine
        .catalogue()
        .kpis
        .iter()
        .map(|def| ViewEntry {
            name: kpi_view_name(def),
            title: def.title.get(lang.code()).to_string(),
            href: choice.href(&format!("/indicatori/{}", def.id)),
            columns: kpi_view_dimensions(def)
                .iter()
                .map(|d| d.as_str())
                .chain(KPI_VIEW_MEASURES)
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let (result, error) = if sql.is_empty() {
        (None, None)
    } else {
        match run(state, viewer, sql, page_limits).await {
            Ok(rows) => {
                let table = text_table(&rows.batches)?;
                let shown = table.rows.len();
                let caption = lang.t_args(
                    "query-result-caption",
                    &[("rows", lang.count(shown as f64))],
                );
                let truncated = rows.truncated.then(|| {
                    lang.t_args(
                        "query-truncated",
                        &[
                            ("rows", lang.count(shown as f64)),
                            ("max", lang.count(limits.max_rows as f64)),
                        ],
                    )
                });
                let downloads = [Format::Csv, Format::Json, Format::Parquet]
                    .into_iter()
                    .map(|format| Download {
                        href: format!(
                            "/api/v1/query?sql={}&format={}",
                            url_component(sql),
                            format.name()
                        ),
                        label: match format {
                            Format::Csv => "CSV",
                            Format::Json => "JSON",
                            Format::Parquet => "Parquet",
                            Format::Arrow => "Arrow IPC",
                        },
                    })
                    .collect();
                (
                    Some(ResultTable {
                        caption,
                        columns: table.columns,
                        rows: table.rows,
                        truncated,
                        downloads,
                    }),
                    None,
                )
            }
            Err(AppError::BadRequest { message }) => (None, Some(message)),
            Err(other) => return Err(other),
        }
    };
    Ok(QueryPage {
        frame,
        sql: sql.to_string(),
        example_href: choice.href(&format!("/query?sql={}", url_component(PUBLIC_EXAMPLE))),
        example: PUBLIC_EXAMPLE,
        limits_note,
        views,
        result,
        error,
    })
}

/// `text` percent-encoded for a query string value (RFC 3986 unreserved characters kept).
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_components_escape_everything_but_unreserved_characters() {
        assert_eq!(url_component("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(url_component("x = 'à'&y#"), "x%20%3D%20%27%C3%A0%27%26y%23");
        assert_eq!(url_component("1+1\n"), "1%2B1%0A");
    }
}
