//! A service page (`/servizi/{code}`): the monthly online share with its target and launch
//! annotation, the channel mix, satisfaction with `n` and interval, the ratings of the year by
//! score (the open data's distribution), volumes, processing time, and the method notes of
//! each KPI shown. With a period of months (`from`, `to`), the headline and every figure but
//! the ratings by score (a yearly open dataset) cover that period only.

use askama::Template;
use civica_analytics::catalogue::Unit;
use civica_analytics::{Dimension, KpiQuery, KpiRow};

use super::service_charts::{
    channel_figure, monthly_figure, satisfaction_figure, score_figure, yearly_bars,
};
use super::{
    Figure, Filters, PageFrame, Reader, Section, SelectOption, ServiceYears, change_text,
    channel_name, chosen_year, month_value, n_text, value_text, year_options,
};
use crate::charts::{Chart, ChartOptions};
use crate::error::AppError;
use crate::i18n::{Lang, LangChoice};

/// The KPIs a service page shows, whose method notes it lists.
const SERVICE_KPIS: [&str; 5] = [
    "online_share",
    "requests",
    "satisfaction_mean",
    "satisfaction_satisfied_share",
    "median_days_to_complete",
];

/// The method notes of one KPI.
#[derive(Debug, Clone)]
pub struct MethodNotes {
    pub title: String,
    pub href: String,
    pub notes: Vec<(String, String)>,
}

/// The headline figure of the page.
#[derive(Debug, Clone)]
pub struct Headline {
    pub label: String,
    pub value: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "service.html")]
pub struct ServicePage {
    pub frame: PageFrame,
    pub code: String,
    pub name: String,
    pub area: String,
    pub area_href: String,
    pub year: Option<i32>,
    /// The `from` and `to` fields of the form (`YYYY-MM`, empty when not given).
    pub from_value: String,
    pub to_value: String,
    pub year_options: Vec<SelectOption>,
    pub channel_options: Vec<SelectOption>,
    pub headline: Headline,
    pub figures: Vec<Figure>,
    pub methods: Vec<MethodNotes>,
}

