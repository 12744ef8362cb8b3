//! Streaming OpenPGP encryption of one file: literal packet framed here, its bytes deflated in
//! parallel (pigz-style chunks forming one raw deflate stream inside a compressed packet, in
//! independent segments that readers inflate in parallel: `deflate/segments.rs`),
//! encrypted into a SEIPD v1 packet with MDC on a writer thread that also hashes the file.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use openpgp::crypto::symmetric::{BlockCipherMode, PaddingMode};
use openpgp::crypto::{SessionKey, S2K};

use openpgp::packet::prelude::*;
use openpgp::serialize::{MarshalInto, Serialize};
use openpgp::types::{CompressionAlgorithm, HashAlgorithm, SignatureType, SymmetricAlgorithm};
use sequoia_openpgp as openpgp;

use super::agent::{self, AgentConfig};
use super::keys::{self, resolve_recipients};
use super::seipd::{PartialBody, SeipdWriter};
use super::{one_line, PgpError, PgpErrorKind};
use crate::deflate::{
    compress_chunk, compression_pool, Deflate, Primer, CHUNK, SEGMENT, SEGMENT_BREAK, WINDOW_BITS,
};
use crate::hash::{Digests, VolumeHasher};

/// gpg's ZIP packets use an 8 KiB deflate window (`deflateInit2(..., -13, ...)`, for PGP 2
/// compatibility); ZLIB packets use zlib's default 32 KiB.
const ZIP_WINDOW_BITS: u8 = 13;
/// Chunks queued or being compressed at once.
const MAX_IN_FLIGHT: usize = 8;

/// How to encrypt one file.
#[derive(Clone, Debug)]
pub struct EncryptOptions {
    /// Passphrase for an SKESK packet (symmetric encryption); None for public-key only.
    pub passphrase: Option<String>,
    /// Recipients: key ids or fingerprints (hex), with `true` for hidden (key id 0).
    pub recipients: Vec<(String, bool)>,
    /// Binary keyring (`gpg --export`) holding the recipients' certificates.
    pub keyring: Vec<u8>,
    /// Payload cipher (gpg 2.2's default is AES256).
    pub cipher: SymmetricAlgorithm,
    /// Deflate engine and level for the compressed packet; None writes no compressed packet.
    pub compress: Option<Deflate>,
    /// ZIP (raw deflate, gpg's default) or ZLIB (deflate with zlib header and Adler-32).
    pub compress_algo: CompressionAlgorithm,
    /// S2K digest (gpg 2.2: SHA1).
    pub s2k_hash: HashAlgorithm,
    /// S2K iteration byte count (gpg 2.2 on a fast machine: 65011712).
    pub s2k_count: u32,
    /// Date in the literal packet (seconds since the epoch).
    pub mtime: u32,
    /// Sign the data (`--sign-key`) with a key held by gpg-agent.
    pub sign: Option<SignOptions>,
}

/// Signing with `--sign-key`: a one-pass signature packet before the literal data and a
/// binary-document signature after it, like `gpg --sign --encrypt`.
#[derive(Clone, Debug, Default)]
pub struct SignOptions {
    /// The agent holding the secret key, and its passphrase.
    pub agent: AgentConfig,
    /// Binary keyring (`gpg --export`) holding the signer's certificate.
    pub keyring: Vec<u8>,
    /// The `--sign-key` value: key id or fingerprint (hex).
    pub key: String,
}

/// The signature being computed over the plaintext.
struct SignState {
    signer: sequoia_gpg_agent::KeyPair,
    hash: openpgp::crypto::hash::Context,
}

impl Default for EncryptOptions {
    fn default() -> Self {
        EncryptOptions {
            passphrase: None,
            recipients: Vec::new(),
            keyring: Vec::new(),
            cipher: super::DEFAULT_CIPHER,
            compress: Some(Deflate::DEFAULT),
            compress_algo: CompressionAlgorithm::Zip,
            s2k_hash: super::DEFAULT_S2K_HASH,
            s2k_count: super::DEFAULT_S2K_COUNT,
            mtime: 0,
            sign: None,
        }
    }
}

