//! The figures of a service page, each a chart with its table and CSV link: the monthly
//! online share with target and launch annotation, the channel mix, satisfaction with `n` and
//! intervals, and yearly bars (volumes, processing time).

use civica_analytics::catalogue::Unit;
use civica_analytics::{Engine, Flag, KpiRow};

use super::{
    DataRow, DataTable, Figure, change_text, channel_name, csv_href, format_value, n_text,
    value_text,
};
use crate::charts::{Annotation, Bar, Chart, ChartOptions, LineChart, LinePoint, StackedBar};
use crate::error::AppError;
use crate::i18n::Lang;

/// The monthly online share with the target line and the launch of the online service.
pub(super) fn monthly_figure(
    lang: Lang,
    engine: &Engine,
    code: &str,
    online_since: Option<&str>,
    rows: &[KpiRow],
    min_cell: u64,
) -> Result<Figure, AppError> {
    let months = month_range(rows);
    let row_of = |m: &str| rows.iter().find(|r| r.dims[0] == m);
    let points: Vec<LinePoint> = months
        .iter()
        .map(|m| LinePoint {
            value: row_of(m).and_then(|r| r.value),
            tick: m.ends_with("-01").then(|| m[..4].to_string()),
        })
        .collect();
    let def = engine.catalogue().kpi("online_share")?;
    let target = def.targets.first().map(|t| {
        (
            t.value,
            lang.t_args(
                "chart-target",
                &[
                    ("value", format!("{}%", lang.decimal(t.value, 0))),
                    ("by", t.by.get(..4).unwrap_or(&t.by).to_string()),
                ],
            ),
        )
    });
    let annotations = online_since
        .and_then(|since| months.iter().position(|m| m == since))
        .map(|at| Annotation {
            at,
            text: lang.t("annotation-online-launch"),
        })
        .into_iter()
        .collect();
    let caption = lang.t("service-monthly-caption");
    let known: Vec<(&String, f64)> = months
        .iter()
        .filter_map(|m| Some((m, row_of(m)?.value?)))
        .collect();
    let description = match (known.first(), known.last()) {
        (Some(first), Some(last)) => lang.t_args(
            "service-monthly-finding",
            &[
                ("from", lang.percent(first.1)),
                ("from_month", first.0.clone()),
                ("to", lang.percent(last.1)),
                ("to_month", last.0.clone()),
                (
                    "target",
                    target
                        .as_ref()
                        .map(|t| lang.percent(t.0))
                        .unwrap_or_default(),
                ),
            ],
        ),
        _ => lang.t("no-data"),
    };
    let chart = Chart::Line(LineChart {
        points,
        max: 100.0,
        y_labels: [0.0, 25.0, 50.0, 75.0, 100.0]
            .iter()
            .map(|v| (*v, format!("{v}%")))
            .collect(),
        target,
        annotations,
    });
    let options = ChartOptions {
        id: "monthly-online-share".into(),
        title: caption.clone(),
        description,
    };
    let svg = chart.svg(&options).map_err(AppError::internal)?;
    let table = DataTable {
        caption: lang.t("service-monthly-table-caption"),
        columns: vec![
            lang.t("column-month"),
            lang.t("column-online-share"),
            lang.t("column-n"),
        ],
        rows: months
            .iter()
            .map(|m| DataRow {
                header: m.clone(),
                href: None,
                cells: vec![
                    value_text(lang, Unit::Percent, row_of(m)),
                    n_text(lang, row_of(m)),
                ],
            })
            .collect(),
        note: None,
    }
    .with_marker_note(lang, min_cell);
    Ok(Figure {
        id: "monthly-online-share".into(),
        caption,
        svg,
        csv_href: csv_href("online_share", &format!("by=month&service={code}")),
        csv_label: lang.t("download-csv"),
        chart,
        options,
        png_href: String::new(),
        png_label: lang.t("download-png"),
        table,
    })
}

/// Every month from the first to the last in `rows` (`YYYY-MM`), gaps included.
fn month_range(rows: &[KpiRow]) -> Vec<String> {
    let parse = |m: &str| -> Option<(i32, u32)> {
        let (y, mo) = m.split_once('-')?;
        Some((y.parse().ok()?, mo.parse().ok()?))
    };
    let mut known: Vec<(i32, u32)> = rows.iter().filter_map(|r| parse(&r.dims[0])).collect();
    known.sort_unstable();
    let (Some(first), Some(last)) = (known.first().copied(), known.last().copied()) else {
        return Vec::new();
    };
    let mut months = Vec::new();
    let (mut y, mut m) = first;
    while (y, m) <= last {
        months.push(format!("{y:04}-{m:02}"));
        m += 1;
        if m > 12 {
            m = 1;
            y += 1;
        }
    }
    months
}

