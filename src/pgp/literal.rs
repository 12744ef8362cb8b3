//! The plaintext of a decrypted SEIPD packet in the shape gpg writes without signing: a
//! literal data packet, alone or inside one compressed data packet (uncompressed, ZIP or
//! ZLIB). This common case is read here, straight from the decrypted chunks, with the
//! fastest inflate built in (ISA-L where available); anything else (signatures, BZip2,
//! marker packets, ...) goes to sequoia's verifier with the bytes looked at so far put back.

use std::io::{self, BufRead, Read};

/// Compressed data packet.
const TAG_COMPRESSED: u8 = 8;
/// Literal data packet.
const TAG_LITERAL: u8 = 11;
/// Compression algorithms of RFC 4880 §9.3 read here.
const UNCOMPRESSED: u8 = 0;
const ZIP: u8 = 1;
const ZLIB: u8 = 2;
/// Buffer between the inflater and the literal packet's framing.
const INFLATED_BUFFER: usize = 256 * 1024;

fn corrupt(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "truncated OpenPGP data (unexpected end of file)",
    )
}

/// Passes a `BufRead` through and, while `recording`, keeps every byte consumed, so the
/// stream can be replayed from its start.
pub(super) struct Recorder<R> {
    inner: R,
    seen: Option<Vec<u8>>,
}

impl<R: BufRead> Recorder<R> {
    fn new(inner: R) -> Self {
        Recorder {
            inner,
            seen: Some(Vec::new()),
        }
    }

    fn stop(&mut self) {
        self.seen = None;
    }
}

/// `Read::read` of a `BufRead`: a copy out of its buffer.
pub(super) fn read_buffered(r: &mut (impl BufRead + ?Sized), out: &mut [u8]) -> io::Result<usize> {
    let avail = r.fill_buf()?;
    let n = avail.len().min(out.len());
    out[..n].copy_from_slice(&avail[..n]);
    r.consume(n);
    Ok(n)
}

impl<R: BufRead> Read for Recorder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, out)
    }
}

impl<R: BufRead> BufRead for Recorder<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if let Some(seen) = self.seen.as_mut() {
            if let Ok(buf) = self.inner.fill_buf() {
                seen.extend_from_slice(&buf[..n.min(buf.len())]);
            }
        }
        self.inner.consume(n);
    }
}

fn read_byte(r: &mut (impl BufRead + ?Sized)) -> io::Result<Option<u8>> {
    let b = match r.fill_buf()?.first() {
        Some(b) => *b,
        None => return Ok(None),
    };
    r.consume(1);
    Ok(Some(b))
}

fn need_byte(r: &mut (impl BufRead + ?Sized)) -> io::Result<u8> {
    read_byte(r)?.ok_or_else(truncated)
}

fn be(r: &mut (impl BufRead + ?Sized), n: usize) -> io::Result<u64> {
    let mut v = 0u64;
    for _ in 0..n {
        v = (v << 8) | u64::from(need_byte(r)?);
    }
    Ok(v)
}

/// How a packet's body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Length {
    /// `n` bytes.
    Fixed(u64),
    /// A partial chunk of `n` bytes, then another length.
    Partial(u64),
    /// To the end of the enclosing data (old-format length type 3).
    ToEnd,
}

/// Reads a new-format body length after the tag (RFC 4880 §4.2.2): the piece's length, and
/// whether it is a partial piece (another length follows it).
fn new_length(r: &mut (impl BufRead + ?Sized)) -> io::Result<(u64, bool)> {
    let b = need_byte(r)?;
    Ok(match b {
        0..=191 => (u64::from(b), false),
        192..=223 => (
            ((u64::from(b) - 192) << 8) + u64::from(need_byte(r)?) + 192,
            false,
        ),
        255 => (be(r, 4)?, false),
        _ => (1 << (b & 0x1f), true),
    })
}

/// A packet header: its tag and the framing of its body; `None` at a clean end of input.
fn header(r: &mut (impl BufRead + ?Sized)) -> io::Result<Option<(u8, Length)>> {
    let Some(b) = read_byte(r)? else {
        return Ok(None);
    };
    if b & 0x80 == 0 {
        return Err(corrupt("malformed OpenPGP message: invalid packet header"));
    }
    if b & 0x40 != 0 {
        let len = match new_length(r)? {
            (n, true) => Length::Partial(n),
            (n, false) => Length::Fixed(n),
        };
        return Ok(Some((b & 0x3f, len)));
    }
    let len = match b & 3 {
        0 => Length::Fixed(be(r, 1)?),
        1 => Length::Fixed(be(r, 2)?),
        2 => Length::Fixed(be(r, 4)?),
        _ => Length::ToEnd,
    };
    Ok(Some(((b >> 2) & 0x0f, len)))
}

