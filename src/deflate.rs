//! The deflate layer of gzip volumes and OpenPGP compressed packets: pigz-style parallel
//! deflate, where independent chunks primed with the previous window's bytes (32 KiB for gzip,
//! 8 KiB for OpenPGP's ZIP packet as gpg writes it) form one valid deflate stream, compressed on
//! one shared pool; and the gzip member frame around it. Two engines write the chunks: zlib-rs
//! (always built) and ISA-L's igzip (the `isal` feature, see `deflate/isal.rs`).

use std::sync::OnceLock;

use flate2::{Compress, Compression, FlushCompress, Status};

#[cfg(feature = "isal")]
mod isal;
#[cfg(feature = "isal")]
pub use isal::{GzDecoder as IsalGzDecoder, Inflater as IsalInflater, Wrapper as IsalWrapper};
/// Parallel inflate of segmented raw deflate streams: ISA-L only, and not on aarch64 (see
/// `pgp/literal.rs`: no checksum would catch a wrong decoding there).
#[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
mod segments;
#[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
pub use segments::SegmentedInflater;

/// The deflate level of gzip volumes and OpenPGP compressed packets: Python's `gzip` and
/// gpg's default.
pub const DEFAULT_LEVEL: u32 = 6;

/// A deflate implementation that can write dupcore's primed, sync-flushed chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// zlib-rs through flate2: zlib's algorithm and levels 1–9.
    ZlibRs,
    /// ISA-L igzip: levels 1–3, several times faster than zlib, slightly larger output.
    Isal,
}

impl Engine {
    /// Every engine, built or not.
    pub const ALL: [Engine; 2] = [Engine::ZlibRs, Engine::Isal];

    /// The engine's name as `DUPCORE_COMPRESS` and `status` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::ZlibRs => "zlib-rs",
            Engine::Isal => "isal",
        }
    }

    /// The engine called `name`, built or not.
    pub fn from_name(name: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Whether this build carries the engine.
    pub fn available(self) -> bool {
        match self {
            Engine::ZlibRs => true,
            Engine::Isal => cfg!(feature = "isal"),
        }
    }

    /// The levels the engine accepts.
    pub fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Engine::ZlibRs => 1..=9,
            Engine::Isal => 1..=3,
        }
    }
}

/// An engine and a level: what one deflate stream is written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deflate {
    /// The implementation.
    pub engine: Engine,
    /// Its level (within `engine.levels()`).
    pub level: u32,
}

impl Deflate {
    /// zlib-rs at `DEFAULT_LEVEL`: archives the size of stock duplicity's.
    pub const DEFAULT: Deflate = Deflate {
        engine: Engine::ZlibRs,
        level: DEFAULT_LEVEL,
    };

    /// `engine` at `level`, if this build has the engine and the level is one of its own.
    pub fn new(engine: Engine, level: u32) -> Result<Deflate, String> {
        if !engine.available() {
            return Err(format!(
                "this build of dupcore has no {} deflate engine",
                engine.name()
            ));
        }
        let levels = engine.levels();
        if !levels.contains(&level) {
            return Err(format!(
                "{} level {level} is not in {}..{}",
                engine.name(),
                levels.start(),
                levels.end()
            ));
        }
        Ok(Deflate { engine, level })
    }

    /// zlib-rs at `level`, as gpg's `--compress-level` and duplicity's gzip level name it.
    pub fn zlib(level: u32) -> Result<Deflate, String> {
        Deflate::new(Engine::ZlibRs, level)
    }

    /// The zlib level this setting stands for in format fields that record one (the gzip
    /// header's XFL, the zlib header's FLEVEL): ISA-L's levels are fast levels.
    pub fn zlib_equivalent(self) -> u32 {
        match self.engine {
            Engine::ZlibRs => self.level,
            Engine::Isal => 1,
        }
    }

    /// The setting a `DUPCORE_COMPRESS` value names: `default` (zlib-rs 6), `fast` (ISA-L 3,
    /// or zlib-rs 1 in a build without ISA-L), `small` (zlib-rs 7, the smallest zlib-rs level
    /// in primed chunks).
    pub fn profile(name: &str) -> Option<Deflate> {
        match name {
            "default" => Some(Deflate::DEFAULT),
            "fast" if Engine::Isal.available() => Some(Deflate {
                engine: Engine::Isal,
                level: 3,
            }),
            "fast" => Some(Deflate {
                engine: Engine::ZlibRs,
                level: 1,
            }),
            "small" => Some(Deflate {
                engine: Engine::ZlibRs,
                level: 7,
            }),
            _ => None,
        }
    }
}

