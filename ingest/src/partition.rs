//! The rows of one partition (a year of a table) waiting to be written, kept grouped by
//! service as they arrive.
//!
//! A data file holds its rows by service, then time, so that a one-service query skips most
//! row groups. Logs arrive in time order with the services interleaved: putting each row in
//! its service's group on arrival leaves the writer groups that are already in file order
//! (or nearly), to be read front to back. Sorting a flat buffer instead, then visiting its
//! rows in sorted order, cost a cache miss per row.
//!
//! Groups are lists of fixed-size chunks, so that a growing group never moves its rows;
//! emptied chunks go back to a shared pool for the next rows.

use std::sync::{Arc, Mutex};

use compact_str::CompactString;
use rustc_hash::FxHashMap;

/// Rows per chunk.
const CHUNK_ROWS: usize = 4096;

/// Emptied chunks kept for reuse, shared by the reading thread and the writer threads.
pub struct ChunkPool<T> {
    free: Mutex<Vec<Vec<T>>>,
    /// Most chunks kept.
    keep: usize,
}

impl<T> ChunkPool<T> {
    /// A pool keeping room for about `rows` rows.
    pub fn new(rows: usize) -> Arc<Self> {
        Arc::new(ChunkPool {
            free: Mutex::new(Vec::new()),
            keep: rows.div_ceil(CHUNK_ROWS),
        })
    }

    fn take(&self) -> Vec<T> {
        self.free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_else(|| Vec::with_capacity(CHUNK_ROWS))
    }

    fn give(&self, chunks: impl Iterator<Item = Vec<T>>) {
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        for mut chunk in chunks {
            if free.len() >= self.keep {
                return;
            }
            chunk.clear();
            free.push(chunk);
        }
    }
}

/// The rows of one partition, grouped by service.
pub struct PartitionRows<T> {
    /// Service → its group.
    index: FxHashMap<CompactString, usize>,
    /// Each service's rows, in arrival order, in chunks.
    groups: Vec<Vec<Vec<T>>>,
    len: usize,
}

impl<T> Default for PartitionRows<T> {
    fn default() -> Self {
        PartitionRows {
            index: FxHashMap::default(),
            groups: Vec::new(),
            len: 0,
        }
    }
}

impl<T> PartitionRows<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The services that have rows here.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(CompactString::as_str)
    }

    /// The group of `service`'s rows (created empty when new).
    pub fn group_of(&mut self, service: &str) -> usize {
        if let Some(&group) = self.index.get(service) {
            return group;
        }
        let group = self.groups.len();
        self.groups.push(Vec::new());
        self.index.insert(CompactString::from(service), group);
        group
    }

    /// Appends `row` to `group` (from [`Self::group_of`]), after its earlier rows.
    pub fn push(&mut self, group: usize, row: T, pool: &ChunkPool<T>) {
        let chunks = &mut self.groups[group];
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < chunk.capacity() => chunk.push(row),
            _ => {
                let mut chunk = pool.take();
                chunk.push(row);
                chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    /// The rows in file order: by service (in byte order), then by `time`, then in arrival
    /// order.
    pub fn in_file_order(&self, time: impl Fn(&T) -> i64) -> Vec<&T> {
        let mut services: Vec<(&CompactString, usize)> = self
            .index
            .iter()
            .map(|(service, &group)| (service, group))
            .collect();
        services.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut order = Vec::with_capacity(self.len);
        for (_, group) in services {
            let start = order.len();
            order.extend(self.groups[group].iter().flatten());
            let rows = &mut order[start..];
            if !rows.is_sorted_by_key(|row| time(row)) {
                // A stable sort keeps the arrival order of rows with the same time.
                rows.sort_by_key(|row| time(row));
            }
        }
        order
    }

    /// Hands the emptied chunks back to `pool`.
    pub fn recycle(self, pool: &ChunkPool<T>) {
        pool.give(self.groups.into_iter().flatten());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The order is the one a full sort by (service, time, arrival) gives, whatever the
        /// order of arrival and however many chunks a group spans.
        #[test]
        fn file_order_is_service_then_time_then_arrival(
            rows in proptest::collection::vec((0u8..5, 0i64..50), 0..10_000)
        ) {
            let pool = ChunkPool::new(CHUNK_ROWS * 2);
            let mut partition = PartitionRows::default();
            let services = ["suap", "mensa", "ztl", "certificati", "Zona"];
            for (arrival, &(service, time)) in rows.iter().enumerate() {
                let group = partition.group_of(services[service as usize]);
                partition.push(group, (service, time, arrival), &pool);
            }
            prop_assert_eq!(partition.len(), rows.len());
            let order: Vec<(u8, i64, usize)> =
                partition.in_file_order(|row| row.1).into_iter().copied().collect();
            let mut expected: Vec<(&str, i64, usize)> = rows
                .iter()
                .enumerate()
                .map(|(arrival, &(service, time))| (services[service as usize], time, arrival))
                .collect();
            expected.sort();
            let got: Vec<(&str, i64, usize)> = order
                .iter()
                .map(|&(service, time, arrival)| (services[service as usize], time, arrival))
                .collect();
            prop_assert_eq!(got, expected);
            partition.recycle(&pool);
        }
    }

    #[test]
    fn recycled_chunks_are_reused_up_to_the_pool_size() {
        let pool = ChunkPool::new(CHUNK_ROWS);
        let mut partition = PartitionRows::default();
        for n in 0..3 * CHUNK_ROWS {
            let group = partition.group_of(if n % 2 == 0 { "a" } else { "b" });
            partition.push(group, n, &pool);
        }
        partition.recycle(&pool);
        let free = pool.free.lock().unwrap();
        assert_eq!(free.len(), 1);
        assert!(free[0].is_empty() && free[0].capacity() >= CHUNK_ROWS);
    }
}
