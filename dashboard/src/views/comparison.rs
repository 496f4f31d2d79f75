//! The comparison (`/confronto`): services ranked by online share within each area, the way
//! the city lists them ("83% for nursery enrolment, 76% for the canteen…"), with the movement
//! on the previous year.

use askama::Template;
use civica_analytics::Engine;
use civica_analytics::catalogue::{AREAS, Unit};

use super::{
    DataRow, DataTable, Figure, Filters, PageFrame, Section, SelectOption, ServiceYears, area_name,
    area_options, change_text, chosen_year, csv_href, n_text, value_text, year_options,
};
use crate::charts::{Bar, Chart, ChartOptions};
use crate::error::AppError;
use crate::i18n::LangChoice;

#[derive(Template)]
#[template(path = "comparison.html")]
pub struct ComparisonPage {
    pub frame: PageFrame,
    pub year: Option<i32>,
    pub year_options: Vec<SelectOption>,
    pub area_options: Vec<SelectOption>,
    pub heading: String,
    pub intro: String,
    /// One figure per area, in the catalogue's order of areas.
    pub areas: Vec<Figure>,
}

pub async fn build(
    engine: &Engine,
    choice: LangChoice,
    filters: &Filters,
    path_and_query: &str,
) -> Result<ComparisonPage, AppError> {
    let lang = choice.lang;
    let catalogue = engine.catalogue();
    let min_cell = catalogue.disclosure.min_cell;
    let shares = ServiceYears::load(engine, "online_share").await?;
    let year = chosen_year(engine, filters).await?;
    let year_text = year.map(|y| y.to_string()).unwrap_or_default();
    let previous = year.map(|y| y - 1);
    let name = |code: &str| catalogue.service_name(code, lang.code()).to_string();
    let services = shares.services();

    let mut areas = Vec::new();
    for area in AREAS {
        if filters.area.as_deref().is_some_and(|a| a != area) {
            continue;
        }
        let mut ranked: Vec<&String> = services
            .iter()
            .filter(|code| {
                catalogue.service(code).map(|s| s.area.as_str()) == Some(area)
                    && year.and_then(|y| shares.get(code, y)).is_some()
            })
            .collect();
        if ranked.is_empty() {
            continue;
        }
        let value = |code: &str| year.and_then(|y| shares.get(code, y)).and_then(|r| r.value);
        ranked.sort_by(|a, b| {
            value(b)
                .unwrap_or(-1.0)
                .total_cmp(&value(a).unwrap_or(-1.0))
                .then_with(|| a.cmp(b))
        });
        let area_label = area_name(lang, area);
        let caption = lang.t_args(
            "comparison-area-caption",
            &[("area", area_label.clone()), ("year", year_text.clone())],
        );
        let listed: Vec<String> = ranked
            .iter()
            .filter(|code| value(code).is_some())
            .map(|code| {
                format!(
                    "{} {}",
                    value_text(lang, Unit::Percent, year.and_then(|y| shares.get(code, y))),
                    lang.t_args("comparison-for", &[("service", name(code))])
                )
            })
            .collect();
        let description = if listed.is_empty() {
            lang.t("comparison-all-withheld")
        } else {
            lang.t_args(
                "comparison-finding",
                &[("year", year_text.clone()), ("list", listed.join(", "))],
            )
        };
        let id = format!("comparison-{area}");
        let bars: Vec<Bar> = ranked
            .iter()
            .map(|code| {
                let row = year.and_then(|y| shares.get(code, y));
                Bar {
                    label: name(code),
                    value: row.and_then(|r| r.value),
                    text: value_text(lang, Unit::Percent, row),
                }
            })
            .collect();
        let chart = Chart::Bars {
            bars: bars.to_vec(),
            max: 100.0,
        };
        let options = ChartOptions {
            id: id.clone(),
            title: caption.clone(),
            description,
        };
        let svg = chart.svg(&options).map_err(AppError::internal)?;
        let previous_text = previous.map(|y| y.to_string()).unwrap_or_default();
        let table = DataTable {
            caption: lang.t_args(
                "comparison-table-caption",
                &[("area", area_label), ("year", year_text.clone())],
            ),
            columns: vec![
                lang.t("column-service"),
                lang.t_args("column-share-in", &[("year", year_text.clone())]),
                lang.t("column-n"),
                lang.t_args("column-share-in", &[("year", previous_text.clone())]),
                lang.t("column-movement"),
            ],
            rows: ranked
                .iter()
                .map(|code| {
                    let row = year.and_then(|y| shares.get(code, y));
                    let before = previous.and_then(|y| shares.get(code, y));
                    let movement = row
                        .and_then(|r| change_text(lang, Unit::Percent, r.change))
                        .map(|c| {
                            let direction = match row.and_then(|r| r.change) {
                                Some(d) if d > 0.05 => lang.t("movement-up"),
                                Some(d) if d < -0.05 => lang.t("movement-down"),
                                _ => lang.t("movement-flat"),
                            };
                            format!("{direction} {c}")
                        })
                        .unwrap_or_else(|| lang.t("marker-no-data"));
                    DataRow {
                        header: name(code),
                        href: Some(choice.href(&format!("/servizi/{code}"))),
                        cells: vec![
                            value_text(lang, Unit::Percent, row),
                            n_text(lang, row),
                            value_text(lang, Unit::Percent, before),
                            movement,
                        ],
                    }
                })
                .collect(),
            note: None,
        }
        .with_marker_note(lang, min_cell);
        areas.push(Figure {
            png_href: super::chart_href(choice, path_and_query, &id, "png"),
            id,
            caption,
            svg,
            // The very query behind the chart (all services), so the CSV has the same cells.
            csv_href: csv_href("online_share", "by=service,year"),
            csv_label: lang.t("download-csv"),
            chart,
            options,
            png_label: lang.t("download-png"),
            table,
        });
    }
    let heading = lang.t("comparison-heading");
    Ok(ComparisonPage {
        frame: PageFrame::new(
            engine,
            choice,
            Section::Comparison,
            path_and_query,
            format!("{heading} {year_text} — civica"),
        )?,
        year,
        year_options: year_options(&shares.years, year),
        area_options: area_options(lang, filters.area.as_deref()),
        heading,
        intro: lang.t("comparison-intro"),
        areas,
    })
}

impl ComparisonPage {
    /// The chart `id` of the page (one per area).
    pub fn chart(&self, id: &str) -> Option<(&Chart, &ChartOptions)> {
        super::find_chart(&self.areas, id)
    }
}
