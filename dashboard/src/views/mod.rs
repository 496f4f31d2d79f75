//! What each page shows, computed from `civica-analytics` results: one module per page type
//! builds its askama template from typed KPI rows. Handlers (`routes::pages`) only parse the
//! request, pick the language and serve the result through the page cache.
//!
//! Every figure comes from a KPI query made through a [`Reader`], which asks for the
//! viewer's audience: the public gets disclosure-controlled cells, signed-in staff the
//! internal, unsuppressed ones (and a banner saying so on every page). A withheld cell is shown with the marker of `marker-withheld` ("riservato"), explained
//! under every table; a cell with no data at all shows `marker-no-data` ("n.d."). Neither is
//! ever shown as zero.

pub mod about;
pub mod api_docs;
pub mod comparison;
pub mod error;
pub mod method;
pub mod overview;
mod period;
pub mod query;
pub mod service;
mod service_charts;
pub mod services;
pub mod staff;

use std::collections::BTreeMap;

use chrono::NaiveDate;

use civica_analytics::catalogue::{AREAS, Unit};
use civica_analytics::{Audience, Dimension, Engine, Flag, KpiQuery, KpiResult, KpiRow};
use serde::Deserialize;

use crate::charts::{Chart, ChartOptions};
use crate::error::{AppError, FilterName};
use crate::i18n::{Lang, LangChoice};
use crate::staff::Viewer;

pub use period::{MonthRange, month_value};
use period::{month_end, month_error, month_start};

/// The query string every page accepts. Unknown keys are ignored (links from elsewhere may
/// add tracking parameters); known ones are validated.
#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    pub lang: Option<String>,
    pub year: Option<String>,
    pub area: Option<String>,
    pub channel: Option<String>,
    pub service: Option<String>,
    /// First month of a period, `YYYY-MM` (what `<input type="month">` sends).
    pub from: Option<String>,
    /// Last month of a period, `YYYY-MM`.
    pub to: Option<String>,
}

/// The warehouse as one viewer reads it. Pages query KPIs only through it, so that every
/// figure on a page is for the viewer's audience: disclosure-controlled for the public,
/// unsuppressed for signed-in staff.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub engine: &'a Engine,
    pub viewer: &'a Viewer,
}

impl<'a> Reader<'a> {
    pub fn new(engine: &'a Engine, viewer: &'a Viewer) -> Self {
        Reader { engine, viewer }
    }

    pub fn audience(&self) -> Audience {
        self.viewer.audience()
    }

    /// Whether the page shows internal figures (and says so).
    pub fn internal(&self) -> bool {
        self.audience() == Audience::Internal
    }

    /// The KPI query for the viewer's audience.
    pub async fn kpi(&self, query: KpiQuery) -> Result<KpiResult, AppError> {
        Ok(self
            .engine
            .kpi(&query.for_audience(self.audience()))
            .await?)
    }

    /// The satisfaction distribution for the viewer's audience.
    pub async fn score_distribution(&self) -> Result<Vec<KpiRow>, AppError> {
        Ok(self.engine.score_distribution(self.audience()).await?)
    }

    /// The frame of a page read by this viewer: who is signed in, and whether its figures
    /// are internal.
    pub fn frame(
        &self,
        choice: LangChoice,
        section: Section,
        path_and_query: &str,
        title: String,
    ) -> Result<PageFrame, AppError> {
        let mut frame = PageFrame::new(self.engine, choice, section, path_and_query, title)?
            .with_viewer(self.viewer);
        frame.internal = self.internal();
        Ok(frame)
    }
}

/// Validated filters of a page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub year: Option<i32>,
    pub area: Option<String>,
    pub channel: Option<String>,
    /// The first day of the period's first month (`from=YYYY-MM`). A period overrides `year`.
    pub from: Option<NaiveDate>,
    /// The last day of the period's last month (`to=YYYY-MM`), inclusive.
    pub to: Option<NaiveDate>,
}

