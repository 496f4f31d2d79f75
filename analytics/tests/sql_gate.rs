//! Property tests that try to get past the SQL gate: arbitrary text and statements built from
//! write, DDL, file-reading and private-table fragments, comments and quoting tricks, run as
//! the public and as staff over a small warehouse.
//!
//! What is checked is what actually happens: nothing panics; no file appears, changes or
//! disappears in the warehouse or next to it; the warehouse version stays the same; and no
//! public answer holds a request id, a pseudonym's source or a quarantined line (the
//! warehouse holds marked ones), or the text of a file outside it.
//!
//! The number of cases comes from `PROPTEST_CASES` (default: a few seconds per property in a
//! debug build).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use civica_analytics::arrow::record_batch::RecordBatch;
use civica_analytics::arrow::util::pretty::pretty_format_batches;
use civica_analytics::{Audience, Engine, QueryLimits};
use civica_ingest::sample::{SampleOptions, write_sample};
use civica_ingest::{IngestOptions, Layout, Pseudonymiser};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The mark carried by every private value of the warehouse.
const MARK: &str = "CANARY";
/// The text of a file next to the warehouse that no query may read.
const SECRET: &str = "SECRETFILETEXT";

fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        max_shrink_time: 60_000,
        ..Config::default()
    }
}

/// A warehouse built once per test binary: a small sample city, marked private values and a
/// secret file beside it.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    engine: Engine,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let sample = write_sample(
            &root.join("sample"),
            SampleOptions {
                seed: 7,
                scale: 0.01,
            },
        )
        .unwrap();
        let marked = root.join("marked.csv");
        std::fs::write(
            &marked,
            format!(
                "request_id,service,channel,submitted_at,status,citizen_id\n\
                 {MARK}REQ1,anagrafe,online,2017-03-01T10:00:00+01:00,completed,{MARK}CITIZEN\n\
                 {MARK}REQ2,anagrafe,nowhere,2017-03-01T10:00:00+01:00,completed,\n"
            ),
        )
        .unwrap();
        std::fs::write(root.join("secret.csv"), format!("a,b\n{SECRET},1\n")).unwrap();
        let layout = Layout::new(root.join("warehouse"));
        let summary = civica_ingest::ingest(
            &layout,
            &[sample, marked],
            &Pseudonymiser::new(&[3u8; 32]).unwrap(),
            &IngestOptions::default(),
        )
        .unwrap();
        assert_eq!(
            summary.rows_quarantined, 1,
            "the marked bad row is quarantined"
        );
        let engine = Engine::new(layout).with_limits(QueryLimits {
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(20),
            max_rows: 1_000,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Fixture {
            _dir: dir,
            root,
            engine,
            runtime,
        }
    })
}

/// Every file below `dir` with its length and modification time.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                todo.push(entry.path());
            }
            out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    out
}

/// Runs `sql` for `audience`; the result as text, or the error's message.
fn run(sql: &str, audience: Audience) -> Result<String, String> {
    let f = fixture();
    f.runtime
        .block_on(f.engine.query_rows(sql, audience, f.engine.limits()))
        .map(|rows| text_of(&rows.batches))
        .map_err(|e| e.to_string())
}

