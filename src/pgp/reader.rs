//! Streaming decryption of one OpenPGP file with read-ahead: a thread decrypts, checks the MDC
//! and decompresses while the caller consumes plaintext. A file is good only once read to EOF.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use openpgp::crypto::symmetric::{BlockCipherMode, UnpaddingMode};
use openpgp::crypto::{Password, SessionKey, S2K};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, KeyHandle};
use sequoia_openpgp as openpgp;

use super::agent::{self, AgentConfig, Unlocked};
use super::packets::outline;
use super::s2k;
use super::{one_line, read_policy, PgpError, PgpErrorKind};

/// Plaintext handed over per read-ahead step.
const STEP: usize = 256 * 1024;
/// Steps decrypted ahead of the caller.
const AHEAD: usize = 8;

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

type DerivedEntry = (S2K, String, usize, SessionKey);

/// Keys derived from passphrases, by S2K parameters: files written by one dupcore process
/// share their S2K salt, so a restore derives once instead of once per volume.
fn derived_cache() -> &'static Mutex<Vec<DerivedEntry>> {
    static CACHE: OnceLock<Mutex<Vec<DerivedEntry>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Vec::new()))
}

fn derive(s2k: &S2K, passphrase: &str, size: usize) -> openpgp::Result<SessionKey> {
    {
        let cache = derived_cache().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = cache
            .iter()
            .find(|e| &e.0 == s2k && e.1 == passphrase && e.2 == size)
        {
            return Ok(e.3.clone());
        }
    }
    let key = s2k::derive_key(s2k, passphrase, size)?;
    let mut cache = derived_cache().lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= 16 {
        cache.remove(0);
    }
    cache.push((s2k.clone(), passphrase.to_string(), size, key.clone()));
    Ok(key)
}

/// Decrypts a v4 SKESK with the (cached) derived key: (payload cipher, session key).
fn open_skesk4(
    skesk: &openpgp::packet::skesk::SKESK4,
    passphrase: &str,
) -> openpgp::Result<(SymmetricAlgorithm, SessionKey)> {
    let algo = skesk.symmetric_algo();
    let kek = derive(skesk.s2k(), passphrase, algo.key_size()?)?;
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
                for r in results.into_iter().flatten() {
                    self.signers.push(r.ka.key().keyid().to_hex());
                }
            }
        }
        Ok(())
    }
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

enum Step {
    Data(Vec<u8>),
    End(Vec<String>),
    Failed(PgpError),
}

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

fn read_ahead(path: PathBuf, opts: DecryptOptions, tx: std::sync::mpsc::SyncSender<Step>) {
    let policy = read_policy();
    let failure = Arc::new(Mutex::new(None));
    let helper = Helper {
        passphrase: opts.passphrase,
        certs: agent::parse_certs(&opts.keyring),
        agent: opts.agent,
        secret_certs: agent::parse_certs(&opts.secret_keyring),
        signers: Vec::new(),
        failure: Arc::clone(&failure),
    };
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.send(Step::Failed(e.into()));
            return;
        }
    };
    let built = DecryptorBuilder::from_reader(BufReader::with_capacity(256 * 1024, file))
        .map(|b| b.buffer_size(1 << 20))
        .and_then(|b| b.with_policy(&policy, None, helper));
    let mut dec = match built {
        Ok(d) => d,
        Err(e) => {
            let why = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
            let _ = tx.send(Step::Failed(classify(&e, why)));
            return;
        }
    };
    loop {
        let mut buf = vec![0u8; STEP];
        let mut got = 0;
        let mut eof = false;
        while got < STEP {
            match dec.read(&mut buf[got..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Step::Failed(io_classify(e)));
                    return;
                }
            }
        }
        buf.truncate(got);
        if got > 0 && tx.send(Step::Data(buf)).is_err() {
            return;
        }
        if eof {
            let signers = dec.into_helper().signers;
            let _ = tx.send(Step::End(signers));
            return;
        }
    }
}

