//! Computing catalogue KPIs as DataFusion plans, with periods, intervals, change on the
//! previous period and disclosure control.
//!
//! A KPI entry ([`crate::catalogue::KpiDef`]) becomes, in SQL terms:
//!
//! ```sql
//! SELECT <dims>, <aggregates of the measure>
//! FROM <source> WHERE <kpi filter> AND <query filters>
//! GROUP BY <dims> ORDER BY <dims>
//! ```
//!
//! built with `Expr`s (user values enter only as `lit()`). For `online_share`:
//! `100 * SUM(CASE WHEN channel IN ('online','app') THEN 1 ELSE 0 END) / COUNT(*)` over
//! `status <> 'abandoned'`. Values, intervals and changes are then computed in Rust from the
//! aggregated counts, at full `f64` precision. On the raw scan the catalogue's word lists are
//! tested on string views (`membership.rs`) and the dimensions are grouped on one packed
//! key (`grouping.rs`); the figures are those of the plain SQL above.
//!
//! `<source>` is the raw table, or the roll-ups of the latest commit when
//! [`crate::rollup::plan`] says they give exactly the same aggregates ([`Scan`] lets the
//! caller force either); everything after the aggregation is shared by both paths.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::functions::expr_fn::{date_part, date_trunc, to_local_time};
use datafusion::functions_aggregate::expr_fn::{count, max, median, stddev, sum};
use datafusion::logical_expr::{Expr, ExprSchemable, col, lit, when};
use datafusion::prelude::{SessionContext, cast};
use serde::Serialize;

use civica_ingest::calendar::day_start;

use crate::calendar::city_month;
use crate::catalogue::{Catalogue, Condition, Filter, KpiDef, Measure, Source, Unit};
use crate::error::{Error, Result};
use crate::grouping::KeyPacking;
use crate::membership::is_one_of;
use crate::session::Engine;

/// Rows with fewer observations than this are flagged `low_n`: their interval is wide.
pub const LOW_N: u64 = 30;
/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A breakdown of a KPI: a category or a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Service,
    Area,
    Channel,
    AuthMethod,
    Year,
    Quarter,
    Month,
    /// September–August, as `2017/18`.
    SchoolYear,
}

impl Dimension {
    pub const ALL: &'static [Dimension] = &[
        Dimension::Service,
        Dimension::Area,
        Dimension::Channel,
        Dimension::AuthMethod,
        Dimension::Year,
        Dimension::Quarter,
        Dimension::Month,
        Dimension::SchoolYear,
    ];

    /// The name used in `--by`, URLs and output columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Service => "service",
            Dimension::Area => "area",
            Dimension::Channel => "channel",
            Dimension::AuthMethod => "auth_method",
            Dimension::Year => "year",
            Dimension::Quarter => "quarter",
            Dimension::Month => "month",
            Dimension::SchoolYear => "school_year",
        }
    }

    /// Periods (as opposed to categories).
    pub fn is_period(self) -> bool {
        matches!(
            self,
            Dimension::Year | Dimension::Quarter | Dimension::Month | Dimension::SchoolYear
        )
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

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who will see a result. Public results are disclosure-controlled; internal ones (council,
/// management, analysts) show every cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    #[default]
    Public,
    Internal,
}

/// Which tables answer a KPI query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scan {
    /// The roll-ups when they cover the query and exist for the latest commit, else the
    /// raw tables (see [`crate::rollup`]).
    #[default]
    Auto,
    /// Always the raw tables.
    Raw,
    /// The roll-ups, or an error saying why they cannot answer.
    Rollup,
}

impl Scan {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scan::Auto => "auto",
            Scan::Raw => "raw",
            Scan::Rollup => "rollup",
        }
    }
}

impl FromStr for Scan {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [Scan::Auto, Scan::Raw, Scan::Rollup]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::BadParameter {
                message: format!("unknown scan `{s}`; use auto, raw or rollup"),
            })
    }
}

