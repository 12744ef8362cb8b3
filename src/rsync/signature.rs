//! A loaded signature and its block index, following librsync's `readsums.c` and hash table rules.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::error::{RsError, RsResult};
use super::rollsum::match_key;
use super::{BLAKE2_SIG_MAGIC, MD4_SIG_MAGIC, MD4_SUM_LEN, RK_BLAKE2_SIG_MAGIC, RK_MD4_SIG_MAGIC};

/// Hasher for keys that are already well mixed (librsync's `mix32` output).
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u32 keys are hashed")
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v) | (u64::from(v) << 32);
    }
}

/// Bits of the weak-key filter per signature block: with 32, about one rolled position in 32
/// whose key no block has still reaches the block index (a cache miss) before it moves on.
const FILTER_BITS_PER_BLOCK: usize = 32;
/// Largest weak-key filter (4 MiB): beyond it the filter itself would miss the caches.
const FILTER_MAX_BITS: usize = 1 << 25;

type KeyMap = HashMap<u32, Candidates, BuildHasherDefault<IdentityHasher>>;

/// Blocks sharing one weak key: the first inline, more (rare) in a list.
enum Candidates {
    One(u32),
    Many(Vec<u32>),
}

/// A parsed signature indexed for matching: lowest block index per (weak key, strong sum).
pub struct Signature {
    block_len: usize,
    strong_len: usize,
    strong: Vec<u8>,
    count: usize,
    index: KeyMap,
    filter: Vec<u64>,
    filter_mask: u32,
}

impl Signature {
    /// Parses and indexes a complete signature, rejecting what librsync rejects.
    pub fn parse(sig: &[u8]) -> RsResult<Self> {
        if sig.len() < 12 {
            return Err(RsError::InputEnded(
                "signature header is shorter than 12 bytes",
            ));
        }
        let word = |i: usize| u32::from_be_bytes([sig[i], sig[i + 1], sig[i + 2], sig[i + 3]]);
        let magic = word(0);
        match magic {
            MD4_SIG_MAGIC => {}
            BLAKE2_SIG_MAGIC | RK_MD4_SIG_MAGIC | RK_BLAKE2_SIG_MAGIC => {
                return Err(RsError::Unimplemented(magic));
            }
            _ => return Err(RsError::BadMagic(magic, "not a librsync signature")),
        }
        let block_len = word(4) as usize;
        if block_len < 1 {
            return Err(RsError::Corrupt("signature block length is 0".into()));
        }
        let raw_strong = word(8) as usize;
        let strong_len = match raw_strong {
            0 => MD4_SUM_LEN,
            1..=MD4_SUM_LEN => raw_strong,
            17..=32 => {
                return Err(RsError::Param(format!(
                    "signature strong sum length {raw_strong} is longer than MD4's 16 bytes"
                )))
            }
            _ => {
                return Err(RsError::Corrupt(format!(
                    "signature strong sum length {raw_strong} is out of range"
                )))
            }
        };
        let body = &sig[12..];
        let rec = 4 + strong_len;
        let count = body.len() / rec;
        let rest = body.len() % rec;
        if rest >= 4 {
            return Err(RsError::InputEnded("signature ends inside a strong sum"));
        }
        let mut keys = Vec::with_capacity(count);
        let mut strong = Vec::with_capacity(count * strong_len);
        for r in body[..count * rec].chunks_exact(rec) {
            keys.push(match_key(u32::from_be_bytes([r[0], r[1], r[2], r[3]])));
            strong.extend_from_slice(&r[4..]);
        }
        let filter_bits = (count.max(1) * FILTER_BITS_PER_BLOCK)
            .next_power_of_two()
            .clamp(64, FILTER_MAX_BITS);
        let mut filter = vec![0u64; filter_bits / 64];
        let filter_mask = (filter_bits - 1) as u32;
        let mut index = KeyMap::with_capacity_and_hasher(count, Default::default());
        for (i, &key) in keys.iter().enumerate() {
            let bit = key & filter_mask;
            filter[(bit >> 6) as usize] |= 1u64 << (bit & 63);
            let s = &strong[i * strong_len..(i + 1) * strong_len];
            let same =
                |j: u32| &strong[j as usize * strong_len..(j as usize + 1) * strong_len] == s;
            match index.get_mut(&key) {
                None => {
                    index.insert(key, Candidates::One(i as u32));
                }
                Some(Candidates::One(j)) => {
                    if !same(*j) {
                        let first = *j;
                        index.insert(key, Candidates::Many(vec![first, i as u32]));
                    }
                }
                Some(Candidates::Many(v)) => {
                    if !v.iter().any(|&j| same(j)) {
                        v.push(i as u32);
                    }
                }
            }
        }
        Ok(Signature {
            block_len,
            strong_len,
            strong,
            count,
            index,
            filter,
            filter_mask,
        })
    }

