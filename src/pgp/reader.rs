//! Streaming decryption of one OpenPGP file with read-ahead: a thread decrypts, checks the MDC
//! and decompresses while the caller consumes plaintext. A file is good only once read to EOF.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::readahead::{Message, ReadAhead, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use openpgp::cert::amalgamation::key::ValidErasedKeyAmalgamation;
use openpgp::cert::amalgamation::ValidAmalgamation;
use openpgp::crypto::symmetric::{BlockCipherMode, UnpaddingMode};
use openpgp::crypto::{Password, SessionKey};
use openpgp::packet::key::PublicParts;
use openpgp::packet::{Signature, PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationError,
    VerificationHelper, VerifierBuilder,
};
use openpgp::parse::Parse;
use openpgp::policy::Policy;
use openpgp::types::RevocationStatus;
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, KeyHandle};
use sequoia_openpgp as openpgp;

use super::agent::{self, AgentConfig, Unlocked};
use super::keys;
use super::literal;
use super::packets::outline;
use super::s2k;
use super::seipd;
use super::{gpg_policy, one_line, policy, PgpError, PgpErrorKind};

/// Plaintext handed over per read-ahead step.
const STEP: usize = 256 * 1024;
/// Steps decrypted ahead of the decompressing thread.
const AHEAD: usize = 8;
/// MiB of plaintext decoded ahead of the caller by default.
pub const DEFAULT_AHEAD_MIB: usize = 2;

/// Compressed segments inflated at once for a reader allowed `ahead_mib` MiB ahead: one more
/// than the inflate pool's threads from 4 MiB, else one, which inflates serially (a restore
/// of a long chain holds one reader per backup set, each with little read-ahead and a few MiB
/// of segments would weigh on its memory).
fn segments_in_flight(ahead_mib: usize) -> usize {
    if ahead_mib >= 4 {
        crate::deflate::inflate_pool().current_num_threads() + 1
    } else {
        1
    }
}

/// How to decrypt.
#[derive(Clone, Debug, Default)]
pub struct DecryptOptions {
    /// Passphrase for SKESK packets.
    pub passphrase: Option<String>,
    /// Binary keyring with certificates for checking signatures (may be empty).
    pub keyring: Vec<u8>,
    /// gpg-agent holding the secret keys for PKESK packets; None leaves such files to gpg.
    pub agent: Option<AgentConfig>,
    /// Public certificates of the keys whose secret halves the agent holds (`gpg --export`).
    pub secret_keyring: Vec<u8>,
}

/// Decrypts a v4 SKESK with the (cached) derived key: (payload cipher, session key).
fn open_skesk4(
    skesk: &openpgp::packet::skesk::SKESK4,
    passphrase: &str,
) -> openpgp::Result<(SymmetricAlgorithm, SessionKey)> {
    let algo = skesk.symmetric_algo();
    let kek = s2k::cached_key(skesk.s2k(), passphrase, algo.key_size()?)?;
    match skesk.esk()? {
        None => Ok((algo, kek)),
        Some(esk) => {
            let src = buffered_reader::Memory::with_cookie(esk, Default::default());
            let mut dec = openpgp::crypto::symmetric::Decryptor::new(
                algo,
                BlockCipherMode::CFB,
                UnpaddingMode::None,
                &kek,
                None,
                src,
            )?;
            let mut plain: SessionKey = vec![0u8; esk.len()].into();
            dec.read_exact(&mut plain)?;
            let payload = SymmetricAlgorithm::from(plain[0]);
            Ok((payload, plain[1..].into()))
        }
    }
}

struct Helper {
    passphrase: Option<String>,
    certs: Vec<Cert>,
    agent: Option<AgentConfig>,
    secret_certs: Vec<Cert>,
    signers: Vec<String>,
    /// Why no session key was found, kept outside the helper, which a failed builder consumes.
    failure: Arc<Mutex<Option<PgpError>>>,
}

impl Helper {
    fn fail(&self, e: PgpError) -> openpgp::anyhow::Error {
        let msg = e.message.clone();
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        openpgp::Error::MissingSessionKey(msg).into()
    }
}

