//! The one place where a DataFusion session over the warehouse is built.
//!
//! Callers hold an [`Engine`] and never see the `SessionContext`. The tables (`requests`,
//! `surveys`, their `_history`, `quarantine`) are registered from the latest committed snapshot
//! of the warehouse [`Layout`] with explicit schemas and their Hive partition column,
//! so that an empty warehouse still answers (with no rows), and so that a distributed engine
//! (Ballista) or object storage can later be swapped in here without touching callers.
//! The roll-ups of that commit ([`crate::rollup`]), when they exist, are registered too; they
//! are read once per commit and kept in memory by the engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use civica_ingest::Layout;
use civica_ingest::layout::Table;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTableUrl};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::prelude::{SessionConfig, SessionContext};

use datafusion::execution::cache::cache_manager::{CacheManager, CacheManagerConfig};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

use crate::catalogue::Catalogue;
use crate::error::{Error, Result};
use crate::kpi::KpiQuery;
use crate::rollup;

/// The analytics engine over one warehouse.
#[derive(Debug, Clone)]
pub struct Engine {
    layout: Layout,
    catalogue: Arc<Catalogue>,
    limits: QueryLimits,
    /// The roll-ups of one commit, read once and kept in memory (they are small), shared by
    /// the clones of this engine.
    rollups: Arc<Mutex<Option<CachedRollups>>>,
    /// The physical plans of the latest commit's KPI queries, shared by the clones.
    plans: Arc<Mutex<KeptPlans>>,
    /// Parquet footers (with their page indexes) and file statistics, shared by every query of
    /// this engine and its clones, so that a warm process does not parse the footers of every
    /// file for each query. Entries are checked against the file's size and modification time,
    /// and committed files never change.
    file_caches: Option<Arc<CacheManager>>,
}

/// Roll-up tables in memory, with the commit they belong to and the session KPI queries read
/// them through (cheap to clone: tables and session are shared).
#[derive(Clone)]
struct CachedRollups {
    commit: u64,
    tables: Vec<(&'static str, Arc<MemTable>)>,
    /// Only the roll-up tables, in one partition: a few thousand rows are aggregated faster
    /// on one thread than spread over several. Its memory pool is shared by the roll-up
    /// queries of this commit, which need kilobytes each.
    session: SessionContext,
}

impl std::fmt::Debug for CachedRollups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedRollups")
            .field("commit", &self.commit)
            .finish_non_exhaustive()
    }
}

/// The physical plans of the KPI queries of one commit, each with the session it was planned
/// in. A commit's files never change, so a plan stays valid for as long as its commit is the
/// latest; planning a query (listing files, optimising) costs more than running it over the
/// roll-ups, and a noticeable part of a raw scan of a million rows.
#[derive(Default)]
struct KeptPlans {
    commit: u64,
    plans: HashMap<KpiQuery, (Arc<dyn ExecutionPlan>, SessionContext)>,
}

impl std::fmt::Debug for KeptPlans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptPlans")
            .field("commit", &self.commit)
            .field("plans", &self.plans.len())
            .finish()
    }
}

/// At most this many KPI plans are kept; the dashboard asks a few dozen distinct queries.
const MAX_KEPT_PLANS: usize = 1024;

/// Bounds on analysts' queries, so that one query cannot take the server down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Memory a query may use, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time a query may take.
    pub timeout: std::time::Duration,
    /// Rows a query may return: `Engine::query` refuses longer results, `Engine::query_rows`
    /// cuts them and says so.
    pub max_rows: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            memory_bytes: 1 << 30,
            timeout: std::time::Duration::from_secs(60),
            max_rows: 100_000,
        }
    }
}

/// The Arrow type of the text columns of the data tables: string views, the type the
/// warehouse files declare (polars writes strings as views). Declaring plain `Utf8` instead
/// would make every scan convert each text column of each batch, and views also make the
/// filters and group-bys on `service`, `channel` and `status` cheaper (short values are
/// compared inside the view). Results leave the engine as plain `Utf8` (see
/// [`crate::sql`] and [`crate::rollup`]).
pub const TEXT: DataType = DataType::Utf8View;

/// Schema of the `requests` table as stored in the Parquet files (without `year`).
pub fn requests_file_schema() -> SchemaRef {
    let utc = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("request_id", TEXT, false),
        Field::new("service", TEXT, false),
        Field::new("channel", TEXT, false),
        Field::new("submitted_at", utc(), false),
        Field::new("completed_at", utc(), true),
        Field::new("status", TEXT, false),
        Field::new("auth_method", TEXT, true),
        Field::new("citizen_key", TEXT, true),
        Field::new("amount_eur", DataType::Float64, true),
        Field::new("satisfaction", DataType::Int32, true),
        Field::new("record_fingerprint", DataType::Int64, false),
    ]))
}

