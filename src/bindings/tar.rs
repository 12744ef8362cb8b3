//! Tar header and block writer for duplicity's `diffdir.TarBlockIter`, and the header reader
//! behind `TarInfo.frombuf`.
//!
//! Text arguments are the `TarInfo` strings encoded with `"utf-8", "surrogatepass"`; numbers are
//! the Python values as they are. Each function returns `None` for an entry it does not
//! reproduce (or that CPython would reject), so the caller falls back to `TarInfo.tobuf()`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat};

use crate::tar::block::padded_len;
use crate::tar::parse::parse_simple;
use crate::tar::{write_pax_header, Number, TarEntry};

/// A TarInfo number: `float` stays a float, any other value must be an int that fits in 64 bits.
fn number(obj: &Bound<'_, PyAny>) -> Option<Number> {
    if obj.is_instance_of::<PyFloat>() {
        return obj.extract::<f64>().ok().map(Number::Float);
    }
    obj.extract::<i64>().ok().map(Number::Int)
}

/// Builds the entry, or None when a value is outside what the Rust writer handles.
#[allow(clippy::too_many_arguments)]
fn entry<'a>(
    name: &'a [u8],
    typeflag: &[u8],
    mode: &Bound<'_, PyAny>,
    uid: &Bound<'_, PyAny>,
    gid: &Bound<'_, PyAny>,
    size: Number,
    mtime: &Bound<'_, PyAny>,
    linkname: &'a [u8],
    uname: &'a [u8],
    gname: &'a [u8],
    devmajor: &Bound<'_, PyAny>,
    devminor: &Bound<'_, PyAny>,
) -> Option<TarEntry<'a>> {
    let [typeflag] = typeflag else {
        return None;
    };
    Some(TarEntry {
        name,
        typeflag: *typeflag,
        mode: mode.extract::<i64>().ok()?,
        uid: number(uid)?,
        gid: number(gid)?,
        size,
        mtime: number(mtime)?,
        linkname,
        uname,
        gname,
        devmajor: number(devmajor)?,
        devminor: number(devminor)?,
    })
}

/// `TarInfo.tobuf(format=PAX_FORMAT, encoding="utf-8")` for these fields, or None.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn tar_header<'py>(
    py: Python<'py>,
    name: &[u8],
    typeflag: &[u8],
    mode: &Bound<'py, PyAny>,
    uid: &Bound<'py, PyAny>,
    gid: &Bound<'py, PyAny>,
    size: &Bound<'py, PyAny>,
    mtime: &Bound<'py, PyAny>,
    linkname: &[u8],
    uname: &[u8],
    gname: &[u8],
    devmajor: &Bound<'py, PyAny>,
    devminor: &Bound<'py, PyAny>,
) -> Option<Bound<'py, PyBytes>> {
    let e = entry(
        name,
        typeflag,
        mode,
        uid,
        gid,
        number(size)?,
        mtime,
        linkname,
        uname,
        gname,
        devmajor,
        devminor,
    )?;
    let mut out = Vec::with_capacity(512);
    write_pax_header(&mut out, &e).ok()?;
    Some(PyBytes::new(py, &out))
}

/// A whole tar block: header with `size = len(data)`, the data and NUL padding; or None.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn tar_block<'py>(
    py: Python<'py>,
    name: &[u8],
    typeflag: &[u8],
    mode: &Bound<'py, PyAny>,
    uid: &Bound<'py, PyAny>,
    gid: &Bound<'py, PyAny>,
    mtime: &Bound<'py, PyAny>,
    linkname: &[u8],
    uname: &[u8],
    gname: &[u8],
    devmajor: &Bound<'py, PyAny>,
    devminor: &Bound<'py, PyAny>,
    data: &[u8],
) -> Option<Bound<'py, PyBytes>> {
    let size = Number::Int(i64::try_from(data.len()).ok()?);
    let e = entry(
        name, typeflag, mode, uid, gid, size, mtime, linkname, uname, gname, devmajor, devminor,
    )?;
    let mut header = Vec::with_capacity(512);
    write_pax_header(&mut header, &e).ok()?;
    let total = header.len() + padded_len(data.len());
    PyBytes::new_with(py, total, |buf| {
        buf[..header.len()].copy_from_slice(&header);
        buf[header.len()..header.len() + data.len()].copy_from_slice(data);
        buf[header.len() + data.len()..].fill(0);
        Ok(())
    })
    .ok()
}

/// `cls.frombuf(buf, encoding, errors)` for a common header, built as CPython's `frombuf`
/// builds it (text decoded with `encoding`/`errors`, V7 directories, ustar prefix); None when
/// the header needs Python's own parser (its errors, base-256 numbers, sparse files...).
#[pyfunction]
fn tar_frombuf<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyAny>,
    buf: &[u8],
    encoding: &str,
    errors: &str,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(h) = parse_simple(buf) else {
        return Ok(None);
    };
    let text = |b: &[u8]| PyBytes::new(py, b).call_method1("decode", (encoding, errors));
    let obj = cls.call0()?;
    let mut name = text(h.name)?;
    obj.setattr("mode", h.mode)?;
    obj.setattr("uid", h.uid)?;
    obj.setattr("gid", h.gid)?;
    obj.setattr("size", h.size)?;
    obj.setattr("mtime", h.mtime)?;
    obj.setattr("chksum", h.chksum)?;
    let mut typeflag = h.typeflag;
    obj.setattr("linkname", text(h.linkname)?)?;
    obj.setattr("uname", text(h.uname)?)?;
    obj.setattr("gname", text(h.gname)?)?;
    obj.setattr("devmajor", h.devmajor)?;
    obj.setattr("devminor", h.devminor)?;
    let prefix = text(h.prefix)?;
    // Old V7 tar format represents a directory as a regular file with a trailing slash.
    if typeflag == 0 && name.call_method1("endswith", ("/",))?.is_truthy()? {
        typeflag = b'5';
    }
    if typeflag == b'5' {
        name = name.call_method1("rstrip", ("/",))?;
    }
    if prefix.is_truthy()? && !matches!(typeflag, b'L' | b'K' | b'S') {
        name = prefix.add("/")?.add(name)?;
    }
    obj.setattr("type", PyBytes::new(py, &[typeflag]))?;
    obj.setattr("name", name)?;
    Ok(Some(obj))
}

/// Adds the tar functions to `dupcore._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tar_header, m)?)?;
    m.add_function(wrap_pyfunction!(tar_block, m)?)?;
    m.add_function(wrap_pyfunction!(tar_frombuf, m)?)?;
    Ok(())
}
