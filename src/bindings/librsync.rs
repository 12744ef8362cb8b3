//! `duplicity._librsync`-compatible job objects (`cycle()` API) plus whole-buffer methods.

use std::fs::File;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};

use super::errors::librsync_error;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::rsync::{DeltaMaker, LiteralCap, PatchMaker, RsError, SigMaker, SigThread, Signature};

/// Input size above which `cycle` releases the GIL while it works.
const DETACH_MIN: usize = 16 * 1024;
/// Output bytes one `cycle` of a patch job may return (librsync's job buffer).
const CYCLE_OUT: usize = crate::rsync::JOB_BLOCKSIZE;

static V232: AtomicBool = AtomicBool::new(false);

fn cap() -> LiteralCap {
    if V232.load(Ordering::Relaxed) {
        LiteralCap::V232
    } else {
        LiteralCap::V234
    }
}

fn detach_if<T: Send>(py: Python<'_>, big: bool, f: impl FnOnce() -> T + Send) -> T {
    if big {
        py.detach(f)
    } else {
        f()
    }
}

/// A signature job (`new_sigmaker`).
#[pyclass(name = "sigmaker", module = "dupcore._core")]
struct PySigMaker {
    inner: SigMaker,
}

#[pymethods]
impl PySigMaker {
    /// One job step: `(done, consumed, output)`; an empty `buf` means end of input.
    fn cycle<'py>(
        &mut self,
        py: Python<'py>,
        buf: &[u8],
    ) -> PyResult<(i32, usize, Bound<'py, PyBytes>)> {
        let inner = &mut self.inner;
        let out = detach_if(py, buf.len() >= DETACH_MIN, || {
            let mut out = Vec::new();
            if buf.is_empty() {
                inner.finish(&mut out);
                Ok(out)
            } else {
                inner.update(buf, &mut out).map(|_| out)
            }
        })
        .map_err(|e| librsync_error(e, "signature cycle"))?;
        Ok((
            i32::from(self.inner.is_finished()),
            buf.len(),
            PyBytes::new(py, &out),
        ))
    }

    /// Feeds input without the GIL and returns the signature bytes completed so far.
    fn update<'py>(&mut self, py: Python<'py>, buf: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        let out = py
            .detach(|| {
                let mut out = Vec::new();
                inner.update(buf, &mut out).map(|_| out)
            })
            .map_err(|e| librsync_error(e, "signature update"))?;
        Ok(PyBytes::new(py, &out))
    }

    /// Ends the input and returns the remaining signature bytes.
    fn finish<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut out = Vec::new();
        self.inner.finish(&mut out);
        PyBytes::new(py, &out)
    }
}

/// A delta job (`new_deltamaker`).
#[pyclass(name = "deltamaker", module = "dupcore._core")]
struct PyDeltaMaker {
    inner: DeltaMaker,
}

#[pymethods]
impl PyDeltaMaker {
    /// One job step: `(done, consumed, output)`; an empty `buf` means end of input.
    fn cycle<'py>(
        &mut self,
        py: Python<'py>,
        buf: &[u8],
    ) -> PyResult<(i32, usize, Bound<'py, PyBytes>)> {
        let inner = &mut self.inner;
        let out = detach_if(py, buf.len() >= DETACH_MIN, || {
            let mut out = Vec::new();
            if buf.is_empty() {
                inner.finish(&mut out);
                Ok(out)
            } else {
                inner.update(buf, &mut out).map(|_| out)
            }
        })
        .map_err(|e| librsync_error(e, "delta cycle"))?;
        Ok((
            i32::from(self.inner.is_finished()),
            buf.len(),
            PyBytes::new(py, &out),
        ))
    }

    /// Feeds new-file bytes without the GIL, returning the delta bytes decided so far.
    ///
    /// With an empty signature, input is cut into 65536-byte literals as duplicity's reads do;
    /// otherwise it goes to the engine whole (the delta does not depend on how it is cut).
    fn update<'py>(&mut self, py: Python<'py>, buf: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        let out = py
            .detach(|| {
                let mut out = Vec::with_capacity(buf.len() / 8);
                if !inner.is_slack() {
                    // whole: the blocks ahead of a match are summed in parallel, in SIMD lane groups
                    inner.update(buf, &mut out)?;
                    return Ok(out);
                }
                for piece in buf.chunks(crate::rsync::JOB_BLOCKSIZE) {
                    inner.update(piece, &mut out)?;
                }
                Ok(out)
            })
            .map_err(|e| librsync_error(e, "delta update"))?;
        Ok(PyBytes::new(py, &out))
    }

    /// Also makes the new file's signature with `blocklen`-byte blocks and 8-byte MD4 sums
    /// from the same input, sharing block sums; false when the blocks differ from the delta's
    /// (or the signature is empty, or input was given): then nothing changes.
    fn share_signature(&mut self, blocklen: usize) -> PyResult<bool> {
        self.inner
            .share_signature(blocklen, 8)
            .map_err(|e| librsync_error(e, "shared signature"))
    }

    /// Adds bytes after the delta's input to the shared signature only.
    fn signature_update(&mut self, py: Python<'_>, buf: &[u8]) -> PyResult<()> {
        let inner = &mut self.inner;
        detach_if(py, buf.len() >= DETACH_MIN, || inner.signature_update(buf))
            .map_err(|e| librsync_error(e, "shared signature"))
    }

    /// The shared signature of all input (once).
    fn signature<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        let sig = py
            .detach(|| inner.take_signature())
            .map_err(|e| librsync_error(e, "shared signature"))?;
        Ok(PyBytes::new(py, &sig))
    }

    /// Whether the signature is empty, so that each `cycle` input becomes one literal.
    #[getter]
    fn slack(&self) -> bool {
        self.inner.is_slack()
    }

    /// Ends the input and returns the rest of the delta, END command included.
    fn finish<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let inner = &mut self.inner;
        let out = py.detach(|| {
            let mut out = Vec::new();
            inner.finish(&mut out);
            out
        });
        PyBytes::new(py, &out)
    }
}