/// The names `Deflate::profile` knows.
pub const PROFILES: [&str; 3] = ["default", "fast", "small"];

/// Uncompressed bytes per parallel compression job.
pub const CHUNK: usize = 128 * 1024;

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

/// Uncompressed bytes per gzip member of a volume, at most: each member starts with an
/// unprimed chunk, so that members inflate independently, on several threads.
pub const MEMBER: usize = 4 * CHUNK;
/// Compressor input bytes per segment of an OpenPGP compressed packet, at most: each
/// segment after the first follows a [`SEGMENT_BREAK`] and starts with an unprimed chunk, so
/// that segments inflate independently (see `deflate/segments.rs`).
pub const SEGMENT: usize = MEMBER;
/// What goes between two segments: two empty stored blocks, after a chunk that ends
/// byte-aligned.
pub const SEGMENT_BREAK: [u8; 10] = [0, 0, 0, 0xff, 0xff, 0, 0, 0, 0xff, 0xff];
/// The bytes every segment break ends with (the first empty block's length and its
/// complement, then the second block whole), by which a reader finds the breaks.
pub const MARK: [u8; 9] = [0, 0, 0xff, 0xff, 0, 0, 0, 0xff, 0xff];

/// The extra-field subfield (RFC 1952 2.3.1.1) that gives a member's total size in bytes,
/// header to trailer, as a 4-byte little-endian number; readers that do not know it skip it.
pub const MEMBER_SIZE_ID: [u8; 2] = *b"DC";
/// Bytes of a gzip member header that carries [`MEMBER_SIZE_ID`].
pub const MEMBER_HEADER_LEN: usize = 20;
/// Bytes a member adds around its deflate data: the header and the 8-byte trailer.
pub const MEMBER_OVERHEAD: usize = MEMBER_HEADER_LEN + 8;

/// The header of a gzip member of `size` bytes in all: [`gzip_header`] with the extra field
/// (FEXTRA) holding [`MEMBER_SIZE_ID`] and `size`.
pub fn member_header(mtime: u32, level: u32, size: u32) -> [u8; MEMBER_HEADER_LEN] {
    let mut h = [0u8; MEMBER_HEADER_LEN];
    h[..10].copy_from_slice(&gzip_header(mtime, level));
    h[3] = 4; // FLG.FEXTRA
    h[10..12].copy_from_slice(&8u16.to_le_bytes()); // XLEN
    h[12..14].copy_from_slice(&MEMBER_SIZE_ID);
    h[14..16].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&size.to_le_bytes());
    h
}

/// The total size a member header written by [`member_header`] gives, or None when `h` is
/// not such a header.
pub fn member_size(h: &[u8]) -> Option<u32> {
    let h = h.get(..MEMBER_HEADER_LEN)?;
    let framed = h[..4] == [0x1f, 0x8b, 8, 4]
        && h[10..12] == 8u16.to_le_bytes()
        && h[12..14] == MEMBER_SIZE_ID
        && h[14..16] == 4u16.to_le_bytes();
    let size = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
    (framed && size as usize >= MEMBER_OVERHEAD + 2).then_some(size)
}

/// The 8-byte gzip trailer: CRC-32 and length mod 2^32, little-endian.
pub fn gzip_trailer(crc: u32, len: u64) -> [u8; 8] {
    let c = crc.to_le_bytes();
    let l = (len as u32).to_le_bytes();
    [c[0], c[1], c[2], c[3], l[0], l[1], l[2], l[3]]
}

/// deflate's full window (log2), as gzip and zlib streams use it.
pub const WINDOW_BITS: u8 = 15;

/// Keeps the tail of the chunks submitted so far, to prime the next chunk's window.
#[derive(Debug)]
pub struct Primer {
    tail: Vec<u8>,
    window_bits: u8,
}

impl Primer {
    /// A primer for a deflate window of `1 << window_bits` bytes.
    pub fn new(window_bits: u8) -> Self {
        Primer {
            tail: Vec::new(),
            window_bits,
        }
    }

