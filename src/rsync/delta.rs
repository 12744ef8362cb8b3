//! Streaming delta generation with librsync 2.3.x's exact matching and command segmentation.

use std::sync::Arc;

use rayon::prelude::*;

use super::error::{RsError, RsResult};
use super::md4_lanes::{md4_strided, LANES};
use super::netint::{int_len, put, width_index};
use super::rollsum::{match_key, Rollsum};
use super::sig_tap::SigTap;
use super::signature::Signature;
use super::strong::md4;
use super::{DELTA_MAGIC, OP_COPY_N1_N1, OP_LITERAL_INLINE_MAX, OP_LITERAL_N1};

/// Which librsync release's literal segmentation to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteralCap {
    /// librsync 2.0.1 … 2.3.2 (Debian 12's `rdiff`): literal runs are cut at 32768 bytes.
    V232,
    /// librsync ≥ 2.3.3 (duplicity's PyPI wheels bundle 2.3.4): runs are cut at 65533 bytes.
    V234,
}

impl LiteralCap {
    /// The longest literal run before a miss forces a flush (librsync's max_miss).
    pub fn max_miss(self) -> usize {
        match self {
            LiteralCap::V232 => 32768,
            LiteralCap::V234 => 65533,
        }
    }

    /// The librsync version this mode reproduces, as `get_version()` reports it.
    pub fn librsync_version(self) -> &'static str {
        match self {
            LiteralCap::V232 => "2.3.2",
            LiteralCap::V234 => "2.3.4",
        }
    }
}

/// Appends a LITERAL command carrying `data`.
pub fn emit_literal(out: &mut Vec<u8>, data: &[u8]) {
    let n = data.len() as u64;
    if n == 0 {
        return;
    }
    if n <= u64::from(OP_LITERAL_INLINE_MAX) {
        out.push(n as u8);
    } else {
        let w = int_len(n);
        out.push(OP_LITERAL_N1 + width_index(w));
        put(out, n, w);
    }
    out.extend_from_slice(data);
}

/// Appends a COPY command for `len` basis bytes starting at `pos`.
pub fn emit_copy(out: &mut Vec<u8>, pos: u64, len: u64) {
    let (wp, wl) = (int_len(pos), int_len(len));
    out.push(OP_COPY_N1_N1 + 4 * width_index(wp) + width_index(wl));
    put(out, pos, wp);
    put(out, len, wl);
}

/// Builds the delta of a new file against a signature, from input fed in pieces.
///
/// Memory is the signature index plus the pending literal (≤ max_miss) and one block of
/// lookahead, whatever the size of the new file.
pub struct DeltaMaker {
    sig: Arc<Signature>,
    max_miss: usize,
    header_done: bool,
    finished: bool,
    buf: Vec<u8>,
    lit_start: usize,
    cur: usize,
    copy_pos: u64,
    copy_len: u64,
    roll: Option<Rollsum>,
    spec: Speculation,
    /// The new file's own signature, when it shares the delta's block sums.
    tap: Option<SigTap>,
    /// Offset in the new file of `buf[0]`.
    buf_offset: u64,
}

/// Fewest and most block windows whose sums are computed ahead, in parallel, while the new
/// file keeps matching the basis block after block.
const SPEC_MIN: usize = 8;
const SPEC_MAX: usize = 2048;
/// Bytes of windows below which speculation is not worth a parallel call.
const SPEC_MIN_BYTES: usize = 64 * 1024;

/// Weak and strong sums of consecutive block-aligned windows starting at `base`.
#[derive(Default)]
struct Speculation {
    base: usize,
    next: usize,
    sums: Vec<(u32, [u8; 16])>,
    depth: usize,
}

impl Speculation {
    fn at(&mut self, cur: usize, b: usize) -> Option<(u32, [u8; 16])> {
        if self.next < self.sums.len() && self.base + self.next * b == cur {
            self.next += 1;
            Some(self.sums[self.next - 1])
        } else {
            None
        }
    }

