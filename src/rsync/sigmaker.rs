//! Streaming signature generation, byte-identical to librsync's `rs_sig_begin` job.

use rayon::prelude::*;

use super::error::{RsError, RsResult};
use super::md4_lanes::{md4_strided, LANES};
use super::rollsum::Rollsum;
use super::strong::md4;
use super::{MD4_SIG_MAGIC, MD4_SUM_LEN};

/// Input size from which block sums are computed on several threads.
const PARALLEL_MIN_BYTES: usize = 64 * 1024;

/// Weak digest and full MD4 of one block.
pub type BlockSum = (u32, [u8; 16]);

/// Rejects the block and strong sum lengths librsync rejects for an MD4 signature.
pub(super) fn check_lengths(block_len: usize, strong_len: usize) -> RsResult<()> {
    if block_len == 0 || block_len > u32::MAX as usize {
        return Err(RsError::Param(format!(
            "signature block length {block_len} out of range"
        )));
    }
    if strong_len == 0 || strong_len > MD4_SUM_LEN {
        return Err(RsError::Param(format!(
            "strong sum length {strong_len} out of range 1..=16 for MD4"
        )));
    }
    Ok(())
}

/// Appends the 12-byte header of an MD4 signature.
pub(super) fn put_header(out: &mut Vec<u8>, block_len: usize, strong_len: usize) {
    out.extend_from_slice(&MD4_SIG_MAGIC.to_be_bytes());
    out.extend_from_slice(&(block_len as u32).to_be_bytes());
    out.extend_from_slice(&(strong_len as u32).to_be_bytes());
}

/// Appends one block's record: the weak sum, then the first `strong_len` bytes of its MD4.
pub(super) fn put_record(out: &mut Vec<u8>, (weak, strong): BlockSum, strong_len: usize) {
    out.extend_from_slice(&weak.to_be_bytes());
    out.extend_from_slice(&strong[..strong_len]);
}

/// The sums of one block (a whole one, or the short one at the end).
pub(super) fn block_sum(block: &[u8]) -> BlockSum {
    (Rollsum::of(block).digest(), md4(block))
}

/// Sums of the whole `len`-byte blocks at the start of `data`, on several threads when large.
pub(super) fn block_sums(data: &[u8], len: usize) -> Vec<BlockSum> {
    let data = &data[..data.len() / len * len];
    let run = |d: &[u8]| -> Vec<BlockSum> {
        let n = d.len() / len;
        let mut strong = Vec::with_capacity(n);
        md4_strided(d, len, len, n, &mut strong);
        d.chunks_exact(len)
            .zip(strong)
            .map(|(block, s)| (Rollsum::of(block).digest(), s))
            .collect()
    };
    if data.len() < PARALLEL_MIN_BYTES {
        return run(data);
    }
    // Tasks of whole groups of `LANES` blocks, about 64 KiB each.
    let per_task = (64 * 1024 / len).max(1).div_ceil(LANES) * LANES;
    data.par_chunks(len * per_task)
        .map(run)
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect()
}

/// Builds an MD4 signature from input fed in pieces of any size.
pub struct SigMaker {
    block_len: usize,
    strong_len: usize,
    header_done: bool,
    partial: Vec<u8>,
    finished: bool,
}

impl SigMaker {
    /// Starts a signature with `block_len`-byte blocks and `strong_len`-byte MD4 sums.
    pub fn new(block_len: usize, strong_len: usize) -> RsResult<Self> {
        check_lengths(block_len, strong_len)?;
        Ok(SigMaker {
            block_len,
            strong_len,
            header_done: false,
            partial: Vec::new(),
            finished: false,
        })
    }

    /// The signature block length.
    pub fn block_len(&self) -> usize {
        self.block_len
    }

    fn header(&mut self, out: &mut Vec<u8>) {
        if !self.header_done {
            put_header(out, self.block_len, self.strong_len);
            self.header_done = true;
        }
    }

    fn write_records(&self, data: &[u8], out: &mut Vec<u8>) {
        let whole = data.len() / self.block_len * self.block_len;
        for sum in block_sums(&data[..whole], self.block_len) {
            put_record(out, sum, self.strong_len);
        }
        if whole < data.len() {
            put_record(out, block_sum(&data[whole..]), self.strong_len);
        }
    }

    /// Feeds input, appending the header and every completed block record to `out`.
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> RsResult<()> {
        if self.finished {
            if data.is_empty() {
                return Ok(());
            }
            return Err(RsError::Finished("signature input after end of file"));
        }
        self.header(out);
        // Blocks are hashed in batches of at least `batch_len` bytes (`LANES` blocks for the MD4
        // lanes, 256 KiB for the threads); records of a batch appear when it is complete.
        self.partial.extend_from_slice(data);
        if self.partial.len() >= self.batch_len() {
            let whole = self.partial.len() / self.block_len * self.block_len;
            let pending = std::mem::take(&mut self.partial);
            self.write_records(&pending[..whole], out);
            self.partial.extend_from_slice(&pending[whole..]);
        }
        Ok(())
    }

    /// Bytes gathered before hashing: whole blocks, at least `LANES` and at least 256 KiB.
    fn batch_len(&self) -> usize {
        let blocks = (256 * 1024 / self.block_len).max(LANES);
        blocks * self.block_len
    }

    /// Ends the input, appending the record of a final short block if there is one.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.header(out);
        let block = std::mem::take(&mut self.partial);
        self.write_records(&block, out);
        self.finished = true;
    }

    /// Whether `finish` has been called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// Signature of a whole in-memory buffer.
pub fn signature_of(data: &[u8], block_len: usize, strong_len: usize) -> RsResult<Vec<u8>> {
    let mut m = SigMaker::new(block_len, strong_len)?;
    let mut out = Vec::with_capacity(12 + data.len().div_ceil(block_len) * (4 + strong_len));
    m.update(data, &mut out)?;
    m.finish(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abc_signature() {
        let sig = signature_of(b"abc", 512, 8).unwrap();
        let hex: String = sig.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "72730136000002000000000803040183a448017aaf21d852");
    }

    #[test]
    fn empty_is_header_only() {
        assert_eq!(
            signature_of(b"", 512, 8).unwrap(),
            [0x72, 0x73, 1, 0x36, 0, 0, 2, 0, 0, 0, 0, 8]
        );
    }

    #[test]
    fn chunking_does_not_matter() {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let whole = signature_of(&data, 700, 8).unwrap();
        let mut m = SigMaker::new(700, 8).unwrap();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut step = 1;
        while pos < data.len() {
            let end = (pos + step).min(data.len());
            m.update(&data[pos..end], &mut out).unwrap();
            pos = end;
            step = step * 7 % 90_001 + 1;
        }
        m.finish(&mut out);
        assert_eq!(out, whole);
    }

    #[test]
    fn agrees_with_fast_rsync() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(40_503) >> 5) as u8)
            .collect();
        for &bl in &[512usize, 1000, 4096] {
            let theirs = fast_rsync::Signature::calculate(
                &data,
                fast_rsync::SignatureOptions {
                    block_size: bl as u32,
                    crypto_hash_size: 8,
                },
            );
            assert_eq!(signature_of(&data, bl, 8).unwrap(), theirs.serialized());
        }
    }
}