/// A patch job (`new_patchmaker`) reading its basis through a duplicate of the file's fd.
#[pyclass(name = "patchmaker", module = "dupcore._core")]
struct PyPatchMaker {
    inner: PatchMaker<File>,
    _basis: Py<PyAny>,
}

impl PyPatchMaker {
    fn step(
        &mut self,
        py: Python<'_>,
        buf: &[u8],
        limit: usize,
    ) -> PyResult<(bool, usize, Vec<u8>)> {
        let inner = &mut self.inner;
        let eof = buf.is_empty();
        let (used, done, out) = py
            .detach(|| {
                let mut out = Vec::with_capacity(limit.min(1 << 20));
                inner
                    .cycle(buf, eof, &mut out, limit)
                    .map(|(u, d)| (u, d, out))
            })
            .map_err(|e| librsync_error(e, "patch cycle"))?;
        Ok((done, used, out))
    }
}

#[pymethods]
impl PyPatchMaker {
    /// One job step: `(done, consumed, output ≤ 64 KiB)`; an empty `buf` means end of delta.
    fn cycle<'py>(
        &mut self,
        py: Python<'py>,
        buf: &[u8],
    ) -> PyResult<(i32, usize, Bound<'py, PyBytes>)> {
        let (done, used, out) = self.step(py, buf, CYCLE_OUT)?;
        Ok((i32::from(done), used, PyBytes::new(py, &out)))
    }

    /// Like `cycle` on `buf[offset:]` with a caller-chosen output bound, for whole-file readers.
    #[pyo3(signature = (buf, limit, offset=0))]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        buf: &[u8],
        limit: usize,
        offset: usize,
    ) -> PyResult<(bool, usize, Bound<'py, PyBytes>)> {
        if limit == 0 {
            return Err(PyValueError::new_err("output limit must be positive"));
        }
        let rest = buf
            .get(offset..)
            .ok_or_else(|| PyValueError::new_err("offset is past the end of the buffer"))?;
        let (done, used, out) = self.step(py, rest, limit)?;
        Ok((done, used, PyBytes::new(py, &out)))
    }
}

/// Data a signature job computes inline before it moves to a thread of its own.
const SIG_THREAD_MIN: usize = 1 << 20;

/// A whole-file signature job whose large inputs are summed on a thread of their own while
/// the caller goes on (`dupcore.librsync.SigGenerator`).
#[pyclass(name = "sigjob", module = "dupcore._core")]
struct PySigJob {
    maker: Option<SigMaker>,
    out: Vec<u8>,
    fed: usize,
    thread: Option<SigThread>,
}

#[pymethods]
impl PySigJob {
    /// Adds data; from the first MiB on it is summed on the job's thread.
    fn feed(&mut self, py: Python<'_>, buf: &[u8]) -> PyResult<()> {
        self.fed += buf.len();
        if self.thread.is_none() && self.fed <= SIG_THREAD_MIN {
            let Some(maker) = self.maker.as_mut() else {
                return Err(librsync_error(
                    RsError::Finished("sigjob"),
                    "signature feed",
                ));
            };
            return maker
                .update(buf, &mut self.out)
                .map_err(|e| librsync_error(e, "signature feed"));
        }
        if self.thread.is_none() {
            let Some(maker) = self.maker.take() else {
                return Err(librsync_error(
                    RsError::Finished("sigjob"),
                    "signature feed",
                ));
            };
            let out = std::mem::take(&mut self.out);
            let thread =
                SigThread::spawn(maker, out).map_err(|e| librsync_error(e, "signature thread"))?;
            self.thread = Some(thread);
        }
        let data = buf.to_vec();
        if let Some(thread) = self.thread.as_mut() {
            py.detach(|| thread.feed(data));
        }
        Ok(())
    }