    fn clear(&mut self) {
        self.sums.clear();
        self.next = 0;
    }
}

impl DeltaMaker {
    /// Starts a delta against `sig`, segmenting literals like librsync `cap`.
    pub fn new(sig: Arc<Signature>, cap: LiteralCap) -> Self {
        DeltaMaker {
            sig,
            max_miss: cap.max_miss(),
            header_done: false,
            finished: false,
            buf: Vec::new(),
            lit_start: 0,
            cur: 0,
            copy_pos: 0,
            copy_len: 0,
            roll: None,
            spec: Speculation {
                depth: SPEC_MIN,
                ..Default::default()
            },
            tap: None,
            buf_offset: 0,
        }
    }

    /// Also makes the new file's signature (`block_len`-byte blocks, `strong_len`-byte MD4
    /// sums) from the input, sharing block sums with the delta. Only before any input and
    /// only when the signature's blocks are the delta's: false (and nothing changes) otherwise.
    pub fn share_signature(&mut self, block_len: usize, strong_len: usize) -> RsResult<bool> {
        if self.header_done || self.is_slack() || block_len != self.sig.block_len() {
            return Ok(false);
        }
        self.tap = Some(SigTap::new(block_len, strong_len)?);
        Ok(true)
    }

    /// Feeds bytes that follow the delta's input to the shared signature only (a reader that
    /// stopped before the end lets the signature's owner read the rest).
    pub fn signature_update(&mut self, data: &[u8]) -> RsResult<()> {
        match self.tap.as_mut() {
            Some(tap) => tap.feed(data, false),
            None => Err(RsError::Finished("no shared signature")),
        }
    }

    /// The shared signature of everything fed (see [`DeltaMaker::share_signature`]).
    pub fn take_signature(&mut self) -> RsResult<Vec<u8>> {
        match self.tap.as_mut() {
            Some(tap) => tap.finish(),
            None => Err(RsError::Finished("no shared signature")),
        }
    }

    fn header(&mut self, out: &mut Vec<u8>) {
        if !self.header_done {
            out.extend_from_slice(&DELTA_MAGIC.to_be_bytes());
            self.header_done = true;
        }
    }

    /// Whether the signature is empty, so that every input piece becomes one literal.
    pub fn is_slack(&self) -> bool {
        self.sig.count() == 0
    }

    /// Feeds new-file bytes, appending every command that is already decided to `out`.
    ///
    /// With an empty signature ("slack" mode) each call emits one literal of its whole input,
    /// as librsync does per `rs_job_iter`; duplicity feeds 65536 bytes per call.
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> RsResult<()> {
        if self.finished {
            if data.is_empty() {
                return Ok(());
            }
            return Err(RsError::Finished("delta input after end of file"));
        }
        self.header(out);
        if self.is_slack() {
            emit_literal(out, data);
            return Ok(());
        }
        if let Some(tap) = self.tap.as_mut() {
            tap.feed(data, true)?;
        }
        self.buf.extend_from_slice(data);
        self.scan(out);
        if let Some(tap) = self.tap.as_mut() {
            tap.forget_before(self.buf_offset + self.cur as u64);
        }
        if self.lit_start > 0 {
            self.buf.drain(..self.lit_start);
            self.buf_offset += self.lit_start as u64;
            self.cur -= self.lit_start;
            self.spec.base = self.spec.base.saturating_sub(self.lit_start);
            self.lit_start = 0;
        }
        Ok(())
    }

