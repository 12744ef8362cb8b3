//! Whole tar blocks (`TarBlockIter.tarinfo2tarblock`) and the difftar footer (`get_footer`).

use super::error::TarError;
use super::header::{write_pax_header, TarEntry};
use super::number::Number;

/// Size of a tar block.
pub const BLOCKSIZE: usize = 512;
/// Size of a tar record (20 blocks); footers pad the stream to a multiple of it.
pub const RECORDSIZE: usize = 20 * BLOCKSIZE;

/// Header (with `size = data.len()`), data and NUL padding to a multiple of 512, in one buffer.
pub fn tar_block(entry: &TarEntry<'_>, data: &[u8]) -> Result<Vec<u8>, TarError> {
    let entry = TarEntry {
        size: Number::Int(data.len() as i64),
        ..entry.clone()
    };
    let mut out = Vec::with_capacity(BLOCKSIZE * 3 + padded_len(data.len()));
    write_pax_header(&mut out, &entry)?;
    out.extend_from_slice(data);
    out.resize(out.len() + padded_len(data.len()) - data.len(), 0);
    Ok(out)
}

/// `n` rounded up to a multiple of [`BLOCKSIZE`].
pub fn padded_len(n: usize) -> usize {
    n.div_ceil(BLOCKSIZE) * BLOCKSIZE
}

/// The difftar footer after `offset` bytes of blocks: 512 to 10240 NULs, never empty.
pub fn footer(offset: u64) -> Vec<u8> {
    vec![0; RECORDSIZE - (offset % RECORDSIZE as u64) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_footer_sizes() {
        let b = tar_block(&TarEntry::new(b"snapshot/x"), &[7u8; 513]).unwrap();
        assert_eq!(b.len(), 512 + 1024);
        assert_eq!(&b[124..136], b"00000001001\0");
        assert_eq!(footer(0).len(), RECORDSIZE);
        assert_eq!(footer(512).len(), RECORDSIZE - 512);
        assert_eq!(footer(RECORDSIZE as u64 * 3 + 9728).len(), 512);
    }
}
