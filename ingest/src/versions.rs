//! Which version of each record is current: the duplicate, conflict and update rules, applied
//! in bounded memory whatever the size of the input.
//!
//! While an ingest reads its files, every valid row goes straight to a new file of the staged
//! snapshot, and its *version* (a hash of its id, its fingerprint, the input line it came from
//! and the data file and row it went to) is appended to a [`VersionLog`]: spill files on disk,
//! one per bucket of id hashes. A [`KeyFilter`] of the new ids then picks, among the rows
//! already in the warehouse, those that may share an id with a new row; their versions are
//! appended too. Each bucket is small enough to be sorted in memory, and [`resolve`] walks each
//! id's versions in input order:
//!
//! - the same fingerprint as the current version: a duplicate, removed;
//! - another fingerprint, seen earlier in the same input file: a conflict, removed and
//!   quarantined;
//! - another fingerprint from an earlier file or commit: an update; the earlier version moves
//!   to the history table.
//!
//! Only the rows named by the [`Resolution`] are then rewritten; in the common case (no
//! repeated ids) nothing is.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `Version::source` of a row already in the warehouse before this ingest.
pub const STORED: u32 = u32::MAX;

/// Versions per bucket the log aims at (40 bytes each).
const BUCKET_VERSIONS: u64 = 1 << 20;
/// Most buckets a log spreads over.
const MAX_BUCKETS: u64 = 256;
/// Bits of the filter per expected id (about 1% false positives with 7 probes, a little more
/// for a blocked filter).
const FILTER_BITS_PER_KEY: u64 = 10;
const FILTER_PROBES: u64 = 7;

/// One version of a record: where it came from and where it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Hash of the record's id.
    pub key: u128,
    /// Low 64 bits of the record's fingerprint.
    pub fingerprint: u64,
    /// Index of the input file of this ingest, or [`STORED`].
    pub source: u32,
    /// Line in that input file (saturating; 0 for stored rows).
    pub line: u32,
    /// The data file that holds the row (an index chosen by the caller).
    pub file: u32,
    /// The row's position in that file.
    pub row: u32,
}

const VERSION_BYTES: usize = 40;

impl Version {
    fn encode(&self, out: &mut [u8; VERSION_BYTES]) {
        out[..16].copy_from_slice(&self.key.to_le_bytes());
        out[16..24].copy_from_slice(&self.fingerprint.to_le_bytes());
        out[24..28].copy_from_slice(&self.source.to_le_bytes());
        out[28..32].copy_from_slice(&self.line.to_le_bytes());
        out[32..36].copy_from_slice(&self.file.to_le_bytes());
        out[36..40].copy_from_slice(&self.row.to_le_bytes());
    }

    /// The low 64 bits of an encoded version's key.
    fn key_low(bytes: &[u8]) -> u64 {
        let mut low = [0u8; 8];
        low.copy_from_slice(&bytes[..8]);
        u64::from_le_bytes(low)
    }

    fn decode(bytes: &[u8]) -> Version {
        let mut key = [0u8; 16];
        key.copy_from_slice(&bytes[..16]);
        let word = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(w)
        };
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&bytes[16..24]);
        Version {
            key: u128::from_le_bytes(key),
            fingerprint: u64::from_le_bytes(fingerprint),
            source: word(24),
            line: word(28),
            file: word(32),
            row: word(36),
        }
    }

    /// Input order: stored rows first, then input files in order, then lines.
    fn order(&self) -> (u128, u64, u32) {
        let source = if self.source == STORED {
            0
        } else {
            u64::from(self.source) + 1
        };
        (self.key, source, self.line)
    }
}

/// A Bloom filter of id hashes: "maybe present" or "certainly absent". Blocked: all the bits
/// of one id fall in one 512-bit block (one cache line), so that each lookup costs one memory
/// access.
pub struct KeyFilter {
    blocks: Vec<[u64; 8]>,
}

impl KeyFilter {
    /// A filter sized for about `expected` ids.
    pub fn with_capacity(expected: u64) -> Self {
        let blocks = (expected.max(1024) * FILTER_BITS_PER_KEY).div_ceil(512);
        KeyFilter {
            blocks: vec![[0; 8]; blocks as usize],
        }
    }

    /// The block of `key` (a multiply-shift of its low half) and its bits in the block (nine
    /// bits of the high half for each probe).
    fn locate(&self, key: u128) -> (usize, impl Iterator<Item = usize> + use<>) {
        let block = ((u128::from(key as u64) * self.blocks.len() as u128) >> 64) as usize;
        let high = (key >> 64) as u64;
        (
            block,
            (0..FILTER_PROBES).map(move |i| ((high >> (i * 9)) & 511) as usize),
        )
    }

    pub fn insert(&mut self, key: u128) {
        let (block, bits) = self.locate(key);
        let block = &mut self.blocks[block];
        for bit in bits {
            block[bit / 64] |= 1 << (bit % 64);
        }
    }