    /// The whole signature (waits for the job's thread).
    fn collect<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let out = match (self.thread.take(), self.maker.as_mut()) {
            (Some(thread), _) => py
                .detach(|| thread.finish())
                .map_err(|e| librsync_error(e, "signature"))?,
            (None, Some(maker)) => {
                maker.finish(&mut self.out);
                self.maker = None;
                std::mem::take(&mut self.out)
            }
            (None, None) => return Err(librsync_error(RsError::Finished("sigjob"), "signature")),
        };
        Ok(PyBytes::new(py, &out))
    }
}

/// Starts a whole-file signature job (see `sigjob`), MD4 sums of 8 bytes.
#[pyfunction]
fn new_sigjob(blocklen: i64) -> PyResult<PySigJob> {
    let maker = new_sigmaker(blocklen)?.inner;
    Ok(PySigJob {
        maker: Some(maker),
        out: Vec::new(),
        fed: 0,
        thread: None,
    })
}

/// Starts a signature job with MD4 sums of 8 bytes (`blocklen` 0 means 2048).
#[pyfunction]
fn new_sigmaker(blocklen: i64) -> PyResult<PySigMaker> {
    let block_len = if blocklen == 0 {
        crate::rsync::DEFAULT_BLOCK_LEN as i64
    } else {
        blocklen
    };
    let block_len = usize::try_from(block_len).map_err(|_| {
        librsync_error(
            RsError::Param(format!("block length {blocklen}")),
            "sigmaker",
        )
    })?;
    let inner = SigMaker::new(block_len, 8).map_err(|e| librsync_error(e, "sigmaker"))?;
    Ok(PySigMaker { inner })
}

/// Loads a whole signature and starts a delta job against it.
#[pyfunction]
fn new_deltamaker(py: Python<'_>, sig: &[u8]) -> PyResult<PyDeltaMaker> {
    let parsed = detach_if(py, sig.len() >= DETACH_MIN, || Signature::parse(sig))
        .map_err(|e| librsync_error(e, "delta rs_signature_t builder"))?;
    Ok(PyDeltaMaker {
        inner: DeltaMaker::new(Arc::new(parsed), cap()),
    })
}

/// Starts a patch job whose COPY commands read from the open file `f`.
#[pyfunction]
fn new_patchmaker(f: &Bound<'_, PyAny>) -> PyResult<PyPatchMaker> {
    let fd: RawFd = f
        .call_method0("fileno")
        .and_then(|n| n.extract())
        .map_err(|_| PyTypeError::new_err("Need true file object"))?;
    if fd < 0 {
        return Err(PyTypeError::new_err("Need true file object"));
    }
    // SAFETY: `fd` is open for at least this call (we hold a reference to `f`), and
    // try_clone_to_owned duplicates it, so the job owns its own descriptor.
    let owned = unsafe { BorrowedFd::borrow_raw(fd) }
        .try_clone_to_owned()
        .map_err(|e| librsync_error(RsError::Io(e), "patchmaker"))?;
    Ok(PyPatchMaker {
        inner: PatchMaker::new(File::from(owned)),
        _basis: f.clone().unbind(),
    })
}

/// The librsync release whose bytes this module reproduces, as duplicity logs it.
#[pyfunction]
fn get_version() -> String {
    format!(
        "librsync {} (dupcore {})",
        cap().librsync_version(),
        env!("CARGO_PKG_VERSION")
    )
}

/// Chooses the literal segmentation: "2.3.4" (default, as duplicity's wheels) or "2.3.2".
#[pyfunction]
fn set_librsync_mode(mode: &str) -> PyResult<()> {
    match mode {
        "2.3.2" => V232.store(true, Ordering::Relaxed),
        "2.3.4" => V232.store(false, Ordering::Relaxed),
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown librsync mode {mode:?}; use 2.3.2 or 2.3.4"
            )))
        }
    }
    Ok(())
}

/// The librsync release currently reproduced ("2.3.2" or "2.3.4").
#[pyfunction]
fn librsync_mode() -> &'static str {
    cap().librsync_version()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("RS_JOB_BLOCKSIZE", crate::rsync::JOB_BLOCKSIZE)?;
    m.add("RS_DEFAULT_BLOCK_LEN", crate::rsync::DEFAULT_BLOCK_LEN)?;
    m.add_class::<PySigMaker>()?;
    m.add_class::<PySigJob>()?;
    m.add_function(wrap_pyfunction!(new_sigjob, m)?)?;
    m.add_class::<PyDeltaMaker>()?;
    m.add_class::<PyPatchMaker>()?;
    m.add_function(wrap_pyfunction!(new_sigmaker, m)?)?;
    m.add_function(wrap_pyfunction!(new_deltamaker, m)?)?;
    m.add_function(wrap_pyfunction!(new_patchmaker, m)?)?;
    m.add_function(wrap_pyfunction!(get_version, m)?)?;
    m.add_function(wrap_pyfunction!(set_librsync_mode, m)?)?;
    m.add_function(wrap_pyfunction!(librsync_mode, m)?)?;
    Ok(())
}