pub async fn build(
    reader: &Reader<'_>,
    choice: LangChoice,
    code: &str,
    filters: &Filters,
    path_and_query: &str,
) -> Result<ServicePage, AppError> {
    let engine = reader.engine;
    let lang = choice.lang;
    let catalogue = engine.catalogue();
    let Some(service) = catalogue.service(code) else {
        return Err(AppError::NotFound {
            message: format!("no service with code `{code}`"),
        });
    };
    let min_cell = catalogue.disclosure.min_cell;
    let name = service.name.get(lang.code()).to_string();
    let shares = ServiceYears::load(reader, "online_share").await?;
    let year = chosen_year(engine, filters).await?;
    let period = filters.period();
    let channels: Vec<String> = filters.channel.iter().cloned().collect();
    let query = |kpi: &str, by: Vec<Dimension>, with_channel: bool| {
        let mut q = KpiQuery::new(kpi).by(by);
        q.services = vec![code.to_string()];
        if with_channel {
            q.channels = channels.clone();
        }
        match period {
            Some(range) => range.restrict(q),
            None => q,
        }
    };
    let mut csv_query = format!("service={code}");
    if let Some(channel) = &filters.channel {
        csv_query.push_str(&format!("&channel={channel}"));
    }

    // Headline: the yearly online share, from the same cells as the overview; or that of the
    // period, compared with the same months a year earlier.
    let headline = match period {
        Some(range) => {
            let share = |range: super::MonthRange| {
                let mut q = range.restrict(KpiQuery::new("online_share"));
                q.services = vec![code.to_string()];
                q
            };
            let current = reader.kpi(share(range)).await?.rows.into_iter().next();
            let before = match range.year_before() {
                Some(previous) => reader
                    .kpi(share(previous))
                    .await?
                    .rows
                    .into_iter()
                    .next()
                    .map(|row| (previous, row)),
                None => None,
            };
            let mut parts = vec![lang.t_args("n-text", &[("n", n_text(lang, current.as_ref()))])];
            let change = current
                .as_ref()
                .and_then(|r| r.value)
                .zip(before.as_ref().and_then(|(_, r)| r.value))
                .and_then(|(now, then)| change_text(lang, Unit::Percent, Some(now - then)));
            if let (Some(change), Some((previous, _))) = (change, &before) {
                parts.push(lang.t_args(
                    "change-on-period",
                    &[("change", change), ("period", previous.text(lang))],
                ));
            }
            Headline {
                label: lang.t_args("service-headline-period", &[("year", range.text(lang))]),
                value: value_text(lang, Unit::Percent, current.as_ref()),
                detail: parts.join("; "),
            }
        }
        None => year_headline(lang, year, year.and_then(|y| shares.get(code, y))),
    };
    // The ratings by score are a yearly dataset: with a period, that of its last year.
    let score_year = period
        .and_then(|range| range.to.or(range.from))
        .map(|day| chrono::Datelike::year(&day))
        .or(year);

    let mut figures = Vec::new();
    let monthly = reader
        .kpi(query("online_share", vec![Dimension::Month], false))
        .await?
        .rows;
    figures.push(monthly_figure(
        lang,
        engine,
        code,
        service.online_since.as_deref(),
        &monthly,
        min_cell,
    )?);

    let mix = reader
        .kpi(query(
            "requests",
            vec![Dimension::Year, Dimension::Channel],
            false,
        ))
        .await?
        .rows;
    figures.push(channel_figure(lang, code, &mix, min_cell)?);

    let satisfied = reader
        .kpi(query(
            "satisfaction_satisfied_share",
            vec![Dimension::Year],
            true,
        ))
        .await?
        .rows;
    let mean = reader
        .kpi(query("satisfaction_mean", vec![Dimension::Year], true))
        .await?
        .rows;
    figures.push(satisfaction_figure(
        lang, &csv_query, &satisfied, &mean, min_cell,
    )?);
    // The distribution is the open data's (all channels, suppressed with every service and
    // year), so its n and mean are those of all channels too.
    let distribution = reader.score_distribution().await?;
    let mean_all = reader
        .kpi(query("satisfaction_mean", vec![Dimension::Year], false))
        .await?
        .rows;
    figures.push(score_figure(
        lang,
        code,
        score_year,
        &distribution,
        &mean_all,
        min_cell,
    )?);

    let volumes = reader
        .kpi(query("requests", vec![Dimension::Year], true))
        .await?
        .rows;
    figures.push(yearly_bars(
        lang,
        "requests",
        Unit::Count,
        &csv_query,
        &volumes,
        min_cell,
        engine,
    )?);
    let days = reader
        .kpi(query(
            "median_days_to_complete",
            vec![Dimension::Year],
            true,
        ))
        .await?
        .rows;
    figures.push(yearly_bars(
        lang,
        "median_days_to_complete",
        Unit::Days,
        &csv_query,
        &days,
        min_cell,
        engine,
    )?);

    for figure in &mut figures {
        figure.png_href = super::chart_href(choice, path_and_query, &figure.id, "png");
        // The downloads of KPI queries cover the period too (not the yearly score dataset).
        if let Some(range) = period
            && figure.csv_href.contains('?')
        {
            figure.csv_href = format!("{}&{}", figure.csv_href, range.download_query());
        }
    }

    let mut channel_options = vec![SelectOption {
        value: String::new(),
        label: lang.t("filter-all-channels"),
        selected: filters.channel.is_none(),
    }];
    let mut seen: Vec<&str> = mix.iter().map(|r| r.dims[1].as_str()).collect();
    seen.sort_unstable();
    seen.dedup();
    channel_options.extend(seen.into_iter().map(|c| SelectOption {
        value: c.to_string(),
        label: channel_name(lang, c),
        selected: filters.channel.as_deref() == Some(c),
    }));

    let methods = SERVICE_KPIS
        .iter()
        .filter_map(|id| catalogue.kpi(id).ok())
        .map(|def| MethodNotes {
            title: def.title.get(lang.code()).to_string(),
            href: choice.href(&format!("/indicatori/{}", def.id)),
            notes: def
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
        })
        .collect();

    Ok(ServicePage {
        frame: reader.frame(
            choice,
            Section::Services,
            path_and_query,
            format!("{name} — civica"),
        )?,
        code: code.to_string(),
        area: super::area_name(lang, &service.area),
        area_href: choice.href(&format!("/confronto?area={}", service.area)),
        name,
        year: if period.is_some() { None } else { year },
        from_value: month_value(filters.from),
        to_value: month_value(filters.to),
        year_options: year_options(&shares.years, year),
        channel_options,
        headline,
        figures,
        methods,
    })
}

/// The headline of a year: the online share from the cells every page shares.
fn year_headline(lang: Lang, year: Option<i32>, current: Option<&KpiRow>) -> Headline {
    let year_text = year.map(|y| y.to_string()).unwrap_or_default();
    Headline {
        label: lang.t_args("service-headline", &[("year", year_text.clone())]),
        value: value_text(lang, Unit::Percent, current),
        detail: {
            let mut parts = vec![lang.t_args("n-text", &[("n", n_text(lang, current))])];
            if let Some(change) = current.and_then(|r| change_text(lang, Unit::Percent, r.change)) {
                parts.push(lang.t_args(
                    "change-on-year",
                    &[
                        ("change", change),
                        ("year", year.map(|y| y - 1).unwrap_or_default().to_string()),
                    ],
                ));
            }
            parts.join("; ")
        },
    }
}

impl ServicePage {
    /// The chart `id` of the page.
    pub fn chart(&self, id: &str) -> Option<(&Chart, &ChartOptions)> {
        super::find_chart(&self.figures, id)
    }
}
