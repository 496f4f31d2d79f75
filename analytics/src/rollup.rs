//! Roll-ups: small aggregate tables of one committed snapshot, materialised after each commit
//! so that KPI queries read a few thousand rows instead of scanning every request.
//!
//! ```text
//! warehouse/_rollups/000007/requests_rollup.parquet   valid for commit 7 only
//! warehouse/_rollups/000007/surveys_rollup.parquet
//! ```
//!
//! A roll-up directory is built in `_rollups/_staging-<commit>-<pid>/` and renamed into place,
//! so it is either complete or absent. It is valid only for the commit in its name: the
//! engine ([`crate::session`]) registers roll-ups only when they exist for the latest commit,
//! and KPI queries fall back to the raw scan otherwise (a crash between a commit and its
//! roll-up, or a warehouse written by an older civica, still answers correctly).
//!
//! The grain (every column is a value of the raw rows, computed exactly as [`crate::kpi`]
//! computes it, so that re-aggregating gives the same figures):
//!
//! ```sql
//! -- requests_rollup
//! SELECT service, channel, status, auth_method, year,
//!        city_month(submitted_at) AS month,  -- the local month, see crate::calendar
//!        count(*) AS n, count(amount_eur) AS n_amount, sum(amount_eur) AS sum_amount,
//!        count(completed_at) AS n_completed, count(satisfaction) AS n_satisfaction,
//!        sum(satisfaction) AS score_sum, sum(satisfaction * satisfaction) AS score_sq_sum,
//!        sum(CASE WHEN satisfaction = 1 THEN 1 ELSE 0 END) AS score_1, … score_10
//! FROM requests GROUP BY service, channel, status, auth_method, year, month
//! -- surveys_rollup
//! SELECT service, channel, year, city_month(responded_at) AS month,
//!        count(*) AS n, sum(score) AS score_sum, sum(score * score) AS score_sq_sum,
//!        sum(CASE WHEN score = 1 THEN 1 ELSE 0 END) AS score_1, … score_10
//! FROM surveys GROUP BY service, channel, year, month
//! ```
//!
//! Which queries the roll-ups answer is decided in one place, [`plan`]: shares, counts, means
//! of scores (from the score histograms, so means, shares of scores ≥ 7 and their intervals
//! are exact) and sums of amounts, broken down by the grain's columns and the periods derived
//! from `month`, filtered by the grain's columns and by date ranges that start on the first
//! and end on the last day of a month. `median_days_to_complete` stays on the raw scan: its
//! definition uses fractions of a day, and a median of exact durations cannot be recomputed
//! from any aggregate smaller than the durations themselves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Datelike;
use civica_ingest::Layout;
use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::dataframe::DataFrame;
use datafusion::functions::expr_fn::sqrt;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, col, lit, when};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::{SessionContext, cast};
use serde::Serialize;

use crate::calendar::city_month;
use crate::catalogue::{Condition, KpiDef, Measure, Source};
use crate::error::{Error, Result};
use crate::kpi::{Dimension, KpiQuery, condition_expr};
use crate::session::Engine;

/// Table name (and file stem) of the request roll-up.
pub const REQUESTS_ROLLUP: &str = "requests_rollup";
/// Table name (and file stem) of the survey roll-up.
pub const SURVEYS_ROLLUP: &str = "surveys_rollup";
/// The roll-up tables.
pub const ROLLUP_TABLES: [&str; 2] = [REQUESTS_ROLLUP, SURVEYS_ROLLUP];
/// Scores run from 1 to 10 (ingest refuses anything else); one histogram column each.
const SCORES: std::ops::RangeInclusive<i64> = 1..=10;

/// The directory of every roll-up of a warehouse.
pub fn rollups_dir(layout: &Layout) -> PathBuf {
    layout.root().join("_rollups")
}

