//! SEIPD v1 (the packet gpg writes with `--force-mdc`, and duplicity always asks for), read and
//! written: OpenPGP CFB with a zero IV, the prefix quick check, and the MDC, a SHA-1 over prefix,
//! plaintext and the MDC packet header. The MDC is computed with the `sha1` crate, which uses
//! the CPU's SHA extensions (sequoia's own SEIPD reader uses collision-detecting SHA-1, about a
//! third of the time spent reading a volume). Session key packets are parsed by sequoia, and
//! its symmetric cipher does the CFB.

use std::io::{self, Read, Write};

use buffered_reader::BufferedReader;
use openpgp::crypto::symmetric::{
    BlockCipherMode, Decryptor, Encryptor, PaddingMode, UnpaddingMode,
};
use openpgp::crypto::SessionKey;
use openpgp::packet::{Tag, PKESK, SEIP, SKESK};
use openpgp::parse::{Cookie, PacketParser, PacketParserResult, Parse};
use openpgp::types::SymmetricAlgorithm;
use openpgp::Packet;
use sequoia_openpgp as openpgp;
use sha1::{Digest, Sha1};

/// The MDC packet at the end of the plaintext: tag 19 (new format), length 20, SHA-1.
const MDC_LEN: usize = 22;
const MDC_HEADER: [u8; 2] = [0xd3, 0x14];

/// The session key packets in front of a SEIPD v1 or SED packet, and the parser positioned on
/// its encrypted body.
pub struct Envelope {
    /// Public-key encrypted session keys.
    pub pkesks: Vec<PKESK>,
    /// Passphrase encrypted session keys.
    pub skesks: Vec<SKESK>,
    /// True for SEIPD v1 (MDC at the end), false for SED (no integrity check, CFB resync).
    pub has_mdc: bool,
    body: PacketParser<'static>,
}

/// Parses the session key packets up to the encrypted data; `Ok(None)` when the message is
/// not (ESK packets, SEIPD v1 or SED), e.g. AEAD packets, which other readers handle.
pub fn open(source: impl Read + Send + Sync + 'static) -> openpgp::Result<Option<Envelope>> {
    let mut pkesks = Vec::new();
    let mut skesks = Vec::new();
    let mut ppr = PacketParser::from_reader(source)?;
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            Packet::PKESK(p) => pkesks.push(p.clone()),
            Packet::SKESK(s) => skesks.push(s.clone()),
            Packet::Marker(_) => {}
            Packet::SEIP(SEIP::V1(_)) => {
                return Ok(Some(Envelope {
                    pkesks,
                    skesks,
                    has_mdc: true,
                    body: pp,
                }))
            }
            // gpg 1.x wrote SED packets by default; sequoia parses them as unknown packets.
            Packet::Unknown(u) if u.tag() == Tag::SED => {
                return Ok(Some(Envelope {
                    pkesks,
                    skesks,
                    has_mdc: false,
                    body: pp,
                }))
            }
            _ => return Ok(None),
        }
        ppr = pp.next()?.1;
    }
    Ok(None)
}

impl Envelope {
    /// Whether `key` decrypts this packet: the last two bytes of the random prefix repeat.
    pub fn quick_check(&mut self, algo: SymmetricAlgorithm, key: &SessionKey) -> bool {
        let Ok(bs) = algo.block_size() else {
            return false;
        };
        // a session key decrypted with a wrong passphrase names a random algorithm, whose
        // key size may not be the key's (the cipher would refuse it with a panic)
        if algo.key_size().ok() != Some(key.len()) {
            return false;
        }
        let Ok(head) = self.body.data(bs + 2) else {
            return false;
        };
        if head.len() < bs + 2 {
            return false;
        }
        let src = buffered_reader::Memory::with_cookie(&head[..bs + 2], Cookie::default());
        let Ok(mut dec) = Decryptor::new(
            algo,
            BlockCipherMode::CFB,
            UnpaddingMode::None,
            key,
            None,
            src,
        ) else {
            return false;
        };
        let mut prefix = vec![0u8; bs + 2];
        dec.read_exact(&mut prefix).is_ok() && prefix[bs - 2..bs] == prefix[bs..bs + 2]
    }

