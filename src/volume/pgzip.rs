//! pigz-style parallel deflate: independent chunks primed with the previous 32 KiB form one
//! valid deflate stream inside one gzip member.

use flate2::{Compress, Compression, FlushCompress, Status};

/// Uncompressed bytes per parallel compression job.
pub const CHUNK: usize = 128 * 1024;
/// deflate's window: how much of the previous chunk primes the next one.
pub const DICT: usize = 32 * 1024;

/// The 10-byte gzip header Python's `gzip.GzipFile` writes without a file name.
pub fn gzip_header(mtime: u32, level: u32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    let m = mtime.to_le_bytes();
    [0x1f, 0x8b, 8, 0, m[0], m[1], m[2], m[3], xfl, 255]
}

/// The 8-byte gzip trailer: CRC-32 and length mod 2^32, little-endian.
pub fn gzip_trailer(crc: u32, len: u64) -> [u8; 8] {
    let c = crc.to_le_bytes();
    let l = (len as u32).to_le_bytes();
    [c[0], c[1], c[2], c[3], l[0], l[1], l[2], l[3]]
}

/// Raw-deflates `data` primed with `dict`; ends byte-aligned (sync flush) or, if `last`, finishes.
pub fn compress_chunk(dict: &[u8], data: &[u8], last: bool, level: u32) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict)
            .expect("setting a deflate dictionary on a fresh stream cannot fail");
    }
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let before_in = c.total_in();
        let status = c
            .compress_vec(input, &mut out, flush)
            .expect("deflate on valid parameters cannot fail");
        input = &input[(c.total_in() - before_in) as usize..];
        let room_left = out.capacity() > out.len();
        match status {
            Status::StreamEnd => break,
            _ if input.is_empty() && !last && room_left => break,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn chunks_form_one_gzip_member() {
        let data: Vec<u8> = (0..1_000_000u32)
            .map(|i| ((i / 7) % 251) as u8 ^ (i % 13) as u8)
            .collect();
        let mut out = gzip_header(0, 6).to_vec();
        let mut crc = crc32fast::Hasher::new();
        let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
        for (i, ch) in chunks.iter().enumerate() {
            let dict = if i == 0 {
                &[][..]
            } else {
                &chunks[i - 1][chunks[i - 1].len() - DICT..]
            };
            out.extend(compress_chunk(dict, ch, i + 1 == chunks.len(), 6));
            crc.update(ch);
        }
        out.extend(gzip_trailer(crc.finalize(), data.len() as u64));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn empty_stream() {
        let mut out = gzip_header(0, 6).to_vec();
        out.extend(compress_chunk(&[], &[], true, 6));
        out.extend(gzip_trailer(0, 0));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