    /// log2 of the window this primer fills.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// The dictionary for the chunk `data` (the window's worth of bytes before it); remembers
    /// the end of `data` for the next chunk.
    pub fn next(&mut self, data: &[u8]) -> Vec<u8> {
        let window = 1usize << self.window_bits;
        let dict = std::mem::take(&mut self.tail);
        let mut tail = data[data.len().saturating_sub(window)..].to_vec();
        if tail.len() < window && !dict.is_empty() {
            // A short chunk: keep priming from the older bytes too.
            let keep = window - tail.len();
            let mut t = dict[dict.len().saturating_sub(keep)..].to_vec();
            t.extend_from_slice(&tail);
            tail = t;
        }
        self.tail = tail;
        dict
    }
}

/// Order-0 entropy (bits per byte) at or above which a chunk may be stored rather than
/// compressed: compressed media and random data sit at 7.95–8.0, text and databases far below.
pub const STORE_ENTROPY: f64 = 7.95;
/// Bytes of a high-entropy chunk tried at level 1 before it is stored.
const TRIAL: usize = 16 * 1024;
/// A trial that keeps at least this share of its input shows the chunk is not worth deflating.
const TRIAL_KEEPS: f64 = 0.985;

/// Bits per byte of `data`'s byte histogram.
pub fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[usize::from(b)] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether deflating `data` would gain next to nothing (already compressed or random): its
/// byte entropy is near 8 bits and a level-1 trial on its start saves under 1.5 %. Such chunks
/// are written as stored blocks, at copying speed, where level 6 would spend its slowest work
/// for a fraction of a percent (zlib itself falls back to stored blocks on such data).
pub fn incompressible(data: &[u8]) -> bool {
    if data.len() < TRIAL || entropy(data) < STORE_ENTROPY {
        return false;
    }
    let sample = &data[..TRIAL];
    let mut c = Compress::new(Compression::new(1), false);
    let mut out = Vec::with_capacity(TRIAL + 1024);
    match c.compress_vec(sample, &mut out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) => out.len() as f64 >= sample.len() as f64 * TRIAL_KEEPS,
        _ => false,
    }
}

/// Raw-deflates `data` primed with `dict` using a `1 << window_bits` window; ends byte-aligned
/// (sync flush) or, if `last`, finishes. Chunks that [`incompressible`] finds not worth it are
/// written as stored blocks.
pub fn compress_chunk(
    dict: &[u8],
    data: &[u8],
    last: bool,
    with: Deflate,
    window_bits: u8,
) -> Vec<u8> {
    if incompressible(data) {
        return zlib_chunk(dict, data, last, 0, window_bits);
    }
    match with.engine {
        #[cfg(feature = "isal")]
        Engine::Isal => isal::compress_chunk(dict, data, last, with.level, window_bits),
        _ => zlib_chunk(dict, data, last, with.level, window_bits),
    }
}

/// [`compress_chunk`] with zlib-rs at `level` (0 writes stored blocks).
fn zlib_chunk(dict: &[u8], data: &[u8], last: bool, level: u32, window_bits: u8) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::new(level), false, window_bits);
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

/// The deflate pool shared by volume and OpenPGP writers, apart from the global pool so that
/// signature work never waits behind queued compression jobs (and the other way round).
pub(crate) fn compression_pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| core_pool("dupcore-deflate"))
}

/// The pool that inflates independent pieces (gzip members, deflate segments).
pub(crate) fn inflate_pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| core_pool("dupcore-inflate"))
}

