//! A KPI result names the warehouse version it was computed from.

use civica_analytics::{Engine, KpiQuery};
use civica_ingest::{IngestOptions, Layout, Pseudonymiser};

/// A file of `n` completed requests with ids `{prefix}-1` …
fn requests(dir: &std::path::Path, prefix: &str, n: usize) -> std::path::PathBuf {
    let mut text = String::from("request_id,service,channel,submitted_at,status\n");
    for i in 1..=n {
        text.push_str(&format!(
            "{prefix}-{i},anagrafe,online,2017-03-01T10:00:00+01:00,completed\n"
        ));
    }
    let path = dir.join(format!("{prefix}.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Regression: API answers took the version from a second read after the KPI query, so an
/// answer computed from commit 1 could say version 2 when an ingest committed meanwhile
/// (seen by `bench/load_while_ingest.sh`). The result now carries the commit it read.
#[tokio::test]
async fn kpi_results_name_the_commit_they_read() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("warehouse"));
    let pseudonymiser = Pseudonymiser::new(&[5u8; 32]).unwrap();
    let engine = Engine::new(layout.clone());
    let total = |result: &civica_analytics::KpiResult| result.rows[0].value;
    for (commit, prefix, n, expected) in [(1, "A", 7, 7.0), (2, "B", 4, 11.0)] {
        let file = requests(dir.path(), prefix, n);
        civica_ingest::ingest(&layout, &[file], &pseudonymiser, &IngestOptions::default()).unwrap();
        let result = engine.kpi(&KpiQuery::new("requests")).await.unwrap();
        assert_eq!((result.version, total(&result)), (commit, Some(expected)));
    }
}