impl Filters {
    /// Parses the filters; empty values mean "all".
    pub fn parse(params: &PageParams) -> Result<Filters, AppError> {
        let non_empty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let year = match non_empty(&params.year) {
            Some(text) => Some(
                text.parse::<i32>()
                    .ok()
                    .filter(|y| (1900..=2200).contains(y))
                    .ok_or_else(|| AppError::InvalidFilter {
                        filter: FilterName::Year,
                        value: text.clone(),
                        reason: "a year such as 2017".into(),
                    })?,
            ),
            None => None,
        };
        let area = non_empty(&params.area);
        if let Some(area) = &area
            && !AREAS.contains(&area.as_str())
        {
            return Err(AppError::InvalidFilter {
                filter: FilterName::Area,
                value: area.clone(),
                reason: format!("known areas are {}", AREAS.join(", ")),
            });
        }
        let channel = non_empty(&params.channel);
        if let Some(channel) = &channel
            && !channel.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            return Err(AppError::InvalidFilter {
                filter: FilterName::Channel,
                value: channel.clone(),
                reason: "a channel name in lower case, such as online".into(),
            });
        }
        let from = non_empty(&params.from)
            .map(|text| month_start(&text).ok_or_else(|| month_error(FilterName::From, text)))
            .transpose()?;
        let to = non_empty(&params.to)
            .map(|text| {
                month_start(&text)
                    .and_then(month_end)
                    .ok_or_else(|| month_error(FilterName::To, text))
            })
            .transpose()?;
        if let (Some(first), Some(last)) = (from, to)
            && first > last
        {
            return Err(AppError::InvalidFilter {
                filter: FilterName::To,
                value: last.format("%Y-%m").to_string(),
                reason: format!(
                    "the last month comes before the first, {}",
                    first.format("%Y-%m")
                ),
            });
        }
        Ok(Filters {
            year,
            area,
            channel,
            from,
            to,
        })
    }

    /// The period of months asked for, when `from` or `to` is given.
    pub fn period(&self) -> Option<MonthRange> {
        (self.from.is_some() || self.to.is_some()).then_some(MonthRange {
            from: self.from,
            to: self.to,
        })
    }

    /// A canonical text of the filters, for cache keys and ETags.
    pub fn key(&self) -> String {
        format!(
            "year={}&area={}&channel={}&from={}&to={}",
            self.year.map(|y| y.to_string()).unwrap_or_default(),
            self.area.as_deref().unwrap_or(""),
            self.channel.as_deref().unwrap_or(""),
            self.from.map(|d| d.to_string()).unwrap_or_default(),
            self.to.map(|d| d.to_string()).unwrap_or_default()
        )
    }
}

/// A link of the navigation or the language switch.
#[derive(Debug, Clone)]
pub struct NavLink {
    pub href: String,
    pub label: String,
    pub current: bool,
    /// The language of the label, when it differs from the page's (the language switch).
    pub lang: String,
}

/// What every page has around its content: language, navigation, freshness of the data.
#[derive(Debug, Clone)]
pub struct PageFrame {
    pub lang: Lang,
    pub choice: LangChoice,
    pub title: String,
    pub nav: Vec<NavLink>,
    pub switch: Vec<NavLink>,
    pub version: u64,
    /// "dati aggiornati al …", from the time of the latest commit.
    pub updated: Option<String>,
    /// Whether the footer states the freshness of the data (not when it could not be read).
    pub freshness: bool,
    /// The signed-in member of staff, shown in the header with the sign-out button (only on
    /// pages that are never cached: pages seen by staff and the query page).
    pub staff: Option<StaffBadge>,
    /// The page shows internal, unsuppressed figures: a banner says they are not for
    /// publication.
    pub internal: bool,
}

/// "Signed in as …" in the header, and the token of the sign-out form.
#[derive(Debug, Clone)]
pub struct StaffBadge {
    pub user: String,
    pub csrf: String,
}

/// The page types, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Services,
    Comparison,
    Indicators,
    OpenData,
    Query,
    About,
    /// The API reference (linked from the footer, not the navigation).
    ApiDocs,
    /// A page outside the navigation (an error page).
    Elsewhere,
}

impl PageFrame {
    /// The frame of a page at `path` (used by the language switch) in section `section`.
    pub fn new(
        engine: &Engine,
        choice: LangChoice,
        section: Section,
        path_and_query: &str,
        title: String,
    ) -> Result<PageFrame, AppError> {
        let updated = engine.latest_commit_time()?.map(|at| choice.lang.date(&at));
        let mut frame = PageFrame::without_data(choice, section, path_and_query, title);
        frame.updated = updated;
        frame.version = engine.version()?;
        frame.freshness = true;
        Ok(frame)
    }

