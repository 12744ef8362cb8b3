//! In-process OpenPGP for duplicity's `gpg.GPGFile`/`GPGWriteFile`: `PgpWriter`, `PgpReader`.

use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::volume::PyWriteSummary;
use pyo3::types::PyBytes;

use sequoia_openpgp::types::CompressionAlgorithm;

use super::volume::to_path;
use crate::hash::to_hex;
use crate::pgp::{
    cipher_from_name, hash_from_name, AgentConfig, DecryptOptions, EncryptOptions, PgpError,
    PgpErrorKind, PgpReader, PgpWriter, SignOptions, DEFAULT_CIPHER, DEFAULT_S2K_COUNT,
    DEFAULT_S2K_HASH,
};

/// The agent settings from the `agent_socket` / `agent_passphrase` arguments.
fn agent_config(socket: Option<String>, passphrase: Option<String>) -> Option<AgentConfig> {
    socket.map(|s| AgentConfig {
        socket: s.into(),
        passphrase,
    })
}

/// An encrypted file being written (OpenPGP message, hashed as it reaches the disk).
#[pyclass(name = "PgpWriter", module = "dupcore._core")]
struct PyPgpWriter {
    inner: Option<PgpWriter>,
}

impl PyPgpWriter {
    fn get(&mut self) -> PyResult<&mut PgpWriter> {
        self.inner
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("I/O operation on closed OpenPGP file"))
    }
}

#[pymethods]
impl PyPgpWriter {
    /// Creates `path`: symmetric with `passphrase`, or to `recipients` [(keyid, hidden)];
    /// signed with `sign_key` (found in `sign_keyring`) through the agent at `agent_socket`.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (path, passphrase=None, recipients=Vec::new(), keyring=Vec::new(),
                        cipher=None, compress_level=Some(crate::deflate::DEFAULT_LEVEL),
                        s2k_digest=None, s2k_count=None, mtime=0, sign_key=None, sign_keyring=Vec::new(),
                        agent_socket=None, agent_passphrase=None, compress_algo="zip",
                        compress_engine="zlib-rs"))]
    fn new(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        passphrase: Option<String>,
        recipients: Vec<(String, bool)>,
        keyring: Vec<u8>,
        cipher: Option<&str>,
        compress_level: Option<u32>,
        s2k_digest: Option<&str>,
        s2k_count: Option<u32>,
        mtime: u32,
        sign_key: Option<String>,
        sign_keyring: Vec<u8>,
        agent_socket: Option<String>,
        agent_passphrase: Option<String>,
        compress_algo: &str,
        compress_engine: &str,
    ) -> PyResult<Self> {
        let compress_algo = match compress_algo.to_ascii_lowercase().as_str() {
            "zip" | "1" => CompressionAlgorithm::Zip,
            "zlib" | "2" => CompressionAlgorithm::Zlib,
            other => {
                return Err(PyErr::from(PgpError::new(
                    PgpErrorKind::Unsupported,
                    format!("writing {other} compressed packets"),
                )))
            }
        };
        let unsupported =
            |what: String| PyErr::from(PgpError::new(PgpErrorKind::Unsupported, what));
        let cipher = match cipher {
            None => DEFAULT_CIPHER,
            Some(c) => cipher_from_name(c).ok_or_else(|| unsupported(format!("cipher {c}")))?,
        };
        let s2k_hash = match s2k_digest {
            None => DEFAULT_S2K_HASH,
            Some(d) => hash_from_name(d).ok_or_else(|| unsupported(format!("S2K digest {d}")))?,
        };
        // gpg clamps larger counts to the largest the format encodes
        let s2k_count = s2k_count.map_or(DEFAULT_S2K_COUNT, |c| c.min(DEFAULT_S2K_COUNT));
        let compress = compress_level
            .map(|l| super::deflate::deflate_setting(compress_engine, l))
            .transpose()?;
        let opts = EncryptOptions {
            passphrase,
            recipients,
            keyring,
            cipher,
            compress,
            compress_algo,
            s2k_hash,
            s2k_count,
            mtime,
            sign: match (sign_key, agent_config(agent_socket, agent_passphrase)) {
                (Some(key), Some(agent)) => Some(SignOptions {
                    agent,
                    keyring: sign_keyring,
                    key,
                }),
                (Some(_), None) => {
                    return Err(PyValueError::new_err("sign_key needs agent_socket"));
                }
                (None, _) => None,
            },
        };
        let p = to_path(path)?;
        let w = py.detach(|| PgpWriter::create(&p, &opts))?;
        Ok(PyPgpWriter { inner: Some(w) })
    }

    /// Appends plaintext; returns its length.
    fn write(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<usize> {
        let w = self.get()?;
        py.detach(|| w.write(data))?;
        Ok(data.len())
    }

    /// Bytes in the file plus an estimate for bytes still being compressed and encrypted.
    fn estimated_size(&mut self) -> PyResult<u64> {
        Ok(self.get()?.estimated_size())
    }

    /// Waits until all data handed over is in the file; returns the file size.
    fn flush(&mut self, py: Python<'_>) -> PyResult<u64> {
        let w = self.get()?;
        Ok(py.detach(|| w.flush())?)
    }

    /// Appends `n` bytes copied from the start of the ciphertext (duplicity's top-off).
    fn top_off(&mut self, py: Python<'_>, n: u64) -> PyResult<()> {
        let w = self.get()?;
        Ok(py.detach(|| w.top_off(n))?)
    }

    /// Finishes the message; returns its size, digests and plaintext size.
    fn close(&mut self, py: Python<'_>) -> PyResult<PyWriteSummary> {
        let w = self
            .inner
            .take()
            .ok_or_else(|| PyValueError::new_err("OpenPGP file already closed"))?;
        let s = py.detach(|| w.close())?;
        Ok(PyWriteSummary {
            size: s.digests.len,
            sha1: to_hex(&s.digests.sha1),
            md5: to_hex(&s.digests.md5),
            raw_size: s.raw_len,
        })
    }

    /// Drops the file without finishing the message.
    fn abort(&mut self, py: Python<'_>) {
        if let Some(w) = self.inner.take() {
            py.detach(|| drop(w));
        }
    }

    /// Whether `close` (or `abort`) has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_none()
    }
}

