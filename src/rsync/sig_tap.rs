//! The signature of a new file made from the data its delta reads, sharing the block sums.
//!
//! duplicity computes both the delta of a changed file against its old signature and the
//! file's new signature, from the same reads. When both use the same block length, the sums
//! of the new file's block-aligned windows are the same numbers for both: the delta looks
//! them up at every block-aligned restart after a match, and the signature writes them out.
//! The tap computes each of them once, in parallel, as the data arrives.

use std::collections::VecDeque;

use super::error::{RsError, RsResult};
use super::sigmaker::{block_sum, block_sums, check_lengths, put_header, put_record, BlockSum};

/// An MD4 signature built from input fed in pieces, keeping the sums of recent whole blocks.
pub struct SigTap {
    block_len: usize,
    strong_len: usize,
    out: Vec<u8>,
    partial: Vec<u8>,
    /// Block index of `sums[0]`.
    first: u64,
    sums: VecDeque<BlockSum>,
    finished: bool,
}

impl SigTap {
    /// Starts a signature with `block_len`-byte blocks and `strong_len`-byte MD4 sums.
    pub fn new(block_len: usize, strong_len: usize) -> RsResult<Self> {
        check_lengths(block_len, strong_len)?;
        let mut out = Vec::new();
        put_header(&mut out, block_len, strong_len);
        Ok(SigTap {
            block_len,
            strong_len,
            out,
            partial: Vec::new(),
            first: 0,
            sums: VecDeque::new(),
            finished: false,
        })
    }

    /// The signature block length.
    pub fn block_len(&self) -> usize {
        self.block_len
    }

    fn add(&mut self, sums: Vec<BlockSum>, keep: bool) {
        for &sum in &sums {
            put_record(&mut self.out, sum, self.strong_len);
        }
        if keep {
            self.sums.extend(sums);
        } else {
            self.first += (self.sums.len() + sums.len()) as u64;
            self.sums.clear();
        }
    }

    /// Feeds the next bytes of the file. With `keep`, the sums of its whole blocks stay
    /// available to [`SigTap::sum`] until [`SigTap::forget_before`] drops them.
    pub fn feed(&mut self, mut data: &[u8], keep: bool) -> RsResult<()> {
        if self.finished {
            if data.is_empty() {
                return Ok(());
            }
            return Err(RsError::Finished("signature input after end of file"));
        }
        let bl = self.block_len;
        if !self.partial.is_empty() {
            let take = (bl - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < bl {
                return Ok(());
            }
            let block = std::mem::take(&mut self.partial);
            self.add(vec![block_sum(&block)], keep);
        }
        let whole = data.len() / bl * bl;
        let sums = block_sums(&data[..whole], bl);
        self.add(sums, keep);
        self.partial.extend_from_slice(&data[whole..]);
        Ok(())
    }

    /// The sums of the whole block starting at byte `offset` of the file, if it is kept.
    pub fn sum(&self, offset: u64) -> Option<BlockSum> {
        let bl = self.block_len as u64;
        if offset % bl != 0 {
            return None;
        }
        let i = (offset / bl).checked_sub(self.first)?;
        self.sums.get(usize::try_from(i).ok()?).copied()
    }

    /// Drops the kept sums of blocks that start before byte `offset`.
    pub fn forget_before(&mut self, offset: u64) {
        let block = offset / self.block_len as u64;
        while self.first < block && self.sums.pop_front().is_some() {
            self.first += 1;
        }
    }

    /// Ends the input and returns the whole signature, the final short block's record
    /// included (once: a second call is an error).
    pub fn finish(&mut self) -> RsResult<Vec<u8>> {
        if self.finished {
            return Err(RsError::Finished("signature already taken"));
        }
        self.finished = true;
        let block = std::mem::take(&mut self.partial);
        if !block.is_empty() {
            put_record(&mut self.out, block_sum(&block), self.strong_len);
        }
        self.sums.clear();
        Ok(std::mem::take(&mut self.out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsync::rollsum::Rollsum;
    use crate::rsync::sigmaker::signature_of;
    use crate::rsync::strong::md4;

    fn data(n: usize) -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    #[test]
    fn same_signature_as_the_signature_job_whatever_the_pieces() {
        for &(n, bl) in &[(0, 512), (1, 512), (511, 512), (512, 512), (300_000, 700)] {
            let d = data(n);
            let want = signature_of(&d, bl, 8).unwrap();
            for step in [1usize, 513, 65_536, 1 << 20] {
                let mut tap = SigTap::new(bl, 8).unwrap();
                for piece in d.chunks(step) {
                    tap.feed(piece, step % 2 == 1).unwrap();
                }
                assert_eq!(tap.finish().unwrap(), want, "n {n} block {bl} step {step}");
            }
        }
    }

    #[test]
    fn kept_sums_are_the_blocks_sums_until_forgotten() {
        let d = data(100_000);
        let mut tap = SigTap::new(1000, 8).unwrap();
        tap.feed(&d[..1500], true).unwrap();
        tap.feed(&d[1500..], true).unwrap();
        for k in 0..100u64 {
            let b = &d[k as usize * 1000..(k as usize + 1) * 1000];
            assert_eq!(tap.sum(k * 1000), Some((Rollsum::of(b).digest(), md4(b))));
        }
        assert_eq!(tap.sum(1500), None);
        assert_eq!(tap.sum(100_000), None);
        tap.forget_before(42_500);
        assert_eq!(tap.sum(41_000), None);
        assert!(tap.sum(42_000).is_some());
        tap.feed(&[], true).unwrap();
        tap.finish().unwrap();
        assert!(tap.feed(b"x", true).is_err());
    }
}