impl VerificationHelper for Helper {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.certs.clone())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    match r {
                        Ok(good) => self.signers.push(good.ka.key().keyid().to_hex()),
                        Err(VerificationError::BadKey { sig, ka, .. })
                            if good_without_flags(sig, &ka) =>
                        {
                            self.signers.push(ka.key().keyid().to_hex())
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        Ok(())
    }
}

/// A signature sequoia's verifier refused only because the signing key's binding carries no
/// key flags (PGP and early gpg keys): gpg derives the usage from the algorithm and accepts it
/// when the key is alive, unrevoked and the signature checks out.
fn good_without_flags(sig: &Signature, ka: &ValidErasedKeyAmalgamation<'_, PublicParts>) -> bool {
    ka.key_flags().is_none()
        && policy::can_sign(ka)
        && ka.valid_cert().alive().is_ok()
        && ka.alive().is_ok()
        && !matches!(
            ka.valid_cert().revocation_status(),
            RevocationStatus::Revoked(_)
        )
        && !matches!(ka.revocation_status(), RevocationStatus::Revoked(_))
        && sig.signature_alive(None, None).is_ok()
        && sig.verify_document(ka.key()).is_ok()
        && gpg_policy().signature(sig, Default::default()).is_ok()
}

impl DecryptionHelper for Helper {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        if let Some(pass) = self.passphrase.clone() {
            for skesk in skesks {
                let got = match skesk {
                    SKESK::V4(s) => open_skesk4(s, &pass).map(|(a, k)| (Some(a), k)),
                    other => other.decrypt(&Password::from(pass.as_str())),
                };
                if let Ok((algo, sk)) = got {
                    if decrypt(algo, &sk) {
                        return Ok(None);
                    }
                }
            }
        }
        let from_agent = match &self.agent {
            Some(a) if !pkesks.is_empty() => {
                agent::unlock(a, &self.secret_certs, pkesks, sym_algo, decrypt)
            }
            _ => Ok(Unlocked::NoKey("no secret key available in-process".into())),
        };
        let err = match from_agent {
            Ok(Unlocked::Key) => return Ok(None),
            Err(e) => e,
            Ok(Unlocked::NoKey(_)) if !skesks.is_empty() => PgpError::new(
                PgpErrorKind::BadKey,
                "bad passphrase: no session key could be decrypted",
            ),
            // The agent's secret keys (all of gpg's) hold none of the recipients: as gpg says.
            Ok(Unlocked::NoKey(why)) if self.agent.is_some() => {
                PgpError::new(PgpErrorKind::BadKey, why)
            }
            Ok(Unlocked::NoKey(why)) => PgpError::new(PgpErrorKind::Unsupported, why),
            Ok(Unlocked::Refused(why)) if agent::is_bad_passphrase(&why) => PgpError::new(
                PgpErrorKind::BadKey,
                format!("bad passphrase for the secret key ({why})"),
            ),
            Ok(Unlocked::Refused(why)) => PgpError::new(
                PgpErrorKind::BadKey,
                format!("gpg-agent could not decrypt the session key: {why}"),
            ),
        };
        Err(self.fail(err))
    }
}

/// What the decrypting thread sends: plaintext, then the good signers, or the failure.
/// Where the reader thread sends plaintext, the signers at the end, or the failure.
type StepSender = Sender<Vec<String>, PgpError>;

fn classify(e: &openpgp::anyhow::Error, failure: Option<PgpError>) -> PgpError {
    if let Some(f) = failure {
        return f;
    }
    for c in e.chain() {
        if let Some(openpgp::Error::ManipulatedMessage) = c.downcast_ref::<openpgp::Error>() {
            return PgpError::new(
                PgpErrorKind::Corrupt,
                "integrity check (MDC) failed: the data was modified or damaged",
            );
        }
        if let Some(io) = c.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::UnexpectedEof {
                return PgpError::new(
                    PgpErrorKind::Corrupt,
                    "truncated OpenPGP data (unexpected end of file)",
                );
            }
        }
    }
    PgpError::new(
        PgpErrorKind::Corrupt,
        format!("decryption failed: {}", one_line(e)),
    )
}