    /// The frame of a page that does not read the warehouse (an error page, which must show
    /// even when the warehouse cannot be read): no freshness line in the footer.
    pub fn without_data(
        choice: LangChoice,
        section: Section,
        path_and_query: &str,
        title: String,
    ) -> PageFrame {
        let lang = choice.lang;
        let nav = [
            (Section::Overview, "/", "nav-overview"),
            (Section::Services, "/servizi", "nav-services"),
            (Section::Comparison, "/confronto", "nav-comparison"),
            (Section::Indicators, "/indicatori", "nav-indicators"),
            (Section::OpenData, "/opendata", "nav-opendata"),
            (Section::Query, "/query", "nav-query"),
            (Section::About, "/informazioni", "nav-about"),
        ]
        .into_iter()
        .map(|(s, href, key)| NavLink {
            href: choice.href(href),
            label: lang.t(key),
            current: s == section,
            lang: lang.code().to_string(),
        })
        .collect();
        let switch = Lang::ALL
            .into_iter()
            .filter(|other| *other != lang)
            .map(|other| NavLink {
                href: LangChoice {
                    lang: other,
                    in_links: true,
                }
                .href(path_and_query),
                label: other.t("language-name"),
                current: false,
                lang: other.code().to_string(),
            })
            .collect();
        PageFrame {
            lang,
            choice,
            title,
            nav,
            switch,
            version: 0,
            updated: None,
            freshness: false,
            staff: None,
            internal: false,
        }
    }

    /// The frame showing who is signed in, when `viewer` has a session.
    pub fn with_viewer(mut self, viewer: &Viewer) -> Self {
        self.staff = viewer.signed_in().map(|(user, session)| StaffBadge {
            user: user.to_string(),
            csrf: session.csrf.clone(),
        });
        self
    }

    /// The interface message `key` in the page's language.
    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    /// A link to `path` that keeps the page's language.
    pub fn href(&self, path: &str) -> String {
        self.choice.href(path)
    }

    pub fn lang_code(&self) -> &'static str {
        self.lang.code()
    }
}

/// A chart with everything that goes with it: caption, the same numbers as a table, a CSV
/// link, the chart as an image for reports and a note on markers.
#[derive(Debug, Clone)]
pub struct Figure {
    pub id: String,
    pub caption: String,
    pub svg: String,
    pub csv_href: String,
    pub csv_label: String,
    pub table: DataTable,
    /// The data of the chart and its texts: the chart routes draw it again as PNG or SVG.
    pub chart: Chart,
    pub options: ChartOptions,
    /// The chart as PNG, with the page's filters (see [`chart_href`]).
    pub png_href: String,
    pub png_label: String,
}

/// The URL of the chart `id` of the page at `path_and_query` as an image: the page's path
/// under `/charts`, then `{id}.{extension}`, with the page's filters and language. The chart
/// routes (`routes::charts`) build the same page and draw that figure's chart.
pub fn chart_href(choice: LangChoice, path_and_query: &str, id: &str, extension: &str) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let mut href = format!("/charts{}/{id}.{extension}", path.trim_end_matches('/'));
    if let Some(query) = query {
        href.push('?');
        href.push_str(query);
    }
    choice.href(&href)
}

/// The chart `id` among `figures`.
pub fn find_chart<'a>(figures: &'a [Figure], id: &str) -> Option<(&'a Chart, &'a ChartOptions)> {
    figures
        .iter()
        .find(|f| f.id == id)
        .map(|f| (&f.chart, &f.options))
}

/// A table of figures with a caption and row and column headers.
#[derive(Debug, Clone, Default)]
pub struct DataTable {
    pub caption: String,
    /// Column headers; the first one heads the row headers.
    pub columns: Vec<String>,
    pub rows: Vec<DataRow>,
    /// Explains the markers, when the table has any.
    pub note: Option<String>,
}

/// One row: a header (optionally a link) and cells.
#[derive(Debug, Clone, Default)]
pub struct DataRow {
    pub header: String,
    pub href: Option<String>,
    pub cells: Vec<String>,
}

