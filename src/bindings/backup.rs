//! The backup scan for `dupcore.backup`: Python asks for events in batches; the scan runs
//! without the GIL and takes it only to read the signature tars through duplicity's file
//! objects.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyRuntimeError, PyStopIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::source::{index_tuple, PyVolume, Slot};
use crate::backup::select::{compile, Rule, Selection};
use crate::backup::sigchain::SigEntry;
use crate::backup::source::{FileKind, SourceStat};
use crate::backup::walk::Found;
use crate::backup::{BackupError, Event, Index, ScanOptions, Scanner, Source};
use crate::restore::entry::Kind;
use crate::restore::RestoreError;

/// Events handed to Python per call, about.
const BATCH: usize = 256;

/// duplicity's own selection as the source of paths: each `Path` its iterator yields, read
/// with the GIL. Its log lines go straight to duplicity's log, so the scan hands over its
/// events before each path it asks for.
struct PySource {
    iter: Py<PyAny>,
    slot: Slot,
}

/// The fields of a duplicity `Path` the scan compares.
fn found_of(path: &Bound<'_, PyAny>) -> PyResult<Found> {
    let index: Vec<Vec<u8>> = path.getattr("index")?.extract()?;
    let name: Vec<u8> = path.getattr("name")?.extract()?;
    let kind = path.getattr("type")?;
    if kind.is_none() {
        return Ok(Found {
            index,
            name,
            stat: None,
        });
    }
    let kind: String = kind.extract()?;
    let kind = match kind.as_str() {
        "reg" => FileKind::Reg,
        "dir" => FileKind::Dir,
        "fifo" => FileKind::Fifo,
        "sym" => FileKind::Sym(path.getattr("symtext")?.extract()?),
        "chr" | "blk" => {
            let (major, minor): (u64, u64) = path.getattr("devnums")?.extract()?;
            if kind == "chr" {
                FileKind::Chr(major, minor)
            } else {
                FileKind::Blk(major, minor)
            }
        }
        other => {
            return Err(PyRuntimeError::new_err(format!(
                "path type {other} is not one the backup scan compares"
            )))
        }
    };
    let stat = path.getattr("stat")?;
    let mtime: f64 = stat.getattr("st_mtime")?.extract()?;
    Ok(Found {
        index,
        name,
        stat: Some(SourceStat {
            kind,
            mode: path.getattr("mode")?.extract()?,
            uid: stat.getattr("st_uid")?.extract()?,
            gid: stat.getattr("st_gid")?.extract()?,
            size: stat.getattr("st_size")?.extract()?,
            mtime: mtime.trunc() as i64,
            mtime_not_positive: mtime <= 0.0,
            mtime_float: mtime,
            dev: 0,
        }),
    })
}

impl Source for PySource {
    fn next(&mut self, _events: &mut Vec<Event>) -> Result<Option<Found>, RestoreError> {
        Python::attach(|py| {
            let got = match self.iter.bind(py).call_method0("__next__") {
                Ok(path) => found_of(&path).map(Some),
                Err(e) if e.is_instance_of::<PyStopIteration>(py) => Ok(None),
                Err(e) => Err(e),
            };
            got.map_err(|e| {
                *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                RestoreError::Source
            })
        })
    }

    fn logs_itself(&self) -> bool {
        true
    }
}

/// A Python regex `(pattern, flags)` in the engine, or ValueError when it cannot be taken.
fn regex_of(pattern: &str, flags: u32) -> PyResult<regex::Regex> {
    compile(pattern, flags)
        .ok_or_else(|| PyValueError::new_err(format!("pattern not taken: {pattern}")))
}

/// `("glob", include, pattern, flags, (exact pattern, flags) or None, scan pattern, flags)`.
type GlobTuple = (String, u8, String, u32, Option<(String, u32)>, String, u32);

/// `--files-from` as `dupcore.backup` hands it over: each directory's full name and its names.
pub(super) type FilesFrom = Option<HashMap<Vec<u8>, Vec<Vec<u8>>>>;