fn io_classify(e: io::Error) -> PgpError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return PgpError::new(
            PgpErrorKind::Corrupt,
            "truncated OpenPGP data (unexpected end of file)",
        );
    }
    let any = match e.into_inner() {
        Some(inner) => openpgp::anyhow::Error::from_boxed(inner),
        None => return PgpError::new(PgpErrorKind::Corrupt, "decryption failed"),
    };
    classify(&any, None)
}

/// Sends the plaintext of `reader` in steps: `Ok(true)` at its clean end, `Ok(false)` if the
/// receiver left, the read error otherwise (for the caller to report).
fn pump(reader: &mut impl Read, tx: &StepSender) -> io::Result<bool> {
    loop {
        let mut buf = vec![0u8; STEP];
        let mut got = 0;
        let mut eof = false;
        while got < STEP {
            match reader.read(&mut buf[got..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(got);
        if got > 0 && tx.send(Message::Data(buf)).is_err() {
            return Ok(false);
        }
        if eof {
            return Ok(true);
        }
    }
}

/// The reader thread. sequoia's packet parser is third-party code fed with data from remote
/// storage: should it panic on some malformed input, the file ends with a `Corrupt` error
/// naming the cause instead of a dead thread.
fn read_ahead(path: PathBuf, opts: DecryptOptions, tx: StepSender, notes: Notes, in_flight: usize) {
    let tx2 = tx.clone();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        read_file(path, opts, tx, notes, in_flight)
    }));
    if let Err(payload) = run {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no detail".into());
        let _ = tx2.send(Message::Failed(PgpError::new(
            PgpErrorKind::Corrupt,
            format!("malformed OpenPGP data: the packet parser stopped ({what})"),
        )));
    }
}

fn read_file(path: PathBuf, opts: DecryptOptions, tx: StepSender, notes: Notes, in_flight: usize) {
    let failure = Arc::new(Mutex::new(None));
    let helper = Helper {
        passphrase: opts.passphrase,
        certs: keys::parse_certs(&opts.keyring),
        agent: opts.agent,
        secret_certs: keys::parse_certs(&opts.secret_keyring),
        signers: Vec::new(),
        failure: Arc::clone(&failure),
    };
    let open = || File::open(&path).map(|f| BufReader::with_capacity(256 * 1024, f));
    let file = match open() {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.send(Message::Failed(e.into()));
            return;
        }
    };
    match seipd::open(file) {
        Ok(Some(envelope)) => read_seipd(envelope, helper, failure, tx, notes, in_flight),
        Ok(None) => match open() {
            Ok(f) => read_with_sequoia(f, helper, failure, tx),
            Err(e) => {
                let _ = tx.send(Message::Failed(e.into()));
            }
        },
        Err(e) => {
            let _ = tx.send(Message::Failed(classify(&e, None)));
        }
    }
}

fn take(failure: &Mutex<Option<PgpError>>) -> Option<PgpError> {
    failure.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Any message sequoia's decryptor reads (AEAD packets and the like): one thread.
fn read_with_sequoia(
    file: BufReader<File>,
    helper: Helper,
    failure: Arc<Mutex<Option<PgpError>>>,
    tx: StepSender,
) {
    let policy = gpg_policy();
    let built = DecryptorBuilder::from_reader(file)
        .map(|b| b.buffer_size(1 << 20))
        .and_then(|b| b.with_policy(&policy, None, helper));
    let mut dec = match built {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(Message::Failed(classify(&e, take(&failure))));
            return;
        }
    };
    match pump(&mut dec, &tx) {
        Ok(true) => {
            let signers = dec.into_helper().signers;
            let _ = tx.send(Message::End(signers));
        }
        Ok(false) => {}
        Err(e) => {
            let _ = tx.send(Message::Failed(io_classify(e)));
        }
    }
}

/// Plaintext chunks from the decrypting thread to the one parsing the packets inside.
enum Chunk {
    Data(Vec<u8>),
    /// The MDC matched: the plaintext is complete.
    End,
    Failed(io::Error),
}