/// The body of one packet, its length framing removed.
struct Body<R> {
    inner: R,
    /// Bytes left in the current piece.
    left: u64,
    /// Whether another length header follows the current piece.
    partial: bool,
    /// Whether the body runs to the end of `inner`.
    to_end: bool,
}

impl<R: BufRead> Body<R> {
    fn new(inner: R, len: Length) -> Self {
        let (left, partial, to_end) = match len {
            Length::Fixed(n) => (n, false, false),
            Length::Partial(n) => (n, true, false),
            Length::ToEnd => (0, false, true),
        };
        Body {
            inner,
            left,
            partial,
            to_end,
        }
    }
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, out)
    }
}

impl<R: BufRead> BufRead for Body<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.to_end {
            return self.inner.fill_buf();
        }
        while self.left == 0 && self.partial {
            (self.left, self.partial) = new_length(&mut self.inner)?;
        }
        if self.left == 0 {
            return Ok(&[]);
        }
        let left = self.left;
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            return Err(truncated());
        }
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        Ok(&buf[..n])
    }

    fn consume(&mut self, n: usize) {
        if !self.to_end {
            self.left -= n as u64;
        }
        self.inner.consume(n);
    }
}

/// The decompressed contents of a compressed data packet. ZIP (raw deflate) is inflated by
/// ISA-L where it is built in, except on aarch64, several segments at once where dupcore
/// wrote them and the reader may run ahead (`deflate/segments.rs`; a reader with little
/// read-ahead, one of many in a long chain's restore, inflates serially, in less memory);
/// ZLIB by zlib-rs everywhere. On aarch64,
/// ISA-L's inflate refused valid ZLIB streams with a checksum error in the unit tests under
/// qemu, as intel/isa-l issue 316 reports for its aarch64 Huffman decoder; a raw deflate
/// stream has no checksum that would catch such a decoding, and the MDC covers the compressed
/// bytes only, so ISA-L inflates only where a check follows (gzip volumes, CRC-32) or on
/// x86_64. gpg writes ZIP unless told otherwise.
enum Decompressed<R: BufRead> {
    Stored(Body<R>),
    #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
    Inflated(crate::deflate::IsalInflater<Body<R>>),
    #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
    Segmented(crate::deflate::SegmentedInflater<Body<R>>),
    #[cfg(not(all(feature = "isal", not(target_arch = "aarch64"))))]
    Deflate(Box<flate2::bufread::DeflateDecoder<Body<R>>>),
    Zlib(Box<flate2::bufread::ZlibDecoder<Body<R>>>),
}

impl<R: BufRead> Decompressed<R> {
    fn new(body: Body<R>, algo: u8, in_flight: usize) -> Self {
        match algo {
            #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
            ZIP if in_flight > 1 => {
                Decompressed::Segmented(crate::deflate::SegmentedInflater::new(body, in_flight))
            }
            #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
            ZIP => Decompressed::Inflated(crate::deflate::IsalInflater::with_wrapper(
                body,
                crate::deflate::IsalWrapper::Raw,
            )),
            #[cfg(not(all(feature = "isal", not(target_arch = "aarch64"))))]
            ZIP => {
                let _ = in_flight; // inflated serially here
                Decompressed::Deflate(Box::new(flate2::bufread::DeflateDecoder::new(body)))
            }
            ZLIB => Decompressed::Zlib(Box::new(flate2::bufread::ZlibDecoder::new(body))),
            _ => Decompressed::Stored(body),
        }
    }

    fn body(&mut self) -> &mut Body<R> {
        match self {
            Decompressed::Stored(b) => b,
            #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
            Decompressed::Inflated(d) => d.get_mut(),
            #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
            Decompressed::Segmented(d) => d.get_mut(),
            #[cfg(not(all(feature = "isal", not(target_arch = "aarch64"))))]
            Decompressed::Deflate(d) => d.get_mut(),
            Decompressed::Zlib(d) => d.get_mut(),
        }
    }

    fn into_body(self) -> Body<R> {
        match self {
            Decompressed::Stored(b) => b,
            #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
            Decompressed::Inflated(d) => d.into_inner(),
            #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
            Decompressed::Segmented(d) => d.into_inner(),
            #[cfg(not(all(feature = "isal", not(target_arch = "aarch64"))))]
            Decompressed::Deflate(d) => (*d).into_inner(),
            Decompressed::Zlib(d) => (*d).into_inner(),
        }
    }
}