fn cfg_err(what: impl Into<String>) -> PgpError {
    PgpError::new(PgpErrorKind::Config, what)
}

fn sq_err(kind: PgpErrorKind) -> impl Fn(openpgp::anyhow::Error) -> PgpError {
    move |e| PgpError::new(kind.clone(), one_line(&e))
}

/// The key-encryption key for the passphrase and the S2K it comes from: one salt per process
/// and parameters, the key derived once (`s2k::cached_key`).
fn kek_for(
    passphrase: &str,
    cipher: SymmetricAlgorithm,
    hash: HashAlgorithm,
    count: u32,
) -> Result<(S2K, SessionKey), PgpError> {
    let s2k = super::s2k::session_s2k(hash, count).map_err(sq_err(PgpErrorKind::Config))?;
    let key_size = cipher.key_size().map_err(sq_err(PgpErrorKind::Config))?;
    let kek =
        super::s2k::cached_key(&s2k, passphrase, key_size).map_err(sq_err(PgpErrorKind::Config))?;
    Ok((s2k, kek))
}

/// An SKESK v4 packet carrying `sk` encrypted under the passphrase's (cached) key.
fn skesk_for(
    passphrase: &str,
    cipher: SymmetricAlgorithm,
    hash: HashAlgorithm,
    count: u32,
    sk: &SessionKey,
) -> Result<SKESK4, PgpError> {
    let (s2k, kek) = kek_for(passphrase, cipher, hash, count)?;
    let mut psk = Vec::with_capacity(1 + sk.len());
    psk.push(u8::from(cipher));
    psk.extend_from_slice(sk);
    let mut enc = openpgp::crypto::symmetric::Encryptor::new(
        cipher,
        BlockCipherMode::CFB,
        PaddingMode::None,
        &kek,
        None,
        Vec::new(),
    )
    .map_err(sq_err(PgpErrorKind::Config))?;
    enc.write_all(&psk)?;
    let esk = enc.finalize().map_err(sq_err(PgpErrorKind::Config))?;
    for b in psk.iter_mut() {
        *b = 0;
    }
    SKESK4::new(cipher, s2k, Some(esk.into())).map_err(sq_err(PgpErrorKind::Config))
}

enum Job {
    Ready(Vec<u8>),
    Compressing { raw_len: u64, rx: Receiver<Vec<u8>> },
    Flush(SyncSender<u64>),
}

#[derive(Default)]
struct Progress {
    /// Ciphertext bytes in the file.
    written: AtomicU64,
    /// Bytes handed to the packet layers (which hold back at most a partial body piece each).
    handed: AtomicU64,
    /// Compressor input bytes whose output was handed over.
    raw_done: AtomicU64,
}

