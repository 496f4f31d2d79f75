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