    /// Ends the input: matches the tail, flushes, and appends the END command.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.header(out);
        if !self.is_slack() {
            self.tail(out);
        }
        out.push(0);
        self.finished = true;
        self.buf = Vec::new();
    }

    /// Whether `finish` has been called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        if self.copy_len > 0 {
            emit_copy(out, self.copy_pos, self.copy_len);
            self.copy_len = 0;
        } else if self.cur > self.lit_start {
            emit_literal(out, &self.buf[self.lit_start..self.cur]);
            self.lit_start = self.cur;
        }
    }

    fn on_match(&mut self, pos: u64, len: usize, out: &mut Vec<u8>) {
        if self.copy_len > 0 && self.copy_pos + self.copy_len == pos {
            self.copy_len += len as u64;
        } else {
            self.flush(out);
            self.copy_pos = pos;
            self.copy_len = len as u64;
        }
        self.cur += len;
        self.lit_start = self.cur;
        self.roll = None;
    }

    /// Computes the sums of up to `depth` aligned windows from `cur` in parallel.
    fn speculate(&mut self, b: usize) -> bool {
        let floor = (SPEC_MIN_BYTES / b).max(SPEC_MIN);
        self.spec.depth = self.spec.depth.max(floor);
        let count = ((self.buf.len() - self.cur - 1) / b).min(self.spec.depth);
        if count < 2 || count * b < SPEC_MIN_BYTES {
            return false;
        }
        let base = self.cur;
        let buf = &self.buf[base..];
        let per_task = (32 * 1024 / b).max(1).div_ceil(LANES) * LANES;
        let tasks = count.div_ceil(per_task);
        let parts: Vec<Vec<(u32, [u8; 16])>> = (0..tasks)
            .into_par_iter()
            .map(|t| {
                let first = t * per_task;
                let n = per_task.min(count - first);
                let mut sums = Vec::with_capacity(n);
                md4_strided(&buf[first * b..], b, b, n, &mut sums);
                sums.into_iter()
                    .enumerate()
                    .map(|(j, s)| {
                        let w = &buf[(first + j) * b..(first + j + 1) * b];
                        (Rollsum::of(w).digest(), s)
                    })
                    .collect()
            })
            .collect();
        self.spec.sums = parts.into_iter().flatten().collect();
        self.spec.base = base;
        self.spec.next = 0;
        true
    }

    fn scan(&mut self, out: &mut Vec<u8>) {
        let b = self.sig.block_len();
        let sig = Arc::clone(&self.sig);
        while self.cur + b < self.buf.len() {
            let mut roll = match self.roll {
                Some(r) => r,
                None => {
                    // At a restart after a match: the shared signature's sums of the new
                    // file's blocks when the window is one, else sums computed ahead.
                    let shared = self
                        .tap
                        .as_ref()
                        .and_then(|t| t.sum(self.buf_offset + self.cur as u64));
                    let pre = shared.or_else(|| match self.spec.at(self.cur, b) {
                        Some(p) => Some(p),
                        None if self.speculate(b) => self.spec.at(self.cur, b),
                        None => None,
                    });
                    match pre {
                        Some((weak, strong)) => {
                            let speculated = shared.is_none();
                            if let Some(idx) = sig.find(match_key(weak), || strong) {
                                if speculated && self.spec.next == self.spec.sums.len() {
                                    self.spec.depth = (self.spec.depth * 2).min(SPEC_MAX);
                                }
                                self.on_match(idx * b as u64, b, out);
                                continue;
                            }
                            if speculated {
                                self.spec.depth = (self.spec.depth / 4).max(SPEC_MIN);
                                self.spec.clear();
                            }
                            Rollsum::from_digest(weak, b)
                        }
                        None => Rollsum::of(&self.buf[self.cur..self.cur + b]),
                    }
                }
            };
            // Fast path: roll over bytes whose weak key no block can have.
            let end = self.buf.len() - b;
            let limit = if self.copy_len > 0 {
                self.cur
            } else {
                (self.lit_start + self.max_miss).min(end)
            };
            let mut cur = self.cur;
            let buf = &self.buf;
            while cur < limit && !sig.may_contain(match_key(roll.digest())) {
                roll.rotate(buf[cur], buf[cur + b]);
                cur += 1;
            }
            self.cur = cur;
            if self.cur >= end {
                self.roll = Some(roll);
                break;
            }
            let key = match_key(roll.digest());
            let window = &self.buf[self.cur..self.cur + b];
            let offset = self.buf_offset + self.cur as u64;
            let tap = self.tap.as_ref();
            let strong = || match tap.and_then(|t| t.sum(offset)) {
                Some((_, s)) => s,
                None => md4(window),
            };
            if let Some(idx) = sig.find(key, strong) {
                self.on_match(idx * b as u64, b, out);
            } else {
                roll.rotate(self.buf[self.cur], self.buf[self.cur + b]);
                self.roll = Some(roll);
                if self.copy_len > 0 || self.cur - self.lit_start >= self.max_miss {
                    self.flush(out);
                }
                self.cur += 1;
            }
        }
    }

    fn tail(&mut self, out: &mut Vec<u8>) {
        let b = self.sig.block_len();
        let n = self.buf.len();
        let sig = Arc::clone(&self.sig);
        while self.cur < n {
            let mut roll = match self.roll {
                Some(r) => r,
                None => Rollsum::of(&self.buf[self.cur..n.min(self.cur + b)]),
            };
            let wlen = roll.count();
            let window = &self.buf[self.cur..self.cur + wlen];
            if let Some(idx) = sig.find(match_key(roll.digest()), || md4(window)) {
                self.on_match(idx * b as u64, wlen, out);
            } else {
                roll.rollout(self.buf[self.cur]);
                self.roll = Some(roll);
                if self.copy_len > 0 || self.cur - self.lit_start >= self.max_miss {
                    self.flush(out);
                }
                self.cur += 1;
            }
        }
        self.flush(out);
    }
}

