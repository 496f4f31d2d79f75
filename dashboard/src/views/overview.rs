//! The overview (`/`): headline tiles of the main KPIs for a year, with sparkline, change on
//! the previous year and target status; then the online share of every service that year.

use askama::Template;
use civica_analytics::catalogue::{KpiDef, Unit};
use civica_analytics::kpi::target_status;
use civica_analytics::{Dimension, KpiQuery, KpiRow};

use super::{
    DataRow, DataTable, Figure, Filters, PageFrame, Reader, Section, SelectOption, ServiceYears,
    area_options, change_text, chosen_year, count_text, csv_href, format_value, n_text, value_text,
    year_options,
};
use crate::charts::{Bar, Chart, ChartOptions};
use crate::error::AppError;
use crate::i18n::LangChoice;

/// The KPIs of the headline tiles, in order.
pub const HEADLINE_KPIS: [&str; 5] = [
    "online_share",
    "satisfaction_mean",
    "requests",
    "digital_identity_share",
    "online_payment_share",
];

/// One headline tile.
#[derive(Debug, Clone)]
pub struct Tile {
    pub id: String,
    pub title: String,
    pub value: String,
    pub n: String,
    pub change: Option<String>,
    pub target: Option<String>,
    /// `met`, `on_track`, `behind`, `no_data`: a CSS class; the text says the same.
    pub target_status: String,
    pub sparkline: String,
    pub sparkline_id: String,
    pub sparkline_chart: Chart,
    pub sparkline_options: ChartOptions,
    pub sparkline_png_href: String,
    pub method_href: String,
    pub csv_href: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub frame: PageFrame,
    pub year: Option<i32>,
    pub year_options: Vec<SelectOption>,
    pub area_options: Vec<SelectOption>,
    pub heading: String,
    pub tiles: Vec<Tile>,
    pub tiles_table: DataTable,
    pub services: Figure,
    pub trend: DataTable,
    pub empty: bool,
}

