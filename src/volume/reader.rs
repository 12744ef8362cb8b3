//! Gunzip with read-ahead: a thread decompresses the next megabytes while the caller parses
//! (the members of a volume written by dupcore on a pool, several at once).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};

use flate2::bufread::MultiGzDecoder;

use crate::deflate::{inflate_pool, member_size, MEMBER, MEMBER_HEADER_LEN};

use crate::readahead::{Message, ReadAhead, Sender};

/// Decompressed bytes per message from the read-ahead thread.
const PIECE: usize = 1 << 20;
/// The pieces of a reader allowed less than [`SMALL_AHEAD_BELOW`] MiB ahead: a quarter,
/// so that the piece being filled and the one being read weigh less next to the few waiting
/// (a restore of a long chain holds one reader per backup set).
const SMALL_PIECE: usize = PIECE / 4;
/// See [`SMALL_PIECE`].
const SMALL_AHEAD_BELOW: usize = 4;
/// MiB decompressed ahead of the reader by default.
pub const DEFAULT_AHEAD: usize = 4;

/// How a gzip stream failed, so the binding can raise what Python's `gzip` would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipFailure {
    /// The stream ended before its end-of-stream marker (Python: `EOFError`).
    Truncated,
    /// Not gzip data, a bad CRC or length (Python: `gzip.BadGzipFile`).
    Corrupt,
    /// Deflate data that does not decode (Python: `zlib.error`).
    Deflate,
    /// The file could not be read (Python: `OSError`).
    Io,
}

/// A failure of the read-ahead thread, with the kind and message.
#[derive(Debug, Clone)]
pub struct GzipError {
    /// What kind of failure.
    pub kind: GzipFailure,
    /// Human-readable detail.
    pub message: String,
    /// The OS error number, for I/O failures.
    pub errno: Option<i32>,
}

impl GzipError {
    fn from_io(e: &io::Error) -> Self {
        GzipError {
            kind: classify(e),
            message: e.to_string(),
            errno: e.raw_os_error(),
        }
    }
}

/// What flate2 says of deflate data that does not decode.
const FLATE2_CORRUPT_DEFLATE: &str = "corrupt deflate stream";

fn classify(e: &io::Error) -> GzipFailure {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => GzipFailure::Truncated,
        io::ErrorKind::InvalidInput if e.to_string() == FLATE2_CORRUPT_DEFLATE => {
            GzipFailure::Deflate
        }
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other => {
            GzipFailure::Corrupt
        }
        _ => GzipFailure::Io,
    }
}

/// Sequential reader of a (multi-member) gzip file, decompressing ahead on its own thread.
pub struct GzipReader {
    inner: ReadAhead<(), GzipError>,
}

fn stopped() -> GzipError {
    GzipError {
        kind: GzipFailure::Io,
        message: "the decompressing thread stopped".into(),
        errno: None,
    }
}

