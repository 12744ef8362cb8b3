//! Passphrase-to-key derivation. gpg's default S2K (iterated and salted SHA-1 over 65 MB) is
//! derived with the `sha1` crate, which uses the CPU's SHA extensions, instead of sequoia's
//! collision-detecting SHA-1 (about 5× slower here, half a second per process); every other
//! S2K goes to sequoia.

use std::sync::{Mutex, OnceLock};

use sha1::{Digest, Sha1};

use openpgp::crypto::{Password, SessionKey, S2K};
use openpgp::types::HashAlgorithm;
use sequoia_openpgp as openpgp;

/// Derived keys kept: a restore or backup uses one or two passphrase/salt pairs.
const CACHED_KEYS: usize = 16;

type CachedKey = (S2K, String, usize, SessionKey);

/// The process's one cache of passphrase-derived keys, for reading and writing alike.
fn key_cache() -> &'static Mutex<Vec<CachedKey>> {
    static CACHE: OnceLock<Mutex<Vec<CachedKey>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Vec::new()))
}

/// [`derive_key`], remembered for the process: files written by one dupcore process share
/// their S2K salt ([`session_s2k`]), so a backup or restore derives the key (gpg's 65 MB of
/// SHA-1) once instead of once per volume.
pub fn cached_key(s2k: &S2K, passphrase: &str, key_size: usize) -> openpgp::Result<SessionKey> {
    {
        let cache = key_cache().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = cache
            .iter()
            .find(|e| &e.0 == s2k && e.1 == passphrase && e.2 == key_size)
        {
            return Ok(e.3.clone());
        }
    }
    let key = derive_key(s2k, passphrase, key_size)?;
    let mut cache = key_cache().lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CACHED_KEYS {
        cache.remove(0);
    }
    cache.push((s2k.clone(), passphrase.to_string(), key_size, key.clone()));
    Ok(key)
}

/// The iterated and salted S2K this process writes with for `hash` and `count`: one random
/// salt per process and parameters, so that [`cached_key`] serves every file after the first.
pub fn session_s2k(hash: HashAlgorithm, count: u32) -> openpgp::Result<S2K> {
    static CHOSEN: OnceLock<Mutex<Vec<(HashAlgorithm, u32, S2K)>>> = OnceLock::new();
    let chosen = CHOSEN.get_or_init(|| Mutex::new(Vec::new()));
    let mut chosen = chosen.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = chosen.iter().find(|e| e.0 == hash && e.1 == count) {
        return Ok(e.2.clone());
    }
    let s2k = S2K::new_iterated(hash, count)?;
    chosen.push((hash, count, s2k.clone()));
    Ok(s2k)
}

/// Derives a `key_size`-byte key from `passphrase` as `s2k` says (RFC 4880 §3.7.1).
pub fn derive_key(s2k: &S2K, passphrase: &str, key_size: usize) -> openpgp::Result<SessionKey> {
    match s2k {
        S2K::Iterated {
            hash: HashAlgorithm::SHA1,
            salt,
            hash_bytes,
        } => Ok(iterated_sha1(salt, passphrase.as_bytes(), *hash_bytes as usize, key_size).into()),
        other => other.derive_key(&Password::from(passphrase), key_size),
    }
}

/// Iterated and salted S2K with SHA-1: `count` bytes of salt‖passphrase repeated (at least once
/// whole), in as many hash contexts as the key needs, the i-th preloaded with i zero bytes.
fn iterated_sha1(salt: &[u8; 8], pass: &[u8], count: usize, key_size: usize) -> Vec<u8> {
    let mut unit = Vec::with_capacity(salt.len() + pass.len());
    unit.extend_from_slice(salt);
    unit.extend_from_slice(pass);
    let count = count.max(unit.len());
    // Feed in blocks of many units at once; the hasher's speed then dominates.
    let reps = (64 * 1024 / unit.len().max(1)).max(1);
    let block: Vec<u8> = unit.repeat(reps);
    let mut key = Vec::with_capacity(key_size + 20);
    let mut preload = 0usize;
    while key.len() < key_size {
        let mut h = Sha1::new();
        h.update(vec![0u8; preload]);
        let mut left = count;
        while left > 0 {
            let n = left.min(block.len());
            h.update(&block[..n]);
            left -= n;
        }
        key.extend_from_slice(&h.finalize());
        preload += 1;
    }
    key.truncate(key_size);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sequoia_for_every_key_size_and_count() {
        for (pass, count, size) in [
            ("correct horse", 65_011_712u32, 32usize),
            ("p", 1024, 16),
            ("a much longer passphrase than the salt", 65_536, 24),
            ("x", 3, 32), // below one salt+passphrase: hashed once, whole
            ("", 1024, 32),
            ("two contexts", 2048, 40),
        ] {
            let s2k = S2K::Iterated {
                hash: HashAlgorithm::SHA1,
                salt: *b"saltsalt",
                hash_bytes: count,
            };
            let ours = derive_key(&s2k, pass, size).unwrap();
            let theirs = s2k.derive_key(&Password::from(pass), size).unwrap();
            assert_eq!(&ours[..], &theirs[..], "{pass:?} {count} {size}");
        }
    }
}