/// What to compute: a KPI, its breakdown, typed filters and the audience.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KpiQuery {
    pub kpi: String,
    pub by: Vec<Dimension>,
    /// Only these years (all when empty).
    pub years: Vec<i32>,
    pub services: Vec<String>,
    pub areas: Vec<String>,
    pub channels: Vec<String>,
    /// Only rows from this local date on (inclusive).
    pub from: Option<chrono::NaiveDate>,
    /// Only rows up to this local date (inclusive).
    pub to: Option<chrono::NaiveDate>,
    pub audience: Audience,
    /// Roll-ups or raw tables; the answer is the same, only the time differs.
    pub scan: Scan,
}

impl KpiQuery {
    /// A query for KPI `id` with no breakdown, for the public.
    pub fn new(id: impl Into<String>) -> Self {
        KpiQuery {
            kpi: id.into(),
            by: Vec::new(),
            years: Vec::new(),
            services: Vec::new(),
            areas: Vec::new(),
            channels: Vec::new(),
            from: None,
            to: None,
            audience: Audience::Public,
            scan: Scan::Auto,
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

    pub fn for_audience(mut self, audience: Audience) -> Self {
        self.audience = audience;
        self
    }

    /// Chooses the tables that answer (roll-ups or raw scan).
    pub fn with_scan(mut self, scan: Scan) -> Self {
        self.scan = scan;
        self
    }

    /// Restricts to the services, areas and channels of comma-separated lists (`None` or
    /// empty means all), as given on a command line or in a URL.
    pub fn with_lists(
        mut self,
        services: Option<&str>,
        areas: Option<&str>,
        channels: Option<&str>,
    ) -> Self {
        self.services = split_list(services);
        self.areas = split_list(areas);
        self.channels = split_list(channels);
        self
    }
}

/// The items of a comma-separated list, trimmed, empty ones dropped.
pub fn split_list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a comma-separated list of years (`2016,2017`), naming the bad item.
pub fn parse_years(text: Option<&str>) -> Result<Vec<i32>> {
    split_list(text)
        .iter()
        .map(|s| {
            s.parse::<i32>()
                .ok()
                .filter(|y| (1900..=2200).contains(y))
                .ok_or_else(|| Error::BadParameter {
                    message: format!("`{s}` is not a year"),
                })
        })
        .collect()
}

/// Why a cell is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Fewer than [`LOW_N`] observations: read with care.
    LowN,
    /// Withheld from public outputs (too few observations, or to protect another cell).
    /// The documented marker: empty value and `flag = suppressed`.
    Suppressed,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::LowN => "low_n",
            Flag::Suppressed => "suppressed",
        }
    }
}

/// One cell of a KPI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiRow {
    /// Dimension values as text, in the order of `by`.
    pub dims: Vec<String>,
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    /// Number of observations behind the value.
    pub n: Option<u64>,
    /// 95% interval (Wilson for shares; normal for means, within the score's bounds).
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Change on the previous period (points for shares), when `by` has a period.
    pub change: Option<f64>,
    pub flag: Option<Flag>,
}

/// The result of a KPI query.
#[derive(Debug, Clone)]
pub struct KpiResult {
    pub kpi: KpiDef,
    pub by: Vec<Dimension>,
    pub rows: Vec<KpiRow>,
    pub audience: Audience,
    pub min_cell: u64,
    /// The tables that answered: [`Scan::Raw`] or [`Scan::Rollup`].
    pub scan: Scan,
    /// The warehouse version (commit) the rows were computed from. An answer names this one:
    /// a version read after the query may already be a later commit's.
    pub version: u64,
}

impl KpiResult {
    /// The typed rows.
    pub fn rows(&self) -> Vec<KpiRow> {
        self.rows.clone()
    }