/// The roll-ups of one commit.
pub fn rollup_dir(layout: &Layout, commit: u64) -> PathBuf {
    rollups_dir(layout).join(format!("{commit:06}"))
}

/// The file of one roll-up table of one commit.
pub fn rollup_file(layout: &Layout, commit: u64, table: &str) -> PathBuf {
    rollup_dir(layout, commit).join(format!("{table}.parquet"))
}

/// The name of the histogram column of score `k`.
fn score_column(k: i64) -> String {
    format!("score_{k}")
}

/// Columns of `requests_rollup`.
pub fn requests_rollup_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("service", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("auth_method", DataType::Utf8, true),
        Field::new("year", DataType::Int32, false),
        Field::new(
            "month",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("n", DataType::Int64, false),
        Field::new("n_amount", DataType::Int64, false),
        Field::new("sum_amount", DataType::Float64, true),
        Field::new("n_completed", DataType::Int64, false),
        Field::new("n_satisfaction", DataType::Int64, false),
        Field::new("score_sum", DataType::Int64, true),
        Field::new("score_sq_sum", DataType::Int64, true),
    ];
    fields.extend(SCORES.map(|k| Field::new(score_column(k), DataType::Int64, true)));
    Arc::new(Schema::new(fields))
}

/// Columns of `surveys_rollup`.
pub fn surveys_rollup_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("service", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("year", DataType::Int32, false),
        Field::new(
            "month",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("n", DataType::Int64, false),
        Field::new("score_sum", DataType::Int64, true),
        Field::new("score_sq_sum", DataType::Int64, true),
    ];
    fields.extend(SCORES.map(|k| Field::new(score_column(k), DataType::Int64, true)));
    Arc::new(Schema::new(fields))
}

/// The schema of a roll-up table by name.
pub(crate) fn rollup_schema(table: &str) -> SchemaRef {
    if table == SURVEYS_ROLLUP {
        surveys_rollup_schema()
    } else {
        requests_rollup_schema()
    }
}

/// The sums of the scores and of their squares (for means and their intervals), then
/// `sum(CASE WHEN column = k THEN 1 ELSE 0 END)` for every score `k`.
fn histogram(column: &str) -> Result<Vec<Expr>> {
    score_histogram(column, lit(1i64))
}

/// The aggregates of `requests_rollup` over groups of (grain, score), each group counting
/// `n` rows: the sums of the groups' counts and amounts, and the histogram of the scores.
fn weighted_histogram(column: &str, weight: &str) -> Result<Vec<Expr>> {
    let n = col(weight);
    let mut aggregates = vec![
        sum(n.clone()).alias("n"),
        sum(col("n_amount")).alias("n_amount"),
        sum(col("sum_amount")).alias("sum_amount"),
        sum(col("n_completed")).alias("n_completed"),
        sum(when(col(column).is_not_null(), n.clone()).otherwise(lit(0i64))?)
            .alias("n_satisfaction"),
    ];
    aggregates.extend(score_histogram(column, n)?);
    Ok(aggregates)
}

/// The score histogram of rows (or groups of rows) that each count `weight` times.
fn score_histogram(column: &str, weight: Expr) -> Result<Vec<Expr>> {
    let score = cast(col(column), DataType::Int64);
    let mut aggregates = vec![
        sum(score.clone() * weight.clone()).alias("score_sum"),
        sum(score.clone() * score.clone() * weight.clone()).alias("score_sq_sum"),
    ];
    for k in SCORES {
        aggregates.push(
            sum(when(score.clone().eq(lit(k)), weight.clone()).otherwise(lit(0i64))?)
                .alias(score_column(k)),
        );
    }
    Ok(aggregates)
}

/// The local month of a timestamp column, exactly as the `month` dimension computes it.
fn local_month(column: &str) -> Expr {
    city_month(col(column)).alias("month")
}

