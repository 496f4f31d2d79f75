//! The city's calendar: the local year and month of an instant.
//!
//! Both come from a table of the instants at which the city's months begin (years
//! 1800–2299), so that the time zone's rules are looked up once per month of the table rather
//! than once per record. Outside the table, and where local midnight of the first of a month
//! does not exist, the time zone answers directly.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

use crate::schema::CITY_TIME_ZONE;

const FIRST_YEAR: i32 = 1800;
const YEARS: i32 = 500;

/// A month of the city's calendar and the instants (seconds since the epoch) it spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMonth {
    pub year: i32,
    /// 1–12.
    pub month: u32,
    /// The first second of the month.
    pub start: i64,
    /// The first second of the next month. Outside the table, `start..end` may be narrower
    /// than the month (down to the one second asked about): it is always within it.
    pub end: i64,
}

impl LocalMonth {
    /// Midnight of the first day of the month as local wall-clock time, in seconds since
    /// 1970-01-01T00:00 of the same wall clock (the value of a timestamp without time zone).
    pub fn wall_clock_start(&self) -> i64 {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|n| n.and_utc().timestamp())
            .unwrap_or_default()
    }
}

/// The instant (seconds since the epoch) at which `month` (1–12) of `year` begins in the
/// city's time zone, for the years of the table; `None` outside it, or where local midnight of
/// the first of the month does not exist.
pub fn month_start(year: i32, month: u32) -> Option<i64> {
    static STARTS: std::sync::OnceLock<Vec<Option<i64>>> = std::sync::OnceLock::new();
    let starts = STARTS.get_or_init(|| {
        (FIRST_YEAR..FIRST_YEAR + YEARS)
            .flat_map(|y| (1..=12).map(move |m| (y, m)))
            .map(|(y, m)| {
                let midnight = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
                let start = CITY_TIME_ZONE.from_local_datetime(&midnight).earliest()?;
                Some(start.timestamp())
            })
            .collect()
    });
    if !(1..=12).contains(&month) {
        return None;
    }
    let index = usize::try_from(year - FIRST_YEAR).ok()? * 12 + (month as usize - 1);
    starts.get(index).copied().flatten()
}

/// The month after `month` of `year`.
fn next_month(year: i32, month: u32) -> (i32, u32) {
    if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    }
}

/// The month before `month` of `year`.
fn previous_month(year: i32, month: u32) -> (i32, u32) {
    if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    }
}

/// The local month of the instant `seconds` (since the epoch). The city's months begin less
/// than a month away from the months of UTC, so the local month is the UTC month or one of
/// its neighbours.
pub fn local_month(seconds: i64) -> LocalMonth {
    let Some(t) = DateTime::<Utc>::from_timestamp(seconds, 0) else {
        return zone_month(seconds);
    };
    let (year, month) = (t.year(), t.month());
    let (next_year, next) = next_month(year, month);
    let (Some(start), Some(end)) = (month_start(year, month), month_start(next_year, next)) else {
        return zone_month(seconds);
    };
    let candidate = if seconds < start {
        let (y, m) = previous_month(year, month);
        month_start(y, m).map(|s| (y, m, s, start))
    } else if seconds >= end {
        let (y, m) = next_month(next_year, next);
        month_start(y, m).map(|e| (next_year, next, end, e))
    } else {
        Some((year, month, start, end))
    };
    match candidate {
        Some((year, month, start, end)) if (start..end).contains(&seconds) => LocalMonth {
            year,
            month,
            start,
            end,
        },
        _ => zone_month(seconds),
    }
}

/// The local month of `seconds` from the time zone itself, spanning just that second.
fn zone_month(seconds: i64) -> LocalMonth {
    let local = DateTime::<Utc>::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .with_timezone(&CITY_TIME_ZONE);
    LocalMonth {
        year: local.year(),
        month: local.month(),
        start: seconds,
        end: seconds.saturating_add(1),
    }
}

/// The instant (seconds since the epoch) at which local day `date` begins, when the day's
/// bounds are plain: local midnight exists and the time zone's offset is the same for 36
/// hours on either side of it. Then an instant `t` falls on `date` or later exactly when
/// `t >= day_start(date)` (a change of offset, always under 36 hours, cannot carry the wall
/// clock back across that midnight), and a date filter can compare stored instants directly.
/// `None` otherwise, and for dates beyond the time zone's range.
pub fn day_start(date: NaiveDate) -> Option<i64> {
    use chrono::Offset;
    const MARGIN: i64 = 36 * 3600;
    let start = CITY_TIME_ZONE
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .single()?
        .timestamp();
    let offset = |s: i64| {
        DateTime::<Utc>::from_timestamp(s, 0).map(|t| {
            CITY_TIME_ZONE
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc()
        })
    };
    let at_start = offset(start)?;
    (offset(start.checked_sub(MARGIN)?)? == at_start
        && offset(start.checked_add(MARGIN)?)? == at_start)
        .then_some(start)
}