    /// The result as one Arrow batch for encoders. Columns: the dimensions, `value`,
    /// `numerator`, `denominator`, `n`, `ci_low`, `ci_high`, `change`, `flag`. Counts are
    /// integers; `year` is an integer; suppressed cells are empty.
    pub fn batch(&self) -> Result<RecordBatch> {
        let integer_terms = !matches!(
            self.kpi.measure,
            Measure::SumShare(_) | Measure::MedianDays(_)
        );
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (i, dim) in self.by.iter().enumerate() {
            if *dim == Dimension::Year {
                fields.push(Field::new(dim.as_str(), DataType::Int32, true));
                columns.push(Arc::new(Int32Array::from(
                    self.rows
                        .iter()
                        .map(|r| r.dims[i].parse::<i32>().ok())
                        .collect::<Vec<_>>(),
                )));
            } else {
                fields.push(Field::new(dim.as_str(), DataType::Utf8, true));
                columns.push(Arc::new(StringArray::from(
                    self.rows
                        .iter()
                        .map(|r| Some(r.dims[i].as_str()))
                        .collect::<Vec<_>>(),
                )));
            }
        }
        let float = |name: &str,
                     values: Vec<Option<f64>>,
                     fields: &mut Vec<Field>,
                     columns: &mut Vec<ArrayRef>| {
            fields.push(Field::new(name, DataType::Float64, true));
            columns.push(Arc::new(Float64Array::from(values)));
        };
        float(
            "value",
            self.rows.iter().map(|r| r.value).collect(),
            &mut fields,
            &mut columns,
        );
        for (name, get) in [
            (
                "numerator",
                (|r: &KpiRow| r.numerator) as fn(&KpiRow) -> Option<f64>,
            ),
            ("denominator", |r: &KpiRow| r.denominator),
        ] {
            if integer_terms {
                fields.push(Field::new(name, DataType::Int64, true));
                columns.push(Arc::new(Int64Array::from(
                    self.rows
                        .iter()
                        .map(|r| get(r).map(|v| v.round() as i64))
                        .collect::<Vec<_>>(),
                )));
            } else {
                float(
                    name,
                    self.rows.iter().map(get).collect(),
                    &mut fields,
                    &mut columns,
                );
            }
        }
        fields.push(Field::new("n", DataType::Int64, true));
        columns.push(Arc::new(Int64Array::from(
            self.rows
                .iter()
                .map(|r| r.n.map(|n| n as i64))
                .collect::<Vec<_>>(),
        )));
        float(
            "ci_low",
            self.rows.iter().map(|r| r.ci_low).collect(),
            &mut fields,
            &mut columns,
        );
        float(
            "ci_high",
            self.rows.iter().map(|r| r.ci_high).collect(),
            &mut fields,
            &mut columns,
        );
        float(
            "change",
            self.rows.iter().map(|r| r.change).collect(),
            &mut fields,
            &mut columns,
        );
        fields.push(Field::new("flag", DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from(
            self.rows
                .iter()
                .map(|r| r.flag.map(Flag::as_str))
                .collect::<Vec<_>>(),
        )));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|source| Error::Encode { source })
    }
}

/// An `Expr` for one catalogue condition.
pub(crate) fn condition_expr(column: &str, condition: &Condition) -> Expr {
    let mut parts = Vec::new();
    if let Some(values) = &condition.is_in {
        parts.push(is_one_of(col(column), values));
    }
    if let Some(values) = &condition.not_in {
        parts.push(!is_one_of(col(column), values));
    }
    if let Some(v) = condition.ge {
        parts.push(cast(col(column), DataType::Float64).gt_eq(lit(v)));
    }
    if let Some(v) = condition.le {
        parts.push(cast(col(column), DataType::Float64).lt_eq(lit(v)));
    }
    if let Some(is_null) = condition.is_null {
        parts.push(if is_null {
            col(column).is_null()
        } else {
            col(column).is_not_null()
        });
    }
    parts.into_iter().reduce(Expr::and).unwrap_or(lit(true))
}

fn filter_expr(filter: &Filter) -> Expr {
    filter
        .iter()
        .map(|(c, cond)| condition_expr(c, cond))
        .reduce(Expr::and)
        .unwrap_or(lit(true))
}

/// The local (Europe/Rome) wall-clock time of a UTC timestamp column.
pub(crate) fn local_time(column: &str) -> Expr {
    let zoned = cast(
        col(column),
        DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/Rome".into())),
    );
    to_local_time(vec![zoned])
}