/// What [`materialise`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RollupSummary {
    /// The commit the roll-ups belong to (0: empty warehouse, nothing to do).
    pub commit: u64,
    /// False when the roll-ups of this commit already existed.
    pub built: bool,
    pub requests_rollup_rows: usize,
    pub surveys_rollup_rows: usize,
}

/// Materialises the roll-ups of the latest commit, unless they exist already, and removes
/// those of older commits (the previous commit's are kept: a reader may still be on it).
pub async fn materialise(engine: &Engine) -> Result<RollupSummary> {
    let layout = engine.layout();
    let commit = engine.version()?;
    if commit == 0 {
        return Ok(RollupSummary::default());
    }
    let target = rollup_dir(layout, commit);
    if target.is_dir() {
        remove_old(layout, commit);
        return Ok(RollupSummary {
            commit,
            ..RollupSummary::default()
        });
    }
    let ctx = engine.session_at(commit).await?;

    // Two steps: the rows grouped by the grain and the score, with the accumulators that
    // need the rows; then the few groups regrouped by the grain, the score histogram counted
    // from them. Ten `CASE` sums over every row cost more than one more column to group on.
    let grain = [
        "service",
        "channel",
        "status",
        "auth_method",
        "year",
        "month",
    ];
    let mut by_score: Vec<Expr> = grain[..5].iter().map(|c| col(*c)).collect();
    by_score.push(local_month("submitted_at"));
    by_score.push(col("satisfaction"));
    let requests = ctx
        .table("requests")
        .await?
        .aggregate(
            by_score,
            vec![
                count(lit(1)).alias("n"),
                count(col("amount_eur")).alias("n_amount"),
                sum(col("amount_eur")).alias("sum_amount"),
                count(col("completed_at")).alias("n_completed"),
            ],
        )?
        .aggregate(
            grain.iter().map(|c| col(*c)).collect(),
            weighted_histogram("satisfaction", "n")?,
        )?
        .collect()
        .await?;
    check_histogram(&requests, "n_satisfaction", "requests.satisfaction")?;

    let mut surveys_aggregates = vec![count(lit(1)).alias("n")];
    surveys_aggregates.extend(histogram("score")?);
    let surveys = ctx
        .table("surveys")
        .await?
        .aggregate(
            vec![
                col("service"),
                col("channel"),
                col("year"),
                local_month("responded_at"),
            ],
            surveys_aggregates,
        )?
        .collect()
        .await?;
    check_histogram(&surveys, "n", "surveys.score")?;

    let rollups = rollups_dir(layout);
    let staging = rollups.join(format!("_staging-{commit:06}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| io_error(&staging, e))?;
    let written = write_table(
        &staging.join(format!("{REQUESTS_ROLLUP}.parquet")),
        requests_rollup_schema(),
        &requests,
    )
    .and_then(|requests_rows| {
        let surveys_rows = write_table(
            &staging.join(format!("{SURVEYS_ROLLUP}.parquet")),
            surveys_rollup_schema(),
            &surveys,
        )?;
        Ok((requests_rows, surveys_rows))
    });
    let (requests_rollup_rows, surveys_rollup_rows) = match written {
        Ok(rows) => rows,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // The rename is the commit point of a roll-up: readers see all of it or none of it.
    if let Err(e) = std::fs::rename(&staging, &target) {
        let _ = std::fs::remove_dir_all(&staging);
        if target.is_dir() {
            // Another process materialised the same commit meanwhile: same content.
            return Ok(RollupSummary {
                commit,
                ..RollupSummary::default()
            });
        }
        return Err(io_error(&target, e));
    }
    remove_old(layout, commit);
    Ok(RollupSummary {
        commit,
        built: true,
        requests_rollup_rows,
        surveys_rollup_rows,
    })
}

/// Refuses to write a histogram that does not account for every score (a score outside
/// 1–10 would make the means of the roll-up differ from the raw scan).
fn check_histogram(batches: &[RecordBatch], total: &str, what: &str) -> Result<()> {
    for batch in batches {
        let total_column = int64_column(batch, total)?;
        let mut counted = vec![0i64; batch.num_rows()];
        for k in SCORES {
            let column = int64_column(batch, &score_column(k))?;
            for (i, c) in counted.iter_mut().enumerate() {
                if column.is_valid(i) {
                    *c += column.value(i);
                }
            }
        }
        for (i, c) in counted.iter().enumerate() {
            if *c != total_column.value(i) {
                return Err(Error::Rollup {
                    message: format!(
                        "{what}: {} values outside 1–10; the roll-up would not be exact",
                        total_column.value(i) - c
                    ),
                });
            }
        }
    }
    Ok(())
}

fn int64_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int64Array> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| Error::Rollup {
            message: format!("column `{name}` missing or not a 64-bit integer"),
        })
}

/// Writes batches as one zstd-compressed Parquet file with the roll-up's declared schema.
fn write_table(path: &Path, schema: SchemaRef, batches: &[RecordBatch]) -> Result<usize> {
    let file = std::fs::File::create(path).map_err(|e| io_error(path, e))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let parquet_error = |source| Error::RollupParquet {
        path: path.display().to_string(),
        source,
    };
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(properties)).map_err(parquet_error)?;
    let mut rows = 0;
    for batch in batches {
        // Same columns in the same order; nullability may differ from the declaration, and
        // text arrives as string views (the raw tables' type) but is stored as plain `Utf8`.
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| datafusion::arrow::compute::cast(column, field.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|source| Error::Encode { source })?;
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .map_err(|source| Error::Encode { source })?;
        rows += batch.num_rows();
        writer.write(&batch).map_err(parquet_error)?;
    }
    let file = writer.into_inner().map_err(parquet_error)?;
    file.sync_all().map_err(|e| io_error(path, e))?;
    Ok(rows)
}

