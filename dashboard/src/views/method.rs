//! KPI method sheets (`/indicatori/{id}`) and their index (`/indicatori`): definition,
//! formula, unit, targets with their status, and the dated method log, all from the catalogue.

use askama::Template;
use civica_analytics::catalogue::{Condition, Filter, KpiDef, Measure, Source, Unit};

use super::{PageFrame, Reader, Section, format_value};
use crate::error::AppError;
use crate::i18n::{Lang, LangChoice};

/// One KPI in the index.
#[derive(Debug, Clone)]
pub struct KpiLink {
    pub href: String,
    pub title: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "indicators.html")]
pub struct IndicatorsPage {
    pub frame: PageFrame,
    pub kpis: Vec<KpiLink>,
}

/// One target with where the KPI stands.
#[derive(Debug, Clone)]
pub struct TargetLine {
    pub text: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "method.html")]
pub struct MethodPage {
    pub frame: PageFrame,
    pub id: String,
    pub title: String,
    pub description: String,
    pub formula: String,
    pub unit: String,
    pub source: String,
    pub dimensions: String,
    pub targets: Vec<TargetLine>,
    pub method: Vec<(String, String)>,
    pub api_href: String,
    pub csv_href: String,
    pub min_cell: u64,
}

pub fn build_index(
    reader: &Reader<'_>,
    choice: LangChoice,
    path_and_query: &str,
) -> Result<IndicatorsPage, AppError> {
    let engine = reader.engine;
    let lang = choice.lang;
    let kpis = engine
        .catalogue()
        .kpis
        .iter()
        .map(|def| KpiLink {
            href: choice.href(&format!("/indicatori/{}", def.id)),
            title: def.title.get(lang.code()).to_string(),
            description: def.description.get(lang.code()).to_string(),
        })
        .collect();
    let title = format!("{} — civica", lang.t("indicators-heading"));
    Ok(IndicatorsPage {
        frame: reader.frame(choice, Section::Indicators, path_and_query, title)?,
        kpis,
    })
}

pub async fn build(
    reader: &Reader<'_>,
    choice: LangChoice,
    id: &str,
    path_and_query: &str,
) -> Result<MethodPage, AppError> {
    let engine = reader.engine;
    let lang = choice.lang;
    let def = engine
        .catalogue()
        .kpi(id)
        .map_err(|e| AppError::NotFound {
            message: e.to_string(),
        })?
        .clone();
    let statuses = engine.targets(&def.id).await?;
    let targets = statuses
        .iter()
        .map(|s| TargetLine {
            text: lang.t_args(
                "method-target",
                &[
                    ("value", format_value(lang, def.unit, s.value)),
                    ("by", s.by.clone()),
                    (
                        "latest",
                        match (s.latest_year, s.latest_value) {
                            (Some(y), Some(v)) => {
                                format!("{} ({y})", format_value(lang, def.unit, v))
                            }
                            _ => lang.t("marker-no-data"),
                        },
                    ),
                    (
                        "status",
                        lang.t(&format!("target-{}", s.status.replace('_', "-"))),
                    ),
                ],
            ),
            status: s.status.to_string(),
        })
        .collect();
    let title = def.title.get(lang.code()).to_string();
    Ok(MethodPage {
        frame: reader.frame(
            choice,
            Section::Indicators,
            path_and_query,
            format!("{title} — {} — civica", lang.t("method-heading")),
        )?,
        id: def.id.clone(),
        description: def.description.get(lang.code()).to_string(),
        formula: formula(lang, &def),
        unit: lang.t(match def.unit {
            Unit::Percent => "unit-percent",
            Unit::Count => "unit-count",
            Unit::Score => "unit-score",
            Unit::Days => "unit-days",
        }),
        source: lang.t(match def.source {
            Source::Requests => "source-requests",
            Source::Surveys => "source-surveys",
            Source::Ratings => "source-ratings",
        }),
        dimensions: def.dimensions.join(", "),
        targets,
        method: def
            .method
            .iter()
            .map(|m| {
                (
                    m.date.clone(),
                    if lang == Lang::En {
                        m.en.clone()
                    } else {
                        m.it.clone()
                    },
                )
            })
            .collect(),
        api_href: format!("/api/kpi/{}?by=year", def.id),
        csv_href: format!("/opendata/{}.csv", def.id),
        min_cell: engine.catalogue().disclosure.min_cell,
        title,
    })
}

/// The formula of a KPI in words and symbols, from its catalogue entry, e.g.
/// `100 × rows where channel ∈ {online, app} ÷ rows, over rows where status ∉ {abandoned}`.
pub fn formula(lang: Lang, def: &KpiDef) -> String {
    let numerator = def
        .numerator
        .as_ref()
        .map(|f| conditions(lang, f))
        .unwrap_or_default();
    let measure = match &def.measure {
        Measure::Share => lang.t_args("formula-share", &[("numerator", numerator)]),
        Measure::Count => lang.t("formula-count"),
        Measure::Mean(column) => lang.t_args("formula-mean", &[("column", column.clone())]),
        Measure::MedianDays([from, to]) => lang.t_args(
            "formula-median-days",
            &[("from", from.clone()), ("to", to.clone())],
        ),
        Measure::SumShare(column) => lang.t_args(
            "formula-sum-share",
            &[("column", column.clone()), ("numerator", numerator)],
        ),
    };
    if def.filter.is_empty() {
        measure
    } else {
        lang.t_args(
            "formula-over",
            &[
                ("measure", measure),
                ("filter", conditions(lang, &def.filter)),
            ],
        )
    }
}

fn conditions(lang: Lang, filter: &Filter) -> String {
    filter
        .iter()
        .map(|(column, c)| condition(lang, column, c))
        .collect::<Vec<_>>()
        .join(&format!(" {} ", lang.t("formula-and")))
}

fn condition(lang: Lang, column: &str, c: &Condition) -> String {
    let mut parts = Vec::new();
    if let Some(values) = &c.is_in {
        parts.push(format!("{column} ∈ {{{}}}", values.join(", ")));
    }
    if let Some(values) = &c.not_in {
        parts.push(format!("{column} ∉ {{{}}}", values.join(", ")));
    }
    if let Some(v) = c.ge {
        parts.push(format!("{column} ≥ {v}"));
    }
    if let Some(v) = c.le {
        parts.push(format!("{column} ≤ {v}"));
    }
    if let Some(is_null) = c.is_null {
        parts.push(if is_null {
            lang.t_args("formula-empty", &[("column", column.to_string())])
        } else {
            lang.t_args("formula-not-empty", &[("column", column.to_string())])
        });
    }
    parts.join(&format!(" {} ", lang.t("formula-and")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_online_share_formula_reads_like_its_definition() {
        let catalogue = civica_analytics::Catalogue::default();
        let def = catalogue.kpi("online_share").unwrap();
        assert_eq!(
            formula(Lang::En, def),
            "100 × requests where channel ∈ {online, app} ÷ all requests, over requests where status ∉ {abandoned}"
        );
    }
}
