//! Where things live inside a warehouse directory.
//!
//! ```text
//! warehouse/
//!   requests/year=2017/part-000003-0.parquet   one table, Hive-partitioned by year
//!   quarantine/ingest=000003/part-0.parquet     rejected rows of each commit, with reasons
//!   _commits/000003.json                        one record per successful ingest
//! ```
//!
//! A Parquet file becomes visible only by an atomic rename into its partition directory, and
//! a commit record is written last; readers list `*.parquet` files and never see half a file.

use std::path::{Path, PathBuf};

/// The layout of one warehouse, shared by `ingest` (writer) and `analytics` (reader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

/// Name of the service-request table (and of its directory).
pub const REQUESTS_TABLE: &str = "requests";
/// Name of the quarantine table (and of its directory).
pub const QUARANTINE_TABLE: &str = "quarantine";
/// The Hive partition column of the `requests` table.
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

    /// Directory of the `requests` table.
    pub fn requests_dir(&self) -> PathBuf {
        self.root.join(REQUESTS_TABLE)
    }

    /// Partition directory of the `requests` table for one year.
    pub fn requests_partition(&self, year: i32) -> PathBuf {
        self.requests_dir()
            .join(format!("{PARTITION_COLUMN}={year}"))
    }

    /// Directory of the `quarantine` table.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join(QUARANTINE_TABLE)
    }

    /// Quarantine partition of one commit.
    pub fn quarantine_partition(&self, commit: u64) -> PathBuf {
        self.quarantine_dir()
            .join(format!("{QUARANTINE_PARTITION_COLUMN}={commit:06}"))
    }

    /// Directory of commit records.
    pub fn commits_dir(&self) -> PathBuf {
        self.root.join("_commits")
    }

    /// Directory for files being written; they are renamed into place when complete.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("_staging")
    }

    /// Path of one commit record.
    pub fn commit_record(&self, commit: u64) -> PathBuf {
        self.commits_dir().join(format!("{commit:06}.json"))
    }

    /// The latest commit number (0 for an empty warehouse). Also the warehouse version that
    /// caches and ETags are keyed by.
    pub fn latest_commit(&self) -> std::io::Result<u64> {
        let dir = self.commits_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut latest = 0;
        for entry in entries {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            {
                latest = latest.max(n);
            }
        }
        Ok(latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_use_hive_names() {
        let layout = Layout::new("/w");
        assert_eq!(
            layout.requests_partition(2017),
            PathBuf::from("/w/requests/year=2017")
        );
        assert_eq!(
            layout.quarantine_partition(3),
            PathBuf::from("/w/quarantine/ingest=000003")
        );
    }

    #[test]
    fn empty_warehouse_is_at_commit_zero() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Layout::new(dir.path()).latest_commit().unwrap(), 0);
    }
}