fn text_of(batches: &[RecordBatch]) -> String {
    pretty_format_batches(batches)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Runs `sql` and checks that nothing was written and nothing private or outside the
/// warehouse came back; returns the outcome.
fn run_checked(sql: &str, audience: Audience) -> Result<Result<String, String>, TestCaseError> {
    let f = fixture();
    let before = tree(&f.root);
    let version = f.engine.version().unwrap();
    let outcome = run(sql, audience);
    prop_assert_eq!(f.engine.version().unwrap(), version, "{}", sql);
    prop_assert_eq!(&tree(&f.root), &before, "files changed after {}", sql);
    if let Ok(text) = &outcome {
        prop_assert!(!text.contains(SECRET), "{sql} read a file:\n{text}");
        if audience == Audience::Public {
            prop_assert!(!text.contains(MARK), "{sql} showed private rows:\n{text}");
        }
    }
    Ok(outcome)
}

/// Pieces of SQL that try writes, DDL, files, private tables, catalogues, comments and quotes.
fn fragments(dir: &Path) -> Vec<String> {
    let dir = dir.display();
    [
        "SELECT",
        "*",
        "FROM",
        "kpi_online_share",
        "kpi_requests",
        "requests",
        "quarantine",
        "requests_history",
        "surveys",
        "requests_rollup",
        "civica.public.requests",
        "public.requests",
        "\"requests\"",
        "\"kpi_online_share\"",
        "information_schema.tables",
        "information_schema.columns",
        "WHERE 1=1",
        "UNION ALL",
        "(SELECT request_id FROM requests)",
        "(SELECT raw_line FROM quarantine)",
        "WITH x AS (SELECT * FROM requests) SELECT * FROM x",
        "WITH kpi_online_share AS (SELECT * FROM requests) SELECT * FROM kpi_online_share",
        "EXPLAIN",
        "EXPLAIN ANALYZE",
        "COPY",
        "(SELECT 1)",
        "TO",
        &format!("'{dir}/out.csv'"),
        "STORED AS CSV",
        "CREATE",
        "TABLE",
        "VIEW",
        "t",
        "AS",
        "CREATE EXTERNAL TABLE e (a TEXT) STORED AS CSV LOCATION",
        &format!("'{dir}/secret.csv'"),
        &format!("read_csv('{dir}/secret.csv')"),
        &format!("read_parquet('{dir}/warehouse')"),
        &format!("'{dir}/warehouse/_commits/'"),
        "INSERT INTO",
        "VALUES (1)",
        "DELETE FROM",
        "UPDATE kpi_online_share SET value = 0",
        "DROP TABLE",
        "SET datafusion.execution.batch_size = 1",
        "SHOW ALL",
        "DESCRIBE requests",
        "PREPARE p AS SELECT 1",
        "generate_series(1, 3)",
        "LIMIT 3",
        ";",
        "--",
        "/*",
        "*/",
        "\n",
        "'",
        "\"",
        "''",
        "$$",
        "`",
        "\\",
        "1",
        "value",
        "service",
        "(",
        ")",
        ",",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn statement() -> impl Strategy<Value = String> {
    let root = fixture().root.clone();
    prop::collection::vec(prop::sample::select(fragments(&root)), 1..14).prop_map(|parts| {
        let mut sql = String::new();
        for part in parts {
            if !sql.is_empty() {
                sql.push(' ');
            }
            sql.push_str(&part);
        }
        sql
    })
}

/// A statement made from a template, and what it does if it runs.
#[derive(Debug, Clone)]
struct Built {
    sql: String,
    /// Reads something other than a public view (a table, a catalogue, a file).
    private: bool,
    /// Writes, defines or changes something.
    writes: bool,
}

/// What a query may read as `FROM …`, and whether it is private.
fn sources(dir: &Path) -> Vec<(String, bool)> {
    let dir = dir.display();
    [
        ("kpi_online_share", false),
        ("kpi_requests", false),
        ("KPI_SATISFACTION_MEAN", false),
        ("\"kpi_online_share\"", false),
        ("public.kpi_requests", false),
        ("requests", true),
        ("quarantine", true),
        ("requests_history", true),
        ("surveys", true),
        ("requests_rollup", true),
        ("civica.public.requests", true),
        ("\"requests\"", true),
        ("\"KPI_ONLINE_SHARE\"", true),
        ("information_schema.tables", true),
        (&format!("read_csv('{dir}/secret.csv')"), true),
        (&format!("'{dir}/secret.csv'"), true),
    ]
    .iter()
    .map(|(s, private)| (s.to_string(), *private))
    .collect()
}

fn writes(dir: &Path) -> Vec<String> {
    let dir = dir.display();
    [
        format!("COPY (SELECT 1) TO '{dir}/out.csv'"),
        format!("COPY kpi_online_share TO '{dir}/out.parquet' STORED AS PARQUET"),
        format!("CREATE EXTERNAL TABLE e (a TEXT) STORED AS CSV LOCATION '{dir}/secret.csv'"),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "CREATE VIEW v AS SELECT * FROM kpi_requests".to_string(),
        "INSERT INTO kpi_online_share SELECT * FROM kpi_online_share".to_string(),
        "DELETE FROM kpi_online_share".to_string(),
        "DROP TABLE kpi_online_share".to_string(),
        "SET datafusion.execution.target_partitions = 1".to_string(),
    ]
    .to_vec()
}

fn built() -> impl Strategy<Value = Built> {
    let root = fixture().root.clone();
    let source = prop::sample::select(sources(&root));
    let columns = prop::sample::select(vec!["*", "service, value", "count(*)", "sum(n)"]);
    let tail = prop::sample::select(vec![
        "",
        " LIMIT 3",
        " WHERE value IS NOT NULL",
        " ORDER BY 1",
    ]);
    let write = prop::sample::select(writes(&root));
    (0u8..7, source.clone(), source, columns, tail, write).prop_map(
        |(shape, (a, a_private), (b, b_private), columns, tail, write)| {
            let select = format!("SELECT {columns} FROM {a}{tail}");
            let (sql, private, writes) = match shape {
                0 => (select, a_private, false),
                1 => (
                    format!("SELECT count(*) FROM {a} UNION ALL SELECT count(*) FROM {b}"),
                    a_private || b_private,
                    false,
                ),
                2 => (
                    format!("WITH x AS ({select}) SELECT * FROM x"),
                    a_private,
                    false,
                ),
                3 => (format!("{select}; {write}"), a_private, true),
                4 => (write, false, true),
                5 => (format!("EXPLAIN {select}"), a_private, false),
                // Private names and writes only inside comments.
                _ => (
                    format!("/* SELECT * FROM {b}; */ {select} -- ; {write}"),
                    a_private,
                    false,
                ),
            };
            Built {
                sql,
                private,
                writes,
            }
        },
    )
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary text as public SQL never panics, writes or shows private values.
    #[test]
    fn arbitrary_text_never_gets_past_the_public_gate(sql in "\\PC{0,120}") {
        let _ = run_checked(&sql, Audience::Public)?;
    }

    /// Statements built from dangerous fragments, run as the public: nothing is written,
    /// nothing private or outside the warehouse is read; any statement that names a private
    /// table or a file is refused.
    #[test]
    fn built_statements_never_get_past_the_public_gate(sql in statement()) {
        let outcome = run_checked(&sql, Audience::Public)?;
        let lower = sql.to_lowercase();
        let reaches_out = ["read_csv", "read_parquet", "location", "copy", "insert", "create"]
            .iter()
            .any(|word| lower.contains(word));
        if reaches_out && outcome.is_ok() {
            // Only text inside a comment or a string may mention them.
            prop_assert!(
                lower.contains("--") || lower.contains("/*") || lower.contains('\''),
                "{} succeeded", sql
            );
        }
    }

    /// The same statements run as staff: every table may be read, but nothing is written.
    #[test]
    fn built_statements_never_write_for_staff(sql in statement()) {
        let _ = run_checked(&sql, Audience::Internal)?;
    }

    /// Statements from templates: as the public, one that reads anything but a public view
    /// or writes anything is refused, and every other one is answered; as staff, every write
    /// is refused.
    #[test]
    fn templated_statements_are_refused_exactly_when_they_should_be(built in built()) {
        let public = run_checked(&built.sql, Audience::Public)?;
        if built.private || built.writes {
            prop_assert!(public.is_err(), "{} was answered: {:?}", built.sql, public);
        } else {
            prop_assert!(public.is_ok(), "{} was refused: {:?}", built.sql, public);
        }
        let staff = run_checked(&built.sql, Audience::Internal)?;
        if built.writes {
            prop_assert!(staff.is_err(), "{} was run for staff: {:?}", built.sql, staff);
        }
    }
}

/// Attacks the gate must refuse as the public, each for its own reason.
#[test]
fn known_attacks_are_refused() {
    let dir = fixture().root.display().to_string();
    let attacks = [
        "SELECT * FROM requests".to_string(),
        "SELECT * FROM civica.public.requests".to_string(),
        "SELECT * FROM \"quarantine\"".to_string(),
        "SELECT * FROM kpi_online_share UNION ALL SELECT request_id, 1, 1, 1, 1, 1, 1, 1, 1, 'x' FROM requests".to_string(),
        "WITH kpi_online_share AS (SELECT * FROM requests) SELECT * FROM kpi_online_share".to_string(),
        "SELECT * FROM information_schema.tables".to_string(),
        format!("SELECT * FROM read_csv('{dir}/secret.csv')"),
        format!("SELECT * FROM '{dir}/secret.csv'"),
        format!("COPY (SELECT 1) TO '{dir}/out.csv'"),
        format!("CREATE EXTERNAL TABLE e (a TEXT) STORED AS CSV LOCATION '{dir}/secret.csv'"),
        "CREATE TABLE t AS SELECT * FROM kpi_online_share".to_string(),
        "INSERT INTO kpi_online_share VALUES (1)".to_string(),
        "SELECT 1; DROP TABLE kpi_online_share".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "EXPLAIN SELECT * FROM requests".to_string(),
    ];
    for sql in attacks {
        let outcome = run_checked(&sql, Audience::Public).unwrap_or_else(|e| panic!("{e}"));
        assert!(outcome.is_err(), "{sql} was answered: {outcome:?}");
    }
    // A public view is answered, and the marked request is counted in it without showing.
    let answer = run_checked(
        "SELECT sum(numerator) AS online FROM kpi_online_share",
        Audience::Public,
    )
    .unwrap()
    .expect("a public view is answered");
    assert!(answer.contains("online"), "{answer}");
}