/// The file end of the writer stack: counts and hashes what reaches the file.
struct FileSink {
    file: Arc<Mutex<BufWriter<File>>>,
    hasher: Arc<Mutex<VolumeHasher>>,
    progress: Arc<Progress>,
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(buf)?;
        self.hasher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .update(&buf[..n]);
        self.progress.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

type SharedFile = Arc<Mutex<BufWriter<File>>>;

fn flush_file(file: &SharedFile) -> io::Result<()> {
    file.lock().unwrap_or_else(|p| p.into_inner()).flush()
}

/// Per-file summary once the message is complete.
#[derive(Clone, Debug)]
pub struct EncryptSummary {
    /// Bytes in the file, and their SHA-1 and MD5.
    pub digests: Digests,
    /// Plaintext bytes written.
    pub raw_len: u64,
}

/// Encrypts one file as an OpenPGP message while the caller hands over plaintext.
pub struct PgpWriter {
    path: PathBuf,
    /// For flush jobs; the thread ends once this and the packet stream's sender are gone.
    tx: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<Result<(), PgpError>>>,
    hasher: Arc<Mutex<VolumeHasher>>,
    progress: Arc<Progress>,
    /// The literal data packet being written; None once closed.
    literal: Option<PartialBody<PacketStream>>,
    raw_total: u64,
    sign: Option<SignState>,
}

/// The packets inside the encryption, as the compressor's input: sent to the writer thread as
/// they are, or with a deflate level as parallel deflate jobs of `CHUNK` bytes, each primed
/// with the window before it (one deflate stream), except the first of each `SEGMENT`, which
/// follows a `SEGMENT_BREAK`.
struct PacketStream {
    tx: SyncSender<Job>,
    level: Option<Deflate>,
    pending: Vec<u8>,
    primer: Primer,
    /// Bytes handed to compression jobs so far.
    submitted: u64,
    /// Adler-32 of the compressor input, for a ZLIB packet's trailer.
    adler: Option<adler2::Adler32>,
    /// Bytes taken in so far.
    total: u64,
}

impl PacketStream {
    fn send(&self, job: Job) -> io::Result<()> {
        self.tx
            .send(job)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the writer thread stopped"))
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        let Some(level) = self.level else {
            return Ok(());
        };
        let data = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        // a new segment: a break, then a chunk that does not refer back
        let new_segment = self.submitted > 0 && self.submitted % SEGMENT as u64 == 0;
        if new_segment {
            self.primer = Primer::new(self.primer.window_bits());
        }
        self.submitted += data.len() as u64;
        let dict = self.primer.next(&data);
        if let Some(a) = &mut self.adler {
            a.write_slice(&data);
        }
        let raw_len = data.len() as u64;
        let window_bits = self.primer.window_bits();
        let (rtx, rrx) = sync_channel(1);
        compression_pool().spawn(move || {
            let chunk = compress_chunk(&dict, &data, last, level, window_bits);
            let _ = rtx.send(if new_segment {
                [&SEGMENT_BREAK[..], &chunk].concat()
            } else {
                chunk
            });
        });
        self.send(Job::Compressing { raw_len, rx: rrx })
    }