/// Removes roll-ups older than the previous commit and abandoned staging directories.
fn remove_old(layout: &Layout, commit: u64) {
    let Ok(entries) = std::fs::read_dir(rollups_dir(layout)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = match name.parse::<u64>() {
            Ok(n) => n + 1 < commit,
            // `_staging-<commit>-<pid>`: work of an earlier commit that never finished.
            Err(_) => name
                .strip_prefix("_staging-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n < commit),
        };
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Warehouse {
        path: path.display().to_string(),
        source,
    }
}

/// How a KPI query over roll-ups is computed: the row filter over the roll-up and the
/// aggregates (named like those of the raw scan: `num`, `den`, `n`, and `sd` for means).
pub(crate) struct RollupPlan {
    source: Source,
    filter: Expr,
    aggregates: Vec<Expr>,
    /// For means: the sum of squares, turned into `sd` after aggregation.
    mean: bool,
}

/// The columns of a roll-up row that are values of the raw rows (filters and breakdowns on
/// them re-aggregate exactly).
fn grain(source: Source) -> &'static [&'static str] {
    match source {
        Source::Requests => &["service", "channel", "status", "auth_method", "year"],
        Source::Surveys => &["service", "channel", "year"],
        Source::Ratings => &["service", "channel", "year", "origin"],
    }
}

/// The score column of a source, whose values the histogram columns count.
fn scored(source: Source) -> &'static str {
    match source {
        Source::Requests => "satisfaction",
        Source::Surveys | Source::Ratings => "score",
    }
}

/// The roll-up column that counts the rows where `column` is not null.
fn non_null_count(source: Source, column: &str) -> Option<&'static str> {
    match (source, column) {
        (Source::Requests, "amount_eur") => Some("n_amount"),
        (Source::Requests, "completed_at") => Some("n_completed"),
        (Source::Requests, "satisfaction") => Some("n_satisfaction"),
        (Source::Surveys | Source::Ratings, "score") => Some("n"),
        _ => None,
    }
}