/// The expression of a dimension, aliased to its name. Periods derive from `month`: the
/// local month of the source's timestamp ([`city_month`], raw scan) or the roll-up's
/// `month` column, which holds the same values.
fn dimension_expr(dim: Dimension, month: Expr, catalogue: &Catalogue) -> Expr {
    let expr = match dim {
        Dimension::Service | Dimension::Channel | Dimension::AuthMethod | Dimension::Year => {
            return col(dim.as_str());
        }
        Dimension::Area => {
            let mut services = catalogue.services.iter();
            match services.next() {
                None => lit("uncatalogued"),
                Some(first) => {
                    let mut case = when(
                        col("service").eq(lit(first.code.as_str())),
                        lit(first.area.as_str()),
                    );
                    for s in services {
                        case = case.when(
                            col("service").eq(lit(s.code.as_str())),
                            lit(s.area.as_str()),
                        );
                    }
                    case.otherwise(lit("uncatalogued"))
                        .unwrap_or(lit("uncatalogued"))
                }
            }
        }
        Dimension::Month => month,
        Dimension::Quarter => date_trunc(lit("quarter"), month),
        Dimension::SchoolYear => {
            let year = cast(date_part(lit("year"), month.clone()), DataType::Int64);
            let month = cast(date_part(lit("month"), month), DataType::Int64);
            year - when(month.lt(lit(9i64)), lit(1i64))
                .otherwise(lit(0i64))
                .unwrap_or(lit(0i64))
        }
    };
    expr.alias(dim.as_str())
}

/// The text of a dimension value as published.
fn dimension_text(dim: Dimension, raw: String) -> String {
    match dim {
        Dimension::Month => raw.chars().take(7).collect(),
        Dimension::Quarter => {
            let year = &raw[..raw.len().min(4)];
            let month: u32 = raw.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
            format!("{year}-Q{}", (month - 1) / 3 + 1)
        }
        Dimension::SchoolYear => match raw.parse::<i32>() {
            Ok(y) => format!("{y}/{:02}", (y + 1) % 100),
            Err(_) => raw,
        },
        _ => raw,
    }
}

/// The source table of a KPI as a DataFrame.
async fn source_frame(ctx: &SessionContext, source: Source) -> Result<DataFrame> {
    Ok(match source {
        Source::Requests => ctx.table("requests").await?,
        Source::Surveys => ctx.table("surveys").await?,
        Source::Ratings => {
            let surveys = ctx.table("surveys").await?.select(vec![
                col("service"),
                col("channel"),
                col("responded_at").alias("rated_at"),
                cast(col("score"), DataType::Int32).alias("score"),
                lit("survey").alias("origin"),
                col("year"),
            ])?;
            let requests = ctx
                .table("requests")
                .await?
                .filter(col("satisfaction").is_not_null())?
                .select(vec![
                    col("service"),
                    col("channel"),
                    col("submitted_at").alias("rated_at"),
                    cast(col("satisfaction"), DataType::Int32).alias("score"),
                    lit("request").alias("origin"),
                    col("year"),
                ])?;
            surveys.union(requests)?
        }
    })
}

/// The query's own filters on categories and years (the KPI's filter and the date range
/// are the caller's): the same `Expr` over raw tables and roll-ups, whose columns share
/// these names.
fn query_filter(query: &KpiQuery, catalogue: &Catalogue) -> Expr {
    let mut filter = lit(true);
    if !query.years.is_empty() {
        filter =
            filter.and(col("year").in_list(query.years.iter().map(|y| lit(*y)).collect(), false));
    }
    if !query.services.is_empty() {
        filter = filter.and(col("service").in_list(
            query.services.iter().map(|s| lit(s.as_str())).collect(),
            false,
        ));
    }
    if !query.channels.is_empty() {
        filter = filter.and(col("channel").in_list(
            query.channels.iter().map(|s| lit(s.as_str())).collect(),
            false,
        ));
    }
    if !query.areas.is_empty() {
        let codes: Vec<Expr> = catalogue
            .services
            .iter()
            .filter(|s| query.areas.contains(&s.area))
            .map(|s| lit(s.code.as_str()))
            .collect();
        filter = filter.and(if codes.is_empty() {
            lit(false)
        } else {
            col("service").in_list(codes, false)
        });
    }
    filter
}