/// The inner packets as a reader over the decrypting thread's chunks; a hang-up without
/// `End` is an error, so only a verified MDC ends the stream.
struct ChunkReader {
    rx: Mutex<Receiver<Chunk>>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        literal::read_buffered(self, buf)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.cur.len() {
            if self.ended {
                return Ok(&[]);
            }
            let got = self.rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
            match got {
                Ok(Chunk::Data(d)) => {
                    self.cur = d;
                    self.pos = 0;
                }
                Ok(Chunk::End) => self.ended = true,
                Ok(Chunk::Failed(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("the decrypting thread stopped")),
            }
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.cur.len());
    }
}

/// Decrypts with the MDC check on its own thread, to the end even if nobody listens any more
/// (so a damaged file is reported as such); records the outcome in `failure`.
fn decrypt_to_end(
    mut mdc: seipd::MdcReader<'static>,
    tx: SyncSender<Chunk>,
    failure: &Mutex<Option<PgpError>>,
    abandoned: &AtomicBool,
    notes: &Notes,
) {
    let mut listening = true;
    loop {
        if abandoned.load(Ordering::Relaxed) {
            return;
        }
        let mut buf = vec![0u8; STEP];
        let mut got = 0;
        let res = loop {
            match mdc.read(&mut buf[got..]) {
                Ok(0) => break Ok(true),
                Ok(n) => {
                    got += n;
                    if got == STEP {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        buf.truncate(got);
        if listening && got > 0 {
            listening = tx.send(Chunk::Data(buf)).is_ok();
        }
        match res {
            Ok(false) => {}
            Ok(true) => {
                let _ = tx.send(Chunk::End);
                return;
            }
            Err(e) => {
                let mdc = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<seipd::MdcFailure>());
                if mdc == Some(&seipd::MdcFailure::Mismatch) {
                    // Every plaintext byte is out and only the checksum differs: duplicity
                    // passes --ignore-mdc-error, with which gpg delivers the data and warns.
                    notes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(MDC_IGNORED.into());
                    let _ = tx.send(Chunk::End);
                    return;
                }
                let mdc_failed = mdc.is_some();
                let why = if mdc_failed {
                    mdc_error()
                } else {
                    io_classify(io::Error::new(e.kind(), e.to_string()))
                };
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                let _ = tx.send(Chunk::Failed(e));
                return;
            }
        }
    }
}

/// Shared between the reader and its threads: what is worth a warning though the file reads.
type Notes = Arc<Mutex<Vec<String>>>;

/// The warning for a file whose MDC does not match (read as gpg --ignore-mdc-error reads it).
pub const MDC_IGNORED: &str = "integrity check (MDC) failed: the data was modified or damaged; \
     read anyway, as gpg does with duplicity's --ignore-mdc-error";

fn mdc_error() -> PgpError {
    PgpError::new(
        PgpErrorKind::Corrupt,
        "integrity check (MDC) failed: the data was modified or damaged",
    )
}

/// SEIPD v1, the common case: one thread decrypts and checks the MDC, this one decompresses
/// and checks signatures (sequoia's verifier over the inner packets).
fn read_seipd(
    mut envelope: seipd::Envelope,
    mut helper: Helper,
    failure: Arc<Mutex<Option<PgpError>>>,
    tx: StepSender,
    notes: Notes,
    in_flight: usize,
) {
    let pkesks = std::mem::take(&mut envelope.pkesks);
    let skesks = std::mem::take(&mut envelope.skesks);
    let mut chosen = None;
    let found = helper.decrypt(&pkesks, &skesks, None, &mut |algo, key| match algo {
        Some(a) if envelope.quick_check(a, key) => {
            chosen = Some((a, key.clone()));
            true
        }
        _ => false,
    });
    let (algo, key) = match (found, chosen) {
        (Ok(_), Some(c)) => c,
        (Err(e), _) => {
            let _ = tx.send(Message::Failed(classify(&e, take(&failure))));
            return;
        }
        (Ok(_), None) => {
            let _ = tx.send(Message::Failed(PgpError::new(
                PgpErrorKind::BadKey,
                "no session key decrypts the data",
            )));
            return;
        }
    };
    let mdc = match envelope.decrypt(algo, &key) {
        Ok(m) => m,
        Err(e) => {
            let _ = tx.send(Message::Failed(classify(&e, None)));
            return;
        }
    };
    let (ctx, crx) = sync_channel(AHEAD);
    let f2 = Arc::clone(&failure);
    let noted = Arc::clone(&notes);
    let abandoned = Arc::new(AtomicBool::new(false));
    let a2 = Arc::clone(&abandoned);
    let decrypting = match std::thread::Builder::new()
        .name("dupcore-pgp-decrypt".into())
        .spawn(move || decrypt_to_end(mdc, ctx, &f2, &a2, &notes))
    {
        Ok(t) => t,
        Err(e) => {
            let _ = tx.send(Message::Failed(e.into()));
            return;
        }
    };
    let inner = ChunkReader {
        rx: Mutex::new(crx),
        cur: Vec::new(),
        pos: 0,
        ended: false,
    };
    // On any failure here, let the decrypting thread finish: a failed MDC explains it best,
    // also when only the checksum differed (which alone would be a warning).
    let settle = |decrypting: JoinHandle<()>, own: PgpError| {
        let _ = decrypting.join();
        let mdc_differs = noted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|n| n == MDC_IGNORED);
        take(&failure).unwrap_or(if mdc_differs { mdc_error() } else { own })
    };
    let inner = match literal::open(inner, in_flight) {
        Ok(literal::Opened::Literal(lit)) => {
            // unsigned, as gpg writes it: no verifier needed
            let ending = Ending {
                tx: &tx,
                decrypting,
                abandoned: &abandoned,
            };
            return ending.deliver(lit, |_| Vec::new(), settle);
        }
        Ok(literal::Opened::Other(replay)) => replay,
        Err(e) => {
            let own = io_classify(e);
            let _ = tx.send(Message::Failed(settle(decrypting, own)));
            return;
        }
    };
    let policy = gpg_policy();
    let built = VerifierBuilder::from_reader(inner)
        .map(|b| b.buffer_size(1 << 20))
        .and_then(|b| b.with_policy(&policy, None, helper));
    let ver = match built {
        Ok(v) => v,
        Err(e) => {
            let own = classify(&e, None);
            let _ = tx.send(Message::Failed(settle(decrypting, own)));
            return;
        }
    };
    let ending = Ending {
        tx: &tx,
        decrypting,
        abandoned: &abandoned,
    };
    ending.deliver(ver, |v| v.into_helper().signers, settle);
}

/// How a SEIPD file's plaintext reader ends: the caller, the decrypting thread, and the flag
/// that stops it.
struct Ending<'a> {
    tx: &'a StepSender,
    decrypting: JoinHandle<()>,
    abandoned: &'a AtomicBool,
}

impl Ending<'_> {
    /// Sends `reader`'s data to the caller; then the end with the signers `signers` takes from
    /// it, or the error `settle` picks once the decrypting thread is done, or (the caller
    /// closed the file early) stops the decrypting thread.
    fn deliver<Rd: Read>(
        self,
        mut reader: Rd,
        signers: impl FnOnce(Rd) -> Vec<String>,
        settle: impl FnOnce(JoinHandle<()>, PgpError) -> PgpError,
    ) {
        match pump(&mut reader, self.tx) {
            Ok(true) => {
                let signers = signers(reader);
                let _ = self.decrypting.join();
                let _ = self.tx.send(Message::End(signers));
            }
            Ok(false) => {
                self.abandoned.store(true, Ordering::Relaxed);
                drop(reader);
                let _ = self.decrypting.join();
            }
            Err(e) => {
                drop(reader);
                let own = io_classify(e);
                let _ = self.tx.send(Message::Failed(settle(self.decrypting, own)));
            }
        }
    }
}

