//! What the restore and backup bindings share: a volume read from the Python file object
//! duplicity opened (or straight from dupcore's gzip or OpenPGP reader inside it), path
//! indexes as tuples of bytes, and the slot keeping a Python error.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

#[cfg(feature = "openpgp")]
use super::pgp::{lock_reader, SharedPgpReader};
use crate::restore::SourceFailed;
use crate::volume::GzipReader;

/// Where a Python exception raised while the engine reads waits to be raised again.
pub(super) type Slot = Arc<Mutex<Option<PyErr>>>;

/// Keeps `e` in `slot` for Python to raise; the engine sees a [`SourceFailed`] read error.
fn keep(slot: &Slot, e: PyErr) -> io::Error {
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    io::Error::other(SourceFailed)
}

/// A volume as the Python file object duplicity opened (`read(n)` with the GIL).
pub(super) struct PyVolume {
    pub(super) file: Py<PyAny>,
    pub(super) slot: Slot,
}

impl Read for PyVolume {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let got = self
                .file
                .bind(py)
                .call_method1("read", (buf.len(),))
                .and_then(|b| {
                    let b = b.cast_into::<PyBytes>().map_err(PyErr::from)?;
                    let data = b.as_bytes();
                    if data.len() > buf.len() {
                        return Err(PyValueError::new_err("read() returned too much data"));
                    }
                    buf[..data.len()].copy_from_slice(data);
                    Ok(data.len())
                });
            got.map_err(|e| keep(&self.slot, e))
        })
    }
}

/// Copies what of `avail` fits into `buf`; how much.
fn copy_out(avail: &[u8], buf: &mut [u8]) -> usize {
    let n = avail.len().min(buf.len());
    buf[..n].copy_from_slice(&avail[..n]);
    n
}

/// A gzip volume read straight from its decompressing thread: no GIL and no Python bytes
/// per read. A failure becomes the exception `GzipReader.read` raises, kept in `slot`.
pub(super) struct DirectGzip {
    pub(super) reader: GzipReader,
    pub(super) slot: Slot,
}

impl Read for DirectGzip {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.reader.fill() {
            Ok(false) => Ok(0),
            Ok(true) => {
                let n = copy_out(self.reader.buffered(), buf);
                self.reader.consume(n);
                Ok(n)
            }
            Err(e) => Err(keep(&self.slot, PyErr::from(e))),
        }
    }
}

/// An encrypted volume read straight from dupcore's OpenPGP reader inside duplicity's
/// `GPGFile`: no GIL and no Python bytes per read. The reader stays `GPGFile`'s, which
/// drains it, checks its MDC and signers on `close()`. On any failure the volume is read
/// once more through `file`, so the exception is the one `GPGFile.read` raises (the
/// reader's errors are sticky).
#[cfg(feature = "openpgp")]
pub(super) struct DirectPgp {
    pub(super) reader: SharedPgpReader,
    pub(super) file: PyVolume,
}

#[cfg(feature = "openpgp")]
impl Read for DirectPgp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        {
            let mut guard = lock_reader(&self.reader);
            if let Some(r) = guard.as_mut() {
                match r.fill() {
                    Ok(false) => return Ok(0),
                    Ok(true) => {
                        let n = copy_out(r.buffered(), buf);
                        r.consume(n);
                        return Ok(n);
                    }
                    Err(_) => {}
                }
            }
        }
        self.file.read(buf)
    }
}

/// A path index as duplicity's tuple of bytes.
pub(super) fn index_tuple<'py>(
    py: Python<'py>,
    index: &[Vec<u8>],
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, index.iter().map(|c| PyBytes::new(py, c)))
}
