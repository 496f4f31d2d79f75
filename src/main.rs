//! The `civica` command line: generate sample logs, ingest them, compute KPIs, query the
//! warehouse and serve the dashboard.

use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use civica_analytics::format::write_batches;
use civica_analytics::kpi::parse_years;
use civica_analytics::opendata::OpenDataConfig;
use civica_analytics::{Audience, Catalogue, Dimension, Engine, KpiQuery, OutputFormat, Scan};
use civica_dashboard::client::{Network, parse_network};
use civica_dashboard::limits::{RateLimit, ServerLimits};
use civica_dashboard::staff::StaffConfig;
use civica_dashboard::staff::accounts::Users;
use civica_dashboard::staff::ingests::{IngestOutcome, Ingester};
use civica_ingest::sample::{SampleOptions, write_sample};
use civica_ingest::{IngestOptions, IngestSummary, Layout, LogKind, Profile, Pseudonymiser};
use clap::{Args, Parser, Subcommand};

/// civica: trustworthy KPIs, a public dashboard and open data from the logs of a city's
/// public services.
#[derive(Debug, Parser)]
#[command(name = "civica", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a synthetic sample city's request log (DIR/requests.csv).
    Generate {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Random seed: the same seed gives the same bytes.
        #[arg(long, default_value_t = SampleOptions::default().seed)]
        seed: u64,
        /// Volume multiplier (1.0 ≈ 350,000 requests over 2015–2018).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
    },
    /// Load service logs (requests or surveys; CSV in any common dialect, JSON Lines or arrays, spreadsheets; also gzip-compressed or in a zip archive)
    /// into the warehouse as one atomic commit.
    Ingest {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        #[command(flatten)]
        key: KeyArgs,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// A source profile (TOML) that fixes the dialect and maps columns and values.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// The kind of log, when the header does not tell: requests or surveys.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<LogKind>,
        /// Commit nothing (and exit with status 2) if any row would be quarantined.
        #[arg(long)]
        fail_on_quarantine: bool,
        /// Only check: read and validate everything, report what an ingest would do and the
        /// first rows it would quarantine, commit nothing (for trying a new export).
        #[arg(long)]
        check: bool,
        /// Files to load; a directory stands for the files in it (not in its subdirectories,
        /// hidden ones left out), in name order: a folder where exports are dropped.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Merge the small files of many ingests into one sorted file per partition (atomic).
    Compact {
        #[command(flatten)]
        warehouse: WarehouseArgs,
    },
    /// Materialise the roll-ups of the latest commit if they are missing (ingest and compact
    /// do it after each commit; this repairs a warehouse from an interrupted run or an older
    /// civica).
    Rollup {
        #[command(flatten)]
        warehouse: WarehouseArgs,
    },
    /// List the rows that ingests refused, with file, line, field and reason.
    Quarantine {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        /// Only the rows of this ingest (commit number).
        #[arg(long)]
        ingest: Option<u64>,
        #[arg(long, default_value = "table")]
        format: OutputFormat,
    },
    /// Print a KPI of the catalogue (`--list` shows the catalogue).
    Kpi {
        /// KPI identifier, e.g. online_share.
        #[arg(required_unless_present = "list")]
        id: Option<String>,
        /// List the KPIs of the catalogue.
        #[arg(long)]
        list: bool,
        /// Breakdown, comma-separated: service, area, channel, auth_method, and the periods
        /// year, quarter, month, school_year.
        #[arg(long, default_value = "")]
        by: String,
        /// Only these years, comma-separated.
        #[arg(long)]
        year: Option<String>,
        /// Only these services (codes), comma-separated.
        #[arg(long)]
        service: Option<String>,
        /// Only these areas, comma-separated.
        #[arg(long)]
        area: Option<String>,
        /// Only these channels, comma-separated.
        #[arg(long)]
        channel: Option<String>,
        /// First local date (YYYY-MM-DD).
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last local date (YYYY-MM-DD).
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// Apply the public disclosure control (suppress small cells). Without it the
        /// command shows every cell, as staff with access to the warehouse may see.
        #[arg(long)]
        public: bool,
        /// Which tables answer: auto (roll-ups when they cover the query, else the raw
        /// tables), raw, or rollup (an error when roll-ups cannot answer).
        #[arg(long, default_value = "auto")]
        scan: Scan,
        #[arg(long, default_value = "table")]
        format: OutputFormat,
        #[command(flatten)]
        warehouse: WarehouseArgs,
        #[command(flatten)]
        catalogue: CatalogueArgs,
    },
    /// Run read-only SQL over the warehouse: tables requests, surveys, requests_history,
    /// surveys_history, quarantine, requests_rollup, surveys_rollup (staff); with --public,
    /// only the disclosure-controlled KPI views kpi_<id>.
    Query {
        /// Read as the public: only the KPI views (kpi_online_share, …), small cells
        /// suppressed.
        #[arg(long)]
        public: bool,
        #[arg(long, default_value = "table")]
        format: OutputFormat,
        #[command(flatten)]
        warehouse: WarehouseArgs,
        /// The SQL statement.
        sql: String,
    },
    /// Time the benchmark's KPI queries in one warm process, raw scan and roll-ups
    /// (maintenance; see BENCHMARKS.md). Prints JSON.
    #[command(hide = true)]
    BenchQueries {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        /// Timed runs per query and path, after one warm-up run.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
        /// Which paths to time, comma-separated: raw, rollup.
        #[arg(long, value_delimiter = ',', default_value = "raw,rollup")]
        scan: Vec<Scan>,
    },
    /// Manage staff accounts (the users file).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Serve the dashboard.
    Serve {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        #[command(flatten)]
        bind: BindArgs,
        #[command(flatten)]
        staff: StaffArgs,
        /// The pseudonymisation key of uploaded logs (as for `civica ingest`).
        #[command(flatten)]
        key: KeyArgs,
        /// Publisher and licence of the open data (TOML with [publisher] and [licence]);
        /// default: the sample city, CC BY 4.0.
        #[arg(long)]
        opendata_config: Option<PathBuf>,
        #[command(flatten)]
        hardening: HardeningArgs,
    },
    /// Write the open-data site as static files: pages, every dataset in every format with
    /// its datapackage.json, the DCAT-AP_IT catalogue and the API's documents.
    Export {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        /// Output directory (created if absent).
        #[arg(long)]
        out: PathBuf,
        /// The address the site will be published at, for the catalogue's URLs
        /// (default: `publisher.base_uri` of the open-data configuration).
        #[arg(long)]
        base_uri: Option<String>,
        /// Publisher and licence (TOML with [publisher] and [licence]); default: the
        /// sample city, CC BY 4.0.
        #[arg(long)]
        opendata_config: Option<PathBuf>,
    },
    /// Generate the sample (if absent), ingest it, then serve the dashboard.
    Demo {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        bind: BindArgs,
        /// Where the sample log is generated.
        #[arg(long, default_value = "data/sample")]
        sample_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Add a staff account, or set the password of an existing one. The password is read
    /// from standard input (one line), never from the command line.
    Add {
        /// User name: lower-case letters, digits, `.`, `_`, `-`.
        name: String,
        #[command(flatten)]
        users: UsersArgs,
        /// Read the password from standard input (the only way; accepted for scripts that
        /// say so explicitly).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make a new API token for a staff account: printed once, only its hash is kept.
    Token {
        name: String,
        #[command(flatten)]
        users: UsersArgs,
    },
}

#[derive(Debug, Args)]
struct UsersArgs {
    /// The users file (TOML, mode 0600); default: civica-users.toml beside the warehouse.
    #[arg(long)]
    users: Option<PathBuf>,
    #[command(flatten)]
    warehouse: WarehouseArgs,
}

impl UsersArgs {
    fn path(&self) -> PathBuf {
        users_file(self.users.clone(), &self.warehouse.warehouse)
    }
}

/// The users file: `--users`, else `civica-users.toml` beside (never inside) the warehouse.
fn users_file(users: Option<PathBuf>, warehouse: &Path) -> PathBuf {
    users.unwrap_or_else(|| {
        warehouse
            .parent()
            .unwrap_or(Path::new("."))
            .join("civica-users.toml")
    })
}

#[derive(Debug, Args)]
struct StaffArgs {
    /// The users file of staff accounts (`civica user add`); default: civica-users.toml
    /// beside the warehouse.
    #[arg(long)]
    users: Option<PathBuf>,
    /// Mark session cookies Secure (the server is reached over TLS, e.g. behind a proxy).
    #[arg(long)]
    secure_cookies: bool,
    /// The largest log file staff may upload, in MiB.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_upload_mib: u64,
    /// The largest upload in bytes (overrides --max-upload-mib; for tests).
    #[arg(long, hide = true)]
    max_upload_bytes: Option<u64>,
}

#[derive(Debug, Args)]
struct WarehouseArgs {
    /// Warehouse directory.
    #[arg(long, default_value = "data/warehouse")]
    warehouse: PathBuf,
}

#[derive(Debug, Args)]
struct CatalogueArgs {
    /// A KPI catalogue (TOML) to use instead of the one built in.
    #[arg(long)]
    catalogue: Option<PathBuf>,
}

impl CatalogueArgs {
    fn engine(&self, warehouse: &Path) -> Result<Engine> {
        let engine = Engine::new(Layout::new(warehouse));
        Ok(match &self.catalogue {
            Some(path) => engine.with_catalogue(Catalogue::load(path)?),
            None => engine,
        })
    }
}

#[derive(Debug, Args)]
struct KeyArgs {
    /// File holding the pseudonymisation key (hex); created if absent (mode 0600). Keep it
    /// outside the repository and the warehouse. Without it: the key itself from
    /// $CIVICA_PSEUDONYM_KEY (hex), else the file $CIVICA_KEY_FILE, else
    /// ~/.config/civica/pseudonym.key.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct BindArgs {
    /// Address to listen on; port 0 picks a free port (the address is logged).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
}

/// What the server lets clients do: who may frame it, how much they may send and ask.
#[derive(Debug, Args)]
struct HardeningArgs {
    /// Who may embed the pages and charts in a frame (CSP `frame-ancestors`), e.g.
    /// "'self' https://www.comune.example.it".
    #[arg(long, default_value = "'self'")]
    frame_ancestors: String,
    /// The largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Seconds after which a request still unanswered is answered 408.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout: u64,
    /// SQL statements run at once; more are answered 503 with Retry-After.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    max_concurrent_queries: u64,
    /// Calls of /api/v1/query a minute from one IP address; more are answered 429.
    #[arg(long, default_value_t = NonZeroU32::new(60).unwrap_or(NonZeroU32::MIN))]
    query_rate: NonZeroU32,
    /// Login attempts a minute from one IP address.
    #[arg(long, default_value_t = NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN))]
    login_rate: NonZeroU32,
    /// Seconds a client has to send the headers of a request before the connection is closed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// A reverse proxy (address or CIDR network) whose X-Forwarded-For names the client, for
    /// the per-IP limits; repeat for several. Without it X-Forwarded-For is ignored.
    #[arg(long = "trusted-proxy", value_name = "NET")]
    trusted_proxies: Vec<String>,
    /// A network (address or CIDR) whose clients may read /metrics without a staff API
    /// token; repeat for several. Default: loopback only.
    #[arg(long = "metrics-from", value_name = "NET")]
    metrics_from: Vec<String>,
}

impl HardeningArgs {
    /// `state` with these settings.
    fn apply(&self, state: civica_dashboard::AppState) -> Result<civica_dashboard::AppState> {
        let ancestors = civica_dashboard::security::FrameAncestors::parse(&self.frame_ancestors)
            .map_err(|reason| anyhow::anyhow!("--frame-ancestors: {reason}"))?;
        let limits = ServerLimits {
            body_bytes: self.max_body_bytes,
            request_timeout: std::time::Duration::from_secs(self.request_timeout),
            header_timeout: std::time::Duration::from_secs(self.header_timeout),
            concurrent_queries: usize::try_from(self.max_concurrent_queries)?,
            query_rate: RateLimit::per_minute(self.query_rate),
            login_rate: RateLimit::per_minute(self.login_rate),
        };
        let parse = |flag: &str, nets: &[String]| -> Result<Vec<_>> {
            nets.iter()
                .map(|net| parse_network(net).map_err(|reason| anyhow::anyhow!("{flag}: {reason}")))
                .collect()
        };
        let mut network = Network {
            trusted_proxies: parse("--trusted-proxy", &self.trusted_proxies)?,
            ..Network::default()
        };
        if !self.metrics_from.is_empty() {
            network.metrics_from = parse("--metrics-from", &self.metrics_from)?;
        }
        Ok(state
            .with_frame_ancestors(&ancestors)
            .with_limits(limits)
            .with_network(network))
    }
}

/// An error and its causes on one line, each said once: the libraries' errors name their
/// source in their own message already (`file.csv: No such file or directory`), and
/// anyhow's `{:#}` would repeat it.
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("civica: error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Generate { out, seed, scale } => {
            if !(scale.is_finite() && scale > 0.0) {
                bail!("--scale must be a positive number, not {scale}");
            }
            let path = write_sample(&out, SampleOptions { seed, scale })
                .with_context(|| format!("generating the sample in {}", out.display()))?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Ingest {
            warehouse,
            key,
            json,
            profile,
            kind,
            fail_on_quarantine,
            check,
            files,
        } => {
            let pseudonymiser = load_key(&key)?;
            let profile = match profile {
                Some(path) => Profile::load(&path)?,
                None => Profile::default(),
            };
            let settings = IngestSettings {
                profile,
                kind,
                fail_on_quarantine,
                check_only: check,
            };
            let files = files_in(&files)?;
            ingest(
                &runtime,
                &warehouse.warehouse,
                &files,
                &pseudonymiser,
                settings,
                json,
            )
        }
        Command::Compact { warehouse } => {
            let summary = civica_ingest::compact(&Layout::new(&warehouse.warehouse))
                .with_context(|| format!("compacting {}", warehouse.warehouse.display()))?;
            // The rows did not change, but the commit did: roll-ups are keyed by commit.
            if let Err(e) = materialise_rollups(runtime.handle(), &warehouse.warehouse) {
                eprintln!("civica: warning: {}", message(&e));
            }
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Rollup { warehouse } => {
            let summary = materialise_rollups(runtime.handle(), &warehouse.warehouse)?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Quarantine {
            warehouse,
            ingest,
            format,
        } => {
            let engine = Engine::new(Layout::new(&warehouse.warehouse));
            let batches = runtime.block_on(engine.quarantine(ingest))?;
            print_batches(&batches, format)
        }
        Command::Kpi {
            id,
            list,
            by,
            year,
            service,
            area,
            channel,
            from,
            to,
            public,
            scan,
            format,
            warehouse,
            catalogue,
        } => {
            let engine = catalogue.engine(&warehouse.warehouse)?;
            if list {
                for kpi in &engine.catalogue().kpis {
                    println!(
                        "{:<30} {:<8} {:<9} {} / {}",
                        kpi.id,
                        format!("{:?}", kpi.unit).to_lowercase(),
                        format!("{:?}", kpi.source).to_lowercase(),
                        kpi.title.it,
                        kpi.title.en
                    );
                }
                return Ok(());
            }
            let id = id.context("a KPI id is needed (see civica kpi --list)")?;
            let audience = if public {
                Audience::Public
            } else {
                Audience::Internal
            };
            let mut query = KpiQuery::new(id)
                .by(Dimension::parse_list(&by)?)
                .with_years(parse_years(year.as_deref())?)
                .with_lists(service.as_deref(), area.as_deref(), channel.as_deref())
                .for_audience(audience)
                .with_scan(scan);
            query.from = from;
            query.to = to;
            let result = runtime.block_on(engine.kpi(&query))?;
            print_batches(&[result.batch()?], format)
        }
        Command::Query {
            public,
            format,
            warehouse,
            sql,
        } => {
            let engine = Engine::new(Layout::new(&warehouse.warehouse));
            let audience = if public {
                Audience::Public
            } else {
                Audience::Internal
            };
            let batches = runtime.block_on(engine.query(&sql, audience))?;
            print_batches(&batches, format)
        }
        Command::BenchQueries {
            warehouse,
            runs,
            scan,
        } => {
            let engine = Engine::new(Layout::new(&warehouse.warehouse));
            let report = runtime.block_on(bench_queries(&engine, runs, &scan))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::User { action } => user(action),
        Command::Serve {
            warehouse,
            bind,
            staff,
            key,
            opendata_config,
            hardening,
        } => {
            let config = load_opendata_config(opendata_config.as_deref())?;
            let staff = staff_config(&runtime, &warehouse.warehouse, staff, key);
            let state =
                civica_dashboard::AppState::new(Engine::new(Layout::new(&warehouse.warehouse)))
                    .with_opendata(config)
                    .with_staff(staff);
            runtime.block_on(serve(bind.bind, hardening.apply(state)?))
        }
        Command::Export {
            warehouse,
            out,
            base_uri,
            opendata_config,
        } => {
            let mut config = load_opendata_config(opendata_config.as_deref())?;
            if let Some(base) = base_uri {
                config.publisher.base_uri = Some(base.trim_end_matches('/').to_string());
            }
            let state =
                civica_dashboard::AppState::new(Engine::new(Layout::new(&warehouse.warehouse)))
                    .with_opendata(config);
            let files = runtime
                .block_on(civica_dashboard::export::export_site(state, &out))
                .with_context(|| format!("exporting the open-data site to {}", out.display()))?;
            let bytes: u64 = files.iter().map(|(_, size)| size).sum();
            eprintln!(
                "civica: wrote {} files ({bytes} bytes) to {}",
                files.len(),
                out.display()
            );
            Ok(())
        }
        Command::Demo {
            warehouse,
            key,
            bind,
            sample_dir,
        } => {
            let sample = sample_dir.join("requests.csv");
            if !sample.exists() {
                eprintln!(
                    "civica: generating the sample city in {}",
                    sample_dir.display()
                );
                write_sample(&sample_dir, SampleOptions::default()).with_context(|| {
                    format!("generating the sample in {}", sample_dir.display())
                })?;
            }
            let pseudonymiser = load_key(&key)?;
            ingest(
                &runtime,
                &warehouse.warehouse,
                &[sample],
                &pseudonymiser,
                IngestSettings::default(),
                false,
            )?;
            let staff = StaffArgs {
                users: None,
                secure_cookies: false,
                max_upload_mib: 200,
                max_upload_bytes: None,
            };
            let staff = staff_config(&runtime, &warehouse.warehouse, staff, key);
            let state =
                civica_dashboard::AppState::new(Engine::new(Layout::new(&warehouse.warehouse)))
                    .with_staff(staff);
            runtime.block_on(serve(bind.bind, state))
        }
    }
}

/// The open-data publisher and licence from `path`, or the sample city's defaults.
fn load_opendata_config(path: Option<&Path>) -> Result<OpenDataConfig> {
    let Some(path) = path else {
        return Ok(OpenDataConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(OpenDataConfig::parse(&text, &path.display().to_string())?)
}

/// What the command line says about an ingest.
#[derive(Default)]
struct IngestSettings {
    profile: Profile,
    kind: Option<LogKind>,
    fail_on_quarantine: bool,
    check_only: bool,
}

fn ingest(
    runtime: &tokio::runtime::Runtime,
    warehouse: &Path,
    files: &[PathBuf],
    pseudonymiser: &Pseudonymiser,
    settings: IngestSettings,
    json: bool,
) -> Result<()> {
    // A spinner with rows per second on a terminal; plain log lines otherwise.
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} rows read ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let on_terminal = !bar.is_hidden();
    let report = |rows: u64| {
        if on_terminal {
            bar.set_position(rows);
        } else if rows.is_multiple_of(1_000_000) {
            tracing::info!(rows, "rows read");
        }
    };
    let (checking, failing) = (settings.check_only, settings.fail_on_quarantine);
    let result = ingest_files(
        runtime.handle(),
        warehouse,
        files,
        pseudonymiser,
        settings,
        &report,
    );
    bar.finish_and_clear();
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            if let Some(refused @ civica_ingest::Error::Refused { .. }) =
                e.downcast_ref::<civica_ingest::Error>()
            {
                eprintln!("civica: {refused}");
                std::process::exit(2);
            }
            return Err(e);
        }
    };
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    if checking && failing && summary.rows_quarantined > 0 {
        std::process::exit(2);
    }
    Ok(())
}

/// The files named, each directory replaced by the files in it (hidden ones left out), in
/// name order. A directory without files is an error: a drop folder that an export job
/// failed to fill should not pass for a night without data.
fn files_in(named: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in named {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut inside = Vec::new();
        for entry in std::fs::read_dir(path).with_context(|| format!("{}", path.display()))? {
            let entry = entry.with_context(|| format!("{}", path.display()))?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if !hidden && entry.path().is_file() {
                inside.push(entry.path());
            }
        }
        if inside.is_empty() {
            anyhow::bail!("{}: the directory holds no files to load", path.display());
        }
        inside.sort();
        files.append(&mut inside);
    }
    Ok(files)
}

/// The one ingest of civica, for the command line and for uploads from the dashboard: load
/// `files` as one commit, materialise the roll-ups, and list unknown service codes among the
/// warnings. `progress` hears the rows read so far.
fn ingest_files(
    runtime: &tokio::runtime::Handle,
    warehouse: &Path,
    files: &[PathBuf],
    pseudonymiser: &Pseudonymiser,
    settings: IngestSettings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<IngestSummary> {
    let layout = Layout::new(warehouse);
    let options = IngestOptions {
        profile: settings.profile,
        kind: settings.kind,
        fail_on_quarantine: settings.fail_on_quarantine,
        check_only: settings.check_only,
        progress: Some(progress),
    };
    let mut summary = civica_ingest::ingest(&layout, files, pseudonymiser, &options)
        .with_context(|| format!("ingesting into {}", warehouse.display()))?;
    // Service codes are the city's own: unknown ones are kept, and listed so that the
    // catalogue can be completed (their area is `uncatalogued` until then).
    let catalogue = Catalogue::default();
    let uncatalogued: Vec<&String> = summary
        .services
        .iter()
        .filter(|code| catalogue.service(code).is_none())
        .collect();
    // The commit stands whatever happens next; without roll-ups, queries scan the raw
    // tables and give the same answers, more slowly.
    if summary.committed
        && let Err(e) = materialise_rollups(runtime, warehouse)
    {
        summary.warnings.push(message(&e));
    }
    if !uncatalogued.is_empty() {
        let message = format!(
            "service code(s) not in the catalogue, stored as they are: {}",
            uncatalogued
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        summary.warnings.push(message);
    }
    Ok(summary)
}

/// Staff access of `civica serve`: the users file, cookies, the upload limit, and uploads
/// ingested by [`ingest_files`] with the default settings (the dialect sniffed, as
/// `civica ingest FILE` does). The key is loaded at the first upload, as `civica ingest`
/// would load it, so a server that gets no upload never creates one.
fn staff_config(
    runtime: &tokio::runtime::Runtime,
    warehouse: &Path,
    args: StaffArgs,
    key: KeyArgs,
) -> StaffConfig {
    let handle = runtime.handle().clone();
    let root = warehouse.to_path_buf();
    let ingest = move |file: &Path, progress: &(dyn Fn(u64) + Sync)| {
        let run = || -> Result<IngestOutcome> {
            let pseudonymiser = load_key(&key)?;
            let summary = ingest_files(
                &handle,
                &root,
                &[file.to_path_buf()],
                &pseudonymiser,
                IngestSettings::default(),
                progress,
            )?;
            Ok(IngestOutcome {
                commit: summary.commit,
                committed: summary.committed,
                rows_read: summary.rows_read,
                rows_accepted: summary.rows_accepted,
                rows_quarantined: summary.rows_quarantined,
                rows_duplicate: summary.rows_duplicate,
                rows_updated: summary.rows_updated,
                warnings: summary.warnings,
            })
        };
        run().map_err(|e| message(&e))
    };
    StaffConfig {
        users_file: Some(users_file(args.users, warehouse)),
        secure_cookies: args.secure_cookies,
        upload_limit: args
            .max_upload_bytes
            .unwrap_or(args.max_upload_mib.saturating_mul(1 << 20)),
        upload_dir: warehouse
            .parent()
            .unwrap_or(Path::new("."))
            .join("civica-uploads"),
        ingester: Some(Ingester(std::sync::Arc::new(ingest))),
    }
}

/// `civica user add` and `civica user token`.
fn user(action: UserAction) -> Result<()> {
    match action {
        UserAction::Add {
            name,
            users,
            password_stdin: _,
        } => {
            let path = users.path();
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\n', '\r']);
            let mut accounts = Users::load(&path)?;
            let existed = accounts.get(&name).is_some();
            accounts.set_password(&name, password)?;
            accounts.save(&path)?;
            eprintln!(
                "civica: {} `{name}` in {}",
                if existed {
                    "set the password of"
                } else {
                    "added staff account"
                },
                path.display()
            );
            Ok(())
        }
        UserAction::Token { name, users } => {
            let path = users.path();
            let mut accounts = Users::load(&path)?;
            let token = accounts.new_token(&name)?;
            accounts.save(&path)?;
            println!("{token}");
            eprintln!(
                "civica: the token is shown once; only its hash is kept in {}",
                path.display()
            );
            Ok(())
        }
    }
}

/// The benchmark's questions as catalogue KPIs: (a) online share by service and year, (b) mean
/// satisfaction by service and year, (c) monthly online share of suap.
fn bench_kpis() -> [(&'static str, KpiQuery); 3] {
    let by = |list: &[Dimension]| list.to_vec();
    [
        (
            "a",
            KpiQuery::new("online_share").by(by(&[Dimension::Service, Dimension::Year])),
        ),
        (
            "b",
            KpiQuery::new("satisfaction_mean").by(by(&[Dimension::Service, Dimension::Year])),
        ),
        (
            "c",
            KpiQuery::new("online_share")
                .by(by(&[Dimension::Month]))
                .with_lists(Some("suap"), None, None),
        ),
    ]
}

/// Times each benchmark KPI through the chosen paths (raw scan, roll-ups) in this process:
/// one warm-up run, then `runs` timed runs; p50 and p95 (nearest rank) in milliseconds.
async fn bench_queries(engine: &Engine, runs: u32, scans: &[Scan]) -> Result<serde_json::Value> {
    let mut report = serde_json::Map::new();
    for (name, query) in bench_kpis() {
        let mut paths = serde_json::Map::new();
        for &scan in scans {
            let query = query
                .clone()
                .for_audience(Audience::Internal)
                .with_scan(scan);
            let first = std::time::Instant::now();
            let cells = engine
                .kpi(&query)
                .await
                .with_context(|| format!("query {name}, {}", scan.as_str()))?
                .rows
                .len();
            let first_ms = first.elapsed().as_secs_f64() * 1e3;
            let mut times = Vec::new();
            for _ in 0..runs {
                let started = std::time::Instant::now();
                engine.kpi(&query).await?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            let rank = |p: f64| {
                times[((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1]
            };
            paths.insert(
                scan.as_str().to_string(),
                serde_json::json!({
                    "cells": cells,
                    "first_ms": first_ms,
                    "p50_ms": rank(0.50),
                    "p95_ms": rank(0.95),
                    "runs_ms": times,
                }),
            );
        }
        report.insert(name.to_string(), serde_json::Value::Object(paths));
    }
    Ok(serde_json::Value::Object(report))
}

/// Materialises the roll-ups of the warehouse's latest commit (nothing when they exist).
fn materialise_rollups(
    runtime: &tokio::runtime::Handle,
    warehouse: &Path,
) -> Result<civica_analytics::RollupSummary> {
    let engine = Engine::new(Layout::new(warehouse));
    runtime
        .block_on(civica_analytics::materialise(&engine))
        .with_context(|| format!("materialising the roll-ups of {}", warehouse.display()))
}

/// The human summary: one line per file, then the totals.
fn print_summary(summary: &IngestSummary) {
    eprintln!(
        "{:<40} {:>10} {:>10} {:>11} {:>10} {:>8}  notes",
        "file", "read", "accepted", "quarantined", "duplicate", "updated"
    );
    for file in &summary.files {
        let note = file
            .skipped
            .clone()
            .unwrap_or_else(|| format!("{}, {}", file.kind, file.dialect));
        eprintln!(
            "{:<40} {:>10} {:>10} {:>11} {:>10} {:>8}  {note}",
            file.path,
            file.rows_read,
            file.rows_accepted,
            file.rows_quarantined,
            file.rows_duplicate,
            file.rows_updated
        );
    }
    eprintln!(
        "{:<40} {:>10} {:>10} {:>11} {:>10} {:>8}  {}",
        "total",
        summary.rows_read,
        summary.rows_accepted,
        summary.rows_quarantined,
        summary.rows_duplicate,
        summary.rows_updated,
        if summary.committed {
            format!("commit {}", summary.commit)
        } else if summary.rows_read > 0 {
            format!("checked only; warehouse stays at commit {}", summary.commit)
        } else {
            format!("nothing new; warehouse stays at commit {}", summary.commit)
        }
    );
    for row in &summary.refused_sample {
        eprintln!(
            "would quarantine {}:{}: {}: {}",
            row.source_file, row.line, row.field, row.reason
        );
    }
    if summary.refused_sample.len() < summary.rows_quarantined as usize
        && !summary.refused_sample.is_empty()
    {
        eprintln!(
            "… and {} more",
            summary.rows_quarantined as usize - summary.refused_sample.len()
        );
    }
    for warning in &summary.warnings {
        eprintln!("warning: {warning}");
    }
    if summary.committed && summary.rows_quarantined > 0 {
        eprintln!(
            "see the refused rows with: civica quarantine --ingest {}",
            summary.commit
        );
    }
}

fn parse_kind(text: &str) -> std::result::Result<LogKind, String> {
    match text {
        "requests" => Ok(LogKind::Requests),
        "surveys" => Ok(LogKind::Surveys),
        other => Err(format!("unknown kind `{other}`; use requests or surveys")),
    }
}

async fn serve(bind: SocketAddr, state: civica_dashboard::AppState) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("listening on {bind}"))?;
    let addr = listener.local_addr()?;
    tracing::info!("civica dashboard listening on http://{addr}/");
    civica_dashboard::serve(listener, state).await?;
    Ok(())
}

fn load_key(args: &KeyArgs) -> Result<Pseudonymiser> {
    if args.key_file.is_none()
        && let Some(key) = std::env::var_os("CIVICA_PSEUDONYM_KEY")
    {
        let key = hex::decode(key.to_string_lossy().trim())
            .context("CIVICA_PSEUDONYM_KEY must be the key in hex (64 hex digits or more)")?;
        return Pseudonymiser::new(&key)
            .map_err(|reason| anyhow::anyhow!("CIVICA_PSEUDONYM_KEY: {reason}"));
    }
    let path = match &args.key_file {
        Some(path) => path.clone(),
        None => match std::env::var_os("CIVICA_KEY_FILE") {
            Some(path) => PathBuf::from(path),
            None => {
                let config = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                    .context("cannot find a place for the pseudonymisation key: set --key-file, CIVICA_KEY_FILE or CIVICA_PSEUDONYM_KEY")?;
                config.join("civica").join("pseudonym.key")
            }
        },
    };
    Ok(Pseudonymiser::load_or_create(&path)?)
}

fn print_batches(
    batches: &[civica_analytics::arrow::record_batch::RecordBatch],
    format: OutputFormat,
) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write_batches(&mut out, batches, format)?;
    out.flush()?;
    Ok(())
}