impl<R: BufRead> Read for Decompressed<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressed::Stored(b) => b.read(out),
            #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
            Decompressed::Inflated(d) => d.read(out),
            #[cfg(all(feature = "isal", not(target_arch = "aarch64")))]
            Decompressed::Segmented(d) => d.read(out),
            #[cfg(not(all(feature = "isal", not(target_arch = "aarch64"))))]
            Decompressed::Deflate(d) => d.read(out).map_err(damaged),
            Decompressed::Zlib(d) => d.read(out).map_err(damaged),
        }
    }
}

/// flate2 reports damaged data as `InvalidInput`; the reader's callers expect `InvalidData`.
fn damaged(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::InvalidInput {
        corrupt(format!("damaged compressed data: {e}"))
    } else {
        e
    }
}

/// What the literal packet sits in.
enum Container<R: BufRead> {
    /// Directly the decrypted plaintext.
    Plain(R),
    /// One compressed data packet, its contents buffered.
    Compressed(io::BufReader<Decompressed<R>>),
}

impl<R: BufRead> Container<R> {
    fn source(&mut self) -> &mut dyn BufRead {
        match self {
            Container::Plain(r) => r,
            Container::Compressed(r) => r,
        }
    }

    /// The plaintext stream under the container, to stop recording it or to read it on.
    fn plaintext(&mut self) -> &mut R {
        match self {
            Container::Plain(r) => r,
            Container::Compressed(r) => &mut r.get_mut().body().inner,
        }
    }
}

impl<R: BufRead> Read for Container<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, out)
    }
}

impl<R: BufRead> BufRead for Container<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.source().fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.source().consume(n)
    }
}

/// The body of the literal data packet of a message shaped as gpg writes it unsigned.
pub(super) struct LiteralReader<R: BufRead> {
    body: Body<Container<Recorder<R>>>,
    done: bool,
}

/// What [`open`] found.
pub(super) enum Opened<R: BufRead> {
    /// Read the literal data here.
    Literal(LiteralReader<R>),
    /// Some other shape: the whole plaintext, from its first byte, for sequoia.
    Other(io::Chain<io::Cursor<Vec<u8>>, R>),
}

fn give_back<R: BufRead>(mut rec: Recorder<R>) -> Opened<R> {
    let seen = rec.seen.take().unwrap_or_default();
    Opened::Other(io::Cursor::new(seen).chain(rec.inner))
}

/// Looks at the start of the decrypted plaintext `inner` and decides who reads it; a ZIP
/// packet's segments are inflated up to `in_flight` at once.
pub(super) fn open<R: BufRead>(inner: R, in_flight: usize) -> io::Result<Opened<R>> {
    let mut rec = Recorder::new(inner);
    let mut container = match header(&mut rec)? {
        Some((TAG_LITERAL, len)) => return literal(Container::Plain(rec), len),
        Some((TAG_COMPRESSED, len)) => {
            let mut body = Body::new(rec, len);
            let algo = match read_byte(&mut body)? {
                Some(a @ (UNCOMPRESSED | ZIP | ZLIB)) => a,
                _ => return Ok(give_back(body.inner)),
            };
            Container::Compressed(io::BufReader::with_capacity(
                INFLATED_BUFFER,
                Decompressed::new(body, algo, in_flight),
            ))
        }
        _ => return Ok(give_back(rec)),
    };
    match header(&mut container)? {
        Some((TAG_LITERAL, len)) => literal(container, len),
        _ => match container {
            Container::Compressed(r) => Ok(give_back(r.into_inner().into_body().inner)),
            Container::Plain(rec) => Ok(give_back(rec)),
        },
    }
}

/// The reader of a literal packet found in `container`: its header fields (format, file
/// name, date) skipped, the recording of the plaintext stopped.
fn literal<R: BufRead>(
    mut container: Container<Recorder<R>>,
    len: Length,
) -> io::Result<Opened<R>> {
    container.plaintext().stop();
    let mut body = Body::new(container, len);
    let _format = need_byte(&mut body)?;
    let name_len = need_byte(&mut body)?;
    let mut skip = vec![0u8; usize::from(name_len) + 4];
    body.read_exact(&mut skip).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            truncated()
        } else {
            e
        }
    })?;
    Ok(Opened::Literal(LiteralReader { body, done: false }))
}

