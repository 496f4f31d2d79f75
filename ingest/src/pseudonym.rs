//! Keyed pseudonyms for citizen identifiers.
//!
//! A codice fiscale is low-entropy: a plain hash can be reversed by trying every plausible
//! code. civica therefore uses HMAC-SHA256 under a secret key that lives outside the
//! repository and outside the warehouse; without the key, pseudonyms cannot be linked back.
//! The same key gives the same pseudonym, so repeat users can still be counted.

use std::cell::RefCell;
use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use thread_local::ThreadLocal;

use crate::error::{Error, Result};

/// Minimum key length in bytes (the HMAC-SHA256 block of security).
pub const MIN_KEY_BYTES: usize = 32;

/// Computes `citizen_key` values from raw identifiers.
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("Pseudonymiser { .. }")
    }
}

impl Pseudonymiser {
    /// A pseudonymiser under `key` (at least [`MIN_KEY_BYTES`] bytes).
    pub fn new(key: &[u8]) -> std::result::Result<Self, String> {
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the key has {} bytes, at least {MIN_KEY_BYTES} are needed",
                key.len()
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| e.to_string())?;
        Ok(Pseudonymiser { mac })
    }

    /// Reads the key file at `path` (hex-encoded), creating it with a fresh random key if it
    /// does not exist. The file is created readable by its owner only.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let key_error = |reason: String| Error::PseudonymKey {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let mut key = [0u8; MIN_KEY_BYTES];
            rand::rng().fill_bytes(&mut key);
            write_private(path, hex::encode(key).as_bytes()).map_err(|e| Error::io(path, e))?;
            tracing::info!(path = %path.display(), "created a new pseudonymisation key");
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let key = hex::decode(text.trim())
            .map_err(|e| key_error(format!("not a hex-encoded key: {e}")))?;
        Pseudonymiser::new(&key).map_err(key_error)
    }

    /// The pseudonym of one identifier: 32 hex digits (128 bits) of its HMAC. Identifiers are
    /// normalised first (trimmed, upper case) so that `rssmra…` and `RSSMRA…` agree.
    pub fn citizen_key(&self, citizen_id: &str) -> String {
        self.key_of(citizen_id).as_str().to_string()
    }

    /// The pseudonym of `citizen_id`, held inline.
    pub fn key_of(&self, citizen_id: &str) -> CitizenKey {
        CitizenKey::from_digest(&self.digest_of(citizen_id))
    }

    /// The first 128 bits of the HMAC of the normalised identifier.
    fn digest_of(&self, citizen_id: &str) -> [u8; 16] {
        let mut mac = self.mac.clone();
        let id = citizen_id.trim();
        if id.bytes().any(|b| b.is_ascii_lowercase() || !b.is_ascii()) {
            mac.update(id.to_uppercase().as_bytes());
        } else {
            // Already in upper case (the usual form of a codice fiscale): no new string.
            mac.update(id.as_bytes());
        }
        let digest = mac.finalize().into_bytes();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        first
    }
}

/// Pseudonyms already computed, so that an identifier seen again (a citizen's next request)
/// costs a lookup instead of an HMAC.
///
/// A direct-mapped cache per thread: each identifier has one slot, chosen by a 128-bit hash
/// of its text, and a new identifier takes the slot over. Its memory is fixed, and small on
/// purpose (4,096 slots, 128 KiB per validating thread): it stays in the processor's own
/// cache, so a lookup costs a few nanoseconds, and it holds the repeats that come close
/// together in a log (one citizen's several requests of a session, the enrolments of a
/// family), which a thread meets in the same block of rows. A cache large enough to hold a
/// city's millions of identifiers would miss the processor's caches on nearly every row; on
/// 10.4 million requests from 2.7 million citizens, a 32 MiB cache made the whole ingest 7%
/// slower. One cache shared by the threads behind 64 locks took 4.5 % of the ingest's CPU
/// there, most of it waiting for slots and locks last written by the other core; a cache per
/// thread takes 2.6 %.
///
/// A cache that does not hit is pure cost (that log repeats an identifier within 4,096
/// requests in 0.2 % of rows), so each thread measures its hits: after a window of lookups
/// with fewer than 1 in 32 found, it computes pseudonyms directly for the next fifteen
/// windows, then measures again.
pub struct PseudonymCache {
    pseudonymiser: Pseudonymiser,
    threads: ThreadLocal<RefCell<ThreadCache>>,
}

/// One thread's cache and its count of hits.
struct ThreadCache {
    slots: Box<[Slot]>,
    /// Lookups and hits in the current window.
    lookups: u32,
    hits: u32,
    /// Identifiers still to be pseudonymised without the cache.
    bypass: u32,
}

/// One cached pseudonym: the hash of the identifier's text and the HMAC digest.
#[derive(Clone, Copy, Default)]
struct Slot {
    /// 0 marks an empty slot (an identifier whose hash is 0 is never cached).
    id_hash: u128,
    digest: [u8; 16],
}