/// Requests by channel and year as stacked bars of counts. Withheld cells are left out of the
/// bar (and marked in the table and after the bar), never drawn as zero.
pub(super) fn channel_figure(
    lang: Lang,
    code: &str,
    rows: &[KpiRow],
    min_cell: u64,
) -> Result<Figure, AppError> {
    let mut years: Vec<&str> = rows.iter().map(|r| r.dims[0].as_str()).collect();
    years.sort_unstable();
    years.dedup();
    let mut channels: Vec<&str> = rows.iter().map(|r| r.dims[1].as_str()).collect();
    channels.sort_unstable();
    channels.dedup();
    let cell = |y: &str, c: &str| rows.iter().find(|r| r.dims[0] == y && r.dims[1] == c);
    let series: Vec<String> = channels.iter().map(|c| channel_name(lang, c)).collect();
    let withheld = lang.t("marker-withheld");
    let bars: Vec<StackedBar> = years
        .iter()
        .map(|y| {
            let segments: Vec<Option<f64>> = channels
                .iter()
                .map(|c| {
                    cell(y, c)
                        .filter(|r| r.flag != Some(Flag::Suppressed))
                        .and_then(|r| r.value)
                })
                .collect();
            let shown: f64 = segments.iter().flatten().sum();
            let any_withheld = channels
                .iter()
                .any(|c| cell(y, c).is_some_and(|r| r.flag == Some(Flag::Suppressed)));
            StackedBar {
                label: y.to_string(),
                segments,
                text: if any_withheld {
                    format!("{} + {withheld}", lang.count(shown))
                } else {
                    lang.count(shown)
                },
            }
        })
        .collect();
    let max = bars
        .iter()
        .map(|b| b.segments.iter().flatten().sum::<f64>())
        .fold(0.0, f64::max);
    let caption = lang.t("service-channels-caption");
    let description = match years.last() {
        Some(last) => {
            let top = channels
                .iter()
                .filter_map(|c| Some((c, cell(last, c)?.value?)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match top {
                Some((channel, value)) => lang.t_args(
                    "service-channels-finding",
                    &[
                        ("year", last.to_string()),
                        ("channel", channel_name(lang, channel)),
                        ("value", lang.count(value)),
                    ],
                ),
                None => lang.t("comparison-all-withheld"),
            }
        }
        None => lang.t("no-data"),
    };
    let chart = Chart::Stacked {
        bars: bars.to_vec(),
        series: series.to_vec(),
        max,
    };
    let options = ChartOptions {
        id: "channel-mix".into(),
        title: caption.clone(),
        description,
    };
    let svg = chart.svg(&options).map_err(AppError::internal)?;
    let table = DataTable {
        caption: lang.t("service-channels-table-caption"),
        columns: std::iter::once(lang.t("column-year"))
            .chain(series.iter().cloned())
            .collect(),
        rows: years
            .iter()
            .map(|y| DataRow {
                header: y.to_string(),
                href: None,
                cells: channels
                    .iter()
                    .map(|c| value_text(lang, Unit::Count, cell(y, c)))
                    .collect(),
            })
            .collect(),
        note: None,
    }
    .with_marker_note(lang, min_cell);
    Ok(Figure {
        id: "channel-mix".into(),
        caption,
        svg,
        csv_href: csv_href("requests", &format!("by=year,channel&service={code}")),
        csv_label: lang.t("download-csv"),
        chart,
        options,
        png_href: String::new(),
        png_label: lang.t("download-png"),
        table,
    })
}

/// Satisfied (7–10) and not satisfied (1–6) shares by year, with `n`, the mean score and the
/// 95% intervals of both.
pub(super) fn satisfaction_figure(
    lang: Lang,
    csv_query: &str,
    satisfied: &[KpiRow],
    mean: &[KpiRow],
    min_cell: u64,
) -> Result<Figure, AppError> {
    let series = vec![lang.t("series-satisfied"), lang.t("series-not-satisfied")];
    let bars: Vec<StackedBar> = satisfied
        .iter()
        .map(|r| StackedBar {
            label: r.dims[0].clone(),
            segments: vec![r.value, r.value.map(|v| 100.0 - v)],
            text: value_text(lang, Unit::Percent, Some(r)),
        })
        .collect();
    let caption = lang.t("service-satisfaction-caption");
    let description = match satisfied.iter().rev().find(|r| r.value.is_some()) {
        Some(r) => lang.t_args(
            "service-satisfaction-finding",
            &[
                ("year", r.dims[0].clone()),
                ("value", value_text(lang, Unit::Percent, Some(r))),
                ("n", n_text(lang, Some(r))),
            ],
        ),
        None => lang.t("comparison-all-withheld"),
    };
    let chart = Chart::Stacked {
        bars,
        series,
        max: 100.0,
    };
    let options = ChartOptions {
        id: "satisfaction".into(),
        title: caption.clone(),
        description,
    };
    let svg = chart.svg(&options).map_err(AppError::internal)?;
    let interval = |r: Option<&KpiRow>, unit: Unit| match r.and_then(|r| r.ci_low.zip(r.ci_high)) {
        Some((lo, hi)) => format!(
            "{} – {}",
            format_value(lang, unit, lo),
            format_value(lang, unit, hi)
        ),
        None => lang.t("marker-no-data"),
    };
    let table = DataTable {
        caption: lang.t("service-satisfaction-table-caption"),
        columns: vec![
            lang.t("column-year"),
            lang.t("column-satisfied-share"),
            lang.t("column-interval"),
            lang.t("column-mean-score"),
            lang.t("column-interval"),
            lang.t("column-n"),
        ],
        rows: satisfied
            .iter()
            .map(|r| {
                let m = mean.iter().find(|m| m.dims[0] == r.dims[0]);
                let suppressed = r.flag == Some(Flag::Suppressed);
                DataRow {
                    header: r.dims[0].clone(),
                    href: None,
                    cells: vec![
                        value_text(lang, Unit::Percent, Some(r)),
                        if suppressed {
                            lang.t("marker-withheld")
                        } else {
                            interval(Some(r), Unit::Percent)
                        },
                        value_text(lang, Unit::Score, m),
                        if m.is_some_and(|m| m.flag == Some(Flag::Suppressed)) {
                            lang.t("marker-withheld")
                        } else {
                            interval(m, Unit::Score)
                        },
                        n_text(lang, Some(r)),
                    ],
                }
            })
            .collect(),
        note: None,
    }
    .with_marker_note(lang, min_cell);
    Ok(Figure {
        id: "satisfaction".into(),
        caption,
        svg,
        csv_href: csv_href(
            "satisfaction_satisfied_share",
            &format!("by=year&{csv_query}"),
        ),
        csv_label: lang.t("download-csv"),
        chart,
        options,
        png_href: String::new(),
        png_label: lang.t("download-png"),
        table,
    })
}

/// The ratings of one year by score (1–10), from the jointly suppressed distribution of the
/// open data (all channels), with `n`, the mean score and its 95% interval of the same year.
/// A withheld level shows the marker and draws no bar; a score nobody gave is a true 0.
pub(super) fn score_figure(
    lang: Lang,
    code: &str,
    year: Option<i32>,
    distribution: &[KpiRow],
    mean: &[KpiRow],
    min_cell: u64,
) -> Result<Figure, AppError> {
    let year_text = year.map(|y| y.to_string()).unwrap_or_default();
    let cells: Vec<&KpiRow> = distribution
        .iter()
        .filter(|r| r.dims[0] == code && r.dims[1] == year_text)
        .collect();
    let mean_row = mean.iter().find(|r| r.dims[0] == year_text);
    let any = !cells.is_empty();
    let count_of = |score: i32| -> Option<&KpiRow> {
        cells
            .iter()
            .find(|r| r.dims[2] == score.to_string())
            .copied()
    };
    // (score, count when shown, text)
    let levels: Vec<(i32, Option<f64>, String)> = (1..=10)
        .map(|score| match count_of(score) {
            Some(r) if r.flag == Some(Flag::Suppressed) => (score, None, lang.t("marker-withheld")),
            Some(r) => {
                let n = r.n.unwrap_or(0) as f64;
                (score, Some(n), lang.count(n))
            }
            None if any => (score, Some(0.0), lang.count(0.0)),
            None => (score, None, lang.t("marker-no-data")),
        })
        .collect();
    let n = n_text(lang, mean_row);
    let mean_text = value_text(lang, Unit::Score, mean_row);
    let interval = match mean_row.and_then(|r| r.ci_low.zip(r.ci_high)) {
        Some((lo, hi)) => format!(
            "{} – {}",
            format_value(lang, Unit::Score, lo),
            format_value(lang, Unit::Score, hi)
        ),
        None => lang.t("marker-no-data"),
    };
    let caption = lang.t_args("service-scores-caption", &[("year", year_text.clone())]);
    let top = levels
        .iter()
        .filter_map(|(score, count, _)| Some((*score, (*count)?)))
        .filter(|(_, count)| *count > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    let description = match top {
        Some((score, count)) => lang.t_args(
            "service-scores-finding",
            &[
                ("year", year_text.clone()),
                ("score", score.to_string()),
                ("count", lang.count(count)),
                ("n", n.clone()),
                ("mean", mean_text.clone()),
            ],
        ),
        None if any => lang.t("comparison-all-withheld"),
        None => lang.t("no-data"),
    };
    let max = levels
        .iter()
        .filter_map(|(_, count, _)| *count)
        .fold(0.0, f64::max);
    let chart = Chart::Bars {
        bars: levels
            .iter()
            .map(|(score, count, text)| Bar {
                label: score.to_string(),
                value: *count,
                text: text.clone(),
            })
            .collect(),
        max: max * 1.05,
    };
    let options = ChartOptions {
        id: "score-distribution".into(),
        title: caption.clone(),
        description,
    };
    let svg = chart.svg(&options).map_err(AppError::internal)?;
    let table = DataTable {
        caption: lang.t_args(
            "service-scores-table-caption",
            &[
                ("year", year_text.clone()),
                ("n", n),
                ("mean", mean_text),
                ("interval", interval),
            ],
        ),
        columns: vec![lang.t("column-score"), lang.t("column-ratings")],
        rows: levels
            .into_iter()
            .map(|(score, _, text)| DataRow {
                header: score.to_string(),
                href: None,
                cells: vec![text],
            })
            .collect(),
        note: None,
    }
    .with_marker_note(lang, min_cell);
    Ok(Figure {
        id: "score-distribution".into(),
        caption,
        svg,
        csv_href: "/opendata/satisfaction_by_service_year.csv".into(),
        csv_label: lang.t("download-csv"),
        chart,
        options,
        png_href: String::new(),
        png_label: lang.t("download-png"),
        table,
    })
}

/// A KPI by year as bars (volumes, processing time).
#[allow(clippy::too_many_arguments)]
pub(super) fn yearly_bars(
    lang: Lang,
    kpi: &str,
    unit: Unit,
    csv_query: &str,
    rows: &[KpiRow],
    min_cell: u64,
    engine: &Engine,
) -> Result<Figure, AppError> {
    let def = engine.catalogue().kpi(kpi)?;
    let title = def.title.get(lang.code()).to_string();
    let max = rows.iter().filter_map(|r| r.value).fold(0.0, f64::max);
    let bars: Vec<Bar> = rows
        .iter()
        .map(|r| Bar {
            label: r.dims[0].clone(),
            value: r.value,
            text: value_text(lang, unit, Some(r)),
        })
        .collect();
    let caption = lang.t_args("service-yearly-caption", &[("kpi", title.clone())]);
    let description = match rows.iter().rev().find(|r| r.value.is_some()) {
        Some(r) => format!(
            "{} {}: {}",
            title,
            r.dims[0],
            value_text(lang, unit, Some(r))
        ),
        None => lang.t("no-data"),
    };
    let id = format!("yearly-{kpi}");
    let chart = Chart::Bars {
        bars: bars.to_vec(),
        max: max * 1.05,
    };
    let options = ChartOptions {
        id: id.clone(),
        title: caption.clone(),
        description,
    };
    let svg = chart.svg(&options).map_err(AppError::internal)?;
    let table = DataTable {
        caption: lang.t_args("service-yearly-table-caption", &[("kpi", title.clone())]),
        columns: vec![
            lang.t("column-year"),
            title,
            lang.t("column-change"),
            lang.t("column-n"),
        ],
        rows: rows
            .iter()
            .map(|r| DataRow {
                header: r.dims[0].clone(),
                href: None,
                cells: vec![
                    value_text(lang, unit, Some(r)),
                    change_text(lang, unit, r.change).unwrap_or_else(|| lang.t("marker-no-data")),
                    n_text(lang, Some(r)),
                ],
            })
            .collect(),
        note: None,
    }
    .with_marker_note(lang, min_cell);
    Ok(Figure {
        id,
        caption,
        svg,
        csv_href: csv_href(kpi, &format!("by=year&{csv_query}")),
        csv_label: lang.t("download-csv"),
        chart,
        options,
        png_href: String::new(),
        png_label: lang.t("download-png"),
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_continuous_across_gaps_and_years() {
        let row = |m: &str| KpiRow {
            dims: vec![m.into()],
            value: None,
            numerator: None,
            denominator: None,
            n: None,
            ci_low: None,
            ci_high: None,
            change: None,
            flag: None,
        };
        let months = month_range(&[row("2017-11"), row("2018-02")]);
        assert_eq!(months, ["2017-11", "2017-12", "2018-01", "2018-02"]);
        assert!(month_range(&[]).is_empty());
    }
}