impl<R: BufRead> LiteralReader<R> {
    /// Checks that no packet follows the literal packet, in its container or after it, and
    /// reads the plaintext to its end (where the MDC is checked). Bytes after the end of the
    /// deflate stream inside the compressed packet are skipped, as gpg skips them.
    fn finish(&mut self) -> io::Result<()> {
        let trailing = || corrupt("malformed OpenPGP message: data after the literal packet");
        let container = &mut self.body.inner;
        if !container.fill_buf()?.is_empty() {
            return Err(trailing());
        }
        if let Container::Compressed(r) = container {
            io::copy(r.get_mut().body(), &mut io::sink())?;
        }
        if !container.plaintext().fill_buf()?.is_empty() {
            return Err(trailing());
        }
        Ok(())
    }
}

impl<R: BufRead> LiteralReader<R> {
    /// Segments of a ZIP packet inflated on the pool so far (None for other containers).
    #[cfg(all(test, feature = "isal", not(target_arch = "aarch64")))]
    pub(super) fn proven_segments(&self) -> Option<u64> {
        match &self.body.inner {
            Container::Compressed(r) => match r.get_ref() {
                Decompressed::Segmented(d) => Some(d.proven_segments()),
                _ => None,
            },
            Container::Plain(_) => None,
        }
    }
}

