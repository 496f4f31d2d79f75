//! Periods of whole months (`from=YYYY-MM&to=YYYY-MM` on pages): parsing the months, the
//! same months a year earlier, the period in words, and the period as KPI query and download
//! filters. Whole months are what the roll-ups answer without scanning requests.

use chrono::{Datelike, NaiveDate};
use civica_analytics::KpiQuery;

use crate::error::{AppError, FilterName};
use crate::i18n::Lang;

/// A period of whole months, open at either end: from the first day of its first month to
/// the last day of its last month. Whole months are what the roll-ups answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl MonthRange {
    /// The same months one year earlier, when both ends are known (an open end would
    /// overlap the period itself).
    pub fn year_before(self) -> Option<MonthRange> {
        let from = self.from?;
        let to = self.to?;
        let from = NaiveDate::from_ymd_opt(from.year() - 1, from.month(), 1)?;
        let to = month_end(NaiveDate::from_ymd_opt(to.year() - 1, to.month(), 1)?)?;
        Some(MonthRange {
            from: Some(from),
            to: Some(to),
        })
    }

    /// The period in words: "gennaio 2017 – giugno 2017", "from January 2017".
    pub fn text(self, lang: Lang) -> String {
        let month = |d: NaiveDate| {
            lang.t_args(
                "period-month",
                &[
                    ("month", lang.t(&format!("month-{:02}", d.month()))),
                    ("year", d.year().to_string()),
                ],
            )
        };
        match (self.from, self.to) {
            (Some(from), Some(to)) if from.year() == to.year() && from.month() == to.month() => {
                month(from)
            }
            (Some(from), Some(to)) => {
                lang.t_args("period-range", &[("from", month(from)), ("to", month(to))])
            }
            (Some(from), None) => lang.t_args("period-since", &[("from", month(from))]),
            (None, Some(to)) => lang.t_args("period-until", &[("to", month(to))]),
            (None, None) => String::new(),
        }
    }

    /// The period as the query string of the open data downloads (`from=…&to=…`, days).
    pub fn download_query(self) -> String {
        let mut pairs = Vec::new();
        if let Some(from) = self.from {
            pairs.push(format!("from={from}"));
        }
        if let Some(to) = self.to {
            pairs.push(format!("to={to}"));
        }
        pairs.join("&")
    }

    /// Applies the period to a KPI query.
    pub fn restrict(self, mut query: KpiQuery) -> KpiQuery {
        query.from = self.from;
        query.to = self.to;
        query
    }
}

/// A month as the value of an `<input type="month">`, empty when not given.
pub fn month_value(day: Option<NaiveDate>) -> String {
    day.map(|d| d.format("%Y-%m").to_string())
        .unwrap_or_default()
}

/// The first day of the month `YYYY-MM` (a year of four digits, a month of 1–12).
pub(super) fn month_start(text: &str) -> Option<NaiveDate> {
    let (year, month) = text.split_once('-')?;
    if year.len() != 4 || !(1..=2).contains(&month.len()) {
        return None;
    }
    let year: i32 = year.parse().ok().filter(|y| (1900..=2200).contains(y))?;
    let month: u32 = month.parse().ok().filter(|m| (1..=12).contains(m))?;
    NaiveDate::from_ymd_opt(year, month, 1)
}

/// The last day of the month of `day`.
pub(super) fn month_end(day: NaiveDate) -> Option<NaiveDate> {
    let next = if day.month() == 12 {
        NaiveDate::from_ymd_opt(day.year() + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)?
    };
    next.pred_opt()
}

pub(super) fn month_error(filter: FilterName, value: String) -> AppError {
    AppError::InvalidFilter {
        filter,
        value,
        reason: "a month as year and month, such as 2017-01".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn the_year_before_is_of_whole_months_too() {
        let range = MonthRange {
            from: day(2016, 3, 1),
            to: day(2017, 2, 28),
        };
        let before = range.year_before().unwrap();
        assert_eq!(
            (before.from, before.to),
            (day(2015, 3, 1), day(2016, 2, 29))
        );
        let open = MonthRange {
            from: day(2017, 1, 1),
            to: None,
        };
        assert_eq!(open.year_before(), None);
    }
}