/// Reads the plaintext of an encrypted file, decrypted ahead on its own thread.
pub struct PgpReader {
    inner: ReadAhead<Vec<String>, PgpError>,
    notes: Notes,
}

fn stopped() -> PgpError {
    PgpError::new(PgpErrorKind::Io, "the OpenPGP reader thread stopped")
}

impl PgpReader {
    /// Opens `path`; `Unsupported` errors mean stock gpg should read this file instead.
    pub fn open(path: &Path, opts: DecryptOptions) -> Result<Self, PgpError> {
        Self::open_with_ahead(path, opts, DEFAULT_AHEAD_MIB)
    }

    /// Like [`PgpReader::open`], decoding up to `ahead_mib` MiB of plaintext ahead.
    pub fn open_with_ahead(
        path: &Path,
        opts: DecryptOptions,
        ahead_mib: usize,
    ) -> Result<Self, PgpError> {
        let o = outline(BufReader::new(File::open(path)?)).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput => PgpError::new(PgpErrorKind::Unsupported, e.to_string()),
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                PgpError::new(PgpErrorKind::Corrupt, e.to_string())
            }
            _ => e.into(),
        })?;
        match o.data_tag {
            // SEIPD (with MDC), and SED without MDC as gpg 1.x wrote it by default.
            18 | 9 => {}
            0 => {
                return Err(PgpError::new(
                    PgpErrorKind::Corrupt,
                    "no encrypted data in the file (empty or truncated)",
                ))
            }
            _ => {
                return Err(PgpError::new(
                    PgpErrorKind::Unsupported,
                    format!("{} is read by gpg", o.data_name()),
                ))
            }
        }
        if o.skesk == 0 && opts.agent.is_none() {
            return Err(PgpError::new(
                PgpErrorKind::Unsupported,
                "public-key encrypted and no gpg-agent given",
            ));
        }
        if o.skesk > 0 && o.pkesk_key_ids.is_empty() && opts.passphrase.is_none() {
            return Err(PgpError::new(
                PgpErrorKind::Unsupported,
                "no passphrase given",
            ));
        }
        let p = path.to_path_buf();
        let notes: Notes = Arc::default();
        let n2 = Arc::clone(&notes);
        let steps = (ahead_mib.max(1) << 20) / STEP;
        let inner = ReadAhead::spawn("dupcore-pgp-reader", steps, stopped, move |tx| {
            read_ahead(p, opts, tx, n2, segments_in_flight(ahead_mib))
        })?;
        let mut r = PgpReader { inner, notes };
        // Fail now on a wrong passphrase, before the caller sees any plaintext.
        r.inner.fill()?;
        Ok(r)
    }

    /// Up to `n` plaintext bytes (`None`: everything left); empty at the clean end.
    pub fn read(&mut self, n: Option<usize>) -> Result<Vec<u8>, PgpError> {
        match n {
            Some(n) => {
                let mut out = Vec::new();
                while out.len() < n && self.inner.fill()? {
                    let avail = self.inner.buffered().len();
                    if out.is_empty() && avail <= n {
                        out = self.inner.take_piece(); // a whole piece: no copy
                    } else {
                        let take = (n - out.len()).min(avail);
                        out.extend_from_slice(&self.inner.buffered()[..take]);
                        self.inner.consume(take);
                    }
                }
                Ok(out)
            }
            None => {
                let mut out = Vec::new();
                while self.inner.fill()? {
                    if out.is_empty() {
                        out = self.inner.take_piece();
                    } else {
                        out.extend_from_slice(&self.inner.take_piece());
                    }
                }
                Ok(out)
            }
        }
    }

    /// Makes plaintext available in `buffered()`; false at the clean end (MDC checked).
    pub fn fill(&mut self) -> Result<bool, PgpError> {
        self.inner.fill()
    }

    /// Plaintext available without waiting for the read-ahead thread.
    pub fn buffered(&self) -> &[u8] {
        self.inner.buffered()
    }

    /// Marks `n` bytes of `buffered()` as read.
    pub fn consume(&mut self, n: usize) {
        self.inner.consume(n)
    }

    /// Discards everything up to the end, which checks the MDC; errors if the file is bad.
    pub fn drain(&mut self) -> Result<(), PgpError> {
        while self.inner.fill()? {
            self.inner.take_piece();
        }
        Ok(())
    }

    /// Plaintext bytes handed out so far.
    pub fn tell(&self) -> u64 {
        self.inner.tell()
    }

    /// What is worth a warning though the file reads (a failed MDC, read as gpg does).
    pub fn warnings(&self) -> Vec<String> {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Key ids (16 hex digits) of good signatures, once the end was reached.
    pub fn signers(&self) -> Option<&[String]> {
        self.inner.end().map(Vec::as_slice)
    }

    /// Stops the read-ahead.
    pub fn close(&mut self) {
        self.inner.close()
    }
}
