//! How fresh the warehouse is: the time of its latest commit, for "data as of" notes.

use crate::error::{Error, Result};
use crate::session::Engine;

impl Engine {
    /// The UTC time (RFC 3339) of the latest commit, `None` for an empty warehouse.
    pub fn latest_commit_time(&self) -> Result<Option<String>> {
        let record = civica_ingest::warehouse::latest_record(self.layout()).map_err(|e| {
            Error::Warehouse {
                path: self.layout().root().display().to_string(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        Ok(record.map(|r| r.committed_at))
    }
}

/// What the latest commit did, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitCounts {
    /// The commit number (the warehouse version).
    pub commit: u64,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    pub rows_duplicate: u64,
}

impl Engine {
    /// The row counts of the latest commit, read from its commit record; `None` for an
    /// empty warehouse.
    pub fn latest_commit_counts(&self) -> Result<Option<CommitCounts>> {
        let record = civica_ingest::warehouse::latest_record(self.layout()).map_err(|e| {
            Error::Warehouse {
                path: self.layout().root().display().to_string(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        Ok(record.map(|r| CommitCounts {
            commit: r.commit,
            rows_read: r.summary.rows_read,
            rows_accepted: r.summary.rows_accepted,
            rows_quarantined: r.summary.rows_quarantined,
            rows_duplicate: r.summary.rows_duplicate,
        }))
    }
}