/// A pool of one thread per core, named `name-N` (one thread if the system refuses more).
pub(crate) fn core_pool(name: &'static str) -> rayon::ThreadPool {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .unwrap_or_else(|_| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .expect("a one-thread pool")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Every setting the profiles name in this build (ISA-L's too when built with it).
    fn every_profile() -> Vec<Deflate> {
        PROFILES
            .iter()
            .map(|p| Deflate::profile(p).expect("a known profile"))
            .collect()
    }

    #[test]
    fn chunks_form_one_gzip_member() {
        let data: Vec<u8> = (0..1_000_000u32)
            .map(|i| ((i / 7) % 251) as u8 ^ (i % 13) as u8)
            .collect();
        for with in every_profile() {
            let mut out = gzip_header(0, with.zlib_equivalent()).to_vec();
            let mut crc = crc32fast::Hasher::new();
            let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
            let mut primer = Primer::new(WINDOW_BITS);
            for (i, ch) in chunks.iter().enumerate() {
                let dict = primer.next(ch);
                if i > 0 {
                    assert_eq!(dict, &chunks[i - 1][CHUNK - (1 << WINDOW_BITS)..]);
                }
                out.extend(compress_chunk(
                    &dict,
                    ch,
                    i + 1 == chunks.len(),
                    with,
                    WINDOW_BITS,
                ));
                crc.update(ch);
            }
            out.extend(gzip_trailer(crc.finalize(), data.len() as u64));
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "{with:?}");
            assert!(out.len() < data.len() / 4, "{with:?} compresses");
        }
    }

    #[test]
    fn small_window_and_short_chunks_decode() {
        // 8 KiB window (gpg's ZIP packet), chunks shorter than the window among long ones.
        let data: Vec<u8> = (0..400_000u32)
            .map(|i| ((i / 5) % 241) as u8 ^ (i % 11) as u8)
            .collect();
        let sizes = [100usize, 3000, CHUNK, 7, 20_000, CHUNK, 50];
        for with in every_profile() {
            let mut primer = Primer::new(13);
            let (mut out, mut pos, mut seen) = (Vec::new(), 0usize, Vec::new());
            for (i, n) in sizes.iter().enumerate() {
                let ch = &data[pos..pos + n];
                pos += n;
                let dict = primer.next(ch);
                let want = &seen[seen.len().saturating_sub(1 << 13)..];
                assert_eq!(dict, want);
                out.extend(compress_chunk(&dict, ch, i + 1 == sizes.len(), with, 13));
                seen.extend_from_slice(ch);
            }
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, seen, "{with:?}");
        }
    }

    #[test]
    fn settings_and_profiles() {
        assert_eq!(Deflate::profile("default"), Some(Deflate::DEFAULT));
        assert_eq!(Deflate::profile("small").map(|d| d.level), Some(7));
        assert!(Deflate::profile("quick").is_none());
        let fast = Deflate::profile("fast").unwrap();
        assert_eq!(
            fast.engine,
            if cfg!(feature = "isal") {
                Engine::Isal
            } else {
                Engine::ZlibRs
            }
        );
        assert!(Deflate::zlib(0).is_err() && Deflate::zlib(10).is_err());
        assert!(Deflate::new(Engine::Isal, 4).is_err());
        assert_eq!(
            Deflate::new(Engine::Isal, 3).is_ok(),
            cfg!(feature = "isal")
        );
        for e in Engine::ALL {
            assert_eq!(Engine::from_name(e.name()), Some(e));
        }
    }

    #[test]
    fn incompressible_chunks_are_stored_and_decode() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let random: Vec<u8> = (0..CHUNK)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert!(entropy(&random) > STORE_ENTROPY && incompressible(&random));
        let text: Vec<u8> = b"row 17 value 12345 name alpha\n".repeat(CHUNK / 30);
        assert!(!incompressible(&text));
        // a random block repeated: high order-0 entropy, but the level-1 trial sees the repeats
        let repeated: Vec<u8> = random[..4096].repeat(CHUNK / 4096);
        assert!(!incompressible(&repeated));
        let mut primer = Primer::new(WINDOW_BITS);
        let mut out = Vec::new();
        let parts = [&text[..], &random[..], &text[..]];
        for (i, ch) in parts.iter().enumerate() {
            let dict = primer.next(ch);
            let piece = compress_chunk(&dict, ch, i == 2, Deflate::DEFAULT, WINDOW_BITS);
            if i == 1 {
                assert!(piece.len() > random.len() && piece.len() < random.len() + 64);
            }
            out.extend(piece);
        }
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, parts.concat());
    }

    #[test]
    fn empty_stream() {
        for with in every_profile() {
            let mut out = gzip_header(0, 6).to_vec();
            out.extend(compress_chunk(&[], &[], true, with, WINDOW_BITS));
            out.extend(gzip_trailer(0, 0));
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back.is_empty(), "{with:?}");
        }
    }

    #[test]
    fn empty_last_chunk_after_full_ones() {
        let data: Vec<u8> = (0..2 * CHUNK as u32).map(|i| (i % 97) as u8).collect();
        for with in every_profile() {
            let mut primer = Primer::new(WINDOW_BITS);
            let mut out = Vec::new();
            for ch in data.chunks(CHUNK) {
                let dict = primer.next(ch);
                out.extend(compress_chunk(&dict, ch, false, with, WINDOW_BITS));
            }
            let dict = primer.next(&[]);
            out.extend(compress_chunk(&dict, &[], true, with, WINDOW_BITS));
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "{with:?}");
        }
    }
}
