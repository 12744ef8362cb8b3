//! Volume writer, read-ahead gunzip and file hashing for duplicity's `gpg` and `path` modules.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::deflate::deflate_setting;
use super::errors::os_error;
use crate::hash::{hash_file as hash_file_impl, to_hex, Algorithm};
use crate::volume::{GzipReader, VolumeWriter};

/// Writes below this size are done with the GIL held (the copy is cheaper than a switch).
const DETACH_MIN: usize = 16 * 1024;

/// Accepts `str`, `bytes` (duplicity's path names) or any `os.PathLike`.
pub fn to_path(obj: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(PathBuf::from(OsStr::from_bytes(b.as_bytes())));
    }
    obj.extract::<PathBuf>()
}

/// What a writer reports when it closes: the file's size and digests, and the plaintext size.
#[pyclass(name = "WriteSummary", module = "dupcore._core", frozen, get_all)]
pub struct PyWriteSummary {
    /// Bytes in the file written.
    pub size: u64,
    /// SHA-1 of the file, hex.
    pub sha1: String,
    /// MD5 of the file, hex.
    pub md5: String,
    /// Bytes given to the writer (before compression and encryption).
    pub raw_size: u64,
}

/// A volume file being written: parallel gzip or plain, hashed as it reaches the disk.
#[pyclass(name = "VolumeWriter", module = "dupcore._core")]
struct PyVolumeWriter {
    inner: Option<VolumeWriter>,
}

impl PyVolumeWriter {
    fn get(&mut self) -> PyResult<&mut VolumeWriter> {
        self.inner
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("I/O operation on closed volume"))
    }
}

#[pymethods]
impl PyVolumeWriter {
    /// Creates `path`; `gzip_level` None writes plain bytes, else one gzip member with `mtime`,
    /// deflated by `engine` ("zlib-rs" or "isal") at that level.
    #[new]
    #[pyo3(signature = (path, gzip_level=None, mtime=0, engine="zlib-rs"))]
    fn new(
        path: &Bound<'_, PyAny>,
        gzip_level: Option<u32>,
        mtime: u32,
        engine: &str,
    ) -> PyResult<Self> {
        let gzip = gzip_level.map(|l| deflate_setting(engine, l)).transpose()?;
        let p = to_path(path)?;
        let w = VolumeWriter::create(&p, gzip, mtime).map_err(|e| os_error(&e))?;
        Ok(PyVolumeWriter { inner: Some(w) })
    }

    /// Appends bytes; returns how many were taken (all of them).
    fn write(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<usize> {
        let w = self.get()?;
        if data.len() >= DETACH_MIN {
            py.detach(|| w.write(data)).map_err(|e| os_error(&e))?;
        } else {
            w.write(data).map_err(|e| os_error(&e))?;
        }
        Ok(data.len())
    }

    /// A size the file cannot exceed once everything written so far reaches the disk.
    fn upper_bound(&mut self) -> PyResult<u64> {
        Ok(self.get()?.upper_bound())
    }

    /// Waits until everything written so far is on disk; returns the exact file size.
    fn settle(&mut self, py: Python<'_>) -> PyResult<u64> {
        let w = self.get()?;
        py.detach(|| w.settle()).map_err(|e| os_error(&e))
    }

    /// Finishes the file; returns its size, digests and uncompressed size.
    fn close(&mut self, py: Python<'_>) -> PyResult<PyWriteSummary> {
        let w = self
            .inner
            .take()
            .ok_or_else(|| PyValueError::new_err("volume already closed"))?;
        let s = py.detach(|| w.close()).map_err(|e| os_error(&e))?;
        Ok(PyWriteSummary {
            size: s.digests.len,
            sha1: to_hex(&s.digests.sha1),
            md5: to_hex(&s.digests.md5),
            raw_size: s.raw_len,
        })
    }

    /// Whether `close` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_none()
    }
}

/// A gzip file read sequentially, decompressed ahead on a background thread.
#[pyclass(name = "GzipReader", module = "dupcore._core")]
struct PyGzipReader {
    inner: Option<GzipReader>,
}

impl PyGzipReader {
    fn get(&mut self) -> PyResult<&mut GzipReader> {
        self.inner
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("I/O operation on closed file"))
    }
}

/// The reader inside `obj` when it is an open `GzipReader`, taken out of it (the object
/// reads as closed from then on).
pub(super) fn take_gzip_reader(obj: &Bound<'_, PyAny>) -> Option<GzipReader> {
    obj.cast::<PyGzipReader>()
        .ok()?
        .try_borrow_mut()
        .ok()?
        .inner
        .take()
}

#[pymethods]
impl PyGzipReader {
    /// Opens `path` and starts decompressing, up to `ahead` MiB ahead of the reader.
    #[new]
    #[pyo3(signature = (path, ahead=crate::volume::reader::DEFAULT_AHEAD))]
    fn new(path: &Bound<'_, PyAny>, ahead: usize) -> PyResult<Self> {
        let p = to_path(path)?;
        Ok(PyGzipReader {
            inner: Some(GzipReader::open_with_ahead(&p, ahead).map_err(|e| os_error(&e))?),
        })
    }

    /// Returns up to `size` bytes (all remaining when negative); short only at the end.
    #[pyo3(signature = (size=-1))]
    fn read<'py>(&mut self, py: Python<'py>, size: i64) -> PyResult<Bound<'py, PyBytes>> {
        let r = self.get()?;
        if let Ok(n) = usize::try_from(size) {
            // Small reads (tar headers, short members) served from the buffer keep the GIL.
            if n <= r.buffered().len() {
                let b = PyBytes::new(py, &r.buffered()[..n]);
                r.consume(n);
                return Ok(b);
            }
        }
        let mut out = Vec::new();
        let res = py.detach(|| {
            if size < 0 {
                while r.read_into(&mut out, 1 << 20)? > 0 {}
                Ok(())
            } else {
                r.read_into(&mut out, size as usize).map(|_| ())
            }
        });
        res.map_err(PyErr::from)?;
        Ok(PyBytes::new(py, &out))
    }

    /// Skips up to `n` bytes forward; returns how many.
    fn skip(&mut self, py: Python<'_>, n: u64) -> PyResult<u64> {
        let r = self.get()?;
        py.detach(|| r.skip(n)).map_err(PyErr::from)
    }

    /// Position in the decompressed stream.
    fn tell(&mut self) -> PyResult<u64> {
        Ok(self.get()?.tell())
    }

    /// Stops the read-ahead thread and releases the file.
    fn close(&mut self, py: Python<'_>) {
        if let Some(r) = self.inner.take() {
            py.detach(|| drop(r));
        }
    }

    /// Whether `close` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_none()
    }
}

/// Digest ("SHA1" or "MD5") of a whole file, computed without the GIL.
#[pyfunction]
fn hash_file<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    algorithm: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let algo = Algorithm::from_name(algorithm).ok_or_else(|| {
        PyValueError::new_err(format!("unknown hash {algorithm:?}; use SHA1 or MD5"))
    })?;
    let p = to_path(path)?;
    let digest = py
        .detach(|| hash_file_impl(&p, algo))
        .map_err(|e| os_error(&e))?;
    Ok(PyBytes::new(py, &digest))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWriteSummary>()?;
    m.add_class::<PyVolumeWriter>()?;
    m.add_class::<PyGzipReader>()?;
    m.add_function(wrap_pyfunction!(hash_file, m)?)?;
    Ok(())
}