impl PseudonymCache {
    /// Slots per thread (a power of two).
    const SLOTS: usize = 1 << 12;
    /// Lookups over which a thread measures its hits.
    const WINDOW: u32 = 1 << 16;
    /// Fewest hits in a window for the cache to stay in use.
    const MIN_HITS: u32 = Self::WINDOW / 32;
    /// Identifiers pseudonymised directly after a window below that.
    const BYPASS: u32 = Self::WINDOW * 15;

    pub fn new(pseudonymiser: Pseudonymiser) -> Self {
        PseudonymCache {
            pseudonymiser,
            threads: ThreadLocal::new(),
        }
    }

    /// The pseudonym of one identifier, computed once while it stays in the cache.
    pub fn key_of(&self, citizen_id: &str) -> CitizenKey {
        let cache = self.threads.get_or(|| {
            RefCell::new(ThreadCache {
                slots: vec![Slot::default(); Self::SLOTS].into(),
                lookups: 0,
                hits: 0,
                bypass: 0,
            })
        });
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return self.pseudonymiser.key_of(citizen_id);
        };
        if cache.bypass > 0 {
            cache.bypass -= 1;
            return self.pseudonymiser.key_of(citizen_id);
        }
        cache.lookups += 1;
        if cache.lookups == Self::WINDOW {
            if cache.hits < Self::MIN_HITS {
                cache.bypass = Self::BYPASS;
            }
            cache.lookups = 0;
            cache.hits = 0;
        }
        let id_hash = xxhash_rust::xxh3::xxh3_128(citizen_id.as_bytes());
        let cached = &mut cache.slots[(id_hash as usize) & (Self::SLOTS - 1)];
        if id_hash != 0 && cached.id_hash == id_hash {
            let digest = cached.digest;
            cache.hits += 1;
            return CitizenKey::from_digest(&digest);
        }
        let digest = self.pseudonymiser.digest_of(citizen_id);
        *cached = Slot { id_hash, digest };
        CitizenKey::from_digest(&digest)
    }
}

impl std::fmt::Debug for PseudonymCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print pseudonyms or key material.
        f.write_str("PseudonymCache { .. }")
    }
}

/// A `citizen_key`: 32 lowercase hexadecimal digits (the first 128 bits of the HMAC).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CitizenKey([u8; 32]);

impl CitizenKey {
    fn from_digest(digest: &[u8; 16]) -> Self {
        let mut hex_digits = [b'0'; 32];
        // 16 bytes always fit 32 hex digits.
        let _ = hex::encode_to_slice(digest, &mut hex_digits);
        CitizenKey(hex_digits)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for CitizenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_depend_on_the_key_and_not_on_case() {
        let a = Pseudonymiser::new(&[1u8; 32]).unwrap();
        let b = Pseudonymiser::new(&[2u8; 32]).unwrap();
        let id = "RSSMRA80A01C573X";
        assert_eq!(a.citizen_key(id), a.citizen_key(" rssmra80a01c573x "));
        assert_ne!(a.citizen_key(id), b.citizen_key(id));
        assert_eq!(a.citizen_key(id).len(), 32);
        assert!(!a.citizen_key(id).contains("RSSMRA"));
    }

    #[test]
    fn cached_pseudonyms_are_the_computed_ones() {
        let pseudonymiser = Pseudonymiser::new(&[3u8; 32]).unwrap();
        let cache = PseudonymCache::new(pseudonymiser.clone());
        // The first round computes, the second finds them in the cache.
        for round in 0..2 {
            for n in 0..2048 {
                let id = format!("RSSMRA{n:010}");
                assert_eq!(
                    cache.key_of(&id),
                    pseudonymiser.key_of(&id),
                    "round {round}"
                );
            }
        }
        assert_eq!(
            cache.key_of(" rssmra80a01c573x ").as_str(),
            pseudonymiser.citizen_key("RSSMRA80A01C573X")
        );
    }

    /// A thread whose identifiers never repeat stops looking them up after one window, and
    /// still gives the computed pseudonyms; one whose identifiers repeat keeps its cache.
    #[test]
    fn a_cache_that_does_not_hit_is_bypassed() {
        let pseudonymiser = Pseudonymiser::new(&[5u8; 32]).unwrap();
        let bypass = |cache: &PseudonymCache| cache.threads.get().map(|c| c.borrow().bypass);

        let distinct = PseudonymCache::new(pseudonymiser.clone());
        for n in 0..PseudonymCache::WINDOW + 10 {
            let id = format!("BNCLRA{n:010}");
            assert_eq!(distinct.key_of(&id), pseudonymiser.key_of(&id));
        }
        assert_eq!(bypass(&distinct), Some(PseudonymCache::BYPASS - 10));

        let repeated = PseudonymCache::new(pseudonymiser.clone());
        for n in 0..PseudonymCache::WINDOW + 10 {
            let id = format!("VRDGPP{:010}", n % 100);
            assert_eq!(repeated.key_of(&id), pseudonymiser.key_of(&id));
        }
        assert_eq!(bypass(&repeated), Some(0));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Pseudonymiser::new(&[0u8; 8]).is_err());
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/pseudonym.key");
        let first = Pseudonymiser::load_or_create(&path).unwrap();
        let second = Pseudonymiser::load_or_create(&path).unwrap();
        assert_eq!(first.citizen_key("X"), second.citizen_key("X"));
    }
}
