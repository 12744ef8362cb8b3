//! The one place where engine errors become Python exceptions: a `From` conversion per engine
//! error type, each to the exception duplicity's code expects (`librsyncError`, `OSError`
//! subclasses keeping errno, `EOFError`/`gzip.BadGzipFile`/`zlib.error` as Python's gzip
//! raises them, and the `OpenPGPError` family, whose subclass says what the caller should do).

use std::io;

use pyo3::create_exception;
use pyo3::exceptions::{PyEOFError, PyException, PyOSError};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::rsync::RsError;
use crate::volume::reader::{GzipError, GzipFailure};

create_exception!(
    _core,
    librsyncError,
    PyException,
    "An error inside a librsync job."
);

create_exception!(
    _core,
    OpenPGPError,
    PyException,
    "An OpenPGP failure; args are (kind, message)."
);
create_exception!(
    _core,
    OpenPGPUnsupported,
    OpenPGPError,
    "Not served in-process: stock gpg should handle this file."
);
create_exception!(
    _core,
    OpenPGPConfig,
    OpenPGPError,
    "Invalid settings (unknown algorithm, unusable key): stock gpg should handle this file."
);
create_exception!(
    _core,
    OpenPGPBadKey,
    OpenPGPError,
    "Wrong passphrase or no usable secret key."
);
create_exception!(
    _core,
    OpenPGPCorrupt,
    OpenPGPError,
    "Damaged, manipulated or truncated data, failed MDC."
);

/// An `OSError` from an I/O error: `OSError(errno, message)`, which Python turns into the
/// matching subclass (`FileNotFoundError`, `PermissionError`, ...).
pub fn os_error(e: &io::Error) -> PyErr {
    match e.raw_os_error() {
        Some(errno) => PyOSError::new_err((errno, e.to_string())),
        None => PyOSError::new_err(e.to_string()),
    }
}

/// `librsyncError` naming the job step, as duplicity's C module words it.
pub fn librsync_error(e: RsError, location: &str) -> PyErr {
    librsyncError::new_err(format!(
        "librsync error {} ({}) while in {}",
        e.code(),
        e,
        location
    ))
}

#[cfg(feature = "openpgp")]
impl From<crate::pgp::PgpError> for PyErr {
    fn from(e: crate::pgp::PgpError) -> PyErr {
        use crate::pgp::PgpErrorKind as K;
        let args = |kind: &str| (kind.to_string(), e.message.clone());
        match e.kind {
            K::Io => match e.errno {
                Some(errno) => PyOSError::new_err((errno, e.message)),
                None => PyOSError::new_err(e.message),
            },
            K::Unsupported => OpenPGPUnsupported::new_err(args("unsupported")),
            K::Config => OpenPGPConfig::new_err(args("config")),
            K::BadKey => OpenPGPBadKey::new_err(args("badkey")),
            K::Corrupt => OpenPGPCorrupt::new_err(args("corrupt")),
        }
    }
}

impl From<GzipError> for PyErr {
    fn from(e: GzipError) -> PyErr {
        match e.kind {
            GzipFailure::Truncated => PyEOFError::new_err(format!(
                "Compressed file ended before the end-of-stream marker was reached ({})",
                e.message
            )),
            GzipFailure::Corrupt => Python::attach(|py| {
                match py
                    .import("gzip")
                    .and_then(|m| m.getattr("BadGzipFile"))
                    .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from))
                {
                    Ok(cls) => PyErr::from_type(cls, e.message),
                    Err(err) => err,
                }
            }),
            GzipFailure::Deflate => Python::attach(|py| {
                match py
                    .import("zlib")
                    .and_then(|m| m.getattr("error"))
                    .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from))
                {
                    Ok(cls) => PyErr::from_type(
                        cls,
                        format!("Error -3 while decompressing data: {}", e.message),
                    ),
                    Err(err) => err,
                }
            }),
            GzipFailure::Io => match e.errno {
                Some(errno) => PyOSError::new_err((errno, e.message)),
                None => PyOSError::new_err(e.message),
            },
        }
    }
}

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("librsyncError", py.get_type::<librsyncError>())?;
    m.add("OpenPGPError", py.get_type::<OpenPGPError>())?;
    m.add("OpenPGPUnsupported", py.get_type::<OpenPGPUnsupported>())?;
    m.add("OpenPGPConfig", py.get_type::<OpenPGPConfig>())?;
    m.add("OpenPGPBadKey", py.get_type::<OpenPGPBadKey>())?;
    m.add("OpenPGPCorrupt", py.get_type::<OpenPGPCorrupt>())?;
    Ok(())
}