/// The selection functions as `dupcore.backup` describes them (see `select::Rule`), and the
/// `--files-from` list.
pub(super) fn selection_of(
    rules: &[Bound<'_, PyTuple>],
    files_from: FilesFrom,
) -> PyResult<Selection> {
    let mut out = Vec::new();
    for r in rules {
        let kind: String = r.get_item(0)?.extract()?;
        out.push(match kind.as_str() {
            "glob" => {
                let (_, include, m, mf, exact, scan, sf): GlobTuple = r.extract()?;
                Rule::Glob {
                    include,
                    matches: regex_of(&m, mf)?,
                    exact: exact.map(|(p, f)| regex_of(&p, f)).transpose()?,
                    scan: regex_of(&scan, sf)?,
                }
            }
            "regexp" => {
                let (_, include, pattern, flags): (String, u8, String, u32) = r.extract()?;
                Rule::Regexp {
                    include,
                    re: regex_of(&pattern, flags)?,
                }
            }
            "literal" => {
                let (_, include, name): (String, u8, Vec<u8>) = r.extract()?;
                Rule::Literal { include, name }
            }
            "all" => Rule::All {
                include: r.get_item(1)?.extract()?,
            },
            "present" => Rule::ExcludeIfPresent {
                name: r.get_item(1)?.extract()?,
            },
            "devices" => Rule::ExcludeDevices,
            "other_fs" => Rule::OtherFilesystems {
                include: r.get_item(1)?.extract()?,
                root_dev: r.get_item(2)?.extract()?,
            },
            "older" => Rule::OlderThan {
                date: r.get_item(1)?.extract()?,
            },
            other => return Err(PyValueError::new_err(format!("unknown rule {other}"))),
        });
    }
    Ok(Selection {
        rules: out,
        files_from,
    })
}

/// Whether the engine takes these selection functions (for `dupcore.backup` and the tests).
#[pyfunction]
fn backup_selection_ok(rules: Vec<Bound<'_, PyTuple>>) -> bool {
    selection_of(&rules, None).is_ok()
}

/// The indexes of the paths the engine's walk selects under `root` with `rules` (and
/// `files_from`), for the differential tests against duplicity's own `Select`.
#[pyfunction]
#[pyo3(signature = (root, rules, files_from=None))]
fn backup_walk(
    py: Python<'_>,
    root: Vec<u8>,
    rules: Vec<Bound<'_, PyTuple>>,
    files_from: FilesFrom,
) -> PyResult<Py<PyAny>> {
    use crate::backup::walk::Walker;
    use crate::backup::Source as _;
    let mut walker =
        Walker::new(root, false, false).with_selection(selection_of(&rules, files_from)?);
    let list = PyList::empty(py);
    let mut events = Vec::new();
    loop {
        let found = walker
            .next(&mut events)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let Some(found) = found else { break };
        list.append(index_tuple(py, &found.index)?)?;
    }
    Ok(list.into_any().unbind())
}

/// A backup scan (see `dupcore.backup`).
#[pyclass(name = "BackupScan", module = "dupcore._core")]
struct PyBackupScan {
    scanner: Mutex<Option<Scanner>>,
    slot: Slot,
}

fn opt_index(py: Python<'_>, index: Option<Index>) -> PyResult<Py<PyAny>> {
    Ok(match index {
        Some(i) => index_tuple(py, &i)?.into_any().unbind(),
        None => py.None(),
    })
}

/// `(difftype, type, mode, uid, gid, mtime, size, linkname, devnums, data)` of a signature entry.
fn sig_object(py: Python<'_>, entry: SigEntry, data: Option<Vec<u8>>) -> PyResult<Py<PyAny>> {
    let data = data.map(|d| PyBytes::new(py, &d).into_any().unbind());
    let Some(meta) = entry.meta else {
        return Ok((
            entry.sigtype.name(),
            py.None(),
            0,
            0,
            0,
            0,
            0u64,
            py.None(),
            py.None(),
            data,
        )
            .into_pyobject(py)?
            .into_any()
            .unbind());
    };
    let (link, devnums) = match &meta.kind {
        Kind::Sym(t) => (Some(PyBytes::new(py, t)), None),
        Kind::Chr(a, b) | Kind::Blk(a, b) => (None, Some((*a, *b))),
        _ => (None, None),
    };
    Ok((
        entry.sigtype.name(),
        meta.kind.name(),
        meta.mode,
        meta.uid,
        meta.gid,
        meta.mtime,
        entry.size,
        link,
        devnums,
        data,
    )
        .into_pyobject(py)?
        .into_any()
        .unbind())
}

pub(super) fn event_object(py: Python<'_>, event: Event) -> PyResult<Py<PyAny>> {
    let named = |tag: &str, name: Vec<u8>| -> PyResult<Py<PyAny>> {
        Ok((tag, PyBytes::new(py, &name))
            .into_pyobject(py)?
            .into_any()
            .unbind())
    };
    match event {
        Event::Examining(n) => named("examining", n),
        Event::Selecting(n) => named("selecting", n),
        Event::SelectingScanned(n) => named("selecting_scanned", n),
        Event::PresentUnreadable(n) => named("present_unreadable", n),
        Event::NoSelectionFunctions => Ok(("no_functions",).into_pyobject(py)?.into_any().unbind()),
        Event::SelectionResult(f, v) => Ok(("result", f, v).into_pyobject(py)?.into_any().unbind()),
        Event::SelectionVerdict(v) => Ok(("verdict", v).into_pyobject(py)?.into_any().unbind()),
        Event::SkippingSocket(n) => named("socket", n),
        Event::ErrorInitializing(n) => named("init_error", n),
        Event::CannotStat(n) => named("cannot_stat", n),
        Event::CannotRead(n) => named("cannot_read", n),
        Event::ErrorListing(n) => named("list_error", n),
        Event::BaseMissing(n) => named("base_missing", n),
        Event::NegativeMtime(n) => named("negative_mtime", n),
        Event::Comparing(a, b) => Ok(("comparing", opt_index(py, a)?, opt_index(py, b)?)
            .into_pyobject(py)?
            .into_any()
            .unbind()),
        Event::Pair { index, new, sig } => {
            let sig = match sig {
                Some((entry, data)) => sig_object(py, entry, data)?,
                None => py.None(),
            };
            Ok(("pair", index_tuple(py, &index)?, new, sig)
                .into_pyobject(py)?
                .into_any()
                .unbind())
        }
    }
}

/// The exception for a scan error: the source's own one, or `(kind, message, errno, filename)`
/// for `dupcore.backup` to raise as duplicity would.
fn error_object(py: Python<'_>, e: BackupError, slot: &Slot) -> PyResult<Py<PyAny>> {
    let desc = |kind: &str, message: String, errno: Option<i32>, f: Option<Vec<u8>>| {
        let f = f.map(|b| PyBytes::new(py, &b).into_any().unbind());
        Ok::<_, PyErr>(
            (kind, message, errno, f)
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        )
    };
    match e {
        BackupError::BadSigName(name) => desc(
            "diffdir",
            format!("Bad tarinfo name {}", String::from_utf8_lossy(&name)),
            None,
            None,
        ),
        BackupError::Restore(RestoreError::Source) => {
            let stored = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            let err =
                stored.unwrap_or_else(|| PyRuntimeError::new_err("reading signatures failed"));
            Ok(err.into_value(py).into_any())
        }
        BackupError::Restore(RestoreError::Os {
            errno,
            message,
            filename,
            ..
        }) => desc("os", message, errno, filename),
        BackupError::Restore(RestoreError::Path(m)) => desc("path", m, None, None),
        BackupError::Restore(RestoreError::TarRead(m)) => desc("tarread", m, None, None),
        BackupError::Restore(other) => desc("other", other.to_string(), None, None),
    }
}

#[pymethods]
impl PyBackupScan {
    /// A scan of `root` (or of the paths the iterator `paths` yields) against the signature
    /// tars `sigs` (file objects, oldest first), with the selection `rules` and `files_from`.
    #[new]
    #[pyo3(signature = (root, sigs, copy_links=false, numeric_owner=false, debug=false, paths=None, rules=Vec::new(), files_from=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        root: Vec<u8>,
        sigs: Vec<Py<PyAny>>,
        copy_links: bool,
        numeric_owner: bool,
        debug: bool,
        paths: Option<Py<PyAny>>,
        rules: Vec<Bound<'_, PyTuple>>,
        files_from: FilesFrom,
    ) -> PyResult<Self> {
        let selection = selection_of(&rules, files_from)?;
        let slot: Slot = Arc::new(Mutex::new(None));
        let sources: Vec<Box<dyn Read + Send>> = sigs
            .into_iter()
            .map(|file| {
                Box::new(PyVolume {
                    file,
                    slot: Arc::clone(&slot),
                }) as Box<dyn Read + Send>
            })
            .collect();
        let options = ScanOptions {
            root,
            copy_links,
            numeric_owner,
            debug,
            selection,
        };
        let scanner = match paths {
            Some(iter) => {
                let source = PySource {
                    iter,
                    slot: Arc::clone(&slot),
                };
                Scanner::with_source(options, sources, Box::new(source))
            }
            None => Scanner::new(options, sources),
        };
        Ok(PyBackupScan {
            scanner: Mutex::new(Some(scanner)),
            slot,
        })
    }

    /// `(events, unchanged_files, unchanged_size, more, error)`: `error` is None, the source's
    /// exception, or `(kind, message, errno, filename)` for the caller to raise after the events.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut guard = self.scanner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(scanner) = guard.as_mut() else {
            return Err(PyRuntimeError::new_err("the backup scan has ended"));
        };
        let (result, events, unchanged) = py.detach(|| {
            let mut events = Vec::new();
            let result = scanner.fill(&mut events, BATCH);
            (result, events, scanner.take_unchanged())
        });
        let list = PyList::empty(py);
        for e in events {
            list.append(event_object(py, e)?)?;
        }
        let (more, error) = match result {
            Ok(more) => (more, py.None()),
            Err(e) => (false, error_object(py, e, &self.slot)?),
        };
        if !more {
            *guard = None;
        }
        Ok((list, unchanged.files, unchanged.size, more, error)
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(backup_selection_ok, m)?)?;
    m.add_function(wrap_pyfunction!(backup_walk, m)?)?;
    m.add_class::<PyBackupScan>()
}