    /// Ends the deflate stream (and adds a ZLIB packet's Adler-32).
    fn finish(mut self) -> io::Result<()> {
        self.submit(true)?;
        if let Some(a) = self.adler.take() {
            self.send(Job::Ready(a.checksum().to_be_bytes().to_vec()))?;
        }
        Ok(())
    }
}

impl Write for PacketStream {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        self.total += n as u64;
        if self.level.is_none() {
            if n > 0 {
                self.send(Job::Ready(data.to_vec()))?;
            }
            return Ok(n);
        }
        while !data.is_empty() {
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                self.submit(false)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The second byte of a zlib header (FLEVEL for `level`, FCHECK making the pair divisible by 31).
fn zlib_flags(level: u32) -> u8 {
    let flevel: u16 = match level {
        0..=1 => 0,
        2..=5 => 1,
        6 => 2,
        _ => 3,
    };
    let flg = flevel << 6;
    let cmf_flg = (0x78u16 << 8) | flg;
    (flg + (31 - cmf_flg % 31) % 31) as u8
}

/// What the compressor's output goes through: the compressed packet (if any) inside the SEIPD
/// packet, down to the file.
enum Layers {
    Compressed(PartialBody<SeipdWriter<FileSink>>),
    Plain(SeipdWriter<FileSink>),
}

impl Write for Layers {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Layers::Compressed(c) => c.write(data),
            Layers::Plain(p) => p.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Layers::Compressed(c) => c.flush(),
            Layers::Plain(p) => p.flush(),
        }
    }
}

impl Layers {
    /// Ends every packet: last lengths, the MDC.
    fn finish(self) -> Result<(), PgpError> {
        let seipd = match self {
            Layers::Compressed(c) => c.finish()?,
            Layers::Plain(p) => p,
        };
        seipd.finish().map_err(sq_err(PgpErrorKind::Io))?;
        Ok(())
    }
}

fn writer_loop(
    mut stack: Layers,
    file: SharedFile,
    rx: Receiver<Job>,
    progress: Arc<Progress>,
) -> Result<(), PgpError> {
    let io = |e: io::Error| PgpError::new(PgpErrorKind::Io, e.to_string());
    for job in rx {
        match job {
            Job::Ready(bytes) => {
                stack.write_all(&bytes).map_err(io)?;
                progress
                    .handed
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                progress
                    .raw_done
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Job::Compressing { raw_len, rx } => {
                let bytes = rx.recv().map_err(|_| {
                    PgpError::new(PgpErrorKind::Io, "a compression job ended without a result")
                })?;
                stack.write_all(&bytes).map_err(io)?;
                progress
                    .handed
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                progress.raw_done.fetch_add(raw_len, Ordering::Relaxed);
            }
            Job::Flush(ack) => {
                // Pushes buffered ciphertext to the file, so that its size and bytes are current.
                stack.flush().map_err(io)?;
                flush_file(&file).map_err(io)?;
                let _ = ack.send(progress.written.load(Ordering::Relaxed));
            }
        }
    }
    stack.finish()?;
    flush_file(&file).map_err(io)?;
    Ok(())
}

/// Looks up the signing key and returns the signing state and the one-pass signature packet.
fn start_signing(so: &SignOptions) -> Result<(SignState, Vec<u8>), PgpError> {
    let certs = keys::parse_certs(&so.keyring);
    let key = keys::signing_key(&certs, &so.key)?;
    let signer = so.agent.keypair(&key)?;
    let hash = agent::SIGN_HASH
        .context()
        .map_err(sq_err(PgpErrorKind::Config))?
        .for_signature(4);
    let mut ops = OnePassSig3::new(SignatureType::Binary);
    ops.set_hash_algo(agent::SIGN_HASH);
    ops.set_pk_algo(key.pk_algo());
    ops.set_issuer(key.keyid());
    ops.set_last(true);
    let bytes = Packet::from(ops)
        .to_vec()
        .map_err(sq_err(PgpErrorKind::Config))?;
    Ok((SignState { signer, hash }, bytes))
}

/// Asks the agent to sign the plaintext's digest; returns the serialized signature packet.
fn finish_signing(mut st: SignState) -> Result<Vec<u8>, PgpError> {
    let sig = SignatureBuilder::new(SignatureType::Binary)
        .sign_hash(&mut st.signer, st.hash)
        .map_err(|e| {
            let why = one_line(&e);
            let kind = if agent::is_bad_passphrase(&why) {
                PgpErrorKind::BadKey
            } else {
                PgpErrorKind::Io
            };
            PgpError::new(kind, format!("signing through gpg-agent failed: {why}"))
        })?;
    Packet::from(sig).to_vec().map_err(sq_err(PgpErrorKind::Io))
}

impl PgpWriter {
    /// Creates `path` and writes the session key packets and the start of the encrypted data.
    pub fn create(path: &Path, opts: &EncryptOptions) -> Result<Self, PgpError> {
        let recipients = resolve_recipients(&opts.keyring, &opts.recipients)?;
        if recipients.is_empty() && opts.passphrase.is_none() {
            return Err(cfg_err("neither a passphrase nor recipients given"));
        }
        let cipher = opts.cipher;
        let key_size = cipher.key_size().map_err(sq_err(PgpErrorKind::Config))?;
        let sk = SessionKey::new(key_size).map_err(sq_err(PgpErrorKind::Config))?;
        let skesk = match &opts.passphrase {
            Some(p) if recipients.is_empty() => {
                Some(skesk_for(p, cipher, opts.s2k_hash, opts.s2k_count, &sk)?)
            }
            _ => None,
        };
        let mut pkesks = Vec::new();
        for r in &recipients {
            let mut p = PKESK3::for_recipient(cipher, &sk, &r.key).map_err(|e| {
                cfg_err(format!(
                    "cannot encrypt to {}: {}",
                    r.key.keyid(),
                    one_line(&e)
                ))
            })?;
            p.set_recipient(if r.hidden { None } else { Some(r.key.keyid()) });
            pkesks.push(p);
        }

        let signing = opts.sign.as_ref().map(start_signing).transpose()?;

        let file = File::create(path)?;
        let hasher = Arc::new(Mutex::new(VolumeHasher::default()));
        let progress = Arc::new(Progress::default());
        let shared: SharedFile = Arc::new(Mutex::new(BufWriter::with_capacity(256 * 1024, file)));
        let mut sink = FileSink {
            file: Arc::clone(&shared),
            hasher: Arc::clone(&hasher),
            progress: Arc::clone(&progress),
        };
        for p in pkesks {
            Packet::from(p)
                .serialize(&mut sink)
                .map_err(sq_err(PgpErrorKind::Io))?;
        }
        if let Some(s) = skesk {
            Packet::from(s)
                .serialize(&mut sink)
                .map_err(sq_err(PgpErrorKind::Io))?;
        }
        let seipd = SeipdWriter::new(sink, cipher, &sk).map_err(sq_err(PgpErrorKind::Config))?;
        let window_bits = match opts.compress_algo {
            CompressionAlgorithm::Zip => ZIP_WINDOW_BITS,
            _ => WINDOW_BITS,
        };
        let (stack, adler) = match opts.compress {
            None => (Layers::Plain(seipd), None),
            Some(level) => {
                let mut c = PartialBody::new(seipd, 8)?; // compressed data packet
                let adler = match opts.compress_algo {
                    CompressionAlgorithm::Zip => {
                        c.write_all(&[1])?; // raw deflate
                        None
                    }
                    CompressionAlgorithm::Zlib => {
                        c.write_all(&[2, 0x78, zlib_flags(level.zlib_equivalent())])?;
                        Some(adler2::Adler32::new())
                    }
                    other => {
                        return Err(PgpError::new(
                            PgpErrorKind::Unsupported,
                            format!("writing {other} compressed packets"),
                        ))
                    }
                };
                (Layers::Compressed(c), adler)
            }
        };

        let (tx, rx) = sync_channel::<Job>(MAX_IN_FLIGHT);
        let p2 = Arc::clone(&progress);
        let thread = std::thread::Builder::new()
            .name("dupcore-pgp-writer".into())
            .spawn(move || writer_loop(stack, shared, rx, p2))?;
        let mut stream = PacketStream {
            tx: tx.clone(),
            level: opts.compress,
            pending: Vec::with_capacity(CHUNK),
            primer: Primer::new(window_bits),
            submitted: 0,
            adler,
            total: 0,
        };
        let (sign, ops) = signing.unzip();
        let mut w = PgpWriter {
            path: path.to_path_buf(),
            tx: Some(tx),
            thread: Some(thread),
            hasher,
            progress,
            literal: None,
            raw_total: 0,
            sign,
        };
        let started = ops
            .map_or(Ok(()), |ops| stream.write_all(&ops))
            .and_then(|()| PartialBody::new(stream, 11)) // literal data packet
            .and_then(|mut l| {
                l.write_all(&[b'b', 0])?;
                l.write_all(&opts.mtime.to_be_bytes())?;
                Ok(l)
            });
        match started {
            Ok(l) => w.literal = Some(l),
            Err(_) => return Err(w.take_thread_error()),
        }
        Ok(w)
    }

    fn send(&mut self, job: Job) -> Result<(), PgpError> {
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(job).is_ok())
            .unwrap_or(false);
        if sent {
            Ok(())
        } else {
            Err(self.take_thread_error())
        }
    }

    /// Waits for the writer thread (all senders gone) and returns what it ended with.
    fn join(&mut self) -> Result<(), PgpError> {
        self.tx = None;
        self.literal = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(PgpError::new(
                PgpErrorKind::Io,
                "the OpenPGP writer thread panicked",
            )),
            None => Err(PgpError::new(
                PgpErrorKind::Io,
                "the OpenPGP writer has already stopped",
            )),
        }
    }

