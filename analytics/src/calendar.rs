//! The city's calendar as a DataFusion function: the local month of an instant.
//!
//! `city_month(t)` is `date_trunc('month', to_local_time(t AT TIME ZONE <city>))`: midnight of
//! the first day of `t`'s month on the city's wall clock, as a timestamp without time zone
//! (a timestamp without time zone is taken as a time of that clock already).
//! The general functions consult the time zone's rules for every row; this one takes the
//! month and the instants it spans from the city's calendar ([`civica_ingest::calendar`]) and
//! reuses them while the following rows fall in the same month, which is the common case in
//! a warehouse sorted by service, then time. Months, quarters and school years of KPIs and
//! roll-ups derive from it.

use std::sync::Arc;

use civica_ingest::calendar::local_month;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::DataFusionError;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::columnar::{answer, one_argument};

const MICROS: i64 = 1_000_000;

/// `city_month(t)`: the local month of instant `t`.
pub fn city_month(t: Expr) -> Expr {
    static UDF: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    UDF.get_or_init(|| Arc::new(ScalarUDF::new_from_impl(CityMonth::new())))
        .call(vec![t])
}

/// The function behind [`city_month`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CityMonth {
    signature: Signature,
}

impl CityMonth {
    pub fn new() -> Self {
        CityMonth {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for CityMonth {
    fn default() -> Self {
        Self::new()
    }
}

/// The month of the last value seen: values in `start..end` (microseconds) share it.
struct Memo {
    /// The values are wall-clock times already (timestamps without time zone), not
    /// instants.
    wall_clock: bool,
    start: i64,
    end: i64,
    month: i64,
}

impl Memo {
    fn new(wall_clock: bool) -> Self {
        Memo {
            wall_clock,
            start: 0,
            end: 0,
            month: 0,
        }
    }

    /// Midnight of the local month of `micros`, in microseconds of the wall clock.
    fn month_of(&mut self, micros: i64) -> i64 {
        if micros < self.start || micros >= self.end {
            let seconds = micros.div_euclid(MICROS);
            let (start, end, month) = if self.wall_clock {
                wall_clock_month(seconds)
            } else {
                let month = local_month(seconds);
                (month.start, month.end, month.wall_clock_start())
            };
            self.start = start.saturating_mul(MICROS);
            self.end = end.saturating_mul(MICROS);
            self.month = month.saturating_mul(MICROS);
        }
        self.month
    }
}

/// The month of a wall-clock time (seconds since 1970-01-01T00:00 of that clock): the
/// seconds it spans and its first, which is also its value.
fn wall_clock_month(seconds: i64) -> (i64, i64, i64) {
    use chrono::Datelike;
    let first = |year: i32, month: u32| {
        chrono::NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp())
    };
    let Some(t) = chrono::DateTime::from_timestamp(seconds, 0) else {
        return (seconds, seconds.saturating_add(1), seconds);
    };
    let (year, month) = (t.year(), t.month());
    let (next_year, next) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    match (first(year, month), first(next_year, next)) {
        (Some(start), Some(end)) => (start, end, start),
        _ => (seconds, seconds.saturating_add(1), seconds),
    }
}

/// The local months of instants stored in unit `T`, `per_micro` of them to a microsecond
/// (a negative `per_micro`: microseconds to one of them).
fn months<T: ArrowPrimitiveType<Native = i64>>(array: &ArrayRef, per_micro: i64) -> ArrayRef {
    let instants = array.as_primitive::<T>();
    let wall_clock = matches!(array.data_type(), DataType::Timestamp(_, None));
    let mut memo = Memo::new(wall_clock);
    let values: Vec<i64> = instants
        .values()
        .iter()
        .map(|&v| {
            let micros = if per_micro > 0 {
                v.div_euclid(per_micro)
            } else {
                v.saturating_mul(-per_micro)
            };
            memo.month_of(micros)
        })
        .collect();
    Arc::new(PrimitiveArray::<TimestampMicrosecondType>::new(
        values.into(),
        instants.nulls().cloned(),
    ))
}

impl ScalarUDFImpl for CityMonth {
    fn name(&self) -> &str {
        "city_month"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        match arg_types {
            [DataType::Timestamp(_, _)] => Ok(DataType::Timestamp(TimeUnit::Microsecond, None)),
            other => Err(DataFusionError::Plan(format!(
                "city_month takes one timestamp, not {other:?}"
            ))),
        }
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let (array, scalar) = one_argument(&args, "city_month")?;
        let months = match array.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => {
                months::<TimestampSecondType>(&array, -MICROS)
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                months::<TimestampMillisecondType>(&array, -1_000)
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                months::<TimestampMicrosecondType>(&array, 1)
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                months::<TimestampNanosecondType>(&array, 1_000)
            }
            other => {
                return Err(DataFusionError::Execution(format!(
                    "city_month takes a timestamp, not {other}"
                )));
            }
        };
        answer(months, scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::functions::expr_fn::{date_trunc, to_local_time};
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::{SessionContext, cast};

    /// Both the general expression and `city_month` over the same instants, as
    /// microseconds of the wall clock.
    async fn both(
        instants: Vec<Option<i64>>,
        zone: Option<&str>,
    ) -> (Vec<Option<i64>>, Vec<Option<i64>>) {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Microsecond, zone.map(Into::into)),
            true,
        )]));
        let column = TimestampMicrosecondArray::from(instants).with_timezone_opt(zone);
        let batch = RecordBatch::try_new(schema, vec![Arc::new(column)]).unwrap();
        let ctx = SessionContext::new();
        let zoned = cast(
            col("t"),
            DataType::Timestamp(
                TimeUnit::Microsecond,
                Some(civica_ingest::schema::CITY_TIME_ZONE.name().into()),
            ),
        );
        // A wall-clock time is truncated as it is (putting it in the zone would refuse the
        // times that summer time skips).
        let general = match zone {
            Some(_) => date_trunc(lit("month"), to_local_time(vec![zoned])),
            None => date_trunc(lit("month"), col("t")),
        };
        let batches = ctx
            .read_batch(batch)
            .unwrap()
            .select(vec![
                cast(general, DataType::Int64).alias("general"),
                cast(city_month(col("t")), DataType::Int64).alias("fast"),
            ])
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut general = Vec::new();
        let mut fast = Vec::new();
        for b in &batches {
            let column = |i: usize| {
                b.column(i)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .iter()
                    .collect::<Vec<_>>()
            };
            general.extend(column(0));
            fast.extend(column(1));
        }
        (general, fast)
    }

    #[tokio::test]
    async fn months_turn_at_local_midnight() {
        // 2017-02-28T22:59:59Z is still February in Rome; 23:00:00Z is 1 March.
        let (general, fast) = both(
            vec![
                Some(1_488_322_799_000_000),
                Some(1_488_322_800_000_000),
                None,
            ],
            Some("UTC"),
        )
        .await;
        assert_eq!(fast, general);
        assert_eq!(
            fast,
            vec![
                Some(1_485_907_200_000_000),
                Some(1_488_326_400_000_000),
                None
            ]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Over runs of nearby instants (as a sorted warehouse holds them) and scattered
        /// ones, `city_month` gives what the time zone's general functions give, for
        /// instants and for wall-clock times (timestamps without time zone) alike.
        #[test]
        fn city_months_are_those_of_the_general_functions(
            start in -2_000_000_000_000_000i64..4_000_000_000_000_000,
            steps in proptest::collection::vec(
                proptest::option::weighted(0.9, -3_000_000_000i64..90_000_000_000), 1..200),
            scattered in proptest::collection::vec(
                -5_000_000_000_000_000i64..9_000_000_000_000_000, 0..20),
        ) {
            let mut t = start;
            let mut instants: Vec<Option<i64>> = steps
                .iter()
                .map(|s| s.map(|s| { t += s; t }))
                .collect();
            instants.extend(scattered.into_iter().map(Some));
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for zone in [Some("UTC"), None] {
                let (general, fast) = runtime.block_on(both(instants.clone(), zone));
                proptest::prop_assert_eq!(fast, general);
            }
        }
    }
}