/// The raw scan: the KPI's source rows, filtered, aggregated by the query's dimensions into
/// `num`, `den`, `n` and (for means) `sd` or (for medians) `median`.
async fn raw_frame(
    ctx: &SessionContext,
    def: &KpiDef,
    query: &KpiQuery,
    mut filter: Expr,
    catalogue: &Catalogue,
) -> Result<DataFrame> {
    let df = source_frame(ctx, def.source).await?;
    filter = filter_expr(&def.filter).and(filter);
    // A date range compares the stored instants with the instants at which its days begin
    // (Parquet statistics then skip the row groups outside it), or, for days next to a change
    // of offset, the local date of every row.
    let time = def.source.time_column();
    let local_day = || date_trunc(lit("day"), local_time(time));
    let midnight = |d: chrono::NaiveDate| {
        let micros = d
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros();
        lit(ScalarValue::TimestampMicrosecond(Some(micros), None))
    };
    let instant = |seconds: i64| {
        lit(ScalarValue::TimestampMicrosecond(
            Some(seconds.saturating_mul(1_000_000)),
            Some("UTC".into()),
        ))
    };
    if let Some(from) = query.from {
        filter = filter.and(match day_start(from) {
            Some(start) => col(time).gt_eq(instant(start)),
            None => local_day().gt_eq(midnight(from)),
        });
    }
    if let Some(to) = query.to {
        filter = filter.and(match to.succ_opt().and_then(day_start) {
            Some(next) => col(time).lt(instant(next)),
            None => local_day().lt_eq(midnight(to)),
        });
    }
    let df = df.filter(filter)?;

    let month = city_month(col(time));
    let group: Vec<Expr> = query
        .by
        .iter()
        .map(|d| dimension_expr(*d, month.clone(), catalogue))
        .collect();
    let numerator = def.numerator.as_ref().map(filter_expr).unwrap_or(lit(true));
    let aggregates = match &def.measure {
        Measure::Share => vec![
            sum(when(numerator, lit(1i64)).otherwise(lit(0i64))?).alias("num"),
            count(lit(1)).alias("den"),
            count(lit(1)).alias("n"),
        ],
        Measure::Count => vec![count(lit(1)).alias("n")],
        Measure::Mean(c) => vec![
            sum(cast(col(c), DataType::Int64)).alias("num"),
            count(col(c)).alias("den"),
            count(col(c)).alias("n"),
            stddev(cast(col(c), DataType::Float64)).alias("sd"),
        ],
        Measure::MedianDays([from, to]) => {
            let micros = |c: &str| {
                cast(
                    cast(col(c), DataType::Timestamp(TimeUnit::Microsecond, None)),
                    DataType::Int64,
                )
            };
            let days = micros(to) - micros(from);
            let days = cast(days, DataType::Float64) / lit(86_400_000_000.0);
            vec![median(days).alias("median"), count(lit(1)).alias("n")]
        }
        Measure::SumShare(c) => {
            let value = cast(col(c), DataType::Float64);
            vec![
                sum(when(numerator, value.clone()).otherwise(lit(0.0))?).alias("num"),
                sum(value.clone()).alias("den"),
                count(value).alias("n"),
            ]
        }
    };
    grouped(df, group, aggregates, &query.by)
}

