//! Where things live inside a warehouse directory.
//!
//! ```text
//! warehouse/
//!   _commits/000003.json                         commit records; the latest is the version
//!   _snapshots/000003/requests/year=2017/*.parquet   the tables as of commit 3
//!   _snapshots/000003/surveys/year=2017/*.parquet
//!   _snapshots/000003/requests_history/year=2017/*.parquet  superseded versions
//!   _snapshots/000003/quarantine/ingest=000003/*.parquet    refused rows, per ingest
//!   requests -> _snapshots/000003/requests       convenience links for other engines
//!   _staging/                                    work in progress, never read
//! ```
//!
//! Data files are immutable. A commit builds its whole snapshot in `_staging/` (new files plus
//! hard links to the unchanged files of the previous snapshot), renames it into
//! `_snapshots/`, and then writes its commit record: that rename of the record is the one
//! atomic step that makes a commit visible. A crash at any moment leaves the warehouse at the
//! previous commit; leftovers are removed by the next ingest.

use std::path::{Path, PathBuf};

/// The tables of a warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Service requests, one current version per `request_id`.
    Requests,
    /// Satisfaction-survey responses, one current version per `response_id`.
    Surveys,
    /// Earlier versions of requests that a later export updated.
    RequestsHistory,
    /// Earlier versions of survey responses.
    SurveysHistory,
    /// Rows refused by an ingest, with their reasons.
    Quarantine,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Requests,
        Table::Surveys,
        Table::RequestsHistory,
        Table::SurveysHistory,
        Table::Quarantine,
    ];

    /// The table (and directory) name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Requests => REQUESTS_TABLE,
            Table::Surveys => SURVEYS_TABLE,
            Table::RequestsHistory => "requests_history",
            Table::SurveysHistory => "surveys_history",
            Table::Quarantine => QUARANTINE_TABLE,
        }
    }

    /// The Hive partition column.
    pub fn partition_column(self) -> &'static str {
        match self {
            Table::Quarantine => QUARANTINE_PARTITION_COLUMN,
            _ => PARTITION_COLUMN,
        }
    }
}

/// The layout of one warehouse, shared by `ingest` (writer) and `analytics` (reader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

/// Name of the service-request table.
pub const REQUESTS_TABLE: &str = "requests";
/// Name of the survey table.
pub const SURVEYS_TABLE: &str = "surveys";
/// Name of the quarantine table.
pub const QUARANTINE_TABLE: &str = "quarantine";
/// The Hive partition column of the data tables: local calendar year.
pub const PARTITION_COLUMN: &str = "year";
/// The Hive partition column of the `quarantine` table: the commit that quarantined the row.
pub const QUARANTINE_PARTITION_COLUMN: &str = "ingest";

impl Layout {
    /// A layout rooted at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The warehouse root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of commit records.
    pub fn commits_dir(&self) -> PathBuf {
        self.root.join("_commits")
    }

    /// Path of one commit record.
    pub fn commit_record(&self, commit: u64) -> PathBuf {
        self.commits_dir().join(format!("{commit:06}.json"))
    }

    /// Directory of all snapshots.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("_snapshots")
    }

    /// The snapshot of one commit.
    pub fn snapshot(&self, commit: u64) -> PathBuf {
        self.snapshots_dir().join(format!("{commit:06}"))
    }

    /// A table's directory in one commit's snapshot.
    pub fn table_dir(&self, commit: u64, table: Table) -> PathBuf {
        self.snapshot(commit).join(table.name())
    }

    /// The convenience link to a table's current directory, for other engines.
    pub fn table_link(&self, table: Table) -> PathBuf {
        self.root.join(table.name())
    }

    /// Directory for work in progress.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("_staging")
    }

    /// The latest commit number (0 for an empty warehouse): the warehouse version that
    /// readers, caches and ETags are keyed by.
    pub fn latest_commit(&self) -> std::io::Result<u64> {
        Ok(self.commits()?.last().copied().unwrap_or(0))
    }

    /// Every committed commit number, ascending.
    pub fn commits(&self) -> std::io::Result<Vec<u64>> {
        let entries = match std::fs::read_dir(self.commits_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut commits = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            {
                commits.push(n);
            }
        }
        commits.sort_unstable();
        Ok(commits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_hold_hive_partitioned_tables() {
        let layout = Layout::new("/w");
        assert_eq!(
            layout.table_dir(3, Table::Requests),
            PathBuf::from("/w/_snapshots/000003/requests")
        );
        assert_eq!(
            layout.commit_record(3),
            PathBuf::from("/w/_commits/000003.json")
        );
        assert_eq!(Table::Quarantine.partition_column(), "ingest");
    }

    #[test]
    fn empty_warehouse_is_at_commit_zero() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Layout::new(dir.path()).latest_commit().unwrap(), 0);
    }
}