    /// A reader of the plaintext (the packets inside), checking the MDC at the end of a SEIPD
    /// packet. A SED packet's CFB restarts after the prefix with the IV taken from the
    /// ciphertext's bytes 2 to `bs + 2` (OpenPGP's CFB resynchronisation).
    pub fn decrypt(
        mut self,
        algo: SymmetricAlgorithm,
        key: &SessionKey,
    ) -> openpgp::Result<MdcReader<'static>> {
        let bs = algo.block_size()?;
        let mut hasher = Sha1::new();
        let dec = if self.has_mdc {
            let mut dec = Decryptor::new(
                algo,
                BlockCipherMode::CFB,
                UnpaddingMode::None,
                key,
                None,
                self.body,
            )?;
            let mut prefix = vec![0u8; bs + 2];
            dec.read_exact(&mut prefix)?;
            hasher.update(&prefix);
            dec
        } else {
            let mut head = vec![0u8; bs + 2];
            self.body.read_exact(&mut head)?;
            Decryptor::new(
                algo,
                BlockCipherMode::CFB,
                UnpaddingMode::None,
                key,
                Some(&head[2..]),
                self.body,
            )?
        };
        Ok(MdcReader {
            dec,
            hasher,
            held: Vec::with_capacity(1 << 17),
            pos: 0,
            done: false,
            mdc_len: if self.has_mdc { MDC_LEN } else { 0 },
        })
    }
}

/// Why a SEIPD packet is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MdcFailure {
    /// The MDC does not match: the data was modified or damaged.
    Mismatch,
    /// The plaintext ends before a whole MDC packet.
    Missing,
}

impl std::fmt::Display for MdcFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MdcFailure::Mismatch => "integrity check (MDC) failed",
            MdcFailure::Missing => "no MDC packet at the end of the encrypted data",
        })
    }
}

impl std::error::Error for MdcFailure {}

/// Decrypted plaintext of a SEIPD v1 packet; the 22-byte MDC packet is held back and checked
/// at the end, where a mismatch is an `InvalidData` error carrying an [`MdcFailure`]. For a SED
/// packet (`mdc_len` 0) the plaintext is passed through unchecked.
pub struct MdcReader<'a> {
    dec: Decryptor<'a>,
    hasher: Sha1,
    /// Decrypted bytes; those from `pos` on are not yet returned, and the last `MDC_LEN` of
    /// them may be the MDC packet.
    held: Vec<u8>,
    pos: usize,
    done: bool,
    /// Bytes held back at the end for the MDC packet: `MDC_LEN`, or 0 for SED.
    mdc_len: usize,
}

impl MdcReader<'_> {
    fn pending(&self) -> usize {
        self.held.len() - self.pos
    }

    fn fill(&mut self) -> io::Result<()> {
        while !self.done && self.pending() <= self.mdc_len {
            self.held.drain(..self.pos);
            self.pos = 0;
            let start = self.held.len();
            self.held.resize(start + (1 << 16), 0);
            let n = loop {
                match self.dec.read(&mut self.held[start..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = n.inspect_err(|_| self.held.truncate(start))?;
            self.held.truncate(start + n);
            if n == 0 {
                self.done = true;
                if self.mdc_len > 0 {
                    self.check()?;
                }
            }
        }
        Ok(())
    }

    fn check(&mut self) -> io::Result<()> {
        let tail = &self.held[self.pos..];
        if tail.len() != MDC_LEN || tail[..2] != MDC_HEADER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                MdcFailure::Missing,
            ));
        }
        self.hasher.update(MDC_HEADER);
        let digest = std::mem::take(&mut self.hasher).finalize();
        if digest[..] != tail[2..] {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                MdcFailure::Mismatch,
            ));
        }
        self.pos = self.held.len();
        Ok(())
    }
}