/// Calendar year of `t` in the city's time zone: the partition a record is stored in.
pub fn local_year(t: DateTime<Utc>) -> i32 {
    // The year in UTC, from the stored date (`t.year()` would add a zero offset first).
    let year = t.naive_utc().year();
    match (month_start(year, 1), month_start(year + 1, 1)) {
        (Some(start), Some(next)) => {
            let seconds = t.timestamp();
            if seconds >= next {
                year + 1
            } else if seconds < start {
                year - 1
            } else {
                year
            }
        }
        _ => t.with_timezone(&CITY_TIME_ZONE).year(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_begin_at_local_midnight() {
        // 1 March 2017 began at 23:00 UTC on 28 February (winter time), 1 April 2017 at
        // 22:00 UTC on 31 March (summer time).
        let march = local_month(1_488_322_800);
        assert_eq!((march.year, march.month), (2017, 3));
        assert_eq!(march.start, 1_488_322_800);
        assert_eq!(march.end, 1_490_997_600);
        assert_eq!(local_month(1_488_322_799).month, 2);
        assert_eq!(local_month(1_490_997_599).month, 3);
        assert_eq!(local_month(1_490_997_600).month, 4);
        assert_eq!(march.wall_clock_start(), 1_488_326_400);
    }

    #[test]
    fn days_begin_at_local_midnight_and_not_near_a_change_of_offset() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        // 15 January 2017 began at 23:00 UTC on the 14th, 15 July at 22:00 UTC on the 14th.
        assert_eq!(day_start(day(2017, 1, 15)), Some(1_484_434_800));
        assert_eq!(day_start(day(2017, 7, 15)), Some(1_500_069_600));
        // Summer time began on 26 March 2017 at 02:00: the days around it are left to the
        // time zone's rules.
        assert_eq!(day_start(day(2017, 3, 26)), None);
        assert_eq!(day_start(day(2017, 3, 27)), None);
    }

    proptest::proptest! {
        /// Where a day's start is given, an instant is on that day or later exactly when it
        /// is not before the start, near the start and anywhere else.
        #[test]
        fn instants_compare_with_day_starts_as_their_local_dates(
            year in 1700i32..2400,
            ordinal in 1u32..=365,
            around in -200_000i64..200_000,
            seconds in -7_000_000_000i64..11_000_000_000i64,
        ) {
            let date = NaiveDate::from_yo_opt(year, ordinal).unwrap();
            if let Some(start) = day_start(date) {
                for s in [start + around, seconds] {
                    let t = DateTime::from_timestamp(s, 0).unwrap_or_default();
                    let local_date = t.with_timezone(&CITY_TIME_ZONE).date_naive();
                    proptest::prop_assert_eq!(local_date >= date, s >= start);
                }
            }
        }


        /// The month read from the table is the month of the local calendar, near the turn
        /// of a month (in winter and summer time alike) and anywhere else, and the span it
        /// gives holds only instants of that month.
        #[test]
        fn local_months_from_the_table_are_those_of_the_time_zone(
            seconds in -7_000_000_000i64..11_000_000_000i64,
            year in 1700i32..2400,
            month in 1u32..=12,
            around in -172_800i64..172_800,
        ) {
            let turn = NaiveDate::from_ymd_opt(year, month, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|n| n.and_utc().timestamp())
                .unwrap_or(0);
            for s in [seconds, turn + around] {
                let local = |s: i64| {
                    let t = DateTime::from_timestamp(s, 0).unwrap_or_default();
                    let l = t.with_timezone(&CITY_TIME_ZONE);
                    (l.year(), l.month())
                };
                let m = local_month(s);
                proptest::prop_assert_eq!((m.year, m.month), local(s));
                proptest::prop_assert!(m.start <= s && s < m.end);
                proptest::prop_assert_eq!(local(m.start), (m.year, m.month));
                proptest::prop_assert_eq!(local(m.end - 1), (m.year, m.month));
                if m.end - m.start > 1 {
                    proptest::prop_assert_ne!(local(m.start - 1), (m.year, m.month));
                    proptest::prop_assert_ne!(local(m.end), (m.year, m.month));
                }
                let t = DateTime::from_timestamp(s, 0).unwrap_or_default();
                proptest::prop_assert_eq!(local_year(t), local(s).0);
            }
        }
    }
}
