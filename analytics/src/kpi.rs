//! KPI definitions and their computation as DataFusion plans.
//!
//! `online_share` (digital take-up) is the share of submitted requests made through a digital
//! channel. In SQL terms:
//!
//! ```sql
//! SELECT <dims>,
//!        100.0 * SUM(CASE WHEN channel IN ('online', 'app') THEN 1 ELSE 0 END) / COUNT(*) AS value,
//!        SUM(CASE WHEN channel IN ('online', 'app') THEN 1 ELSE 0 END)                 AS numerator,
//!        COUNT(*)                                                                       AS denominator
//! FROM requests
//! WHERE status <> 'abandoned'
//! GROUP BY <dims> ORDER BY <dims>
//! ```
//!
//! Abandoned requests were never submitted, so they are neither in the numerator nor in the
//! denominator. Shares are percentages (0–100) at full `f64` precision.

use std::fmt;
use std::str::FromStr;

use civica_ingest::schema::{Channel, Status};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, col, lit, when};
use datafusion::prelude::cast;

use crate::error::{Error, Result};
use crate::session::Engine;

/// The KPIs of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KpiId {
    /// Digital take-up: requests made online or by app ÷ submitted requests, in percent.
    OnlineShare,
}

impl KpiId {
    pub const ALL: &'static [KpiId] = &[KpiId::OnlineShare];

    /// The identifier used in the CLI, URLs, files and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            KpiId::OnlineShare => "online_share",
        }
    }

    /// Title in Italian.
    pub fn title_it(self) -> &'static str {
        match self {
            KpiId::OnlineShare => "Quota di richieste online",
        }
    }

    /// Title in English.
    pub fn title_en(self) -> &'static str {
        match self {
            KpiId::OnlineShare => "Online share of requests",
        }
    }
}

impl FromStr for KpiId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        KpiId::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::UnknownKpi {
                id: s.to_string(),
                known: KpiId::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl fmt::Display for KpiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A breakdown of a KPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Service,
    Year,
    Channel,
    AuthMethod,
}

impl Dimension {
    pub const ALL: &'static [Dimension] = &[
        Dimension::Service,
        Dimension::Year,
        Dimension::Channel,
        Dimension::AuthMethod,
    ];

    /// The column name (identical in the warehouse and in every output).
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Service => "service",
            Dimension::Year => "year",
            Dimension::Channel => "channel",
            Dimension::AuthMethod => "auth_method",
        }
    }

    /// Parses a comma-separated list such as `service,year`.
    pub fn parse_list(list: &str) -> Result<Vec<Dimension>> {
        let mut dims = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let dim = name.parse::<Dimension>()?;
            if !dims.contains(&dim) {
                dims.push(dim);
            }
        }
        Ok(dims)
    }
}

impl FromStr for Dimension {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Dimension::ALL
            .iter()
            .copied()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| Error::UnknownDimension {
                name: s.to_string(),
                allowed: Dimension::ALL
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// What to compute: a KPI, its breakdown and typed filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiQuery {
    pub kpi: KpiId,
    pub by: Vec<Dimension>,
    /// Only these years (all when empty).
    pub years: Vec<i32>,
    /// Only these services (all when empty).
    pub services: Vec<String>,
}

impl KpiQuery {
    pub fn new(kpi: KpiId) -> Self {
        KpiQuery {
            kpi,
            by: Vec::new(),
            years: Vec::new(),
            services: Vec::new(),
        }
    }

    pub fn by(mut self, by: Vec<Dimension>) -> Self {
        self.by = by;
        self
    }

    pub fn with_years(mut self, years: Vec<i32>) -> Self {
        self.years = years;
        self
    }
}

/// One cell of a KPI: the dimension values (as text, in the order of `by`), the value and
/// the counts it was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiRow {
    pub dims: Vec<String>,
    /// `None` when the denominator is zero.
    pub value: Option<f64>,
    pub numerator: i64,
    pub denominator: i64,
}

/// The result of a KPI query: Arrow batches (columns: dimensions, `value`, `numerator`,
/// `denominator`) for encoders, and typed rows for pages and charts.
#[derive(Debug, Clone)]
pub struct KpiResult {
    pub kpi: KpiId,
    pub by: Vec<Dimension>,
    pub batches: Vec<RecordBatch>,
}

