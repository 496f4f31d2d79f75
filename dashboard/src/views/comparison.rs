//! The comparison (`/confronto`): services ranked by online share within each area, the way
//! the city lists them ("83% for nursery enrolment, 76% for the canteen…"), with the movement
//! on the previous year. With a period of months (`from`, `to`), the shares are those of the
//! period and the movement is on the same months one year earlier.

use std::collections::BTreeMap;

use askama::Template;
use civica_analytics::catalogue::{AREAS, Unit};
use civica_analytics::{Dimension, KpiQuery, KpiRow};

use super::{
    DataRow, DataTable, Figure, Filters, MonthRange, PageFrame, Reader, Section, SelectOption,
    ServiceYears, area_name, area_options, change_text, chosen_year, csv_href, month_value, n_text,
    value_text, year_options,
};
use crate::charts::{Bar, Chart, ChartOptions};
use crate::error::AppError;
use crate::i18n::LangChoice;

#[derive(Template)]
#[template(path = "comparison.html")]
pub struct ComparisonPage {
    pub frame: PageFrame,
    pub year: Option<i32>,
    /// The period in words, when the page shows a period of months instead of a year.
    pub period: Option<String>,
    /// The `from` and `to` fields of the form (`YYYY-MM`, empty when not given).
    pub from_value: String,
    pub to_value: String,
    pub year_options: Vec<SelectOption>,
    pub area_options: Vec<SelectOption>,
    pub heading: String,
    pub intro: String,
    /// One figure per area, in the catalogue's order of areas.
    pub areas: Vec<Figure>,
}

pub async fn build(
    reader: &Reader<'_>,
    choice: LangChoice,
    filters: &Filters,
    path_and_query: &str,
) -> Result<ComparisonPage, AppError> {
    let engine = reader.engine;
    let lang = choice.lang;
    let catalogue = engine.catalogue();
    let min_cell = catalogue.disclosure.min_cell;
    let shares = ServiceYears::load(reader, "online_share").await?;
    let year = chosen_year(engine, filters).await?;
    let period = filters.period();
    let cells = match period {
        Some(range) => Cells::of_period(reader, range).await?,
        None => Cells::of_year(&shares, year),
    };
    // What the figures cover, and the period they are compared with.
    let (year_text, previous_text) = match period {
        Some(range) => (
            range.text(lang),
            range.year_before().map(|before| before.text(lang)),
        ),
        None => (
            year.map(|y| y.to_string()).unwrap_or_default(),
            year.map(|y| (y - 1).to_string()),
        ),
    };
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
                    && cells.current.contains_key(*code)
            })
            .collect();
        if ranked.is_empty() {
            continue;
        }
        let value = |code: &str| cells.current.get(code).and_then(|r| r.value);
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
                    value_text(lang, Unit::Percent, cells.current.get(*code)),
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
                let row = cells.current.get(*code);
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
        let table_caption = match (period, &previous_text) {
            (Some(_), Some(_)) => "comparison-table-caption-period",
            (Some(_), None) => "comparison-table-caption-alone",
            (None, _) => "comparison-table-caption",
        };
        let mut columns = vec![
            lang.t("column-service"),
            lang.t_args("column-share-in", &[("year", year_text.clone())]),
            lang.t("column-n"),
        ];
        if let Some(previous_text) = &previous_text {
            columns.push(lang.t_args("column-share-in", &[("year", previous_text.clone())]));
            columns.push(lang.t("column-movement"));
        }
        let table = DataTable {
            caption: lang.t_args(
                table_caption,
                &[("area", area_label), ("year", year_text.clone())],
            ),
            columns,
            rows: ranked
                .iter()
                .map(|code| {
                    let row = cells.current.get(*code);
                    let before = cells.before.get(*code);
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
                        cells: if previous_text.is_some() {
                            vec![
                                value_text(lang, Unit::Percent, row),
                                n_text(lang, row),
                                value_text(lang, Unit::Percent, before),
                                movement,
                            ]
                        } else {
                            vec![value_text(lang, Unit::Percent, row), n_text(lang, row)]
                        },
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
            csv_href: match period {
                Some(range) => csv_href(
                    "online_share",
                    &format!("by=service&{}", range.download_query()),
                ),
                None => csv_href("online_share", "by=service,year"),
            },
            csv_label: lang.t("download-csv"),
            chart,
            options,
            png_label: lang.t("download-png"),
            table,
        });
    }
    let heading = lang.t("comparison-heading");
    Ok(ComparisonPage {
        frame: reader.frame(
            choice,
            Section::Comparison,
            path_and_query,
            format!("{heading} {year_text} — civica"),
        )?,
        year: if period.is_some() { None } else { year },
        period: period.map(|range| range.text(lang)),
        from_value: month_value(filters.from),
        to_value: month_value(filters.to),
        year_options: year_options(&shares.years, year),
        area_options: area_options(lang, filters.area.as_deref()),
        heading,
        intro: lang.t(if period.is_some() {
            "comparison-intro-period"
        } else {
            "comparison-intro"
        }),
        areas,
    })
}

/// The online share of each service in the period shown and in the period it is compared
/// with; `change` of a current row is the movement between the two.
struct Cells {
    current: BTreeMap<String, KpiRow>,
    before: BTreeMap<String, KpiRow>,
}

impl Cells {
    /// A year and the year before, from the yearly cells every page shares.
    fn of_year(shares: &ServiceYears, year: Option<i32>) -> Cells {
        let pick = |year: Option<i32>| -> BTreeMap<String, KpiRow> {
            let Some(year) = year else {
                return BTreeMap::new();
            };
            shares
                .cells
                .iter()
                .filter(|((_, y), _)| *y == year)
                .map(|((code, _), row)| (code.clone(), row.clone()))
                .collect()
        };
        Cells {
            current: pick(year),
            before: pick(year.map(|y| y - 1)),
        }
    }

    /// A period of months and the same months a year earlier: one query by service each, for
    /// every service together (secondary suppression depends on the cells queried together).
    async fn of_period(reader: &Reader<'_>, range: MonthRange) -> Result<Cells, AppError> {
        let by_service = |range: MonthRange| {
            range.restrict(KpiQuery::new("online_share").by(vec![Dimension::Service]))
        };
        let rows = |rows: Vec<KpiRow>| -> BTreeMap<String, KpiRow> {
            rows.into_iter().map(|r| (r.dims[0].clone(), r)).collect()
        };
        let mut current = rows(reader.kpi(by_service(range)).await?.rows);
        let before = match range.year_before() {
            Some(previous) => rows(reader.kpi(by_service(previous)).await?.rows),
            None => BTreeMap::new(),
        };
        for (code, row) in &mut current {
            let earlier = before.get(code).and_then(|r| r.value);
            row.change = row.value.zip(earlier).map(|(now, then)| now - then);
        }
        Ok(Cells { current, before })
    }
}

impl ComparisonPage {
    /// The chart `id` of the page (one per area).
    pub fn chart(&self, id: &str) -> Option<(&Chart, &ChartOptions)> {
        super::find_chart(&self.areas, id)
    }
}