impl Read for MdcReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.fill()?;
        let avail = if self.done {
            self.pending()
        } else {
            self.pending() - self.mdc_len
        };
        let n = avail.min(buf.len());
        let out = &self.held[self.pos..self.pos + n];
        buf[..n].copy_from_slice(out);
        self.hasher.update(out);
        self.pos += n;
        Ok(n)
    }
}

/// Frames a packet written in pieces: a new-format header, then the body in partial lengths of
/// 64 KiB and a definite length for the rest (the whole body if it is shorter).
pub struct PartialBody<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

/// A new-format definite body length (one, two or five bytes).
fn body_length(len: usize) -> Vec<u8> {
    if len < 192 {
        vec![len as u8]
    } else if len < 8384 {
        let l = len - 192;
        vec![((l >> 8) + 192) as u8, (l & 0xff) as u8]
    } else {
        let mut v = vec![0xff];
        v.extend_from_slice(&(len as u32).to_be_bytes());
        v
    }
}

/// log2 of the partial body length.
const PARTIAL_POW: u8 = 16;

impl<W: Write> PartialBody<W> {
    /// Starts a packet with `tag` on `inner`.
    pub fn new(mut inner: W, tag: u8) -> io::Result<Self> {
        inner.write_all(&[0xc0 | tag])?;
        Ok(PartialBody {
            inner,
            buf: Vec::with_capacity(1 << PARTIAL_POW),
        })
    }

    /// The writer the packet goes to.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Body bytes held until their length is known.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Writes the last length and bytes; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&body_length(self.buf.len()))?;
        self.inner.write_all(&self.buf)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for PartialBody<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        let full = 1usize << PARTIAL_POW;
        while !data.is_empty() {
            let take = (full - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == full && !data.is_empty() {
                // a full piece followed by more: partial length (never the last piece)
                self.inner.write_all(&[0xe0 | PARTIAL_POW])?;
                self.inner.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a SEIPD v1 packet: version 1, then CFB (zero IV) over a random prefix with its
/// quick-check bytes, the plaintext and an MDC packet whose SHA-1 is computed with the `sha1`
/// crate (the CPU's SHA extensions).
pub struct SeipdWriter<W: Write + Send + Sync> {
    enc: Encryptor<PartialBody<W>>,
    mdc: Sha1,
}

impl<W: Write + Send + Sync> SeipdWriter<W> {
    /// Starts the packet on `sink`, encrypting with `algo` and `key`.
    pub fn new(sink: W, algo: SymmetricAlgorithm, key: &SessionKey) -> openpgp::Result<Self> {
        let mut body = PartialBody::new(sink, 18)?;
        body.write_all(&[1])?;
        let mut enc = Encryptor::new(
            algo,
            BlockCipherMode::CFB,
            PaddingMode::None,
            key,
            None,
            body,
        )?;
        let bs = algo.block_size()?;
        let mut prefix = vec![0u8; bs + 2];
        openpgp::crypto::random(&mut prefix[..bs])?;
        prefix[bs] = prefix[bs - 2];
        prefix[bs + 1] = prefix[bs - 1];
        enc.write_all(&prefix)?;
        let mut mdc = Sha1::new();
        mdc.update(&prefix);
        Ok(SeipdWriter { enc, mdc })
    }

    /// Appends the MDC packet and the last length; returns the sink.
    pub fn finish(mut self) -> openpgp::Result<W> {
        self.mdc.update(MDC_HEADER);
        let digest = self.mdc.finalize();
        self.enc.write_all(&MDC_HEADER)?;
        self.enc.write_all(&digest)?;
        Ok(self.enc.finalize()?.finish()?)
    }
}

impl<W: Write + Send + Sync> Write for SeipdWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.enc.write(data)?;
        self.mdc.update(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush()
    }
}