/// A new piece of up to `piece` bytes read from `dec` (full unless `dec` ended or failed),
/// and whether `dec` ended, or the error that stopped it.
fn next_piece<D: Read>(dec: &mut D, piece: usize) -> (Vec<u8>, io::Result<bool>) {
    let mut buf = vec![0u8; piece];
    let mut filled = 0;
    let result = loop {
        if filled == piece {
            break Ok(false);
        }
        match dec.read(&mut buf[filled..]) {
            Ok(0) => break Ok(true),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    buf.truncate(filled);
    (buf, result)
}

/// Sends `dec`'s output to `tx` in pieces of `piece` bytes, counting them in `sent`; at the
/// end sends `End`. Returns the error that stopped it (nothing sent for it), or Ok when it
/// ended or the reader went away.
fn pump<D: Read>(
    dec: &mut D,
    tx: &Sender<(), GzipError>,
    sent: &mut u64,
    piece: usize,
) -> io::Result<()> {
    loop {
        let (buf, result) = next_piece(dec, piece);
        *sent += buf.len() as u64;
        if !buf.is_empty() && tx.send(Message::Data(buf)).is_err() {
            return Ok(());
        }
        match result {
            Ok(false) => {}
            Ok(true) => {
                let _ = tx.send(Message::End(()));
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Decompresses `file` into `tx` in pieces of `piece` bytes, at most `pieces` of them
/// waiting: a volume written by dupcore (its first member gives its size) by [`members`],
/// several members at once; any other by [`serial`].
fn decompress(file: File, tx: Sender<(), GzipError>, piece: usize, pieces: usize) {
    let mut head = [0u8; MEMBER_HEADER_LEN];
    match read_at_most(&file, 0, &mut head) {
        Ok(n) if member_size(&head[..n]).is_some() => members(file, tx, piece, pieces),
        Ok(_) => serial(file, 0, tx, piece),
        Err(e) => {
            let _ = tx.send(Message::Failed(GzipError::from_io(&e)));
        }
    }
}

/// Reads at `at` until `buf` is full or the file ends; returns how many bytes were read.
fn read_at_most(file: &File, at: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], at + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Bytes of a member [`members`] inflates on the pool, at most (more than a dupcore volume's
/// members ever hold, compressed or not); a larger one is read by [`serial`].
const POOL_MEMBER_MAX: usize = 2 * MEMBER;

/// A member's data in pieces, or None (see [`inflate_member`]).
type Inflated = Option<Vec<Vec<u8>>>;

/// One whole member (header to trailer) inflated, in pieces of `piece` bytes; None when it
/// is damaged, larger than [`POOL_MEMBER_MAX`] or not the whole of `member` (the serial
/// reader then reads it, and finds and classifies the damage as it always does).
fn inflate_member(member: &[u8], piece: usize) -> Inflated {
    // every member in `member`, so that bytes after the first are inflated or refused
    #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
    let mut dec = crate::deflate::IsalGzDecoder::new(member);
    #[cfg(not(all(feature = "isal", not(target_arch = "aarch64"))))]
    let mut dec = MultiGzDecoder::new(member);
    let mut pieces = Vec::new();
    let mut total = 0;
    loop {
        let (buf, result) = next_piece(&mut dec, piece);
        let ended = result.ok()?;
        total += buf.len();
        if total > POOL_MEMBER_MAX {
            return None;
        }
        if !buf.is_empty() {
            pieces.push(buf);
        }
        if ended {
            return Some(pieces);
        }
    }
}

/// A volume of gzip members that give their size ([`member_size`], as dupcore writes
/// them): the members are read in order and inflated on [`inflate_pool`], several at once,
/// their pieces sent in order. At a member that does not give its size, or that does not
/// inflate, the rest of the file goes to [`serial`], so that whatever follows is read, and
/// any damage reported, exactly as the serial reader would. `pieces` is the reader's
/// read-ahead in pieces: members are started while those waiting and those inflating fit
/// in it with one member to spare.
fn members(file: File, tx: Sender<(), GzipError>, piece: usize, pieces: usize) {
    let per_member = MEMBER.div_ceil(piece);
    let threads = inflate_pool().current_num_threads();
    let mut queue: VecDeque<(u64, Receiver<Inflated>)> = VecDeque::new();
    let mut next_at = 0u64;
    let mut tail = None;
    loop {
        while tail.is_none()
            && queue.len() <= threads
            && (queue.is_empty() || tx.waiting() + queue.len() * per_member <= pieces)
        {
            let mut head = [0u8; MEMBER_HEADER_LEN];
            let size = match read_at_most(&file, next_at, &mut head) {
                Ok(n) => member_size(&head[..n]).map(|s| s as usize),
                Err(_) => None,
            };
            let Some(size) = size.filter(|&s| s <= POOL_MEMBER_MAX) else {
                tail = Some(next_at);
                break;
            };
            let mut member = vec![0u8; size];
            match read_at_most(&file, next_at, &mut member) {
                Ok(n) if n == size => {}
                _ => {
                    tail = Some(next_at);
                    break;
                }
            }
            let (rtx, rrx) = sync_channel(1);
            inflate_pool().spawn(move || {
                let _ = rtx.send(inflate_member(&member, piece));
            });
            queue.push_back((next_at, rrx));
            next_at += size as u64;
        }
        let Some((at, rx)) = queue.pop_front() else {
            return serial(file, tail.unwrap_or(next_at), tx, piece);
        };
        match rx.recv() {
            Ok(Some(data)) => {
                for p in data {
                    if tx.send(Message::Data(p)).is_err() {
                        return;
                    }
                }
            }
            _ => return serial(file, at, tx, piece),
        }
    }
}

/// Decompresses `file` from byte `start` (where a gzip member begins, or the end) into `tx`
/// in pieces of `piece` bytes, on this thread. With ISA-L built in, ISA-L inflates; if it
/// stops on anything, flate2 reads the file again from `start`, skips what was already sent
/// and goes on, so damage is found and classified exactly as flate2 (and Python's `gzip`)
/// would. Not on aarch64: there ISA-L's Huffman decoder has been seen to decode valid
/// streams wrongly (intel/isa-l issue 316, and a ZLIB stream in this project's aarch64 unit
/// tests), which the CRC-32 only reveals after the member's data has been sent.
fn serial(file: File, start: u64, tx: Sender<(), GzipError>, piece: usize) {
    let fail = |e: &io::Error| {
        let _ = tx.send(Message::Failed(GzipError::from_io(e)));
    };
    let mut file = file;
    if let Err(e) = io::Seek::seek(&mut file, io::SeekFrom::Start(start)) {
        return fail(&e);
    }
    let mut input = BufReader::with_capacity(256 * 1024, file);
    // An empty file reads as empty, as Python's gzip reads it (no member at all).
    match input.fill_buf() {
        Ok([]) => {
            let _ = tx.send(Message::End(()));
            return;
        }
        Ok(_) => {}
        Err(e) => return fail(&e),
    }
    let mut sent = 0u64;
    #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
    {
        let mut dec = crate::deflate::IsalGzDecoder::new(input);
        if pump(&mut dec, &tx, &mut sent, piece).is_ok() {
            return;
        }
        let mut file = dec.into_inner().into_inner();
        if let Err(e) = io::Seek::seek(&mut file, io::SeekFrom::Start(start)) {
            return fail(&e);
        }
        input = BufReader::with_capacity(256 * 1024, file);
    }
    let mut dec = MultiGzDecoder::new(input);
    if sent > 0 {
        match io::copy(&mut (&mut dec).take(sent), &mut io::sink()) {
            Ok(n) if n == sent => {}
            Ok(_) => {
                return fail(&io::Error::new(
                    io::ErrorKind::InvalidData,
                    "gzip data reads differently on a second pass",
                ))
            }
            Err(e) => return fail(&e),
        }
    }
    if let Err(e) = pump(&mut dec, &tx, &mut sent, piece) {
        fail(&e);
    }
}

/// Bytes per piece of a reader decompressing `ahead` MiB ahead.
fn piece_for(ahead: usize) -> usize {
    if ahead < SMALL_AHEAD_BELOW {
        SMALL_PIECE
    } else {
        PIECE
    }
}

impl GzipReader {
    /// Opens `path` and starts decompressing it in the background.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with_ahead(path, DEFAULT_AHEAD)
    }

    /// Like [`GzipReader::open`], decompressing up to `ahead` MiB ahead.
    pub fn open_with_ahead(path: &Path, ahead: usize) -> io::Result<Self> {
        let file = File::open(path)?;
        let piece = piece_for(ahead);
        let pieces = ahead.max(1) * (PIECE / piece);
        let inner = ReadAhead::spawn("dupcore-gunzip", pieces, stopped, move |tx| {
            decompress(file, tx, piece, pieces)
        })?;
        Ok(GzipReader { inner })
    }

    /// Decompressed bytes returned so far (the stream position).
    pub fn tell(&self) -> u64 {
        self.inner.tell()
    }

    /// Waits for decompressed bytes; false at the end of the stream.
    pub fn fill(&mut self) -> Result<bool, GzipError> {
        self.inner.fill()
    }

    /// Decompressed bytes available without waiting for the read-ahead thread.
    pub fn buffered(&self) -> &[u8] {
        self.inner.buffered()
    }

    /// Marks `n` bytes of `buffered()` as read.
    pub fn consume(&mut self, n: usize) {
        self.inner.consume(n)
    }

    /// Appends up to `n` bytes to `out` (fewer only at the end); returns how many.
    pub fn read_into(&mut self, out: &mut Vec<u8>, n: usize) -> Result<usize, GzipError> {
        self.inner.read_into(out, n)
    }

    /// Skips up to `n` bytes; returns how many were skipped.
    pub fn skip(&mut self, n: u64) -> Result<u64, GzipError> {
        self.inner.skip(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn empty_file_reads_as_empty() {
        let p = std::env::temp_dir().join(format!("dupcore-gz-empty-{}", std::process::id()));
        std::fs::write(&p, b"").unwrap();
        let mut r = GzipReader::open(&p).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.read_into(&mut out, 100).unwrap(), 0);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn every_read_ahead_reads_the_same_bytes() {
        let dir = std::env::temp_dir().join(format!("dupcore-ga-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..3_300_000u32)
            .map(|i| (i % 241) as u8 ^ (i >> 13) as u8)
            .collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        enc.write_all(&data).unwrap();
        let path = dir.join("a.gz");
        std::fs::write(&path, enc.finish().unwrap()).unwrap();
        // 1 to 3 MiB: pieces of SMALL_PIECE; from SMALL_AHEAD_BELOW on: of PIECE
        for ahead in [0, 1, 3, SMALL_AHEAD_BELOW, 16] {
            let mut r = GzipReader::open_with_ahead(&path, ahead).unwrap();
            let mut out = Vec::new();
            let mut largest = 0;
            while r.fill().unwrap() {
                largest = largest.max(r.buffered().len());
                out.extend_from_slice(r.buffered());
                let n = r.buffered().len();
                r.consume(n);
            }
            assert!(out == data, "ahead {ahead}: the bytes differ");
            let piece = if ahead < SMALL_AHEAD_BELOW {
                SMALL_PIECE
            } else {
                PIECE
            };
            assert_eq!(largest, piece, "ahead {ahead}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_and_reports_truncation() {
        let dir = std::env::temp_dir().join(format!("dupcore-gr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        enc.write_all(&data).unwrap();
        let gz = enc.finish().unwrap();
        let path = dir.join("a.gz");
        std::fs::write(&path, &gz).unwrap();
        let mut r = GzipReader::open(&path).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.skip(10).unwrap(), 10);
        while r.read_into(&mut out, 65536).unwrap() > 0 {}
        assert_eq!(out, data[10..]);
        assert_eq!(r.tell(), data.len() as u64);

        std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
        let mut r = GzipReader::open(&path).unwrap();
        let err = loop {
            match r.read_into(&mut Vec::new(), 1 << 20) {
                Ok(0) => panic!("truncated stream read to the end"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind, GzipFailure::Truncated);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn read_all(path: &Path) -> (Vec<u8>, Option<GzipFailure>) {
        let mut r = GzipReader::open(path).unwrap();
        let mut out = Vec::new();
        loop {
            match r.read_into(&mut out, 1 << 20) {
                Ok(0) => return (out, None),
                Ok(_) => {}
                Err(e) => return (out, Some(e.kind)),
            }
        }
    }

    /// A gzip volume as dupcore writes it, of `data`, and the same bytes with every member's
    /// size field renamed, which the serial reader reads.
    fn dupcore_volume(dir: &Path, data: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let path = dir.join("w.gz");
        let mut w = crate::volume::VolumeWriter::create(
            &path,
            Some(crate::deflate::Deflate::DEFAULT),
            1_700_000_000,
        )
        .unwrap();
        for part in data.chunks(300_007) {
            w.write(part).unwrap();
        }
        w.close().unwrap();
        let gz = std::fs::read(&path).unwrap();
        let mut renamed = gz.clone();
        let (mut at, mut members) = (0, 0);
        while at < gz.len() {
            let size = member_size(&gz[at..]).unwrap() as usize;
            assert!(inflate_member(&gz[at..at + size], SMALL_PIECE).is_some());
            renamed[at + 12..at + 14].copy_from_slice(b"XX");
            at += size;
            members += 1;
        }
        assert_eq!(members, data.len().div_ceil(MEMBER));
        (gz, renamed)
    }

    #[test]
    fn members_inflated_together_read_as_the_serial_reader_reads_them() {
        let dir = std::env::temp_dir().join(format!("dupcore-gp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..5_000_000u32)
            .map(|i| (i % 239) as u8 ^ (i >> 11) as u8)
            .collect();
        let (gz, renamed) = dupcore_volume(&dir, &data);
        let path = dir.join("p.gz");
        for ahead in [0, 1, 3, 16] {
            std::fs::write(&path, &gz).unwrap();
            let mut r = GzipReader::open_with_ahead(&path, ahead).unwrap();
            let mut out = Vec::new();
            while r.read_into(&mut out, 100_003).unwrap() > 0 {}
            assert!(out == data, "ahead {ahead}: the bytes differ");
        }
        // damage anywhere (a flipped byte, a cut), and what follows the members: the bytes
        // and the failure of the serial reader
        let mid = gz.len() / 2;
        let mut cases = vec![
            gz[..mid].to_vec(),
            gz[..gz.len() - 3].to_vec(),
            [&gz[..], b"garbage after the members"].concat(),
            [&gz[..], &gz[..]].concat(),
        ];
        for at in [5, 30, mid, gz.len() - 6] {
            let mut bad = gz.clone();
            bad[at] ^= 0x21;
            cases.push(bad);
        }
        for (i, case) in cases.iter().enumerate() {
            let mut serial_case = case.clone();
            let n = renamed.len().min(case.len());
            serial_case[..n].copy_from_slice(&renamed[..n]);
            if i >= 4 {
                // the flipped byte stays flipped
                for (s, (c, g)) in serial_case.iter_mut().zip(case.iter().zip(&gz)) {
                    if c != g {
                        *s = *c;
                    }
                }
            }
            std::fs::write(&path, &serial_case).unwrap();
            let want = read_all(&path);
            std::fs::write(&path, case).unwrap();
            let got = read_all(&path);
            assert_eq!(got.1, want.1, "case {i}: the failure");
            assert!(got.0 == want.0, "case {i}: the bytes read");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_member_size_that_spans_two_members_reads_both() {
        let dir = std::env::temp_dir().join(format!("dupcore-g2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..1_500_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 9) as u8)
            .collect();
        let (gz, _) = dupcore_volume(&dir, &data);
        let first = member_size(&gz).unwrap() as usize;
        let second = member_size(&gz[first..]).unwrap() as usize;
        let mut spans = gz.clone();
        spans[16..20].copy_from_slice(&((first + second) as u32).to_le_bytes());
        let path = dir.join("s.gz");
        std::fs::write(&path, &spans).unwrap();
        assert_eq!(read_all(&path), (data, None));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn members_damage_and_garbage_are_classified() {
        let dir = std::env::temp_dir().join(format!("dupcore-gm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gz = |data: &[u8]| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        };
        let a: Vec<u8> = (0..2_500_000u32)
            .map(|i| (i % 253) as u8 ^ (i >> 12) as u8)
            .collect();
        let b = b"second member".repeat(1000);
        let (ga, gb) = (gz(&a), gz(&b));
        let path = dir.join("m.gz");
        let both = [&ga[..], &gb[..]].concat();
        std::fs::write(&path, &both).unwrap();
        assert_eq!(read_all(&path), ([&a[..], &b[..]].concat(), None));
        // bad CRC of the second member: everything of the first, then Corrupt
        let mut bad = both.clone();
        let crc_at = bad.len() - 8;
        bad[crc_at] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let (out, err) = read_all(&path);
        assert_eq!(err, Some(GzipFailure::Corrupt));
        assert!(out.len() >= a.len() && out.len() <= a.len() + b.len());
        assert_eq!(out[..a.len()], a[..]);
        // trailing garbage after a member, a flipped byte mid-stream, a cut second member
        for (data, want) in [
            (
                [&ga[..], b"not a gzip member at all"].concat(),
                GzipFailure::Corrupt,
            ),
            (
                both[..ga.len() + gb.len() / 2].to_vec(),
                GzipFailure::Truncated,
            ),
        ] {
            std::fs::write(&path, &data).unwrap();
            let (out, err) = read_all(&path);
            assert_eq!(err, Some(want));
            assert_eq!(out[..a.len()], a[..]);
        }
        let mut flipped = ga.clone();
        flipped[ga.len() / 2] ^= 0x55;
        std::fs::write(&path, &flipped).unwrap();
        let (out, err) = read_all(&path);
        assert!(err.is_some(), "a flipped byte went unnoticed");
        assert!(out.len() <= a.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