/// Reads the plaintext of an encrypted file, decrypted ahead on its own thread.
pub struct PgpReader {
    rx: Option<Mutex<Receiver<Step>>>,
    thread: Option<JoinHandle<()>>,
    buf: Vec<u8>,
    pos: usize,
    offset: u64,
    signers: Option<Vec<String>>,
    error: Option<PgpError>,
}

impl PgpReader {
    /// Opens `path`; `Unsupported` errors mean stock gpg should read this file instead.
    pub fn open(path: &Path, opts: DecryptOptions) -> Result<Self, PgpError> {
        let o = outline(BufReader::new(File::open(path)?)).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput => PgpError::new(PgpErrorKind::Unsupported, e.to_string()),
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                PgpError::new(PgpErrorKind::Corrupt, e.to_string())
            }
            _ => e.into(),
        })?;
        match o.data_tag {
            18 => {}
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
        let (tx, rx) = sync_channel(AHEAD);
        let p = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("dupcore-pgp-reader".into())
            .spawn(move || read_ahead(p, opts, tx))?;
        let mut r = PgpReader {
            rx: Some(Mutex::new(rx)),
            thread: Some(thread),
            buf: Vec::new(),
            pos: 0,
            offset: 0,
            signers: None,
            error: None,
        };
        // Fail now on a wrong passphrase, before the caller sees any plaintext.
        r.fill()?;
        Ok(r)
    }

    fn fill(&mut self) -> Result<(), PgpError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.pos < self.buf.len() || self.signers.is_some() {
            return Ok(());
        }
        let Some(rx) = &self.rx else {
            return Err(PgpError::new(
                PgpErrorKind::Io,
                "read from a closed OpenPGP file",
            ));
        };
        let got = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match got {
            Ok(Step::Data(d)) => {
                self.buf = d;
                self.pos = 0;
                Ok(())
            }
            Ok(Step::End(s)) => {
                self.signers = Some(s);
                Ok(())
            }
            Ok(Step::Failed(e)) => {
                self.error = Some(e.clone());
                Err(e)
            }
            Err(_) => {
                let e = PgpError::new(PgpErrorKind::Io, "the OpenPGP reader thread stopped");
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Up to `n` plaintext bytes (`None`: everything left); empty at the clean end.
    pub fn read(&mut self, n: Option<usize>) -> Result<Vec<u8>, PgpError> {
        let mut out = Vec::new();
        loop {
            let want = n.map(|n| n - out.len());
            if want == Some(0) {
                break;
            }
            self.fill()?;
            if self.pos >= self.buf.len() {
                break; // end of data
            }
            let avail = self.buf.len() - self.pos;
            let take = want.map_or(avail, |w| w.min(avail));
            if out.is_empty() && take == avail && self.pos == 0 {
                out = std::mem::take(&mut self.buf);
                self.pos = 0;
            } else {
                out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
                self.pos += take;
            }
            self.offset += take as u64;
            if n.is_some() && self.pos < self.buf.len() {
                break;
            }
        }
        Ok(out)
    }

    /// Plaintext available without waiting for the read-ahead thread.
    pub fn buffered(&self) -> &[u8] {
        if self.error.is_some() {
            return &[];
        }
        &self.buf[self.pos.min(self.buf.len())..]
    }

    /// Marks `n` bytes of `buffered()` as read.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len().saturating_sub(self.pos));
        self.pos += n;
        self.offset += n as u64;
    }

    /// Discards everything up to the end, which checks the MDC; errors if the file is bad.
    pub fn drain(&mut self) -> Result<(), PgpError> {
        loop {
            self.fill()?;
            if self.pos >= self.buf.len() {
                return Ok(());
            }
            self.offset += (self.buf.len() - self.pos) as u64;
            self.pos = self.buf.len();
        }
    }

    /// Plaintext bytes handed out so far.
    pub fn tell(&self) -> u64 {
        self.offset
    }

    /// Key ids (16 hex digits) of good signatures, once the end was reached.
    pub fn signers(&self) -> Option<&[String]> {
        self.signers.as_deref()
    }

    /// Stops the read-ahead.
    pub fn close(&mut self) {
        self.rx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PgpReader {
    fn drop(&mut self) {
        self.close();
    }
}