    /// The writer thread's error, after it stopped taking jobs.
    fn take_thread_error(&mut self) -> PgpError {
        match self.join() {
            Err(e) => e,
            Ok(()) => PgpError::new(PgpErrorKind::Io, "the OpenPGP writer has already stopped"),
        }
    }

    /// Appends plaintext.
    pub fn write(&mut self, data: &[u8]) -> Result<(), PgpError> {
        let Some(literal) = &mut self.literal else {
            return Err(PgpError::new(
                PgpErrorKind::Io,
                "write to a closed OpenPGP file",
            ));
        };
        if literal.write_all(data).is_err() {
            return Err(self.take_thread_error());
        }
        self.raw_total += data.len() as u64;
        if let Some(st) = &mut self.sign {
            st.hash.update(data);
        }
        Ok(())
    }

    /// Size the file will have for the data handed over so far (ciphertext written or
    /// buffered, plus an estimate for bytes still being compressed).
    pub fn estimated_size(&self) -> u64 {
        let written = self.progress.written.load(Ordering::Relaxed);
        let handed = self.progress.handed.load(Ordering::Relaxed);
        let raw_done = self.progress.raw_done.load(Ordering::Relaxed);
        let (taken, buffered, compressing) = match &self.literal {
            Some(l) => (l.get_ref().total, l.buffered(), l.get_ref().level.is_some()),
            None => (raw_done, 0, false),
        };
        let queued = taken.saturating_sub(raw_done) + buffered as u64;
        let ratio = match compressing {
            true if raw_done > 0 => (handed as f64 / raw_done as f64).min(1.01),
            _ => 1.0,
        };
        // plus a little for session key packets, packet headers and the MDC
        (handed + 64).max(written) + (queued as f64 * ratio) as u64
    }