impl DataTable {
    /// Adds the marker note when any cell shows a marker.
    pub fn with_marker_note(mut self, lang: Lang, min_cell: u64) -> Self {
        let withheld = lang.t("marker-withheld");
        let no_data = lang.t("marker-no-data");
        let has = |m: &str| {
            self.rows
                .iter()
                .any(|r| r.cells.iter().any(|c| c.contains(m)))
        };
        let mut notes = Vec::new();
        if has(&withheld) {
            notes.push(lang.t_args(
                "marker-withheld-note",
                &[
                    ("marker", withheld.clone()),
                    ("min_cell", min_cell.to_string()),
                ],
            ));
        }
        if has(&no_data) {
            notes.push(lang.t_args("marker-no-data-note", &[("marker", no_data.clone())]));
        }
        self.note = (!notes.is_empty()).then(|| notes.join(" "));
        self
    }
}

/// A value as shown in pages: formatted by unit, or the marker of why it is not shown.
pub fn value_text(lang: Lang, unit: Unit, row: Option<&KpiRow>) -> String {
    match row {
        None => lang.t("marker-no-data"),
        Some(r) if r.flag == Some(Flag::Suppressed) => lang.t("marker-withheld"),
        Some(r) => match r.value {
            Some(v) => format_value(lang, unit, v),
            None => lang.t("marker-no-data"),
        },
    }
}

/// A value formatted for its unit.
pub fn format_value(lang: Lang, unit: Unit, value: f64) -> String {
    match unit {
        Unit::Percent => lang.percent(value),
        Unit::Count => lang.count(value),
        Unit::Score => lang.decimal(value, 1),
        Unit::Days => lang.t_args("value-days", &[("value", lang.decimal(value, 1))]),
    }
}

/// The number of observations of a row, or the marker.
pub fn n_text(lang: Lang, row: Option<&KpiRow>) -> String {
    match row {
        None => lang.t("marker-no-data"),
        Some(r) if r.flag == Some(Flag::Suppressed) => lang.t("marker-withheld"),
        Some(r) => {
            r.n.map_or_else(|| lang.t("marker-no-data"), |n| lang.count(n as f64))
        }
    }
}

/// A count column (numerator, denominator), or the marker.
pub fn count_text(lang: Lang, row: Option<&KpiRow>, pick: fn(&KpiRow) -> Option<f64>) -> String {
    match row {
        None => lang.t("marker-no-data"),
        Some(r) if r.flag == Some(Flag::Suppressed) => lang.t("marker-withheld"),
        Some(r) => pick(r).map_or_else(|| lang.t("marker-no-data"), |v| lang.count(v)),
    }
}

/// A change on the previous period: `+3,2 punti` for shares, plain for other units.
pub fn change_text(lang: Lang, unit: Unit, change: Option<f64>) -> Option<String> {
    let change = change?;
    Some(match unit {
        Unit::Percent => lang.t_args("change-points", &[("value", lang.signed(change))]),
        Unit::Count => {
            let text = lang.count(change.abs());
            let sign = if change < 0.0 { "−" } else { "+" };
            format!("{sign}{text}")
        }
        _ => lang.signed(change),
    })
}

/// The localised name of an area.
pub fn area_name(lang: Lang, area: &str) -> String {
    lang.t(&format!("area-{area}"))
}

/// The localised name of a channel (its code when unknown).
pub fn channel_name(lang: Lang, channel: &str) -> String {
    let key = format!("channel-{channel}");
    if lang.has(&key) {
        lang.t(&key)
    } else {
        channel.to_string()
    }
}

/// An option of a `<select>`.
#[derive(Debug, Clone)]
pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Options for the year filter.
pub fn year_options(years: &[i32], selected: Option<i32>) -> Vec<SelectOption> {
    years
        .iter()
        .rev()
        .map(|y| SelectOption {
            value: y.to_string(),
            label: y.to_string(),
            selected: Some(*y) == selected,
        })
        .collect()
}