/// Schema of the `surveys` table as stored in the Parquet files (without `year`).
pub fn surveys_file_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("response_id", TEXT, false),
        Field::new("service", TEXT, false),
        Field::new("channel", TEXT, false),
        Field::new(
            "responded_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("score", DataType::Int32, false),
        Field::new("request_id", TEXT, true),
        Field::new("record_fingerprint", DataType::Int64, false),
    ]))
}

/// A data table's schema plus `superseded_in`, for the history tables.
fn with_superseded(schema: SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("superseded_in", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// Schema of the `quarantine` table files (without the partition column `ingest`). Its text
/// stays plain `Utf8`: the table is small and is listed whole, as read.
pub fn quarantine_file_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source_file", DataType::Utf8, false),
        Field::new("line", DataType::UInt64, false),
        Field::new("field", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw_line", DataType::Utf8, false),
    ]))
}

impl Engine {
    /// An engine over the warehouse at `layout`. Nothing is read until a query runs, and every
    /// query sees the files committed at the time it starts.
    pub fn new(layout: Layout) -> Self {
        Engine {
            layout,
            catalogue: Arc::new(Catalogue::default()),
            limits: QueryLimits::default(),
            rollups: Arc::new(Mutex::new(None)),
            plans: Arc::new(Mutex::new(KeptPlans::default())),
            file_caches: shared_file_caches(),
        }
    }

    /// The same engine with another KPI catalogue.
    pub fn with_catalogue(mut self, catalogue: Catalogue) -> Self {
        self.catalogue = Arc::new(catalogue);
        // Kept plans were made from the other catalogue's definitions.
        self.plans = Arc::new(Mutex::new(KeptPlans::default()));
        self
    }