    /// Block length from the header.
    pub fn block_len(&self) -> usize {
        self.block_len
    }

    /// Effective strong sum length (0 in the header means 16).
    pub fn strong_len(&self) -> usize {
        self.strong_len
    }

    /// Number of block records (0 makes a delta "slack": literals only).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Cheap test whether any block could have this weak key (no false negatives).
    #[inline(always)]
    pub fn may_contain(&self, key: u32) -> bool {
        let bit = key & self.filter_mask;
        self.filter[(bit >> 6) as usize] & (1u64 << (bit & 63)) != 0
    }

    /// Whether some block has this weak key.
    #[inline]
    pub fn has_key(&self, key: u32) -> bool {
        self.may_contain(key) && self.index.contains_key(&key)
    }

    /// The lowest block index whose key and strong sum equal those of `window`.
    ///
    /// `digest` computes the window's MD4 and is called at most once, only on a weak hit.
    #[inline]
    pub fn find(&self, key: u32, digest: impl FnOnce() -> [u8; 16]) -> Option<u64> {
        if !self.may_contain(key) {
            return None;
        }
        let cands = self.index.get(&key)?;
        let d = digest();
        let s = &d[..self.strong_len];
        let hit = |j: u32| {
            &self.strong[j as usize * self.strong_len..(j as usize + 1) * self.strong_len] == s
        };
        match cands {
            Candidates::One(j) => hit(*j).then_some(u64::from(*j)),
            Candidates::Many(v) => v.iter().copied().find(|&j| hit(j)).map(u64::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, bl: u32, sl: u32) -> Vec<u8> {
        [magic.to_be_bytes(), bl.to_be_bytes(), sl.to_be_bytes()].concat()
    }

    #[test]
    fn rejects_what_librsync_rejects() {
        assert_eq!(Signature::parse(b"").err().unwrap().code(), 103);
        assert_eq!(
            Signature::parse(&header(0x1234, 512, 8))
                .err()
                .unwrap()
                .code(),
            104
        );
        assert_eq!(
            Signature::parse(&header(MD4_SIG_MAGIC, 0, 8))
                .err()
                .unwrap()
                .code(),
            106
        );
        assert_eq!(
            Signature::parse(&header(MD4_SIG_MAGIC, 512, 17))
                .err()
                .unwrap()
                .code(),
            108
        );
        assert_eq!(
            Signature::parse(&header(MD4_SIG_MAGIC, 512, 33))
                .err()
                .unwrap()
                .code(),
            106
        );
        let mut s = header(MD4_SIG_MAGIC, 512, 8);
        s.extend_from_slice(&[1, 2, 3, 4, 5]);
        assert_eq!(Signature::parse(&s).err().unwrap().code(), 103);
    }

    #[test]
    fn accepts_librsync_quirks() {
        let mut s = header(MD4_SIG_MAGIC, 512, 0);
        s.extend_from_slice(&[0u8; 20]);
        s.extend_from_slice(&[9, 9, 9]);
        let sig = Signature::parse(&s).unwrap();
        assert_eq!((sig.strong_len(), sig.count()), (16, 1));
    }
}