/// Whether score `k` meets a numeric condition, as the raw scan evaluates it
/// (`CAST(score AS DOUBLE) >= ge AND … <= le`). `None`: the condition is not numeric.
fn score_meets(condition: &Condition, k: i64) -> Option<bool> {
    if condition.is_in.is_some() || condition.not_in.is_some() || condition.is_null.is_some() {
        return None;
    }
    let x = k as f64;
    Some(condition.ge.is_none_or(|v| x >= v) && condition.le.is_none_or(|v| x <= v))
}

/// The sum of the histogram columns of the scores that meet `condition`.
fn scores_meeting(condition: Option<&Condition>) -> Option<Expr> {
    let mut terms = Vec::new();
    for k in SCORES {
        let meets = match condition {
            None => true,
            Some(c) => score_meets(c, k)?,
        };
        if meets {
            terms.push(col(score_column(k)));
        }
    }
    Some(terms.into_iter().reduce(|a, b| a + b).unwrap_or(lit(0i64)))
}

/// Decides whether the roll-ups answer `query` exactly, and how. `Err` carries the reason
/// they do not; the caller then scans the raw tables. This is the one place where that
/// decision is made.
pub(crate) fn plan(def: &KpiDef, query: &KpiQuery) -> std::result::Result<RollupPlan, String> {
    let source = def.source;
    let grain = grain(source);
    for dim in &query.by {
        let ok = match dim {
            Dimension::Area => true,
            d if d.is_period() => true,
            d => grain.contains(&d.as_str()),
        };
        if !ok {
            return Err(format!("`{dim}` is not a column of the roll-up"));
        }
    }
    if let Some(from) = query.from
        && from.day() != 1
    {
        return Err(format!(
            "the date range starts on {from}, not on a first of the month"
        ));
    }
    if let Some(to) = query.to
        && to.succ_opt().is_some_and(|d| d.day() != 1)
    {
        return Err(format!(
            "the date range ends on {to}, not on a last day of the month"
        ));
    }

    // Rows of the raw source that pass the KPI's filter are counted by `count_column`: `n`,
    // or the count of non-null values when the filter asks for them.
    let mut count_column = "n";
    let mut filter = lit(true);
    for (column, condition) in &def.filter {
        if grain.contains(&column.as_str()) {
            filter = filter.and(condition_expr(column, condition));
            continue;
        }
        let only_not_null = *condition
            == Condition {
                is_null: Some(false),
                ..Condition::default()
            };
        match non_null_count(source, column) {
            Some(counted) if only_not_null && (count_column == "n" || count_column == counted) => {
                count_column = counted;
            }
            _ => {
                return Err(format!(
                    "the KPI's filter on `{column}` is not a roll-up column"
                ));
            }
        }
    }
    filter = filter.and(col(count_column).gt(lit(0i64)));

    // The numerator: conditions on grain columns select roll-up rows; a numeric condition
    // on the score selects histogram columns.
    let mut selects = lit(true);
    let mut score_condition = None;
    for (column, condition) in def.numerator.iter().flatten() {
        if grain.contains(&column.as_str()) {
            selects = selects.and(condition_expr(column, condition));
        } else if column == scored(source) && score_meets(condition, 1).is_some() {
            score_condition = Some(condition);
        } else {
            return Err(format!(
                "the KPI's numerator on `{column}` is not a roll-up column"
            ));
        }
    }
    // Histograms and sums cover every row of a roll-up cell: they answer only when the filter
    // keeps every row of the cell, or exactly the rows where the measured column is not null.
    let measured = match &def.measure {
        Measure::Mean(c) | Measure::SumShare(c) => Some(c.as_str()),
        Measure::Share if score_condition.is_some() => Some(scored(source)),
        _ => None,
    };
    if let Some(column) = measured
        && count_column != "n"
        && non_null_count(source, column) != Some(count_column)
    {
        return Err(format!(
            "the KPI's filter keeps part of a roll-up cell's `{column}` values"
        ));
    }
    let counted = col(count_column);
    let or_zero = |e: Expr| {
        when(selects.clone(), e)
            .otherwise(lit(0i64))
            .map_err(|e| e.to_string())
    };
    let (aggregates, mean) = match &def.measure {
        Measure::Share => {
            let numerator = match score_condition {
                None => counted.clone(),
                Some(c) => scores_meeting(Some(c)).ok_or("the score condition is not numeric")?,
            };
            (
                vec![
                    sum(or_zero(numerator)?).alias("num"),
                    sum(counted.clone()).alias("den"),
                    sum(counted).alias("n"),
                ],
                false,
            )
        }
        Measure::Count => (vec![sum(counted).alias("n")], false),
        Measure::Mean(c) if c == scored(source) => {
            // The number of scores: `n_satisfaction` of requests, `n` of surveys and ratings.
            let scores = col(non_null_count(source, c).unwrap_or("n"));
            (
                vec![
                    sum(col("score_sum")).alias("num"),
                    sum(scores.clone()).alias("den"),
                    sum(scores).alias("n"),
                    sum(col("score_sq_sum")).alias("s2"),
                ],
                true,
            )
        }
        Measure::SumShare(c) if source == Source::Requests && c == "amount_eur" => {
            let amount = col("sum_amount");
            let numerator = when(selects.clone(), amount.clone())
                .otherwise(lit(0.0))
                .map_err(|e| e.to_string())?;
            (
                vec![
                    sum(numerator).alias("num"),
                    sum(amount).alias("den"),
                    sum(col("n_amount")).alias("n"),
                ],
                false,
            )
        }
        Measure::MedianDays(_) => {
            return Err("a median of exact durations cannot be recomputed from a roll-up".into());
        }
        Measure::Mean(c) | Measure::SumShare(c) => {
            return Err(format!(
                "the measure's column `{c}` is not summed in the roll-up"
            ));
        }
    };
    Ok(RollupPlan {
        source,
        filter,
        aggregates,
        mean,
    })
}

