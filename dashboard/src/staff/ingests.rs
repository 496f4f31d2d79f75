//! Ingests started from the browser: each upload becomes a job that waits its turn (one
//! ingest at a time, as the commit protocol wants one writer), runs the same ingest as
//! `civica ingest` on a blocking thread, and keeps its progress and summary for the pages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Jobs kept at most (the oldest are forgotten first).
const MAX_JOBS: usize = 1_000;

/// What an ingest reports when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The warehouse commit the ingest made (or stayed at, when nothing was new).
    pub commit: u64,
    pub committed: bool,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    pub rows_duplicate: u64,
    pub rows_updated: u64,
    pub warnings: Vec<String>,
}

/// The function that ingests one file, given a progress callback (rows read so far). The
/// binary supplies the very function `civica ingest` runs, so uploads and the command line
/// share one path into the warehouse.
pub type IngestFn =
    dyn Fn(&Path, &(dyn Fn(u64) + Sync)) -> Result<IngestOutcome, String> + Send + Sync;

/// [`IngestFn`] behind a name that can be printed.
#[derive(Clone)]
pub struct Ingester(pub Arc<IngestFn>);

impl std::fmt::Debug for Ingester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ingester")
    }
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Another ingest is running.
    Waiting,
    Running,
    Done(IngestOutcome),
    /// The ingest failed: the reason, for the staff who uploaded the file.
    Failed(String),
}

/// One uploaded file and its ingest.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    /// The file name as uploaded.
    pub file: String,
    pub user: String,
    pub state: JobState,
    rows_read: Arc<AtomicU64>,
}

impl Job {
    /// Rows read so far.
    pub fn rows_read(&self) -> u64 {
        self.rows_read.load(Ordering::Relaxed)
    }
}

/// The jobs of the server.
#[derive(Debug, Default)]
pub struct Ingests {
    jobs: Mutex<BTreeMap<u64, Job>>,
    next: AtomicU64,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Ingests {
    pub fn new() -> Self {
        Ingests::default()
    }

    pub fn get(&self, id: u64) -> Option<Job> {
        self.jobs.lock().ok()?.get(&id).cloned()
    }

    fn set(&self, id: u64, state: JobState) {
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some(job) = jobs.get_mut(&id)
        {
            job.state = state;
        }
    }

    /// Queues the ingest of `path` (uploaded as `file` by `user`) and returns the job's id.
    /// The job runs in the background; the file is removed once ingested.
    pub fn start(
        self: &Arc<Self>,
        ingester: Ingester,
        path: PathBuf,
        file: &str,
        user: &str,
    ) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let rows_read = Arc::new(AtomicU64::new(0));
        if let Ok(mut jobs) = self.jobs.lock() {
            while jobs.len() >= MAX_JOBS {
                jobs.pop_first();
            }
            jobs.insert(
                id,
                Job {
                    id,
                    file: file.to_string(),
                    user: user.to_string(),
                    state: JobState::Waiting,
                    rows_read: rows_read.clone(),
                },
            );
        }
        let ingests = Arc::clone(self);
        tokio::spawn(async move {
            let _turn = ingests.one_at_a_time.lock().await;
            ingests.set(id, JobState::Running);
            let staged = path.clone();
            let result = tokio::task::spawn_blocking(move || {
                let report = |rows: u64| rows_read.store(rows, Ordering::Relaxed);
                (ingester.0)(&staged, &report)
            })
            .await;
            let state = match result {
                Ok(Ok(outcome)) => JobState::Done(outcome),
                Ok(Err(reason)) => JobState::Failed(reason),
                Err(e) => JobState::Failed(format!("the ingest stopped: {e}")),
            };
            if let JobState::Failed(reason) = &state {
                tracing::warn!(job = id, %reason, "upload ingest failed");
            }
            ingests.set(id, state);
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        });
        id
    }
}