    pub fn may_contain(&self, key: u128) -> bool {
        let (block, mut bits) = self.locate(key);
        let block = &self.blocks[block];
        bits.all(|bit| block[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

/// Versions spilled to disk in buckets of id hashes.
pub struct VersionLog {
    paths: Vec<PathBuf>,
    writers: Vec<BufWriter<File>>,
    /// Bits of the id hash that choose the bucket.
    bucket_bits: u32,
}

impl VersionLog {
    /// A log in `dir` (created) sized for about `expected` versions.
    pub fn create(dir: &Path, expected: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let buckets = (expected / BUCKET_VERSIONS)
            .next_power_of_two()
            .clamp(1, MAX_BUCKETS);
        let mut paths = Vec::new();
        let mut writers = Vec::new();
        for bucket in 0..buckets {
            let path = dir.join(format!("bucket-{bucket:04}.bin"));
            let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
            writers.push(BufWriter::with_capacity(64 << 10, file));
            paths.push(path);
        }
        Ok(VersionLog {
            paths,
            writers,
            bucket_bits: buckets.trailing_zeros(),
        })
    }

    pub fn append(&mut self, version: &Version) -> Result<()> {
        let bucket = if self.bucket_bits == 0 {
            0
        } else {
            (version.key >> (128 - self.bucket_bits)) as usize
        };
        let mut bytes = [0u8; VERSION_BYTES];
        version.encode(&mut bytes);
        self.writers[bucket]
            .write_all(&bytes)
            .map_err(|e| Error::io(&self.paths[bucket], e))
    }

    /// Flushes the buckets and returns their paths.
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        for (writer, path) in self.writers.iter_mut().zip(&self.paths) {
            writer.flush().map_err(|e| Error::io(path, e))?;
        }
        Ok(self.paths)
    }
}

/// A row refused because its id appeared earlier in the same input file with other content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict {
    pub source: u32,
    pub line: u32,
    /// The line of the version it conflicts with.
    pub first_line: u32,
}

/// What the rules decided, per input file and per data file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Data file → rows to drop (duplicates and conflicts of this ingest).
    pub remove: BTreeMap<u32, Vec<u32>>,
    /// Data file → rows that are no longer current (they go to history).
    pub supersede: BTreeMap<u32, Vec<u32>>,
    pub conflicts: Vec<Conflict>,
    /// Input file → rows that were exact copies of the current version.
    pub duplicates: BTreeMap<u32, u64>,
    /// Input file → rows that replaced an earlier version.
    pub updates: BTreeMap<u32, u64>,
}

/// Applies the rules to every bucket of a log. Buckets are independent (an id's versions all
/// fall in one), so they are resolved in parallel, one bucket per thread at a time.
pub fn resolve(buckets: &[PathBuf]) -> Result<Resolution> {
    use rayon::prelude::*;
    let parts: Vec<Resolution> = buckets
        .par_iter()
        .map(|path| resolve_bucket(path))
        .collect::<Result<_>>()?;
    let mut resolution = Resolution::default();
    for part in parts {
        for (file, rows) in part.remove {
            resolution.remove.entry(file).or_default().extend(rows);
        }
        for (file, rows) in part.supersede {
            resolution.supersede.entry(file).or_default().extend(rows);
        }
        resolution.conflicts.extend(part.conflicts);
        for (source, n) in part.duplicates {
            *resolution.duplicates.entry(source).or_default() += n;
        }
        for (source, n) in part.updates {
            *resolution.updates.entry(source).or_default() += n;
        }
    }
    for rows in resolution
        .remove
        .values_mut()
        .chain(resolution.supersede.values_mut())
    {
        rows.sort_unstable();
    }
    resolution
        .conflicts
        .sort_unstable_by_key(|c| (c.source, c.line, c.first_line));
    Ok(resolution)
}

fn resolve_bucket(path: &Path) -> Result<Resolution> {
    let mut resolution = Resolution::default();
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    // Most ids have one version. The low halves of the id hashes alone are sorted (8 bytes a
    // version instead of 40) to find those that occur more than once; only the versions
    // that carry one of them are decoded and put in input order.
    let mut lows: Vec<u64> = bytes
        .chunks_exact(VERSION_BYTES)
        .map(Version::key_low)
        .collect();
    lows.sort_unstable();
    let repeated: rustc_hash::FxHashSet<u64> = lows
        .chunk_by(|a, b| a == b)
        .filter(|run| run.len() > 1)
        .map(|run| run[0])
        .collect();
    drop(lows);
    if repeated.is_empty() {
        return Ok(resolution);
    }
    let mut versions: Vec<Version> = bytes
        .chunks_exact(VERSION_BYTES)
        .filter(|version| repeated.contains(&Version::key_low(version)))
        .map(Version::decode)
        .collect();
    versions.sort_unstable_by_key(Version::order);
    for group in versions.chunk_by(|a, b| a.key == b.key) {
        resolve_record(group, &mut resolution);
    }
    Ok(resolution)
}

/// The versions of one id, in input order.
fn resolve_record(versions: &[Version], out: &mut Resolution) {
    if versions.len() == 1 {
        return;
    }
    let mut current: Option<Version> = None;
    for version in versions {
        let Some(now) = current else {
            current = Some(*version);
            continue;
        };
        if version.source == STORED {
            // Only one stored version is current; should there be more, the last one wins.
            current = Some(*version);
        } else if now.fingerprint == version.fingerprint {
            out.remove
                .entry(version.file)
                .or_default()
                .push(version.row);
            *out.duplicates.entry(version.source).or_default() += 1;
        } else if now.source == version.source {
            out.remove
                .entry(version.file)
                .or_default()
                .push(version.row);
            out.conflicts.push(Conflict {
                source: version.source,
                line: version.line,
                first_line: now.line,
            });
        } else {
            out.supersede.entry(now.file).or_default().push(now.row);
            *out.updates.entry(version.source).or_default() += 1;
            current = Some(*version);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version of record `id`; ids 1 to 4 fall in different buckets of a 64-bucket log.
    fn v(id: u128, fingerprint: u64, source: u32, line: u32, file: u32, row: u32) -> Version {
        Version {
            key: (id << 122) | id,
            fingerprint,
            source,
            line,
            file,
            row,
        }
    }

    fn resolve_all(versions: &[Version], expected: u64) -> Resolution {
        let dir = tempfile::tempdir().unwrap();
        let mut log = VersionLog::create(dir.path(), expected).unwrap();
        // Appended in any order: resolution sorts.
        for version in versions.iter().rev() {
            log.append(version).unwrap();
        }
        resolve(&log.finish().unwrap()).unwrap()
    }

    #[test]
    fn the_rules_in_input_order() {
        let versions = [
            // Stored A (file 0 row 3); input 0 repeats it exactly, then input 1 updates it.
            v(1, 10, STORED, 0, 0, 3),
            v(1, 10, 0, 5, 7, 0),
            v(1, 11, 1, 2, 8, 4),
            // B: twice in input 0 with different content: the later is a conflict.
            v(2, 20, 0, 3, 7, 1),
            v(2, 21, 0, 9, 7, 2),
            // C: input 0 then an update in input 1, then the same again in input 2.
            v(3, 30, 0, 4, 7, 5),
            v(3, 31, 1, 1, 8, 0),
            v(3, 31, 2, 1, 9, 0),
            // D: only once.
            v(4, 40, 0, 6, 7, 6),
        ];
        for expected in [10, 50 << 20] {
            let r = resolve_all(&versions, expected);
            assert_eq!(
                r.remove,
                BTreeMap::from([(7, vec![0, 2]), (9, vec![0])]),
                "{expected}"
            );
            assert_eq!(r.supersede, BTreeMap::from([(0, vec![3]), (7, vec![5])]));
            assert_eq!(
                r.conflicts,
                vec![Conflict {
                    source: 0,
                    line: 9,
                    first_line: 3
                }]
            );
            assert_eq!(r.duplicates, BTreeMap::from([(0, 1), (2, 1)]));
            assert_eq!(r.updates, BTreeMap::from([(1, 2)]));
        }
    }

    #[test]
    fn ids_sharing_the_low_half_of_their_hash_are_told_apart() {
        let same_low = |high: u128| (high << 64) | 0xABCD;
        let version = |key, fingerprint, line, row| Version {
            key,
            fingerprint,
            source: 0,
            line,
            file: 3,
            row,
        };
        // X twice with other content (a conflict); Y once, between them; Z twice the same.
        let versions = [
            version(same_low(1), 1, 1, 0),
            version(same_low(2), 2, 2, 1),
            version(same_low(1), 3, 3, 2),
            version(same_low(3), 4, 4, 3),
            version(same_low(3), 4, 5, 4),
        ];
        let r = resolve_all(&versions, 10);
        assert_eq!(r.remove, BTreeMap::from([(3, vec![2, 4])]));
        assert_eq!(
            r.conflicts,
            vec![Conflict {
                source: 0,
                line: 3,
                first_line: 1
            }]
        );
        assert_eq!(r.duplicates, BTreeMap::from([(0, 1)]));
        assert!(r.supersede.is_empty() && r.updates.is_empty());
    }

    #[test]
    fn the_filter_never_forgets_a_key() {
        let mut filter = KeyFilter::with_capacity(10_000);
        let keys: Vec<u128> = (0..10_000u128)
            .map(|i| xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes()))
            .collect();
        for key in &keys {
            filter.insert(*key);
        }
        assert!(keys.iter().all(|k| filter.may_contain(*k)));
        let false_positives = (10_000..110_000u128)
            .map(|i| xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes()))
            .filter(|k| filter.may_contain(*k))
            .count();
        // About 1% expected; 3% leaves room for chance.
        assert!(false_positives < 3_000, "{false_positives}");
    }
}