impl RollupPlan {
    /// The roll-up rows of the plan's source, with the KPI's filter applied.
    pub(crate) async fn frame(&self, ctx: &SessionContext) -> Result<DataFrame> {
        // The union of ratings carries only the score columns the plan reads: fewer columns
        // to plan and to copy.
        let used: std::collections::HashSet<String> = self
            .aggregates
            .iter()
            .chain([&self.filter])
            .flat_map(|e| e.column_refs())
            .map(|c| c.name.clone())
            .collect();
        let mut histogram: Vec<Expr> = ["score_sum".to_string(), "score_sq_sum".to_string()]
            .into_iter()
            .chain(SCORES.map(score_column))
            .filter(|c| used.contains(c))
            .map(col)
            .collect();
        let df = match self.source {
            Source::Requests => ctx.table(REQUESTS_ROLLUP).await?,
            Source::Surveys => ctx.table(SURVEYS_ROLLUP).await?,
            Source::Ratings => {
                let mut survey_columns = vec![
                    col("service"),
                    col("channel"),
                    col("year"),
                    col("month"),
                    lit("survey").alias("origin"),
                    col("n"),
                ];
                survey_columns.append(&mut histogram.clone());
                let surveys = ctx.table(SURVEYS_ROLLUP).await?.select(survey_columns)?;
                let mut request_columns = vec![
                    col("service"),
                    col("channel"),
                    col("year"),
                    col("month"),
                    lit("request").alias("origin"),
                    col("n_satisfaction").alias("n"),
                ];
                request_columns.append(&mut histogram);
                let requests = ctx.table(REQUESTS_ROLLUP).await?.select(request_columns)?;
                surveys.union(requests)?
            }
        };
        Ok(df.filter(self.filter.clone())?)
    }