/// Options for the area filter, "all areas" first.
pub fn area_options(lang: Lang, selected: Option<&str>) -> Vec<SelectOption> {
    std::iter::once(SelectOption {
        value: String::new(),
        label: lang.t("filter-all-areas"),
        selected: selected.is_none(),
    })
    .chain(AREAS.iter().map(|a| SelectOption {
        value: a.to_string(),
        label: area_name(lang, a),
        selected: selected == Some(*a),
    }))
    .collect()
}

/// The online share of every service and year, for the reader's audience. Every page takes its
/// per-service online shares from this one query, so that the overview, the comparison and
/// the service pages show the same value for the same cell (secondary suppression depends on
/// the cells queried together).
pub struct ServiceYears {
    pub years: Vec<i32>,
    pub cells: BTreeMap<(String, i32), KpiRow>,
}

impl ServiceYears {
    pub async fn load(reader: &Reader<'_>, kpi: &str) -> Result<ServiceYears, AppError> {
        let rows = reader
            .kpi(KpiQuery::new(kpi).by(vec![Dimension::Service, Dimension::Year]))
            .await?
            .rows;
        let mut years: Vec<i32> = rows.iter().filter_map(|r| r.dims[1].parse().ok()).collect();
        years.sort_unstable();
        years.dedup();
        let cells = rows
            .into_iter()
            .filter_map(|r| {
                let year = r.dims[1].parse::<i32>().ok()?;
                Some(((r.dims[0].clone(), year), r))
            })
            .collect();
        Ok(ServiceYears { years, cells })
    }

    pub fn get(&self, service: &str, year: i32) -> Option<&KpiRow> {
        self.cells.get(&(service.to_string(), year))
    }

    /// Services with any row, in code order.
    pub fn services(&self) -> Vec<String> {
        let mut services: Vec<String> = self.cells.keys().map(|(s, _)| s.clone()).collect();
        services.dedup();
        services
    }
}

/// The year a page shows: the requested one, else the latest full year of data.
pub async fn chosen_year(engine: &Engine, filters: &Filters) -> Result<Option<i32>, AppError> {
    match filters.year {
        Some(year) => Ok(Some(year)),
        None => Ok(engine.latest_full_year().await?),
    }
}

/// The `.csv` download of a KPI with a breakdown and filters, as the API takes them.
pub fn csv_href(kpi: &str, query: &str) -> String {
    if query.is_empty() {
        format!("/opendata/{kpi}.csv")
    } else {
        format!("/opendata/{kpi}.csv?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(from: Option<&str>, to: Option<&str>) -> Result<Filters, AppError> {
        Filters::parse(&PageParams {
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            ..PageParams::default()
        })
    }

    fn day(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn months_become_whole_months_of_days() {
        for (from, to, first, last) in [
            (
                Some("2017-01"),
                Some("2017-06"),
                day(2017, 1, 1),
                day(2017, 6, 30),
            ),
            // February of a leap year and of a common one; December ends the year.
            (
                Some("2016-02"),
                Some("2017-02"),
                day(2016, 2, 1),
                day(2017, 2, 28),
            ),
            (None, Some("2016-02"), None, day(2016, 2, 29)),
            (Some("2017-12"), None, day(2017, 12, 1), None),
            (
                Some("2017-3"),
                Some(" 2017-03 "),
                day(2017, 3, 1),
                day(2017, 3, 31),
            ),
            (Some(""), Some(""), None, None),
        ] {
            let filters = parse(from, to).unwrap();
            assert_eq!((filters.from, filters.to), (first, last), "{from:?} {to:?}");
        }
    }

    #[test]
    fn what_is_not_a_month_is_refused_naming_its_field() {
        for (from, to, field) in [
            (Some("2017-13"), None, FilterName::From),
            (Some("2017-00"), None, FilterName::From),
            (Some("abc"), None, FilterName::From),
            (Some("2017-01-15"), None, FilterName::From),
            (Some("17-01"), None, FilterName::From),
            (None, Some("2017/06"), FilterName::To),
            (Some("2018-01"), Some("2017-01"), FilterName::To),
        ] {
            match parse(from, to) {
                Err(AppError::InvalidFilter { filter, .. }) => {
                    assert_eq!(filter, field, "{from:?} {to:?}")
                }
                other => panic!("{from:?} {to:?}: {other:?}"),
            }
        }
    }
}