    /// The same engine with other query limits.
    pub fn with_limits(mut self, limits: QueryLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The KPI catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The query limits.
    pub fn limits(&self) -> QueryLimits {
        self.limits
    }

    /// The warehouse layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The warehouse version: the number of the latest commit (0 when empty).
    pub fn version(&self) -> Result<u64> {
        self.layout
            .latest_commit()
            .map_err(|source| Error::Warehouse {
                path: self.layout.root().display().to_string(),
                source,
            })
    }

    /// A session with no tables, within `memory_bytes`: where public views are registered
    /// (without `information_schema`, which would list them only).
    pub(crate) fn bare_session(&self, memory_bytes: usize) -> Result<SessionContext> {
        self.context(false, memory_bytes)
    }

    /// The one place a `SessionContext` is made. A distributed engine (Ballista) would be
    /// built here instead; an object store would be registered here for `s3://` warehouses.
    fn context(&self, information_schema: bool, memory_bytes: usize) -> Result<SessionContext> {
        let config = SessionConfig::new()
            .with_information_schema(information_schema)
            .with_default_catalog_and_schema("civica", "public");
        // Each query has its own memory pool; the footer and statistics caches are the engine's.
        let mut runtime = RuntimeEnvBuilder::new().with_memory_limit(memory_bytes, 1.0);
        if let Some(shared) = &self.file_caches {
            runtime = runtime.with_cache_manager(
                CacheManagerConfig::default()
                    .with_file_metadata_cache(Some(shared.get_file_metadata_cache()))
                    .with_file_statistics_cache(shared.get_file_statistic_cache()),
            );
        }
        let runtime = runtime.build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        // Analysts' SQL takes local months as KPIs do.
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
            crate::calendar::CityMonth::new(),
        ));
        Ok(ctx)
    }

    /// A fresh session over the latest commit.
    pub(crate) async fn session(&self) -> Result<SessionContext> {
        self.session_at(self.version()?).await
    }

    /// A fresh session with the tables of `commit` registered, and its roll-ups
    /// (`requests_rollup`, `surveys_rollup`) when they were materialised for that commit.
    pub(crate) async fn session_at(&self, commit: u64) -> Result<SessionContext> {
        let ctx = self.context(true, self.limits.memory_bytes)?;
        // Every query reads one committed snapshot: the latest at the time it starts.
        for table in Table::ALL {
            let (schema, partition_type) = match table {
                Table::Requests => (requests_file_schema(), DataType::Int32),
                Table::RequestsHistory => {
                    (with_superseded(requests_file_schema()), DataType::Int32)
                }
                Table::Surveys => (surveys_file_schema(), DataType::Int32),
                Table::SurveysHistory => (with_superseded(surveys_file_schema()), DataType::Int32),
                Table::Quarantine => (quarantine_file_schema(), DataType::Int64),
            };
            let dir = (commit > 0).then(|| self.layout.table_dir(commit, table));
            register_parquet_table(
                &ctx,
                table.name(),
                dir.as_deref(),
                schema,
                (table.partition_column(), partition_type),
            )
            .await?;
        }
        if let Some(cached) = self.rollups_at(commit).await? {
            for (name, table) in cached.tables {
                ctx.register_table(name, table)?;
            }
        }
        Ok(ctx)
    }

    /// The session over the roll-ups of `commit`, reading them into memory if needed; `None`
    /// when they were not materialised for that commit.
    pub(crate) async fn rollup_session(&self, commit: u64) -> Result<Option<SessionContext>> {
        Ok(self.rollups_at(commit).await?.map(|cached| cached.session))
    }

    /// The plan kept for `query` (normalised by the caller) at `commit`, ready to run again,
    /// with the session it was planned in.
    pub(crate) fn kept_plan(
        &self,
        commit: u64,
        query: &KpiQuery,
    ) -> Result<Option<(Arc<dyn ExecutionPlan>, SessionContext)>> {
        let kept = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if kept.commit != commit {
            return Ok(None);
        }
        let Some((plan, session)) = kept.plans.get(query) else {
            return Ok(None);
        };
        // Each run gets its own copy of the operators that hold state while they run.
        Ok(Some((reset_plan_states(plan.clone())?, session.clone())))
    }

    /// Keeps the plan of `query` at `commit`; the plans of an earlier commit are dropped.
    pub(crate) fn keep_plan(
        &self,
        commit: u64,
        query: KpiQuery,
        plan: Arc<dyn ExecutionPlan>,
        session: SessionContext,
    ) {
        let mut kept = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if commit < kept.commit {
            // A query that started before the latest commit: its plan is already stale.
            return;
        }
        if kept.commit != commit || kept.plans.len() >= MAX_KEPT_PLANS {
            kept.plans.clear();
            kept.commit = commit;
        }
        kept.plans.insert(query, (plan, session));
    }

    /// The roll-ups of `commit`, from memory or read from their files; `None` when they were
    /// not materialised for that commit (roll-ups are valid for their own commit only).
    async fn rollups_at(&self, commit: u64) -> Result<Option<CachedRollups>> {
        if let Ok(cache) = self.rollups.lock()
            && let Some(cached) = cache.as_ref().filter(|c| c.commit == commit)
        {
            return Ok(Some(cached.clone()));
        }
        if commit == 0 || !rollup::rollup_dir(&self.layout, commit).is_dir() {
            return Ok(None);
        }
        let reader = self.context(false, self.limits.memory_bytes)?;
        let mut tables = Vec::new();
        for name in rollup::ROLLUP_TABLES {
            let file = absolute(&rollup::rollup_file(&self.layout, commit, name))?;
            let url = ListingTableUrl::parse(file.display().to_string())?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let schema = rollup::rollup_schema(name);
            reader
                .register_listing_table(name, url.as_str(), options, Some(schema.clone()), None)
                .await?;
            let batches = reader.table(name).await?.collect().await?;
            tables.push((name, Arc::new(MemTable::try_new(schema, vec![batches])?)));
        }
        let session = self.context(false, self.limits.memory_bytes)?;
        session
            .state_ref()
            .write()
            .config_mut()
            .options_mut()
            .execution
            .target_partitions = 1;
        for (name, table) in &tables {
            session.register_table(*name, table.clone())?;
        }
        let cached = CachedRollups {
            commit,
            tables,
            session,
        };
        if let Ok(mut cache) = self.rollups.lock() {
            *cache = Some(cached.clone());
        }
        Ok(Some(cached))
    }
}

/// The caches of Parquet footers and file statistics of a new engine (DataFusion's defaults:
/// 50 MiB of footers, 20 MiB of statistics). The list of files is not cached: listing a
/// snapshot's directory is cheap, and a warehouse rebuilt from scratch reuses its paths.
fn shared_file_caches() -> Option<Arc<CacheManager>> {
    let config = CacheManagerConfig::default().with_list_files_cache_limit(0);
    // Building the default caches does not fail; without them each query reads the footers.
    CacheManager::try_new(&config).ok()
}

/// Registers a Hive-partitioned Parquet table, or an empty one with the same columns when its
/// directory does not exist yet (no ingest so far).
async fn register_parquet_table(
    ctx: &SessionContext,
    name: &str,
    dir: Option<&std::path::Path>,
    file_schema: SchemaRef,
    partition: (&str, DataType),
) -> Result<()> {
    if let Some(dir) = dir.filter(|d| d.is_dir()) {
        let url = ListingTableUrl::parse(format!("{}/", absolute(dir)?.display()))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![(partition.0.to_string(), partition.1)]);
        ctx.register_listing_table(name, url.as_str(), options, Some(file_schema), None)
            .await?;
    } else {
        let mut fields: Vec<Field> = file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(partition.0, partition.1, false));
        let empty = MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]])?;
        ctx.register_table(name, Arc::new(empty))?;
    }
    Ok(())
}

fn absolute(path: &std::path::Path) -> Result<std::path::PathBuf> {
    std::path::absolute(path).map_err(|source| Error::Warehouse {
        path: path.display().to_string(),
        source,
    })
}