/// `df` aggregated by the dimensions' expressions: on a packed key ([`KeyPacking`]) when the
/// breakdown allows it, then with each dimension read back under its name.
fn grouped(
    df: DataFrame,
    group: Vec<Expr>,
    aggregates: Vec<Expr>,
    by: &[Dimension],
) -> Result<DataFrame> {
    let types = group
        .iter()
        .map(|e| e.get_type(df.schema()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // One integer, date or timestamp (a month, a year) is grouped on as it is: a key would
    // only add a pass.
    let single_number = matches!(types.as_slice(), [t] if !t.is_string());
    let packing = KeyPacking::new(types).filter(|_| !single_number);
    let Some(packing) = packing else {
        return Ok(df.aggregate(group, aggregates)?);
    };
    const KEY: &str = "group_key";
    let df = df.aggregate(vec![packing.pack(group).alias(KEY)], aggregates)?;
    let mut columns: Vec<Expr> = by
        .iter()
        .enumerate()
        .map(|(i, d)| packing.unpack(i, col(KEY)).alias(d.as_str()))
        .collect();
    columns.extend(
        df.schema()
            .columns()
            .into_iter()
            .filter(|c| c.name != KEY)
            .map(Expr::Column),
    );
    Ok(df.select(columns)?)
}

impl Engine {
    /// Computes a KPI of the catalogue.
    pub async fn kpi(&self, query: &KpiQuery) -> Result<KpiResult> {
        let catalogue = self.catalogue();
        let def = catalogue.kpi(&query.kpi)?.clone();
        for dim in &query.by {
            if !dim.is_period() && !def.dimensions.iter().any(|d| d == dim.as_str()) {
                return Err(Error::UnknownDimension {
                    name: dim.as_str().to_string(),
                    allowed: def
                        .dimensions
                        .iter()
                        .map(String::as_str)
                        .chain(["year", "quarter", "month", "school_year"])
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let commit = self.version()?;
        let route = match query.scan {
            Scan::Raw => None,
            Scan::Auto | Scan::Rollup => {
                match (
                    crate::rollup::plan(&def, query),
                    self.rollup_session(commit).await?,
                ) {
                    (Ok(plan), Some(ctx)) => Some((plan, ctx)),
                    (Ok(_), None) if query.scan == Scan::Rollup => {
                        return Err(Error::NoRollup {
                            reason: format!(
                                "none materialised for commit {commit} (run civica rollup)"
                            ),
                        });
                    }
                    (Err(reason), _) if query.scan == Scan::Rollup => {
                        return Err(Error::NoRollup { reason });
                    }
                    _ => None,
                }
            }
        };
        let filter = query_filter(query, catalogue);
        let sorted = |df: DataFrame| -> Result<DataFrame> {
            if query.by.is_empty() {
                return Ok(df);
            }
            let order = query.by.iter().map(|d| col(d.as_str()).sort(true, false));
            Ok(df.sort(order.collect())?)
        };
        // The plan depends on the query and the route only: not on the audience (disclosure
        // control comes after it).
        let key = KpiQuery {
            audience: Audience::Internal,
            scan: if route.is_some() {
                Scan::Rollup
            } else {
                Scan::Raw
            },
            ..query.clone()
        };
        let (physical, ctx) = match self.kept_plan(commit, &key)? {
            Some(kept) => kept,
            None => {
                let (df, ctx) = match &route {
                    Some((plan, ctx)) => {
                        let group: Vec<Expr> = query
                            .by
                            .iter()
                            .map(|d| dimension_expr(*d, col("month"), catalogue))
                            .collect();
                        let df = plan
                            .frame(ctx)
                            .await?
                            .filter(filter.and(crate::rollup::RollupPlan::month_range(query)))?
                            .aggregate(group, plan.aggregates())?;
                        (plan.finish(df, &query.by)?, ctx.clone())
                    }
                    None => {
                        let ctx = self.session_at(commit).await?;
                        (raw_frame(&ctx, &def, query, filter, catalogue).await?, ctx)
                    }
                };
                let physical = sorted(df)?.create_physical_plan().await?;
                self.keep_plan(commit, key, physical.clone(), ctx.clone());
                (physical, ctx)
            }
        };
        let batches = datafusion::physical_plan::collect(physical, ctx.task_ctx()).await?;

        let mut rows = Vec::new();
        for batch in &batches {
            let number = |name: &str, i: usize| -> Option<f64> {
                let column = batch.column_by_name(name)?;
                if column.is_null(i) {
                    return None;
                }
                let as_f64 = datafusion::arrow::compute::cast(column, &DataType::Float64).ok()?;
                let values = as_f64.as_any().downcast_ref::<Float64Array>()?;
                Some(values.value(i))
            };
            for i in 0..batch.num_rows() {
                let dims = query
                    .by
                    .iter()
                    .enumerate()
                    .map(|(d, dim)| {
                        dimension_text(
                            *dim,
                            array_value_to_string(batch.column(d), i).unwrap_or_default(),
                        )
                    })
                    .collect();
                let n = number("n", i).unwrap_or(0.0) as u64;
                let (value, numerator, denominator, interval) = match &def.measure {
                    Measure::Share => {
                        let num = number("num", i).unwrap_or(0.0);
                        let den = number("den", i).unwrap_or(0.0);
                        let value = (den > 0.0).then(|| 100.0 * num / den);
                        (value, Some(num), Some(den), wilson(num, den))
                    }
                    Measure::Count => (Some(n as f64), Some(n as f64), None, None),
                    Measure::Mean(_) => {
                        let num = number("num", i).unwrap_or(0.0);
                        let den = number("den", i).unwrap_or(0.0);
                        let mean = (den > 0.0).then(|| num / den);
                        let interval = mean.zip(number("sd", i)).map(|(m, sd)| {
                            let half = Z95 * sd / den.sqrt();
                            let (lo, hi) = if def.unit == Unit::Score {
                                (1.0, 10.0)
                            } else {
                                (f64::MIN, f64::MAX)
                            };
                            ((m - half).max(lo), (m + half).min(hi))
                        });
                        (mean, Some(num), Some(den), interval)
                    }
                    Measure::MedianDays(_) => (number("median", i), None, None, None),
                    Measure::SumShare(_) => {
                        let num = number("num", i).unwrap_or(0.0);
                        let den = number("den", i).unwrap_or(0.0);
                        (
                            (den > 0.0).then(|| 100.0 * num / den),
                            Some(num),
                            Some(den),
                            None,
                        )
                    }
                };
                rows.push(KpiRow {
                    dims,
                    value,
                    numerator,
                    denominator,
                    n: Some(n),
                    ci_low: interval.map(|i| i.0),
                    ci_high: interval.map(|i| i.1),
                    change: None,
                    flag: (n < LOW_N).then_some(Flag::LowN),
                });
            }
        }
        let min_cell = catalogue.disclosure.min_cell;
        if query.audience == Audience::Public {
            crate::disclosure::suppress(&mut rows, query.by.len(), min_cell);
        }
        add_changes(&mut rows, &query.by);
        Ok(KpiResult {
            kpi: def,
            by: query.by.clone(),
            rows,
            audience: query.audience,
            min_cell,
            scan: if route.is_some() {
                Scan::Rollup
            } else {
                Scan::Raw
            },
            version: commit,
        })
    }

    /// The latest calendar year with data up to December (or followed by a later year):
    /// the default year of annual views.
    pub async fn latest_full_year(&self) -> Result<Option<i32>> {
        let ctx = self.session().await?;
        let df = ctx
            .table("requests")
            .await?
            .aggregate(
                vec![col("year")],
                vec![max(col("submitted_at")).alias("last")],
            )?
            .sort(vec![col("year").sort(true, false)])?;
        let batches = df.collect().await?;
        let mut years: Vec<(i32, i64)> = Vec::new();
        for batch in &batches {
            let year = batch.column(0).as_any().downcast_ref::<Int32Array>();
            let last = datafusion::arrow::compute::cast(batch.column(1), &DataType::Int64).ok();
            let last = last
                .as_ref()
                .and_then(|l| l.as_any().downcast_ref::<Int64Array>());
            if let (Some(year), Some(last)) = (year, last) {
                for i in 0..batch.num_rows() {
                    years.push((year.value(i), last.value(i)));
                }
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

    /// Target status of a KPI from its yearly series (all services together).
    pub async fn targets(&self, id: &str) -> Result<Vec<TargetStatus>> {
        let def = self.catalogue().kpi(id)?.clone();
        if def.targets.is_empty() {
            return Ok(Vec::new());
        }
        let series = self
            .kpi(&KpiQuery::new(id).by(vec![Dimension::Year]))
            .await?;
        let points: Vec<(i32, f64)> = series
            .rows
            .iter()
            .filter_map(|r| Some((r.dims[0].parse().ok()?, r.value?)))
            .collect();
        Ok(def
            .targets
            .iter()
            .map(|t| target_status(t, &points))
            .collect())
    }
}

/// Wilson 95% interval of a share, in percent.
pub fn wilson(successes: f64, n: f64) -> Option<(f64, f64)> {
    if n <= 0.0 {
        return None;
    }
    let p = successes / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some((
        100.0 * (centre - half).max(0.0),
        100.0 * (centre + half).min(1.0),
    ))
}

/// Fills `change`: the difference with the previous period of the same other dimensions.
fn add_changes(rows: &mut [KpiRow], by: &[Dimension]) {
    let Some(period) = by.iter().position(|d| d.is_period()) else {
        return;
    };
    let mut series: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let mut key = row.dims.clone();
        key.remove(period);
        series.entry(key).or_default().push(i);
    }
    for indices in series.values_mut() {
        indices.sort_by(|a, b| rows[*a].dims[period].cmp(&rows[*b].dims[period]));
        for pair in indices.windows(2) {
            let (prev, cur) = (pair[0], pair[1]);
            if rows[cur].flag == Some(Flag::Suppressed) || rows[prev].flag == Some(Flag::Suppressed)
            {
                continue;
            }
            rows[cur].change = rows[cur].value.zip(rows[prev].value).map(|(c, p)| c - p);
        }
    }
}

/// Where a KPI stands against one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetStatus {
    pub value: f64,
    pub by: String,
    pub latest_year: Option<i32>,
    pub latest_value: Option<f64>,
    /// `met`, `on_track`, `behind` or `no_data`.
    pub status: &'static str,
}

/// Met when the latest value reaches the target; on track when the trend of the last two
/// years reaches it by the target year; behind otherwise.
pub fn target_status(target: &crate::catalogue::Target, points: &[(i32, f64)]) -> TargetStatus {
    let target_year: i32 = target
        .by
        .get(..4)
        .and_then(|y| y.parse().ok())
        .unwrap_or(i32::MAX);
    let latest = points.last().copied();
    let status = match latest {
        None => "no_data",
        Some((_, v)) if v >= target.value => "met",
        Some((year, v)) => {
            let slope = points
                .len()
                .checked_sub(2)
                .map(|i| (v - points[i].1) / f64::from((year - points[i].0).max(1)));
            match slope {
                Some(s)
                    if year < target_year
                        && v + s * f64::from(target_year - year) >= target.value =>
                {
                    "on_track"
                }
                _ => "behind",
            }
        }
    };
    TargetStatus {
        value: target.value,
        by: target.by.clone(),
        latest_year: latest.map(|(y, _)| y),
        latest_value: latest.map(|(_, v)| v),
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Target;

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
    fn wilson_interval_matches_a_hand_computation() {
        // 8 of 10: p = 0.8, z = 1.96 → (0.4902, 0.9433), worked out by hand from the formula.
        let (lo, hi) = wilson(8.0, 10.0).unwrap();
        assert!((lo - 49.02).abs() < 0.01, "{lo}");
        assert!((hi - 94.33).abs() < 0.01, "{hi}");
        assert_eq!(wilson(0.0, 0.0), None);
    }

    #[test]
    fn periods_are_published_as_readable_text() {
        assert_eq!(
            dimension_text(Dimension::Month, "2017-06-01T00:00:00".into()),
            "2017-06"
        );
        assert_eq!(
            dimension_text(Dimension::Quarter, "2017-10-01T00:00:00".into()),
            "2017-Q4"
        );
        assert_eq!(
            dimension_text(Dimension::SchoolYear, "2017".into()),
            "2017/18"
        );
        assert_eq!(
            dimension_text(Dimension::SchoolYear, "1999".into()),
            "1999/00"
        );
    }

    #[test]
    fn target_status_follows_value_and_trend() {
        let target = Target {
            value: 90.0,
            by: "2020-12-31".into(),
        };
        assert_eq!(
            target_status(&target, &[(2017, 85.0), (2018, 91.0)]).status,
            "met"
        );
        assert_eq!(
            target_status(&target, &[(2017, 80.0), (2018, 85.0)]).status,
            "on_track"
        );
        assert_eq!(
            target_status(&target, &[(2017, 80.0), (2018, 81.0)]).status,
            "behind"
        );
        assert_eq!(target_status(&target, &[]).status, "no_data");
    }

    #[test]
    fn change_is_the_difference_with_the_previous_period() {
        let row = |service: &str, year: &str, value: f64| KpiRow {
            dims: vec![service.into(), year.into()],
            value: Some(value),
            numerator: None,
            denominator: None,
            n: Some(100),
            ci_low: None,
            ci_high: None,
            change: None,
            flag: None,
        };
        let mut rows = vec![
            row("a", "2016", 50.0),
            row("a", "2017", 80.0),
            row("b", "2017", 10.0),
        ];
        add_changes(&mut rows, &[Dimension::Service, Dimension::Year]);
        assert_eq!(rows[0].change, None);
        assert_eq!(rows[1].change, Some(30.0));
        assert_eq!(rows[2].change, None);
    }
}