    /// The aggregates, named as in the raw scan.
    pub(crate) fn aggregates(&self) -> Vec<Expr> {
        self.aggregates.clone()
    }

    /// After aggregation by `dims`: the sample standard deviation `sd` of means, from the
    /// integer sums (`(n·Σx² − (Σx)²) / (n(n − 1))` is exact in integers; null below n = 2,
    /// as the raw scan's `stddev`).
    pub(crate) fn finish(&self, df: DataFrame, dims: &[Dimension]) -> Result<DataFrame> {
        if !self.mean {
            return Ok(df);
        }
        let mut columns: Vec<Expr> = dims.iter().map(|d| col(d.as_str())).collect();
        let n = col("n");
        let spread = n.clone() * col("s2") - col("num") * col("num");
        let variance = cast(spread, DataType::Float64)
            / cast(n.clone() * (n.clone() - lit(1i64)), DataType::Float64);
        columns.extend([
            col("num"),
            col("den"),
            col("n"),
            when(n.gt(lit(1i64)), sqrt(variance)).end()?.alias("sd"),
        ]);
        Ok(df.select(columns)?)
    }

    /// The filter of a month-aligned date range on the roll-up's `month` column.
    pub(crate) fn month_range(query: &KpiQuery) -> Expr {
        let start = |d: chrono::NaiveDate| {
            let micros = d
                .with_day(1)
                .unwrap_or(d)
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_micros();
            lit(datafusion::common::ScalarValue::TimestampMicrosecond(
                Some(micros),
                None,
            ))
        };
        let mut filter = lit(true);
        if let Some(from) = query.from {
            filter = filter.and(col("month").gt_eq(start(from)));
        }
        if let Some(to) = query.to {
            filter = filter.and(col("month").lt_eq(start(to)));
        }
        filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;

    fn decide(def: &KpiDef, query: &KpiQuery) -> std::result::Result<(), String> {
        plan(def, query).map(|_| ())
    }

    #[test]
    fn plan_sends_only_exact_queries_to_the_rollups() {
        let catalogue = Catalogue::default();
        let kpi = |id: &str| catalogue.kpi(id).unwrap().clone();
        let by = |dims: &[Dimension]| KpiQuery::new("x").by(dims.to_vec());

        for def in &catalogue.kpis {
            let answer = decide(def, &by(&[Dimension::Service, Dimension::Month]));
            assert_eq!(
                answer.is_ok(),
                def.id != "median_days_to_complete",
                "{}: {answer:?}",
                def.id
            );
        }
        // Whole months only.
        let mut q = by(&[Dimension::Service]);
        q.from = chrono::NaiveDate::from_ymd_opt(2017, 2, 1);
        q.to = chrono::NaiveDate::from_ymd_opt(2017, 2, 28);
        assert!(decide(&kpi("online_share"), &q).is_ok());
        q.to = chrono::NaiveDate::from_ymd_opt(2017, 2, 27);
        assert!(decide(&kpi("online_share"), &q).is_err());

        // A share of high scores among requests with an amount: the histogram also counts the
        // scores of requests without one, so the roll-up cannot answer.
        let mut def = kpi("satisfaction_satisfied_share");
        def.source = Source::Requests;
        def.numerator = Some(
            [(
                "satisfaction".to_string(),
                Condition {
                    ge: Some(7.0),
                    ..Condition::default()
                },
            )]
            .into(),
        );
        assert!(decide(&def, &by(&[])).is_ok());
        def.filter.insert(
            "amount_eur".into(),
            Condition {
                is_null: Some(false),
                ..Condition::default()
            },
        );
        assert!(decide(&def, &by(&[])).is_err());

        // A filter on a column that is not in the roll-up.
        let mut def = kpi("requests");
        def.filter.insert(
            "citizen_key".into(),
            Condition {
                is_null: Some(true),
                ..Condition::default()
            },
        );
        assert!(decide(&def, &by(&[])).is_err());
    }
}