    /// Waits until everything handed over so far reached the encryption layer and pushes
    /// complete ciphertext chunks to the file; returns the file's size.
    pub fn flush(&mut self) -> Result<u64, PgpError> {
        let (atx, arx) = sync_channel(1);
        self.send(Job::Flush(atx))?;
        arx.recv().map_err(|_| self.take_thread_error())
    }

    /// Appends `n` bytes copied from the start of the ciphertext written so far (duplicity's
    /// top-off with incompressible data); pads with random bytes if the file is shorter.
    pub fn top_off(&mut self, n: u64) -> Result<(), PgpError> {
        self.flush()?;
        let mut buf = Vec::new();
        File::open(&self.path)?.take(n).read_to_end(&mut buf)?;
        while (buf.len() as u64) < n {
            let mut r = vec![0u8; (n - buf.len() as u64).min(1 << 20) as usize];
            openpgp::crypto::random(&mut r).map_err(sq_err(PgpErrorKind::Io))?;
            buf.extend_from_slice(&r);
        }
        self.write(&buf)
    }

    /// Finishes the message, closes the file and returns its size and digests.
    pub fn close(mut self) -> Result<EncryptSummary, PgpError> {
        let Some(literal) = self.literal.take() else {
            return Err(self.take_thread_error());
        };
        let signature = self.sign.take().map(finish_signing).transpose()?;
        let ended = literal.finish().and_then(|mut stream| {
            if let Some(sig) = &signature {
                stream.write_all(sig)?;
            }
            stream.finish()
        });
        if ended.is_err() {
            return Err(self.take_thread_error());
        }
        self.join()?;
        let digests =
            std::mem::take(&mut *self.hasher.lock().unwrap_or_else(|p| p.into_inner())).finish();
        Ok(EncryptSummary {
            digests,
            raw_len: self.raw_total,
        })
    }
}

impl Drop for PgpWriter {
    fn drop(&mut self) {
        let _ = self.join();
    }
}