pub async fn build(
    reader: &Reader<'_>,
    choice: LangChoice,
    filters: &Filters,
    path_and_query: &str,
) -> Result<OverviewPage, AppError> {
    let engine = reader.engine;
    let lang = choice.lang;
    let catalogue = engine.catalogue();
    let min_cell = catalogue.disclosure.min_cell;
    let shares = ServiceYears::load(reader, "online_share").await?;
    let year = chosen_year(engine, filters).await?;
    let area_services: Option<Vec<String>> = filters.area.as_ref().map(|area| {
        catalogue
            .services
            .iter()
            .filter(|s| &s.area == area)
            .map(|s| s.code.clone())
            .collect()
    });

    // Headline tiles: each KPI by year, for the area when one is chosen.
    let mut tiles = Vec::new();
    let mut tiles_table = DataTable {
        caption: lang.t("overview-tiles-table-caption"),
        columns: std::iter::once(lang.t("column-indicator"))
            .chain(shares.years.iter().map(|y| y.to_string()))
            .collect(),
        ..DataTable::default()
    };
    for id in HEADLINE_KPIS {
        let def = catalogue.kpi(id)?.clone();
        let mut query = KpiQuery::new(id).by(vec![Dimension::Year]);
        if let Some(area) = &filters.area {
            query.areas = vec![area.clone()];
        }
        let rows = reader.kpi(query).await?.rows;
        let row_of = |y: i32| rows.iter().find(|r| r.dims[0] == y.to_string());
        let title = def.title.get(lang.code()).to_string();
        let current = year.and_then(row_of);
        let series: Vec<Option<f64>> = shares
            .years
            .iter()
            .map(|y| row_of(*y).and_then(|r| r.value))
            .collect();
        tiles_table.rows.push(DataRow {
            header: title.clone(),
            href: None,
            cells: shares
                .years
                .iter()
                .map(|y| value_text(lang, def.unit, row_of(*y)))
                .collect(),
        });
        let (target, target_status_code) = target_text(lang, &def, &rows, year);
        let sparkline_id = format!("spark-{id}");
        let sparkline_chart = Chart::Sparkline(series);
        let sparkline_options = ChartOptions {
            id: sparkline_id.clone(),
            title: lang.t_args("sparkline-title", &[("kpi", title.clone())]),
            description: sparkline_description(lang, &def, &shares.years, &rows),
        };
        let sparkline = sparkline_chart
            .svg(&sparkline_options)
            .map_err(AppError::internal)?;
        tiles.push(Tile {
            id: id.to_string(),
            title,
            value: value_text(lang, def.unit, current),
            n: n_text(lang, current),
            change: current
                .and_then(|r| change_text(lang, def.unit, r.change))
                .zip(year)
                .map(|(c, y)| {
                    lang.t_args(
                        "change-on-year",
                        &[("change", c), ("year", (y - 1).to_string())],
                    )
                }),
            target,
            target_status: target_status_code,
            sparkline,
            sparkline_png_href: super::chart_href(choice, path_and_query, &sparkline_id, "png"),
            sparkline_id,
            sparkline_chart,
            sparkline_options,
            method_href: choice.href(&format!("/indicatori/{id}")),
            csv_href: csv_href(
                id,
                &match &filters.area {
                    Some(area) => format!("by=year&area={area}"),
                    None => "by=year".to_string(),
                },
            ),
        });
    }
    let tiles_table = tiles_table.with_marker_note(lang, min_cell);

    // Online share by service for the year.
    let in_area = |code: &str| {
        area_services
            .as_ref()
            .is_none_or(|s| s.iter().any(|c| c == code))
    };
    let mut services: Vec<(String, Option<&KpiRow>)> = shares
        .services()
        .into_iter()
        .filter(|s| in_area(s))
        .map(|s| {
            let row = year.and_then(|y| shares.get(&s, y));
            (s, row)
        })
        .filter(|(_, row)| row.is_some())
        .collect();
    services.sort_by(|a, b| {
        let value = |r: &Option<&KpiRow>| r.and_then(|r| r.value).unwrap_or(-1.0);
        value(&b.1)
            .total_cmp(&value(&a.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    let name = |code: &str| catalogue.service_name(code, lang.code()).to_string();
    let year_text = year.map(|y| y.to_string()).unwrap_or_default();
    let caption = lang.t_args("overview-services-caption", &[("year", year_text.clone())]);
    let known: Vec<&(String, Option<&KpiRow>)> = services
        .iter()
        .filter(|(_, r)| r.and_then(|r| r.value).is_some())
        .collect();
    let description = match (known.first(), known.last()) {
        (Some(top), Some(bottom)) if known.len() > 1 => lang.t_args(
            "overview-services-finding",
            &[
                ("year", year_text.clone()),
                ("top", name(&top.0)),
                ("top_value", value_text(lang, Unit::Percent, top.1)),
                ("bottom", name(&bottom.0)),
                ("bottom_value", value_text(lang, Unit::Percent, bottom.1)),
            ],
        ),
        (Some(only), _) => format!(
            "{}: {}",
            name(&only.0),
            value_text(lang, Unit::Percent, only.1)
        ),
        _ => lang.t("no-data"),
    };
    let bars: Vec<Bar> = services
        .iter()
        .map(|(code, row)| Bar {
            label: name(code),
            value: row.and_then(|r| r.value),
            text: value_text(lang, Unit::Percent, *row),
        })
        .collect();
    let chart = Chart::Bars {
        bars: bars.to_vec(),
        max: 100.0,
    };
    let options = ChartOptions {
        id: "online-share-chart".into(),
        title: caption.clone(),
        description,
    };
    let svg = chart.svg(&options).map_err(AppError::internal)?;
    let table = DataTable {
        caption: lang.t_args(
            "overview-services-table-caption",
            &[("year", year_text.clone())],
        ),
        columns: vec![
            lang.t("column-service"),
            lang.t("column-online-share"),
            lang.t("column-online-requests"),
            lang.t("column-requests"),
        ],
        rows: services
            .iter()
            .map(|(code, row)| DataRow {
                header: name(code),
                // Service pages are linked from the trend table below.
                href: None,
                cells: vec![
                    value_text(lang, Unit::Percent, *row),
                    count_text(lang, *row, |r| r.numerator),
                    count_text(lang, *row, |r| r.denominator),
                ],
            })
            .collect(),
        note: None,
    }
    .with_marker_note(lang, min_cell);
    let services_figure = Figure {
        id: "online-share-chart".into(),
        caption,
        svg,
        csv_href: csv_href("online_share", "by=service,year"),
        csv_label: lang.t("download-csv"),
        chart,
        options,
        png_href: super::chart_href(choice, path_and_query, "online-share-chart", "png"),
        png_label: lang.t("download-png"),
        table,
    };

    // Service × year.
    let trend = DataTable {
        caption: lang.t("overview-trend-caption"),
        columns: std::iter::once(lang.t("column-service"))
            .chain(shares.years.iter().map(|y| y.to_string()))
            .collect(),
        rows: shares
            .services()
            .into_iter()
            .filter(|s| in_area(s))
            .map(|code| DataRow {
                header: name(&code),
                href: Some(choice.href(&format!("/servizi/{code}"))),
                cells: shares
                    .years
                    .iter()
                    .map(|y| value_text(lang, Unit::Percent, shares.get(&code, *y)))
                    .collect(),
            })
            .collect(),
        note: None,
    }
    .with_marker_note(lang, min_cell);

    let heading = lang.t("overview-heading");
    let title = match year {
        Some(y) => format!("{heading} {y} — civica"),
        None => format!("{heading} — civica"),
    };
    Ok(OverviewPage {
        frame: reader.frame(choice, Section::Overview, path_and_query, title)?,
        year,
        year_options: year_options(&shares.years, year),
        area_options: area_options(lang, filters.area.as_deref()),
        heading,
        empty: services.is_empty(),
        tiles,
        tiles_table,
        services: services_figure,
        trend,
    })
}

/// The target of a KPI and where the year stands against it (trend up to that year).
fn target_text(
    lang: crate::i18n::Lang,
    def: &KpiDef,
    rows: &[KpiRow],
    year: Option<i32>,
) -> (Option<String>, String) {
    let Some(target) = def.targets.first() else {
        return (None, String::new());
    };
    let points: Vec<(i32, f64)> = rows
        .iter()
        .filter_map(|r| Some((r.dims[0].parse::<i32>().ok()?, r.value?)))
        .filter(|(y, _)| year.is_none_or(|chosen| *y <= chosen))
        .collect();
    let status = target_status(target, &points);
    let text = lang.t_args(
        "target-text",
        &[
            ("value", format_value(lang, def.unit, target.value)),
            ("by", target.by.get(..4).unwrap_or(&target.by).to_string()),
            (
                "status",
                lang.t(&format!("target-{}", status.status.replace('_', "-"))),
            ),
        ],
    );
    (Some(text), status.status.to_string())
}

/// "Da 52,0% nel 2015 a 83,0% nel 2018" from the first and last known values.
fn sparkline_description(
    lang: crate::i18n::Lang,
    def: &KpiDef,
    years: &[i32],
    rows: &[KpiRow],
) -> String {
    let known: Vec<(i32, f64)> = years
        .iter()
        .filter_map(|y| {
            let row = rows.iter().find(|r| r.dims[0] == y.to_string())?;
            Some((*y, row.value?))
        })
        .collect();
    match (known.first(), known.last()) {
        (Some(first), Some(last)) if known.len() > 1 => lang.t_args(
            "sparkline-finding",
            &[
                ("from", format_value(lang, def.unit, first.1)),
                ("from_year", first.0.to_string()),
                ("to", format_value(lang, def.unit, last.1)),
                ("to_year", last.0.to_string()),
            ],
        ),
        (Some(only), _) => format!("{}: {}", only.0, format_value(lang, def.unit, only.1)),
        _ => lang.t("no-data"),
    }
}

impl OverviewPage {
    /// The chart `id` of the page: the services figure or a tile's sparkline.
    pub fn chart(&self, id: &str) -> Option<(&Chart, &ChartOptions)> {
        super::find_chart(std::slice::from_ref(&self.services), id).or_else(|| {
            self.tiles
                .iter()
                .find(|t| t.sparkline_id == id)
                .map(|t| (&t.sparkline_chart, &t.sparkline_options))
        })
    }
}