/// Delta of a whole in-memory buffer against a signature (slack literals per 65536 bytes).
pub fn delta_of(sig: &[u8], new: &[u8], cap: LiteralCap) -> RsResult<Vec<u8>> {
    let sig = Arc::new(Signature::parse(sig)?);
    let mut m = DeltaMaker::new(sig, cap);
    let mut out = Vec::new();
    for chunk in new.chunks(super::JOB_BLOCKSIZE) {
        m.update(chunk, &mut out)?;
    }
    m.finish(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsync::sigmaker::signature_of;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn rand_bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn spec_examples() {
        let sig = signature_of(b"abc", 512, 8).unwrap();
        assert_eq!(
            hex(&delta_of(&sig, b"zzabc", LiteralCap::V232).unwrap()),
            "72730236027a7a45000300"
        );
        assert_eq!(
            hex(&delta_of(&sig, b"xxabcyy", LiteralCap::V232).unwrap()),
            "72730236077878616263797900"
        );
        let x = rand_bytes(1024, 1);
        let sig = signature_of(&x, 1024, 8).unwrap();
        let xx = [x.clone(), x.clone()].concat();
        assert_eq!(
            hex(&delta_of(&sig, &xx, LiteralCap::V232).unwrap()),
            "72730236460004004600040000"
        );
        let sig = signature_of(&x, 512, 8).unwrap();
        let mut rot = [&x[512..], &x[..512]].concat();
        rot.push(b'Q');
        assert_eq!(
            hex(&delta_of(&sig, &rot, LiteralCap::V232).unwrap()),
            "727302364a0200020046000200015100"
        );
    }

    #[test]
    fn literal_caps() {
        let old = rand_bytes(5000, 2);
        let new = rand_bytes(100_000, 3);
        let sig = signature_of(&old, 512, 8).unwrap();
        let lens = |d: &[u8]| {
            let mut v = Vec::new();
            let mut p = 4;
            while d[p] != 0 {
                assert_eq!(d[p], 0x42);
                let n = u16::from_be_bytes([d[p + 1], d[p + 2]]) as usize;
                v.push(n);
                p += 3 + n;
            }
            v
        };
        assert_eq!(
            lens(&delta_of(&sig, &new, LiteralCap::V232).unwrap()),
            [32768, 32768, 32768, 1696]
        );
        assert_eq!(
            lens(&delta_of(&sig, &new, LiteralCap::V234).unwrap()),
            [65533, 34467]
        );
    }

    #[test]
    fn empty_new_file() {
        let sig = signature_of(b"abc", 512, 8).unwrap();
        assert_eq!(
            delta_of(&sig, b"", LiteralCap::V234).unwrap(),
            [0x72, 0x73, 2, 0x36, 0]
        );
        let sig = signature_of(b"", 512, 8).unwrap();
        assert_eq!(
            delta_of(&sig, b"", LiteralCap::V234).unwrap(),
            [0x72, 0x73, 2, 0x36, 0]
        );
    }

    #[test]
    fn chunking_does_not_matter() {
        let old = rand_bytes(300_000, 4);
        let mut new = old.clone();
        for i in (0..new.len()).step_by(9_973) {
            new[i] ^= 0x5a;
        }
        new.splice(50_000..50_000, rand_bytes(70_000, 5));
        let sig = Arc::new(Signature::parse(&signature_of(&old, 700, 8).unwrap()).unwrap());
        let whole = {
            let mut m = DeltaMaker::new(Arc::clone(&sig), LiteralCap::V234);
            let mut out = Vec::new();
            m.update(&new, &mut out).unwrap();
            m.finish(&mut out);
            out
        };
        let mut m = DeltaMaker::new(sig, LiteralCap::V234);
        let mut out = Vec::new();
        let (mut pos, mut step) = (0, 1);
        while pos < new.len() {
            let end = (pos + step).min(new.len());
            m.update(&new[pos..end], &mut out).unwrap();
            pos = end;
            step = step * 13 % 80_021 + 1;
        }
        m.finish(&mut out);
        assert_eq!(out, whole);
    }

    #[test]
    fn shared_signature_changes_nothing_and_equals_the_signature_job() {
        let old = rand_bytes(400_000, 6);
        let cases: Vec<Vec<u8>> = vec![
            old.clone(),
            {
                let mut n = old.clone();
                for i in (0..n.len()).step_by(37_001) {
                    n[i] ^= 0x33;
                }
                n
            },
            {
                let mut n = old.clone();
                n.splice(123_457..123_457, rand_bytes(5_003, 7));
                n.truncate(390_001);
                n
            },
            rand_bytes(250_000, 8),
            Vec::new(),
        ];
        for (c, new) in cases.iter().enumerate() {
            let sig = Arc::new(Signature::parse(&signature_of(&old, 1024, 8).unwrap()).unwrap());
            let plain = {
                let mut m = DeltaMaker::new(Arc::clone(&sig), LiteralCap::V234);
                let mut out = Vec::new();
                m.update(new, &mut out).unwrap();
                m.finish(&mut out);
                out
            };
            for step in [4_099usize, 1 << 20] {
                let mut m = DeltaMaker::new(Arc::clone(&sig), LiteralCap::V234);
                assert!(!m.share_signature(512, 8).unwrap(), "other block length");
                assert!(m.share_signature(1024, 8).unwrap());
                let mut out = Vec::new();
                // the delta reads part of the file, the signature's owner the rest
                let cut = if step == 4_099 {
                    new.len()
                } else {
                    new.len() / 2
                };
                for piece in new[..cut].chunks(step) {
                    m.update(piece, &mut out).unwrap();
                }
                if cut == new.len() {
                    m.finish(&mut out);
                    assert_eq!(out, plain, "case {c} step {step}");
                }
                m.signature_update(&new[cut..]).unwrap();
                assert_eq!(
                    m.take_signature().unwrap(),
                    signature_of(new, 1024, 8).unwrap(),
                    "case {c} step {step}"
                );
            }
        }
        let empty = Arc::new(Signature::parse(&signature_of(b"", 1024, 8).unwrap()).unwrap());
        let mut m = DeltaMaker::new(empty, LiteralCap::V234);
        assert!(
            !m.share_signature(1024, 8).unwrap(),
            "slack deltas do not share"
        );
        assert!(m.take_signature().is_err());
    }
}