impl KpiResult {
    /// The typed rows, in the order of the result.
    pub fn rows(&self) -> Vec<KpiRow> {
        let n_dims = self.by.len();
        let mut rows = Vec::new();
        for batch in &self.batches {
            let value = batch.column(n_dims).as_primitive::<Float64Type>();
            let numerator = batch.column(n_dims + 1).as_primitive::<Int64Type>();
            let denominator = batch.column(n_dims + 2).as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                let dims = (0..n_dims)
                    .map(|d| array_value_to_string(batch.column(d), i).unwrap_or_default())
                    .collect();
                rows.push(KpiRow {
                    dims,
                    value: (!value.is_null(i)).then(|| value.value(i)),
                    numerator: numerator.value(i),
                    denominator: denominator.value(i),
                });
            }
        }
        rows
    }
}

impl Engine {
    /// Computes a KPI.
    pub async fn kpi(&self, query: &KpiQuery) -> Result<KpiResult> {
        let ctx = self.session().await?;
        let mut df = ctx.table(civica_ingest::layout::REQUESTS_TABLE).await?;
        let mut filter = col("status").not_eq(lit(Status::Abandoned.as_str()));
        if !query.years.is_empty() {
            let years = query.years.iter().map(|y| lit(*y)).collect();
            filter = filter.and(col("year").in_list(years, false));
        }
        if !query.services.is_empty() {
            let services = query.services.iter().map(|s| lit(s.as_str())).collect();
            filter = filter.and(col("service").in_list(services, false));
        }
        df = df.filter(filter)?;

        let digital: Vec<Expr> = Channel::DIGITAL.iter().map(|c| lit(c.as_str())).collect();
        let is_digital =
            when(col("channel").in_list(digital, false), lit(1i64)).otherwise(lit(0i64))?;
        let group: Vec<Expr> = query.by.iter().map(|d| col(d.as_str())).collect();
        df = df.aggregate(
            group,
            vec![
                sum(is_digital).alias("numerator"),
                count(lit(1)).alias("denominator"),
            ],
        )?;

        let mut select: Vec<Expr> = query.by.iter().map(|d| col(d.as_str())).collect();
        select.push(
            (cast(col("numerator"), DataType::Float64) * lit(100.0)
                / cast(col("denominator"), DataType::Float64))
            .alias("value"),
        );
        select.push(col("numerator"));
        select.push(col("denominator"));
        df = df.select(select)?;
        let order = query
            .by
            .iter()
            .map(|d| col(d.as_str()).sort(true, false))
            .collect::<Vec<_>>();
        if !order.is_empty() {
            df = df.sort(order)?;
        }
        let schema = df.schema().inner().clone();
        let batches = crate::sql::with_schema(df.collect().await?, schema);
        Ok(KpiResult {
            kpi: query.kpi,
            by: query.by.clone(),
            batches,
        })
    }

    /// The latest calendar year with data up to December (or followed by a later year):
    /// the default year of annual views.
    pub async fn latest_full_year(&self) -> Result<Option<i32>> {
        use datafusion::functions_aggregate::expr_fn::max;
        let ctx = self.session().await?;
        let df = ctx
            .table(civica_ingest::layout::REQUESTS_TABLE)
            .await?
            .aggregate(
                vec![col("year")],
                vec![max(col("submitted_at")).alias("last")],
            )?
            .sort(vec![col("year").sort(true, false)])?;
        let batches = df.collect().await?;
        let mut years: Vec<(i32, i64)> = Vec::new();
        for batch in &batches {
            let year = batch
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>();
            let last = batch
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            for i in 0..batch.num_rows() {
                years.push((year.value(i), last.value(i)));
            }
        }
        let reaches_december = |year: i32, last_micros: i64| {
            chrono::NaiveDate::from_ymd_opt(year, 12, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .is_some_and(|dec| last_micros >= dec.and_utc().timestamp_micros())
        };
        let full = years
            .iter()
            .enumerate()
            .rev()
            .find(|(i, (year, last))| *i + 1 < years.len() || reaches_december(*year, *last))
            .map(|(_, (year, _))| *year);
        Ok(full.or_else(|| years.last().map(|(y, _)| *y)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimension_lists_parse_and_reject_unknown_names() {
        assert_eq!(
            Dimension::parse_list("service, year,service").unwrap(),
            [Dimension::Service, Dimension::Year]
        );
        let err = Dimension::parse_list("service,colour").unwrap_err();
        assert!(err.to_string().contains("`colour`"), "{err}");
        assert!(err.is_user_error());
    }

    #[test]
    fn unknown_kpi_names_the_known_ones() {
        let err = "digital_rate".parse::<KpiId>().unwrap_err();
        assert!(err.to_string().contains("online_share"), "{err}");
    }
}