impl<R: BufRead> Read for LiteralReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        let n = self.body.read(out)?;
        if n == 0 {
            self.done = true;
            self.finish()?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i * 7 % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    /// A new-format packet with a fixed length.
    fn packet(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0xc0 | tag, 0xff];
        p.extend((body.len() as u32).to_be_bytes());
        p.extend(body);
        p
    }

    /// A new-format packet in partial pieces of `1 << exp` bytes, the rest with a fixed length.
    fn partial_packet(tag: u8, body: &[u8], exp: u32) -> Vec<u8> {
        let piece = 1usize << exp;
        let mut p = vec![0xc0 | tag];
        let mut rest = body;
        while rest.len() > piece {
            p.push(224 + exp as u8);
            p.extend(&rest[..piece]);
            rest = &rest[piece..];
        }
        if rest.len() < 192 {
            p.push(rest.len() as u8);
        } else {
            p.push(0xff);
            p.extend((rest.len() as u32).to_be_bytes());
        }
        p.extend(rest);
        p
    }

    fn literal_body(data: &[u8]) -> Vec<u8> {
        let mut b = vec![b'b', 4];
        b.extend(b"name");
        b.extend([0x5f, 0, 0, 0]);
        b.extend(data);
        b
    }

    fn deflate(data: &[u8], zlib: bool) -> Vec<u8> {
        if zlib {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
    }

    /// An old-format compressed packet running to the end of the data, as gpg writes it.
    fn compressed_to_end(algo: u8, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80 | (TAG_COMPRESSED << 2) | 3, algo];
        p.extend(inner);
        p
    }

    /// The literal data read with segments inflated in parallel, checked to be what the
    /// serial reader (one in flight) reads, or to fail in the same way.
    fn read_literal(plain: &[u8]) -> io::Result<Vec<u8>> {
        let read = |in_flight| -> io::Result<Vec<u8>> {
            match open(plain, in_flight)? {
                Opened::Literal(mut r) => {
                    let mut out = Vec::new();
                    r.read_to_end(&mut out)?;
                    Ok(out)
                }
                Opened::Other(_) => panic!("the literal shape went to sequoia"),
            }
        };
        let (parallel, serial) = (read(3), read(1));
        match (&parallel, &serial) {
            (Ok(a), Ok(b)) => assert!(a == b, "the serial reader read other bytes"),
            (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{a} / {b}"),
            (a, b) => panic!("parallel {:?}, serial {:?}", a.is_ok(), b.is_ok()),
        }
        parallel
    }

    fn replayed(plain: &[u8]) -> Vec<u8> {
        match open(plain, 3).unwrap() {
            Opened::Other(mut r) => {
                let mut out = Vec::new();
                r.read_to_end(&mut out).unwrap();
                out
            }
            Opened::Literal(_) => panic!("an unusual shape was read as a plain literal"),
        }
    }

    #[test]
    fn literal_shapes_gpg_writes() {
        let data = sample(300_000);
        let lit = literal_body(&data);
        let shapes: Vec<(&str, Vec<u8>)> = vec![
            ("bare literal", packet(TAG_LITERAL, &lit)),
            (
                "bare partial literal",
                partial_packet(TAG_LITERAL, &lit, 13),
            ),
            (
                "ZIP, partial literal",
                compressed_to_end(ZIP, &deflate(&partial_packet(TAG_LITERAL, &lit, 9), false)),
            ),
            (
                "ZLIB, fixed literal",
                compressed_to_end(ZLIB, &deflate(&packet(TAG_LITERAL, &lit), true)),
            ),
            (
                "uncompressed, fixed packet",
                packet(
                    TAG_COMPRESSED,
                    &[&[UNCOMPRESSED][..], &packet(TAG_LITERAL, &lit)].concat(),
                ),
            ),
            (
                "ZIP in a partial compressed packet",
                partial_packet(
                    TAG_COMPRESSED,
                    &[
                        &[ZIP][..],
                        &deflate(&partial_packet(TAG_LITERAL, &lit, 16), false),
                    ]
                    .concat(),
                    10,
                ),
            ),
            (
                "old-format literal to the end",
                compressed_to_end(ZIP, &deflate(&[&[0xaf][..], &lit].concat(), false)),
            ),
        ];
        for (what, plain) in shapes {
            assert_eq!(read_literal(&plain).unwrap(), data, "{what}");
        }
        // empty data
        let empty = compressed_to_end(
            ZIP,
            &deflate(&packet(TAG_LITERAL, &literal_body(&[])), false),
        );
        assert!(read_literal(&empty).unwrap().is_empty());
    }

    #[test]
    fn other_shapes_are_replayed_whole_for_sequoia() {
        let lit = packet(TAG_LITERAL, &literal_body(&sample(70_000)));
        // a one-pass signature packet (tag 4) first, bare and compressed
        let ops = [
            &packet(4, &[3, 0, 8, 1, 1, 2, 3, 4, 5, 6, 7, 8, 1])[..],
            &lit,
        ]
        .concat();
        assert_eq!(replayed(&ops), ops);
        let zipped = compressed_to_end(ZIP, &deflate(&ops, false));
        assert_eq!(replayed(&zipped), zipped);
        // BZip2
        let bz = compressed_to_end(3, b"BZh91AY&SY");
        assert_eq!(replayed(&bz), bz);
        // a marker packet
        let marker = [&packet(10, b"PGP")[..], &lit].concat();
        assert_eq!(replayed(&marker), marker);
    }

    #[test]
    fn damage_is_an_error() {
        let data = sample(100_000);
        let lit = packet(TAG_LITERAL, &literal_body(&data));
        let after = [&lit[..], &packet(TAG_LITERAL, &literal_body(b"x"))].concat();
        let z = compressed_to_end(ZIP, &deflate(&lit, false));
        let mut trailing = z.clone();
        trailing.extend(b"junk");
        let cases: Vec<(&str, Vec<u8>, io::ErrorKind)> = vec![
            (
                "data after the literal",
                after.clone(),
                io::ErrorKind::InvalidData,
            ),
            (
                "data after the literal, compressed",
                compressed_to_end(ZIP, &deflate(&after, false)),
                io::ErrorKind::InvalidData,
            ),
            (
                "truncated literal",
                lit[..lit.len() - 10].to_vec(),
                io::ErrorKind::UnexpectedEof,
            ),
            (
                "truncated deflate",
                z[..z.len() - 10].to_vec(),
                io::ErrorKind::UnexpectedEof,
            ),
            (
                "truncated header",
                lit[..3].to_vec(),
                io::ErrorKind::UnexpectedEof,
            ),
        ];
        // gpg skips bytes after the deflate stream's end
        assert_eq!(read_literal(&trailing).unwrap(), data);
        for (what, plain, want) in cases {
            match read_literal(&plain) {
                Ok(out) => panic!("{what}: read {} bytes without an error", out.len()),
                Err(e) => assert_eq!(e.kind(), want, "{what}: {e}"),
            }
        }
        let kind = |plain: &[u8]| match read_literal(plain) {
            Ok(out) => panic!("read {} bytes without an error", out.len()),
            Err(e) => e.kind(),
        };
        // a damaged deflate stream and a damaged zlib checksum
        let mut bad = compressed_to_end(ZIP, &deflate(&lit, false));
        bad[2] ^= 0xff;
        assert!(read_literal(&bad).map_or(true, |out| out != data));
        let mut bad_sum = compressed_to_end(ZLIB, &deflate(&lit, true));
        let n = bad_sum.len();
        bad_sum[n - 1] ^= 1;
        assert_eq!(kind(&bad_sum), io::ErrorKind::InvalidData);
        // not a packet at all
        assert_eq!(
            open(&b"\x00garbage"[..], 3).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidData)
        );
    }
}