/// A `PgpReader` shared by its Python object and the restore engine, which reads it
/// directly (without the GIL) while duplicity's `GPGFile` keeps it for `close()`.
pub(super) type SharedPgpReader = Arc<Mutex<Option<PgpReader>>>;

/// Locks `shared`, whoever panicked while holding it.
pub(super) fn lock_reader(shared: &SharedPgpReader) -> MutexGuard<'_, Option<PgpReader>> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// The reader of `obj` when it is an open `PgpReader`, shared with it.
pub(super) fn share_pgp_reader(obj: &Bound<'_, PyAny>) -> Option<SharedPgpReader> {
    let r = obj.cast::<PyPgpReader>().ok()?.try_borrow().ok()?;
    let open = lock_reader(&r.inner).is_some();
    open.then(|| Arc::clone(&r.inner))
}

/// An encrypted file read sequentially, decrypted ahead on a background thread.
#[pyclass(name = "PgpReader", module = "dupcore._core")]
struct PyPgpReader {
    inner: SharedPgpReader,
}

impl PyPgpReader {
    /// Runs `f` on the open reader.
    fn with<T>(&self, f: impl FnOnce(&mut PgpReader) -> PyResult<T>) -> PyResult<T> {
        match lock_reader(&self.inner).as_mut() {
            Some(r) => f(r),
            None => Err(PyValueError::new_err(
                "I/O operation on closed OpenPGP file",
            )),
        }
    }
}

#[pymethods]
impl PyPgpReader {
    /// Opens `path`; raises an OpenPGPError (OpenPGPUnsupported when gpg must read it).
    #[new]
    /// `keyring` holds certificates for checking signatures; PKESK packets are decrypted by the
    /// agent at `agent_socket` with the keys in `secret_keyring`; up to `ahead` MiB of
    /// plaintext are decoded ahead of the reads.
    #[pyo3(signature = (path, passphrase=None, keyring=Vec::new(), agent_socket=None,
                        agent_passphrase=None, secret_keyring=Vec::new(),
                        ahead=crate::pgp::DEFAULT_AHEAD_MIB))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        passphrase: Option<String>,
        keyring: Vec<u8>,
        agent_socket: Option<String>,
        agent_passphrase: Option<String>,
        secret_keyring: Vec<u8>,
        ahead: usize,
    ) -> PyResult<Self> {
        let p = to_path(path)?;
        let opts = DecryptOptions {
            passphrase,
            keyring,
            agent: agent_config(agent_socket, agent_passphrase),
            secret_keyring,
        };
        let r = py.detach(|| PgpReader::open_with_ahead(&p, opts, ahead))?;
        Ok(PyPgpReader {
            inner: Arc::new(Mutex::new(Some(r))),
        })
    }

    /// Up to `size` plaintext bytes (all remaining when negative); empty at the clean end.
    #[pyo3(signature = (size=-1))]
    fn read<'py>(&mut self, py: Python<'py>, size: i64) -> PyResult<Bound<'py, PyBytes>> {
        self.with(|r| {
            let n = usize::try_from(size).ok();
            if let Some(n) = n {
                // Small reads (tar headers, short members) served from the buffer keep the GIL.
                if n <= r.buffered().len() {
                    let b = PyBytes::new(py, &r.buffered()[..n]);
                    r.consume(n);
                    return Ok(b);
                }
            }
            let out = py.detach(|| r.read(n))?;
            Ok(PyBytes::new(py, &out))
        })
    }

    /// Reads to the end (checking the MDC) and discards the data.
    fn drain(&mut self, py: Python<'_>) -> PyResult<()> {
        self.with(|r| Ok(py.detach(|| r.drain())?))
    }

    /// Plaintext bytes handed out so far.
    fn tell(&mut self) -> PyResult<u64> {
        self.with(|r| Ok(r.tell()))
    }

    /// Warnings for a file that reads nevertheless (a failed MDC, as gpg reads it).
    fn warnings(&mut self) -> PyResult<Vec<String>> {
        self.with(|r| Ok(r.warnings()))
    }

    /// Key ids of good signatures (None before the end was reached).
    fn signers(&mut self) -> PyResult<Option<Vec<String>>> {
        self.with(|r| Ok(r.signers().map(|s| s.to_vec())))
    }

    /// Stops the read-ahead thread and releases the file.
    fn close(&mut self, py: Python<'_>) {
        let taken = lock_reader(&self.inner).take();
        if let Some(mut r) = taken {
            py.detach(|| r.close());
        }
    }

    /// Whether `close` has been called.
    #[getter]
    fn closed(&self) -> bool {
        lock_reader(&self.inner).is_none()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPgpWriter>()?;
    m.add_class::<PyPgpReader>()?;
    Ok(())
}
